"""Unit-test fixtures: the two handler modules loaded from lib/, and in-process AWS fakes.

The handlers are loaded by pipeline_local.invokers.load_handler_module under private module
names (so that other suites loading the same files are not disturbed), with a controlled
environment: no AWS_ENDPOINT_URL*, fake credentials, region eu-central-1. moto is imported
first so that the handlers' module-level boto3 clients are intercepted by `moto.mock_aws` in
the tests that use it.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import moto  # noqa: F401  (must be imported before the handlers create their boto3 clients)
import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from pipeline_local.function_config import DLQ_PROCESSOR, PROCESSOR, tunable_defaults
from pipeline_local.invokers import load_handler_module

LIB = Path(__file__).resolve().parents[2] / "lib"
REGION = "eu-central-1"
BUCKET = "s3-transactions-test-123456789012"
TABLE = "dynamodb-transactions-test"
ERRORS_TABLE = "dynamodb-errors-test"
MAIN_URL = f"https://sqs.{REGION}.amazonaws.com/123456789012/sqs-transactions-test"
DLQ_URL = f"https://sqs.{REGION}.amazonaws.com/123456789012/sqs-transactions-dlq-test"
LAST_MODIFIED = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)
LAST_MODIFIED_MS = 1714566615000

HANDLER_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "DYNAMODB_TABLE_NAME": TABLE,
    "SQS_QUEUE_URL": MAIN_URL,
    "DLQ_URL": DLQ_URL,
    "FILE_STATUS_TABLE_NAME": "dynamodb-file-status-test",
    "ENVIRONMENT": "test",
    "ERRORS_TABLE_NAME": ERRORS_TABLE,
    # The tunables at their Terraform defaults (lib/ is their one source).
    **tunable_defaults(PROCESSOR),
    **tunable_defaults(DLQ_PROCESSOR),
}


def _load(file_name: str, alias: str) -> ModuleType:
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE":
                del os.environ[name]
        return load_handler_module(LIB / file_name, HANDLER_ENV, name=alias)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def proc() -> ModuleType:
    return _load("processor_function.py", "unit_processor_function")


@pytest.fixture(scope="session")
def dlq() -> ModuleType:
    return _load("dlq_processor_function.py", "unit_dlq_processor_function")


@pytest.fixture
def handler_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handlers' environment also while a test runs (they read it once, at import)."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    for name, value in HANDLER_ENV.items():
        monkeypatch.setenv(name, value)


# --------------------------------------------------------------------------------------------
# In-process fakes of the three AWS clients (only the calls the handlers make).


def client_error(code: str, status: int, operation: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": f"{code} (fake)"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    response.update(extra)
    return ClientError(response, operation)


@dataclass
class StoredObject:
    version_id: str
    data: bytes
    last_modified: datetime


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], list[StoredObject]] = defaultdict(list)
        self.get_error: ClientError | None = None
        self.calls: list[dict[str, Any]] = []

    def put(
        self, key: str, data: bytes, bucket: str = BUCKET, last_modified: datetime = LAST_MODIFIED
    ) -> str:
        versions = self.objects[(bucket, key)]
        version_id = f"v{len(versions) + 1}-{abs(hash((bucket, key))) % 10_000}"
        versions.append(StoredObject(version_id, data, last_modified))
        return version_id

    def get_object(
        self, Bucket: str, Key: str, VersionId: str | None = None, Range: str | None = None
    ) -> dict[str, Any]:
        self.calls.append({"Bucket": Bucket, "Key": Key, "VersionId": VersionId})
        if self.get_error is not None:
            raise self.get_error
        versions = self.objects.get((Bucket, Key))
        if not versions:
            raise client_error("NoSuchKey", 404, "GetObject")
        if VersionId is None:
            obj = versions[-1]
        else:
            matches = [v for v in versions if v.version_id == VersionId]
            if not matches:
                raise client_error("NoSuchVersion", 404, "GetObject")
            obj = matches[0]
        data = obj.data
        if Range is not None:  # "bytes=first-last", both inclusive, as the processor asks
            first, last = (int(part) for part in Range.removeprefix("bytes=").split("-"))
            data = data[first : last + 1]
        return {
            "Body": StreamingBody(io.BytesIO(data), len(data)),
            "ContentLength": len(data),
            "LastModified": obj.last_modified,
            "VersionId": obj.version_id,
        }


TABLE_KEYS = {TABLE: ("transaction_id", "timestamp"), ERRORS_TABLE: ("error_id", "timestamp")}
GSI_KEYS = {TABLE: ("status_shard",), ERRORS_TABLE: ("transaction_id",)}


class FakeDynamoDB:
    """Conditional PutItem with the key schemas and GSI keys of lib/main.tf."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        self.lock = threading.Lock()
        self.fail: Callable[[Mapping[str, Any]], Exception | None] | None = None
        self.put_calls = 0

    def put_item(
        self,
        TableName: str,
        Item: Mapping[str, Any],
        ConditionExpression: str | None = None,
        ReturnValuesOnConditionCheckFailure: str | None = None,
    ) -> dict[str, Any]:
        partition, sort = TABLE_KEYS[TableName]
        assert ConditionExpression == f"attribute_not_exists({partition})"
        _check_attribute_values(Item)
        for name in (partition, *GSI_KEYS[TableName]):
            if name in Item:
                assert Item[name].get("S"), f"key attribute {name} must be a non-empty string"
        with self.lock:
            self.put_calls += 1
            if self.fail is not None:
                problem = self.fail(Item)
                if problem is not None:
                    raise problem
            key = (Item[partition]["S"], Item[sort]["N"])
            table = self.tables[TableName]
            if key in table:
                extra = {}
                if ReturnValuesOnConditionCheckFailure == "ALL_OLD":
                    extra["Item"] = copy.deepcopy(table[key])
                raise client_error("ConditionalCheckFailedException", 400, "PutItem", **extra)
            table[key] = copy.deepcopy(dict(Item))
        return {}

    def items(self, table: str = TABLE) -> list[dict[str, Any]]:
        deserializer = TypeDeserializer()
        return [
            {name: deserializer.deserialize(value) for name, value in raw.items()}
            for raw in self.tables[table].values()
        ]

    def raw_items(self, table: str = TABLE) -> list[dict[str, Any]]:
        return list(self.tables[table].values())


