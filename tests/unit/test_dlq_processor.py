"""Unit tests of lib/dlq_processor_function.py."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from pipeline_local.scratch_stack import lib_table
from tests.unit.conftest import (
    BUCKET,
    ERRORS_TABLE,
    HANDLER_ENV,
    LAST_MODIFIED_MS,
    FakeContext,
    FakeDynamoDB,
    attribute_values,
    client_error,
    s3_event,
    sqs_event,
)

NOW = 1_800_000_000_000
SENT = 1714566700000
SECTION_8 = {
    "error_id",
    "timestamp",
    "detected_at",
    "transaction_id",
    "error_code",
    "error_type",
    "error_message",
    "field",
    "retryable",
    "source_bucket",
    "source_key",
    "source_version_id",
    "source_line",
    "record",
    "sqs_message_id",
    "receive_count",
    "expires_at",
}


def spec_error_id(bucket: str, key: str, version: str | None, line: int | None, code: str) -> str:
    parts = [bucket, key, version or "", "" if line is None else str(line), code]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def record_error(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "kind": "record_error",
        "error_code": "INVALID_VALUE",
        "error_message": "amount: must be greater than 0",
        "field": "amount",
        "transaction_id": "tx-1",
        "source": {
            "bucket": BUCKET,
            "key": "in/a.csv",
            "version_id": "v1",
            "line": 5,
            "last_modified": LAST_MODIFIED_MS,
        },
        "record": {
            "transaction_id": "tx-1",
            "account_id": "****3000",
            "amount": "-1",
            "currency": "EUR",
        },
        "failed_at": 1714566690000,
        "processor": "python3.11/1.0.0",
    }
    message.update(overrides)
    return message


def run(dlq: Any, bodies: list[str], ddb: FakeDynamoDB | None = None) -> tuple[Any, FakeDynamoDB]:
    ddb = ddb or FakeDynamoDB()
    cfg = dlq.load_config(HANDLER_ENV)
    response = dlq.handle_event(sqs_event(bodies, SENT), FakeContext(), ddb, cfg, now=NOW)
    return response, ddb


def stored(ddb: FakeDynamoDB) -> list[dict[str, Any]]:
    return ddb.items(ERRORS_TABLE)


def test_record_error_row(dlq: Any) -> None:
    response, ddb = run(dlq, [json.dumps(record_error())])
    assert response == {"batchItemFailures": []}
    (raw,) = ddb.raw_items(ERRORS_TABLE)
    assert raw == attribute_values(
        {
            "error_id": spec_error_id(BUCKET, "in/a.csv", "v1", 5, "INVALID_VALUE"),
            "timestamp": LAST_MODIFIED_MS,
            "detected_at": 1714566690000,
            "transaction_id": "tx-1",
            "error_code": "INVALID_VALUE",
            "error_type": "VALIDATION",
            "error_message": "amount: must be greater than 0",
            "field": "amount",
            "retryable": False,
            "source_bucket": BUCKET,
            "source_key": "in/a.csv",
            "source_version_id": "v1",
            "source_line": 5,
            "record": record_error()["record"],
            "sqs_message_id": "msg-0",
            "receive_count": 1,
            "expires_at": NOW // 1000 + 365 * 86400,
        }
    )
    assert set(raw) <= SECTION_8


def test_leaked_data_is_masked_again(dlq: Any) -> None:
    leaked = record_error(
        record={
            "account_id": "DE89370400440532013000",
            "description": "private",
            "amount": 5,
            "x": None,
            "": "empty key",
        }
    )
    _, ddb = run(dlq, [json.dumps(leaked)])
    (row,) = stored(ddb)
    assert row["record"] == {"account_id": "****3000", "amount": "5", "_": "empty key"}


def test_file_error_row(dlq: Any) -> None:
    message = {
        "kind": "file_error",
        "error_code": "INVALID_HEADER",
        "error_message": "header: missing required column 'timestamp'",
        "source": {"bucket": BUCKET, "key": "in/b.csv", "version_id": None, "line": None},
        "failed_at": 1714566690000,
        "processor": "rust/1.0.0",
    }
    _, ddb = run(dlq, [json.dumps(message)])
    (row,) = stored(ddb)
    assert row["error_id"] == spec_error_id(BUCKET, "in/b.csv", None, None, "INVALID_HEADER")
    assert (row["error_type"], row["retryable"], row["timestamp"]) == ("FILE", False, SENT)
    for absent in ("transaction_id", "field", "source_version_id", "source_line", "record"):
        assert absent not in row


def test_retry_record_row(dlq: Any) -> None:
    message = {
        "kind": "retry_record",
        "record": {
            "transaction_id": "tx-9",
            "account_id": "DE89370400440532013000",
            "amount": "10.5",
            "currency": "EUR",
            "transaction_type": "DEBIT",
            "timestamp": 1709287200000,
            "description": "private",
        },
        "source": {
            "bucket": BUCKET,
            "key": "in/a.csv",
            "version_id": "v1",
            "line": 7,
            "last_modified": LAST_MODIFIED_MS,
        },
        "error": {"code": "ProvisionedThroughputExceededException", "message": "slow down"},
        "failed_at": 1714566690000,
        "processor": "python3.11/1.0.0",
    }
    _, ddb = run(dlq, [json.dumps(message)])
    (row,) = stored(ddb)
    assert row["error_id"] == spec_error_id(BUCKET, "in/a.csv", "v1", 7, "RECORD_WRITE_FAILED")
    assert (row["error_code"], row["error_type"], row["retryable"]) == (
        "RECORD_WRITE_FAILED",
        "PROCESSING",
        True,
    )
    assert row["transaction_id"] == "tx-9" and row["timestamp"] == LAST_MODIFIED_MS
    assert "ProvisionedThroughputExceededException" in row["error_message"]
    assert row["record"]["account_id"] == "****3000"
    assert row["record"]["timestamp"] == "1709287200000"
    assert "description" not in row["record"]


def test_resume_file_row(dlq: Any) -> None:
    message = {"kind": "resume_file", "bucket": BUCKET, "key": "k.csv", "version_id": "v2",
               "start_line": 1002}  # fmt: skip
    _, ddb = run(dlq, [json.dumps(message)])
    (row,) = stored(ddb)
    assert row["error_id"] == spec_error_id(BUCKET, "k.csv", "v2", 1002, "FILE_RESUME_FAILED")
    assert (row["error_type"], row["source_line"], row["timestamp"]) == ("PROCESSING", 1002, SENT)
    assert row["detected_at"] == NOW


def test_s3_event_rows(dlq: Any) -> None:
    event = s3_event("in/big+file%2B2.csv", "v3")
    event["Records"] += s3_event("in/other.json")["Records"]
    _, ddb = run(dlq, [json.dumps(event)])
    rows = sorted(stored(ddb), key=lambda r: r["source_key"])
    assert [(r["source_key"], r.get("source_version_id")) for r in rows] == [
        ("in/big file+2.csv", "v3"),
        ("in/other.json", None),
    ]
    assert rows[0]["error_id"] == spec_error_id(
        BUCKET, "in/big file+2.csv", "v3", None, "FILE_PROCESSING_FAILED"
    )
    assert {r["error_code"] for r in rows} == {"FILE_PROCESSING_FAILED"}


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        "",
        "[1, 2, 3]",
        "null",
        '{"kind": "something_else"}',
        '{"kind": "record_error", "error_code": "X"}',
        '{"kind": "record_error", "error_code": 5, "source": {"bucket": "b", "key": "k"}}',
        '{"kind": "retry_record", "source": {"bucket": "b", "key": "k"}}',
        '{"kind": "resume_file", "bucket": "b", "key": "k", "start_line": -1}',
        '{"Records": [{"eventSource": "aws:s3"}]}',
        '{"Records": []}',
        '{"Records": "x"}',
        '{"Records": 5}',
        '{"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": 1}, "object": {}}}]}',
        '{"kind": "record_error", "error_code": "X", "source": {"bucket": "b", "key": 2}}',
        '{"kind": "retry_record", "record": [], "source": {"bucket": "b", "key": "k"}}',
        "[" * 100_000,
        "\ud800 lone surrogate",
    ],
)
def test_unknown_format(dlq: Any, body: str) -> None:
    response, ddb = run(dlq, [body])
    assert response == {"batchItemFailures": []}
    (row,) = stored(ddb)
    expected_id = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    assert row["error_id"] == expected_id
    assert (row["error_code"], row["error_type"], row["retryable"]) == (
        "UNKNOWN_FORMAT",
        "UNKNOWN_FORMAT",
        False,
    )
    assert row["timestamp"] == SENT and row["detected_at"] == NOW
    assert "transaction_id" not in row and "source_bucket" not in row and "record" not in row


def test_transaction_id_absent_unless_valid(dlq: Any) -> None:
    bodies = []
    for line, value in enumerate(["", None, "a b", 7, "x" * 65], start=1):
        source = {**record_error()["source"], "line": line}
        bodies.append(json.dumps(record_error(transaction_id=value, source=source)))
    _, ddb = run(dlq, bodies)
    rows = stored(ddb)
    assert len(rows) == 5 and all("transaction_id" not in row for row in rows)


def test_redelivery_makes_no_second_row(dlq: Any) -> None:
    body = json.dumps(record_error())
    response, ddb = run(dlq, [body, body])
    assert response == {"batchItemFailures": []}
    response, ddb = run(dlq, [body], ddb)
    assert response == {"batchItemFailures": []}
    assert len(stored(ddb)) == 1
    unknown = "garbage"
    run(dlq, [unknown], ddb)
    run(dlq, [unknown], ddb)  # the same message again: same body, same SentTimestamp
    assert len(stored(ddb)) == 2
    run(dlq, ["other", unknown], ddb)  # another message (later SentTimestamp): a new row
    assert len(stored(ddb)) == 4


def test_only_failed_messages_are_reported(dlq: Any) -> None:
    ddb = FakeDynamoDB()

    def fail(item: Any) -> Exception | None:
        if item["error_code"]["S"] == "EMPTY_FILE":
            return client_error("ProvisionedThroughputExceededException", 400, "PutItem")
        return None

    ddb.fail = fail
    bodies = [
        json.dumps(record_error()),
        json.dumps(record_error(kind="file_error", error_code="EMPTY_FILE")),
        "junk",
    ]
    response, ddb = run(dlq, bodies, ddb)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert len(stored(ddb)) == 2


def test_unexpected_exception_fails_only_its_message(dlq: Any) -> None:
    ddb = FakeDynamoDB()
    ddb.fail = lambda item: RuntimeError("boom") if item["error_code"]["S"] == "X" else None
    bodies = [json.dumps(record_error(error_code="X")), json.dumps(record_error())]
    response, ddb = run(dlq, bodies, ddb)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}


def test_missing_attributes_fall_back(dlq: Any) -> None:
    event = {"Records": [{"messageId": "m", "body": json.dumps(record_error(failed_at="x"))}]}
    ddb = FakeDynamoDB()
    cfg = dlq.load_config(HANDLER_ENV)
    dlq.handle_event(event, None, ddb, cfg, now=NOW)
    (row,) = stored(ddb)
    assert row["detected_at"] == NOW and "receive_count" not in row


def test_odd_sqs_records_are_read_by_the_contracts_rules(dlq: Any) -> None:
    """Q1 and Q2, the same in both implementations (txn-core's dlq tests pin the Rust side)."""
    message = dlq.sqs_message({"messageId": True, "body": {"k": [1.50, "é"]}})
    assert (message.message_id, message.body) == ("", '{"k":[1.5,"\\u00e9"]}')
    assert dlq.sqs_message({"messageId": 7}).body == "null"
    for count, want in [
        ("3", 3),
        ("007", 7),
        (12, 12),
        (" 2 ", None),
        ("1_000", None),
        ("+1", None),
        ("-1", None),
        ("\u0661", None),
        (True, None),
        (1.0, None),
    ]:
        attributes = {"ApproximateReceiveCount": count}
        got = dlq.sqs_message({"messageId": "m", "body": "", "attributes": attributes})
        assert got.receive_count == want, count


def test_logs_and_metric(dlq: Any, capsys: pytest.CaptureFixture[str]) -> None:
    leaked = record_error(record={"account_id": "SECRETACCOUNT99", "description": "private"})
    run(dlq, [json.dumps(leaked), "junk"])
    out = capsys.readouterr().out
    assert "SECRETACCOUNT" not in out and "private" not in out
    docs = [json.loads(line) for line in out.splitlines()]
    emf = [d for d in docs if "_aws" in d]
    assert emf[0]["ErrorsStored"] == 2 and emf[0]["Environment"] == "test"
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == HANDLER_ENV["METRIC_NAMESPACE"]
    assert all(d["request_id"] == "req-0001" for d in docs if "message" in d)


def test_lambda_handler_with_moto(dlq: Any, handler_env: None) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        lib_table("errors").create(ddb, ERRORS_TABLE)
        bodies = [json.dumps(record_error()), "junk", json.dumps(record_error())]
        response = dlq.lambda_handler(sqs_event(bodies, SENT), FakeContext())
        assert response == {"batchItemFailures": []}
        items = ddb.scan(TableName=ERRORS_TABLE)["Items"]
        assert sorted(i["error_code"]["S"] for i in items) == ["INVALID_VALUE", "UNKNOWN_FORMAT"]
        for item in items:
            assert set(item) <= SECTION_8
