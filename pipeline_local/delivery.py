"""Deliver events to functions as AWS does: S3 notifications, async invocation, SQS polling.

Independent of where the wiring comes from (Terraform state, a test's own resources): callers
pass bucket names, queue URLs and `Invoker`s. What each piece reproduces:

- `s3_put_event` / `s3_event_for_object`: the `ObjectCreated:Put` notification S3 sends to
  Lambda (event version 2.1). The object key is URL-encoded the way S3 encodes it in events:
  `quote_plus` semantics (space -> `+`, `+` -> `%2B`, non-ASCII as UTF-8 %XX), with `/` kept as
  is (real S3 notifications keep the path separators; handlers decode with `unquote_plus`, which
  gives the same key either way).
- `invoke_async`: Lambda's asynchronous invocation (how S3 invokes): on a function error the
  event is retried twice more (`maximum_retry_attempts`, default 2; no back-off delay here), then,
  with a `dead_letter_config` target queue, sent there as Lambda does: body = the event JSON,
  message attributes RequestID (String), ErrorCode (Number), ErrorMessage (String).
- `sqs_event`: the event an SQS event source mapping builds from ReceiveMessage results.
- `QueuePoller`: one SQS event source mapping (ReceiveMessage with AttributeNames All and
  MessageAttributeNames All, up to `batch_size` messages, the queue's visibility timeout unless
  one is given), `ReportBatchItemFailures` semantics (see `batch_item_failures`), successes
  deleted with DeleteMessageBatch, failures left on the queue. On AWS a failed message
  reappears when its visibility timeout expires; with `fast_redelivery` (default) the poller
  sets the failed messages' visibility to 0 so that they reappear at once — the only deviation,
  a matter of time only. Moving a message to the DLQ after `maxReceiveCount` receives is left
  to the queue's redrive policy: moto 5.2.1 implements it on ReceiveMessage exactly as SQS does
  (a visible message whose receive count has reached maxReceiveCount is moved to the
  dead-letter queue instead of being returned; checked by
  tests/conformance/test_delivery_harness.py).
- `drain`: keep delivering batches from every poller until every queue is empty.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any
from urllib.parse import quote_plus

from pipeline_local.constants import DEFAULT_TIMEOUT_MS, REGION
from pipeline_local.invokers import InvocationError, Invoker

# What S3 puts in userIdentity / ownerIdentity: canonical-looking principal ids.
DEFAULT_PRINCIPAL_ID = "AWS:AIDAEXAMPLEPRODUCER01"
DEFAULT_OWNER_ID = "A3NL1KOZZKEXAMPLE"

_sequencer = itertools.count(1)


# --------------------------------------------------------------------------------------------
# S3 notifications


def s3_event_key(key: str) -> str:
    """Encode an object key the way S3 writes it into event notifications."""
    return quote_plus(key, safe="/")


def _iso_ms(when: dt.datetime) -> str:
    when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _next_sequencer() -> str:
    # S3's sequencer: a hex string that increases for successive events on a key.
    return f"{time.time_ns():016X}{next(_sequencer) % 256:02X}"


def s3_put_event(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    version_id: str | None = None,
    event_time: dt.datetime | None = None,
    region: str = REGION,
    configuration_id: str = "transactions-upload",
    principal_id: str = DEFAULT_PRINCIPAL_ID,
    owner_id: str = DEFAULT_OWNER_ID,
    source_ip: str = "127.0.0.1",
    sequencer: str | None = None,
) -> dict[str, Any]:
    """One `ObjectCreated:Put` notification, exactly as S3 delivers it to Lambda."""
    obj: dict[str, Any] = {
        "key": s3_event_key(key),
        "size": int(size),
        "eTag": etag.strip('"'),
    }
    if version_id is not None and version_id != "null":
        obj["versionId"] = version_id
    obj["sequencer"] = sequencer or _next_sequencer()
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso_ms(event_time or dt.datetime.now(dt.UTC)),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": principal_id},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {
            "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
            "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes * 3).decode("ascii"),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": owner_id},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }
    return {"Records": [record]}


def s3_event_for_object(
    s3: Any, bucket: str, key: str, version_id: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """The notification for an object that exists: size, ETag, version and time from HeadObject."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    head = s3.head_object(**params)
    return s3_put_event(
        bucket,
        key,
        size=head["ContentLength"],
        etag=head["ETag"],
        version_id=version_id or head.get("VersionId"),
        event_time=kwargs.pop("event_time", None) or head.get("LastModified"),
        **kwargs,
    )


@dataclass
class AsyncResult:
    """Outcome of one asynchronous invocation (with its retries)."""

    attempts: int
    response: Any = None
    error: InvocationError | None = None
    sent_to_dead_letter_queue: bool = False