def attribute_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """`item` as DynamoDB attribute values (str as S, int and Decimal as N, bool as BOOL, dict as
    M), by boto3's mapping, which the handlers do not use: an expected stored item is written
    as its values, and compared with what a handler wrote to the letter."""
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in item.items()}


def _check_attribute_values(item: Mapping[str, Any]) -> None:
    from decimal import Decimal

    for value in item.values():
        ((kind, content),) = value.items()
        if kind == "N":
            assert isinstance(content, str)
            Decimal(content)  # must parse exactly
        elif kind == "S":
            assert isinstance(content, str)
            content.encode("utf-8")  # no lone surrogates
        elif kind == "M":
            _check_attribute_values(content)
        elif kind == "BOOL":
            assert isinstance(content, bool)
        else:  # pragma: no cover
            raise AssertionError(f"unexpected attribute type {kind}")


class FakeSQS:
    """SendMessageBatch with the real limits; can fail entries on purpose."""

    def __init__(self) -> None:
        self.queues: dict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()
        self.fail_calls = 0  # the next N calls fail every entry
        self.raise_calls = 0  # the next N calls raise a ClientError
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: Sequence[Mapping[str, str]]) -> Any:
        assert 1 <= len(Entries) <= 10
        assert len({e["Id"] for e in Entries}) == len(Entries)
        total = sum(len(e["MessageBody"].encode("utf-8")) for e in Entries)
        assert total <= 262_144
        with self.lock:
            self.calls += 1
            if self.raise_calls:
                self.raise_calls -= 1
                raise client_error("InternalError", 500, "SendMessageBatch")
            if self.fail_calls:
                self.fail_calls -= 1
                failed = [
                    {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in Entries
                ]
                return {"Successful": [], "Failed": failed}
            for entry in Entries:
                self.queues[QueueUrl].append(entry["MessageBody"])
        return {"Successful": [{"Id": e["Id"], "MessageId": "x"} for e in Entries], "Failed": []}

    def bodies(self, url: str) -> list[Any]:
        return [json.loads(body) for body in self.queues[url]]

    def take(self, url: str) -> list[str]:
        with self.lock:
            taken, self.queues[url] = self.queues[url], []
        return taken


@dataclass
class FakeContext:
    remaining: Callable[[], int] = lambda: 300_000
    aws_request_id: str = "req-0001"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining()


def s3_event(key: str, version_id: str | None = None, bucket: str = BUCKET, **extra: Any) -> dict:
    obj: dict[str, Any] = {"key": key, "size": 1, "eTag": "0"}
    if version_id is not None:
        obj["versionId"] = version_id
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2024-05-01T12:30:16.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": obj},
    }
    record.update(extra)
    return {"Records": [record]}


