"""Checks of the delivery harness itself (pipeline_local.delivery / invokers) against moto."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from pipeline_local.clients import Clients
from pipeline_local.delivery import (
    DrainError,
    QueuePoller,
    batch_item_failures,
    drain,
    drain_concurrently,
    invoke_async,
    s3_event_for_object,
    s3_event_key,
    sqs_event,
)
from pipeline_local.emulator import Emulator
from pipeline_local.invokers import InvocationError, LambdaContext, PythonHandler, PythonInvoker


class FakeInvoker:
    """An invoker whose behaviour is a Python callable; records every event it gets."""

    function_name = "fake"

    def __init__(self, behaviour: Any) -> None:
        self.behaviour = behaviour
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = 300_000) -> Any:
        self.events.append(event)
        try:
            return self.behaviour(event)
        except Exception as exc:
            raise InvocationError(str(exc)) from exc


def _client(emulator: Emulator, service: str) -> Any:
    return Clients(emulator.endpoint)(service)


def _queues(sqs: Any, max_receive_count: int = 3) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    main = sqs.create_queue(
        QueueName=f"main-{suffix}",
        Attributes={
            "VisibilityTimeout": "300",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return main, dlq


def test_s3_key_encoding() -> None:
    assert s3_event_key("in/my file+1.csv") == "in/my+file%2B1.csv"
    assert s3_event_key("in/über €.json") == "in/%C3%BCber+%E2%82%AC.json"
    for key in ["in/my file+1.csv", "a/b=c&d,e;f:g@h.csv", "x/ü ~*'().json"]:
        assert unquote_plus(s3_event_key(key)) == key


def test_batch_item_failures_semantics() -> None:
    ids = ["a", "b"]
    assert batch_item_failures(None, ids) == set()
    assert batch_item_failures({}, ids) == set()
    assert batch_item_failures({"batchItemFailures": []}, ids) == set()
    assert batch_item_failures({"batchItemFailures": None}, ids) == set()
    assert batch_item_failures({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    assert batch_item_failures({"batchItemFailures": [{"itemIdentifier": "zz"}]}, ids) is None
    assert batch_item_failures({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) is None
    assert batch_item_failures({"batchItemFailures": [{"id": "a"}]}, ids) is None
    assert batch_item_failures({"batchItemFailures": "a"}, ids) is None
    assert batch_item_failures("nonsense", ids) is None


def test_context_deadline_counts_down() -> None:
    ctx = LambdaContext(function_name="f", timeout_ms=1000)
    first = ctx.get_remaining_time_in_millis()
    assert 900 <= first <= 1000
    time.sleep(0.05)
    assert ctx.get_remaining_time_in_millis() <= first - 40
    assert ctx.invoked_function_arn.endswith(":function:f")


def test_python_invoker_env_and_fresh_module(tmp_path: Path) -> None:
    module = tmp_path / "handler_mod.py"
    module.write_text(
        "import os\n"
        "AT_IMPORT = os.environ.get('CONF_TEST_VAR')\n"
        "calls = []\n"
        "def lambda_handler(event, context):\n"
        "    calls.append(1)\n"
        "    if event.get('boom'):\n"
        "        raise ValueError('boom')\n"
        "    return {'import': AT_IMPORT, 'now': os.environ.get('CONF_TEST_VAR'),\n"
        "            'calls': len(calls), 'left': context.get_remaining_time_in_millis()}\n"
    )
    one = PythonInvoker(PythonHandler(module), {"CONF_TEST_VAR": "one"})
    two = PythonInvoker(PythonHandler(module), {"CONF_TEST_VAR": "two"})
    assert one.invoke({}, timeout_ms=5000)["import"] == "one"
    result = one.invoke({}, timeout_ms=5000)
    assert result["now"] == "one" and result["calls"] == 2 and 0 < result["left"] <= 5000
    assert two.invoke({})["import"] == "two"
    assert two.invoke({})["calls"] == 2
    assert "CONF_TEST_VAR" not in os.environ
    with pytest.raises(InvocationError):
        one.invoke({"boom": True})


def test_s3_event_shape(emulator: Emulator) -> None:
    s3 = _client(emulator, "s3")
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="in/my file+1.csv", Body=b"abc")
    event = s3_event_for_object(s3, bucket, "in/my file+1.csv", put["VersionId"])
    record = event["Records"][0]
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put" and record["awsRegion"] == "eu-central-1"
    assert record["s3"]["bucket"] == {
        "name": bucket,
        "ownerIdentity": record["s3"]["bucket"]["ownerIdentity"],
        "arn": f"arn:aws:s3:::{bucket}",
    }
    obj = record["s3"]["object"]
    assert obj["key"] == "in/my+file%2B1.csv" and obj["size"] == 3
    assert obj["versionId"] == put["VersionId"] and obj["eTag"] == put["ETag"].strip('"')
    assert record["eventTime"].endswith("Z") and obj["sequencer"]


def test_partial_batch_failure_and_moto_redrive(emulator: Emulator) -> None:
    sqs = _client(emulator, "sqs")
    main, dlq = _queues(sqs)
    sqs.send_message(QueueUrl=main, MessageBody="ok")
    sqs.send_message(
        QueueUrl=main,
        MessageBody="bad",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
    )

    def behaviour(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"
            ]
        }

    invoker = FakeInvoker(behaviour)
    dlq_seen = FakeInvoker(lambda event: None)
    pollers = [QueuePoller(sqs, main, invoker), QueuePoller(sqs, dlq, dlq_seen)]
    drain(pollers)
    bad_deliveries = [r for e in invoker.events for r in e["Records"] if r["body"] == "bad"]
    # Received exactly maxReceiveCount times from the main queue, then redriven by the queue.
    assert [r["attributes"]["ApproximateReceiveCount"] for r in bad_deliveries] == ["1", "2", "3"]
    record = bad_deliveries[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(
        main.rsplit("/", 1)[1]
    )
    assert record["messageAttributes"]["k"]["stringValue"] == "v"
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert [r["body"] for e in dlq_seen.events for r in e["Records"]] == ["bad"]
    assert sum(1 for e in invoker.events for r in e["Records"] if r["body"] == "ok") == 1


def test_whole_batch_fails_when_handler_raises(emulator: Emulator) -> None:
    sqs = _client(emulator, "sqs")
    main, dlq = _queues(sqs, max_receive_count=1)
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=main, MessageBody=body)

    def boom(event: dict[str, Any]) -> Any:
        raise RuntimeError("down")

    poller = QueuePoller(sqs, main, FakeInvoker(boom))
    delivery = poller.poll_once()
    assert delivery is not None and delivery.whole_batch_failed
    assert poller.poll_once() is None  # both redriven (maxReceiveCount 1) on the next receive
    got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["a", "b"]


def test_invoke_async_retries_then_dead_letter(emulator: Emulator) -> None:
    sqs = _client(emulator, "sqs")
    main, _ = _queues(sqs)

    def boom(event: dict[str, Any]) -> Any:
        raise RuntimeError("transient")

    invoker = FakeInvoker(boom)
    event = {"Records": [{"eventSource": "aws:s3"}]}
    result = invoke_async(invoker, event, sqs=sqs, dead_letter_queue_url=main)
    assert result.attempts == 3 and len(invoker.events) == 3 and result.sent_to_dead_letter_queue
    got = sqs.receive_message(QueueUrl=main, MessageAttributeNames=["All"], MaxNumberOfMessages=10)[
        "Messages"
    ]
    assert len(got) == 1 and json.loads(got[0]["Body"]) == event
    assert set(got[0]["MessageAttributes"]) == {"RequestID", "ErrorCode", "ErrorMessage"}
    assert sqs_event(got, "arn:q")["Records"][0]["md5OfBody"] == got[0]["MD5OfBody"]


def test_drain_concurrently_runs_batches_side_by_side_and_delivers_each_message_once(
    emulator: Emulator,
) -> None:
    """The event source mapping with maximum_concurrency (P36) as the benchmark drives it: three
    execution environments take batches of one from one queue at the same time; a message an
    invocation sends is delivered too; every message is delivered once and the queue ends empty."""
    sqs = _client(emulator, "sqs")
    main, _ = _queues(sqs)
    for i in range(12):
        sqs.send_message(QueueUrl=main, MessageBody=f"range-{i}")
    lock = threading.Lock()
    running = 0
    most_at_once = 0

    def behaviour(event: dict[str, Any]) -> None:
        nonlocal running, most_at_once
        with lock:
            running += 1
            most_at_once = max(most_at_once, running)
        time.sleep(0.2)
        for record in event["Records"]:
            if record["body"] == "range-0":  # as a range that runs out of time sends its resume
                sqs.send_message(QueueUrl=main, MessageBody="resume-0")
        with lock:
            running -= 1

    invokers = [FakeInvoker(behaviour) for _ in range(3)]
    pollers = [QueuePoller(sqs, main, invoker, batch_size=1) for invoker in invokers]
    stats = drain_concurrently(pollers, idle_wait_s=0.02)

    bodies = sorted(r["body"] for inv in invokers for e in inv.events for r in e["Records"])
    assert bodies == sorted([f"range-{i}" for i in range(12)] + ["resume-0"])
    assert stats.deliveries == 13 and stats.failed_messages == 0
    assert most_at_once == 3
    assert all(inv.events for inv in invokers)
    assert pollers[0].depth() == 0


def test_drain_concurrently_raises_the_first_failure_of_any_environment(
    emulator: Emulator,
) -> None:
    sqs = _client(emulator, "sqs")
    main, _ = _queues(sqs, max_receive_count=10)
    sqs.send_message(QueueUrl=main, MessageBody="poison")

    def boom(event: dict[str, Any]) -> Any:
        raise RuntimeError("down")

    pollers = [QueuePoller(sqs, main, FakeInvoker(boom), batch_size=1) for _ in range(2)]
    with pytest.raises(DrainError, match="failed 2 times"):
        drain_concurrently(pollers, idle_wait_s=0.01, max_receives=2)