def invoke_async(
    invoker: Invoker,
    event: dict[str, Any],
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    maximum_retry_attempts: int = 2,
    sqs: Any = None,
    dead_letter_queue_url: str | None = None,
) -> AsyncResult:
    """Asynchronous invocation: retries on function errors, then the dead-letter target."""
    error: InvocationError | None = None
    for attempt in range(1, maximum_retry_attempts + 2):
        try:
            return AsyncResult(
                attempts=attempt, response=invoker.invoke(event, timeout_ms=timeout_ms)
            )
        except InvocationError as exc:
            error = exc
    assert error is not None
    result = AsyncResult(attempts=maximum_retry_attempts + 1, error=error)
    if dead_letter_queue_url is not None:
        if sqs is None:
            raise ValueError("a dead-letter queue needs an SQS client")
        sqs.send_message(
            QueueUrl=dead_letter_queue_url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": str(error)[:1024] or "-"},
            },
        )
        result.sent_to_dead_letter_queue = True
    return result


# --------------------------------------------------------------------------------------------
# SQS event source mappings


def queue_arn(sqs: Any, queue_url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def _event_message_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's MessageAttributes in the event's lower-camel-case shape."""
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        entry: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            entry["binaryValue"] = base64.b64encode(
                raw if isinstance(raw, bytes) else str(raw).encode()
            ).decode("ascii")
        out[name] = entry
    return out


def sqs_record(
    message: dict[str, Any], event_source_arn: str, region: str = REGION
) -> dict[str, Any]:
    """One record of an SQS event, built from one ReceiveMessage message."""
    attributes = message.get("Attributes", {})
    event_attributes = {
        "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
        "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
        "SenderId": attributes.get("SenderId", "AIDAEXAMPLESENDER"),
        "ApproximateFirstReceiveTimestamp": attributes.get(
            "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
        ),
    }
    for optional in (
        "AWSTraceHeader",
        "SequenceNumber",
        "MessageGroupId",
        "MessageDeduplicationId",
        "DeadLetterQueueSourceArn",
    ):
        if optional in attributes:
            event_attributes[optional] = attributes[optional]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": event_attributes,
        "messageAttributes": _event_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": event_source_arn,
        "awsRegion": region,
    }


def sqs_event(
    messages: Iterable[dict[str, Any]], event_source_arn: str, region: str = REGION
) -> dict[str, Any]:
    """The event an SQS event source mapping passes to the function for one batch."""
    return {"Records": [sqs_record(m, event_source_arn, region) for m in messages]}


def batch_item_failures(response: Any, message_ids: Sequence[str]) -> set[str] | None:
    """Failed message ids under ReportBatchItemFailures, or None when the whole batch failed.

    As documented for Lambda: a null/empty response, or a null/empty `batchItemFailures`, is
    complete success; a response that is not an object, a `batchItemFailures` that is not a list,
    or an entry whose `itemIdentifier` is missing, null, empty, not a string or not a message of
    this batch makes the whole batch fail.
    """
    if response is None or response == {} or response == "":
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    known = set(message_ids)
    failed: set[str] = set()
    for entry in failures:
        if not isinstance(entry, dict):
            return None
        ident = entry.get("itemIdentifier")
        if not isinstance(ident, str) or not ident or ident not in known:
            return None
        failed.add(ident)
    return failed


@dataclass
class Delivery:
    """One invocation by an event source mapping, kept for inspection by tests."""

    queue_url: str
    records: list[dict[str, Any]]
    response: Any = None
    error: InvocationError | None = None
    failed_ids: set[str] = field(default_factory=set)

    @property
    def whole_batch_failed(self) -> bool:
        return self.error is not None or self.failed_ids == {r["messageId"] for r in self.records}


@dataclass(eq=False)  # compared and hashed by identity, as before it was a dataclass
class QueuePoller:
    """An SQS event source mapping: ReceiveMessage -> invoke -> delete successes."""

    sqs: Any
    queue_url: str
    invoker: Invoker
    _: KW_ONLY
    batch_size: int = 10
    visibility_timeout: int | None = None
    report_batch_item_failures: bool = True
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    fast_redelivery: bool = True
    region: str = REGION
    arn: str = field(init=False)
    deliveries: list[Delivery] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10:
            raise ValueError("SQS ReceiveMessage returns at most 10 messages per call")
        self.arn = queue_arn(self.sqs, self.queue_url)

    def receive(self) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": self.batch_size,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
            "WaitTimeSeconds": 0,
        }
        if self.visibility_timeout is not None:
            params["VisibilityTimeout"] = self.visibility_timeout
        return list(self.sqs.receive_message(**params).get("Messages", []))

    def poll_once(self) -> Delivery | None:
        """Receive one batch and deliver it; None when nothing was received."""
        messages = self.receive()
        if not messages:
            return None
        event = sqs_event(messages, self.arn, self.region)
        delivery = Delivery(queue_url=self.queue_url, records=event["Records"])
        ids = [r["messageId"] for r in event["Records"]]
        try:
            delivery.response = self.invoker.invoke(event, timeout_ms=self.timeout_ms)
        except InvocationError as exc:
            delivery.error = exc
        if delivery.error is not None:
            failed: set[str] | None = None
        elif self.report_batch_item_failures:
            failed = batch_item_failures(delivery.response, ids)
        else:
            failed = set()
        delivery.failed_ids = set(ids) if failed is None else failed
        self._settle(messages, delivery.failed_ids)
        self.deliveries.append(delivery)
        return delivery

    def _settle(self, messages: list[dict[str, Any]], failed_ids: set[str]) -> None:
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if done:
            result = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
            if result.get("Failed"):
                raise RuntimeError(f"DeleteMessageBatch failed: {result['Failed']}")
        failed = [m for m in messages if m["MessageId"] in failed_ids]
        if failed and self.fast_redelivery:
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(failed)
                ],
            )

    def depth(self) -> int:
        """Messages on the queue: visible, in flight and delayed."""
        return queue_depth(self.sqs, self.queue_url)


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages on a queue: visible, in flight and delayed (the three approximate counts)."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


class DrainError(RuntimeError):
    """The queues did not empty within the allowed number of rounds."""


@dataclass
class DrainStats:
    rounds: int = 0
    deliveries: int = 0
    failed_messages: int = 0


def _describe_failure(delivery: Delivery, record: dict[str, Any]) -> str:
    outcome = (
        f"raised {delivery.error}"
        if delivery.error is not None
        else f"returned {delivery.response!r}"
    )
    return (
        f"message {record['messageId']} on {delivery.queue_url} failed"
        f" {record['attributes']['ApproximateReceiveCount']} times; last invocation {outcome};"
        f" body {record['body'][:300]!r}"
    )


def drain(
    pollers: Sequence[QueuePoller],
    *,
    max_rounds: int = 100,
    idle_wait_s: float = 0.2,
    max_receives: int = 10,
) -> DrainStats:
    """Deliver batches from every poller, in order, until every queue is empty.

    One round polls each queue once. Raises DrainError when messages remain after `max_rounds`
    rounds, or as soon as one message has failed `max_receives` times (a handler that keeps
    failing on a queue without a redrive policy, such as the DLQ).
    """
    stats = DrainStats()
    for _ in range(max_rounds):
        stats.rounds += 1
        delivered = False
        for poller in pollers:
            delivery = poller.poll_once()
            if delivery is not None:
                delivered = True
                _count(stats, delivery, max_receives)
        if not delivered:
            if all(p.depth() == 0 for p in pollers):
                return stats
            # Only in-flight or delayed messages left: wait for them to become visible.
            time.sleep(idle_wait_s)
    remaining = {p.queue_url: p.depth() for p in pollers}
    raise DrainError(f"queues not drained after {max_rounds} rounds: {remaining}")


def _count(stats: DrainStats, delivery: Delivery, max_receives: int) -> None:
    """Counts a delivery; raises DrainError when one of its failed messages has been received
    `max_receives` times."""
    stats.deliveries += 1
    stats.failed_messages += len(delivery.failed_ids)
    for record in delivery.records:
        receives = int(record["attributes"]["ApproximateReceiveCount"])
        if record["messageId"] in delivery.failed_ids and receives >= max_receives:
            raise DrainError(_describe_failure(delivery, record))


def drain_concurrently(
    pollers: Sequence[QueuePoller],
    *,
    idle_wait_s: float = 0.05,
    max_receives: int = 10,
    deadline_s: float = 3600.0,
) -> DrainStats:
    """One queue's event source mapping with up to len(pollers) invocations at a time: each
    poller (one execution environment) receives and delivers batches in its own thread until
    the queue is empty, as the mapping's `maximum_concurrency` lets AWS do (P36).

    The pollers must share one queue. A poller stops when it receives nothing and the queue has
    no visible, in-flight or delayed message: a batch another poller is still processing is in
    flight until it is settled, and the messages that invocation sends are on the queue before
    it settles. Raises DrainError as `drain` does, or when `deadline_s` passes first; the first
    error in any thread stops the others after their current batch."""
    if len({p.queue_url for p in pollers}) != 1:
        raise ValueError("drain_concurrently drains one queue: give it that queue's pollers")
    stats = DrainStats()
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []
    ends_at = time.monotonic() + deadline_s

    def run(poller: QueuePoller) -> None:
        try:
            while not stop.is_set():
                if time.monotonic() > ends_at:
                    raise DrainError(f"{poller.queue_url} not drained within {deadline_s} s")
                delivery = poller.poll_once()
                if delivery is None:
                    if poller.depth() == 0:
                        return
                    time.sleep(idle_wait_s)
                    continue
                with lock:
                    _count(stats, delivery, max_receives)
        except BaseException as exc:  # handed to the caller's thread below
            with lock:
                errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=run, args=(poller,), name=f"esm-{i}", daemon=True)
        for i, poller in enumerate(pollers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    stats.rounds = 1
    return stats