def sqs_event(bodies: Sequence[str], sent_timestamp: int = 1714566700000) -> dict:
    return {
        "Records": [
            {
                "messageId": f"msg-{index}",
                "receiptHandle": f"rh-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(sent_timestamp + index),
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:q",
                "awsRegion": REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


@dataclass
class Pipeline:
    """The processor wired to fakes; helpers to run files and drain the main queue."""

    proc: ModuleType
    s3: FakeS3 = field(default_factory=FakeS3)
    ddb: FakeDynamoDB = field(default_factory=FakeDynamoDB)
    sqs: FakeSQS = field(default_factory=FakeSQS)
    batch_rows: int = 1000
    max_file_bytes: int = int(HANDLER_ENV["MAX_FILE_BYTES"])  # lib/provider.tf's default
    throttle_retries: int = 64

    @property
    def cfg(self) -> Any:
        return dataclasses.replace(
            self.proc.load_config(HANDLER_ENV),
            max_file_bytes=self.max_file_bytes,
            batch_rows=self.batch_rows,
            write_workers=4,
            # A throttled write waits at most a millisecond here (P37's waits are the handler's).
            write_backoff=self.proc.WriteBackoff(1, 1, self.throttle_retries),
            # The in-memory fakes have no status table: the per-file status is tested by
            # test_file_status.py (moto) and the conformance suite.
            file_status_table="",
        )

    @property
    def aws(self) -> Any:
        return self.proc.Aws(self.s3, self.ddb, self.sqs)

    def invoke(self, event: Any, context: Any = None) -> Any:
        return self.proc.handle_event(event, context or FakeContext(), self.aws, self.cfg)

    def run_file(self, key: str, data: bytes, context: Any = None) -> dict[str, Any]:
        version = self.s3.put(key, data)
        return self.invoke(s3_event(key, version), context)

    def drain(self, context_factory: Callable[[], Any] = FakeContext, rounds: int = 100) -> int:
        """Deliver main-queue messages to the processor until the queue is empty."""
        for round_number in range(rounds):
            bodies = self.sqs.take(MAIN_URL)
            if not bodies:
                return round_number
            response = self.invoke(sqs_event(bodies), context_factory())
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            with self.sqs.lock:
                self.sqs.queues[MAIN_URL].extend(
                    body for i, body in enumerate(bodies) if f"msg-{i}" in failed
                )
        raise AssertionError("main queue did not drain")

    def transactions(self) -> list[dict[str, Any]]:
        return self.ddb.items(TABLE)

    def dlq(self) -> list[dict[str, Any]]:
        return self.sqs.bodies(DLQ_URL)

    def main(self) -> list[dict[str, Any]]:
        return self.sqs.bodies(MAIN_URL)


@pytest.fixture
def pipe(proc: ModuleType) -> Pipeline:
    return Pipeline(proc)


HEADER = (
    "transaction_id,account_id,amount,currency,transaction_type,timestamp,merchant_id,description"
)


def csv_bytes(*rows: str, header: str = HEADER, newline: str = "\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode("utf-8")


def valid_row(index: int = 1, **overrides: str) -> dict[str, str]:
    row = {
        "transaction_id": f"tx-{index:05d}",
        "account_id": f"DE8937040044053201{index:04d}",
        "amount": "10.50",
        "currency": "EUR",
        "transaction_type": "DEBIT",
        "timestamp": "2024-03-01T10:00:00Z",
        "merchant_id": "m-1",
        "description": "coffee",
    }
    row.update(overrides)
    return row


def row_csv(row: Mapping[str, str]) -> str:
    import csv as _csv

    buffer = io.StringIO()
    _csv.writer(buffer, lineterminator="\n").writerow(
        [row.get(name, "") for name in HEADER.split(",")]
    )
    return buffer.getvalue()[:-1]  # quoted cells keep their line breaks


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
