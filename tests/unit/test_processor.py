"""Unit tests of lib/processor_function.py: handler runs against in-process fakes and moto."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import pytest

from pipeline_local.scratch_stack import lib_table
from tests.unit.conftest import (
    BUCKET,
    DLQ_URL,
    HANDLER_ENV,
    HEADER,
    LAST_MODIFIED_MS,
    MAIN_URL,
    TABLE,
    FakeContext,
    Pipeline,
    attribute_values,
    client_error,
    csv_bytes,
    row_csv,
    s3_event,
    sqs_event,
    valid_row,
)

# --------------------------------------------------------------------------------------------
# Handler runs against in-process fakes


def shard_of(transaction_id: str, shards: int) -> int:
    """Decision P40's shard number, computed here independently of the handler."""
    digest = hashlib.sha256(transaction_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def test_stores_every_attribute(pipe: Pipeline) -> None:
    data = csv_bytes(row_csv(valid_row(1)), row_csv(valid_row(2, merchant_id="", description="")))
    result = pipe.run_file("in/batch.csv", data)
    (file_result,) = result["files"]
    assert file_result["rows"] == 2 and file_result["stored"] == 2
    version = file_result["version_id"]
    items = sorted(pipe.ddb.raw_items(), key=lambda item: item["transaction_id"]["S"])
    first = dict(items[0])
    ingested = first.pop("ingested_at")
    assert int(ingested["N"]) > LAST_MODIFIED_MS
    record_hash = first.pop("record_hash")["S"]
    assert first == attribute_values(
        {
            "transaction_id": "tx-00001",
            "account_id": "DE89370400440532010001",
            "amount": Decimal("10.5"),
            "currency": "EUR",
            "transaction_type": "DEBIT",
            "timestamp": 1709287200000,
            "merchant_id": "m-1",
            "description": "coffee",
            "status": "PROCESSED",
            # P40: SHA-256("tx-00001")'s first 8 bytes mod STATUS_INDEX_SHARDS: the unit tests'
            # environment has lib/provider.tf's default, 1,000 (conftest.py).
            "status_shard": f"PROCESSED#{shard_of('tx-00001', 1000)}",
            "source_bucket": BUCKET,
            "source_key": "in/batch.csv",
            "source_version_id": version,
            "source_line": 2,
            "processor": "python3.11/1.0.0",
        }
    )
    parts = ["tx-00001", "DE89370400440532010001", "10.5", "EUR", "DEBIT", "1709287200000"]
    expected_hash = hashlib.sha256("\x1f".join([*parts, "m-1", "coffee"]).encode()).hexdigest()
    assert record_hash == expected_hash
    assert "merchant_id" not in items[1] and "description" not in items[1]
    assert pipe.dlq() == [] and pipe.main() == []


def test_json_file_end_to_end(pipe: Pipeline) -> None:
    records = [valid_row(1), {**valid_row(2), "amount": 1.5}, [1], {**valid_row(4), "x": 1}]
    text = json.dumps({"transactions": records}).replace('"amount": 1.5', '"amount": 1.50')
    result = pipe.run_file("in/batch.JSON", text.encode())
    assert result["files"][0]["stored"] == 2 and result["files"][0]["invalid"] == 2
    lines = sorted(int(item["source_line"]) for item in pipe.transactions())
    assert lines == [0, 1]
    assert sorted((m["source"]["line"], m["error_code"]) for m in pipe.dlq()) == [
        (2, "INVALID_FORMAT"),
        (3, "UNKNOWN_FIELD"),
    ]


def test_url_encoded_key(pipe: Pipeline) -> None:
    key = "in/daily report (1)+ü.csv"
    version = pipe.s3.put(key, csv_bytes(row_csv(valid_row(1))))
    pipe.invoke(s3_event("in/daily+report+%281%29%2B%C3%BC.csv", version))
    (item,) = pipe.transactions()
    assert item["source_key"] == key


def test_unversioned_event_uses_returned_version(pipe: Pipeline) -> None:
    version = pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    pipe.invoke(s3_event("in/a.csv"))
    assert pipe.transactions()[0]["source_version_id"] == version
    assert pipe.s3.calls[0]["VersionId"] is None


def test_mixed_file_accounting_and_messages(pipe: Pipeline) -> None:
    rows = [
        row_csv(valid_row(1)),
        row_csv(valid_row(2, amount="abc")),
        "a,b",
        row_csv(valid_row(4, currency="XAU")),
        row_csv(valid_row(5)),
    ]
    result = pipe.run_file("in/mixed.csv", csv_bytes(*rows))
    summary = result["files"][0]
    assert (summary["rows"], summary["stored"], summary["invalid"]) == (5, 2, 3)
    codes = sorted((m["source"]["line"], m["error_code"], m["field"]) for m in pipe.dlq())
    assert codes == [
        (3, "INVALID_FORMAT", "amount"),
        (4, "MALFORMED_ROW", None),
        (5, "UNKNOWN_CURRENCY", "currency"),
    ]
    for message in pipe.dlq():
        assert message["source"]["last_modified"] == LAST_MODIFIED_MS
        assert "description" not in (message["record"] or {})


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "EMPTY_FILE"),
        (HEADER.encode() + b"\n", "EMPTY_FILE"),
        (b"\xef\xbb\xbf\n\n", "EMPTY_FILE"),
        (b"transaction_id\n1\n", "INVALID_HEADER"),
        (b"\xff\xfe" + HEADER.encode("utf-16-le"), "INVALID_ENCODING"),
    ],
)
def test_csv_file_errors_end_to_end(pipe: Pipeline, data: bytes, code: str) -> None:
    result = pipe.run_file("in/bad.csv", data)
    assert result["files"][0]["file_error"] == code
    (message,) = pipe.dlq()
    assert message["kind"] == "file_error" and message["error_code"] == code
    assert message["source"]["last_modified"] == LAST_MODIFIED_MS
    assert pipe.transactions() == []


def test_unsupported_suffix(pipe: Pipeline) -> None:
    result = pipe.run_file("in/data.txt", b"anything")
    assert result["files"][0]["file_error"] == "MALFORMED_FILE"
    assert pipe.s3.calls == []


def test_object_not_found_uses_event_time(pipe: Pipeline) -> None:
    result = pipe.invoke(s3_event("in/gone.csv", "v9"))
    assert result["files"][0]["file_error"] == "OBJECT_NOT_FOUND"
    (message,) = pipe.dlq()
    assert message["source"]["last_modified"] == 1714566616000
    assert message["source"]["version_id"] == "v9"
    pipe.s3.put("in/there.csv", b"x")
    pipe.invoke(s3_event("in/there.csv", "no-such-version"))
    assert pipe.dlq()[1]["error_code"] == "OBJECT_NOT_FOUND"


def test_file_too_large(pipe: Pipeline) -> None:
    pipe.max_file_bytes = 100
    data = csv_bytes(row_csv(valid_row(1)))
    assert len(data) > 100
    assert pipe.run_file("in/big.csv", data)["files"][0]["file_error"] == "FILE_TOO_LARGE"
    pipe.max_file_bytes = len(data)
    assert pipe.run_file("in/ok.csv", data)["files"][0]["stored"] == 1


def test_transient_s3_failure_raises_on_s3_event(pipe: Pipeline, proc: Any) -> None:
    pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    for error in (
        client_error("InternalError", 500, "GetObject"),
        client_error("AccessDenied", 403, "GetObject"),
    ):
        pipe.s3.get_error = error
        with pytest.raises(proc.TransientError):
            pipe.invoke(s3_event("in/a.csv"))
    assert pipe.dlq() == [] and pipe.transactions() == []


def test_transient_s3_failure_fails_only_that_message(pipe: Pipeline) -> None:
    pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    pipe.s3.get_error = client_error("SlowDown", 503, "GetObject")
    resume = json.dumps({"kind": "resume_file", "bucket": BUCKET, "key": "in/a.csv",
                         "version_id": None, "start_line": 0})  # fmt: skip
    garbage = "not json"
    response = pipe.invoke(sqs_event([resume, garbage]))
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert pipe.sqs.queues[DLQ_URL] == [garbage]


def test_queue_failure_raises_so_nothing_is_lost(pipe: Pipeline, proc: Any) -> None:
    pipe.sqs.fail_calls = 100
    with pytest.raises(proc.TransientError):
        pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1, amount="x"))))


def test_replay_counts_duplicates(pipe: Pipeline) -> None:
    version = pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1)), row_csv(valid_row(2))))
    pipe.invoke(s3_event("in/a.csv", version))
    again = pipe.invoke(s3_event("in/a.csv", version))["files"][0]
    assert (again["stored"], again["duplicates"]) == (0, 2)
    assert len(pipe.transactions()) == 2 and pipe.dlq() == []


def test_conflict_with_stored_item(pipe: Pipeline) -> None:
    pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    result = pipe.run_file("in/b.csv", csv_bytes(row_csv(valid_row(1, amount="11"))))
    assert result["files"][0]["invalid"] == 1
    (message,) = pipe.dlq()
    assert (message["error_code"], message["field"]) == ("DUPLICATE_CONFLICT", "transaction_id")
    assert message["transaction_id"] == "tx-00001"
    assert message["record"]["account_id"] == "****0001"
    (item,) = pipe.transactions()
    assert item["amount"] == Decimal("10.5") and item["source_key"] == "in/a.csv"


def test_duplicates_within_a_file_first_in_file_order_wins(proc: Any) -> None:
    rows = [row_csv(valid_row(1, amount=str(n))) for n in range(1, 6)]
    rows += [row_csv(valid_row(2)), row_csv(valid_row(2))]
    for _ in range(5):
        pipe = Pipeline(proc)
        summary = pipe.run_file("in/dups.csv", csv_bytes(*rows))["files"][0]
        assert (summary["stored"], summary["duplicates"], summary["invalid"]) == (2, 1, 4)
        amounts = {item["transaction_id"]: item["amount"] for item in pipe.transactions()}
        assert amounts == {"tx-00001": Decimal("1"), "tx-00002": Decimal("10.5")}
        assert sorted(m["source"]["line"] for m in pipe.dlq()) == [3, 4, 5, 6]


def test_same_id_other_timestamp_is_another_item(pipe: Pipeline) -> None:
    rows = [row_csv(valid_row(1)), row_csv(valid_row(1, timestamp="2024-03-02T10:00:00Z"))]
    assert pipe.run_file("in/a.csv", csv_bytes(*rows))["files"][0]["stored"] == 2


def fail_first(limit: int, code: str = "InternalServerError", status: int = 500) -> Any:
    """Every record's first `limit` PutItem calls fail with `code` (a 5xx by default: not a
    throttle, so the processor does not retry it itself, P37)."""
    seen: dict[str, int] = {}

    def fail(item: Any) -> Exception | None:
        key = item["transaction_id"]["S"]
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            return client_error(code, status, "PutItem")
        return None

    return fail


def test_transient_write_failures_become_retry_records(pipe: Pipeline) -> None:
    pipe.ddb.fail = fail_first(1)
    result = pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1)), row_csv(valid_row(2))))
    assert result["files"][0]["retried"] == 2 and pipe.transactions() == []
    retry = pipe.main()
    assert {m["kind"] for m in retry} == {"retry_record"}
    assert retry[0]["record"]["account_id"].startswith("DE89")  # full record, main queue only
    assert retry[0]["error"]["code"] == "InternalServerError"
    assert retry[0]["source"]["line"] in (2, 3)
    pipe.drain()
    items = sorted(pipe.transactions(), key=lambda i: i["transaction_id"])
    assert [(i["transaction_id"], i["source_line"]) for i in items] == [
        ("tx-00001", 2),
        ("tx-00002", 3),
    ]
    assert pipe.dlq() == []


def test_retry_record_failing_again_is_reported(pipe: Pipeline, proc: Any) -> None:
    pipe.ddb.fail = fail_first(2)
    pipe.run_file("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    bodies = pipe.sqs.take(MAIN_URL)
    assert pipe.invoke(sqs_event(bodies)) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert pipe.invoke(sqs_event(bodies)) == {"batchItemFailures": []}
    assert pipe.invoke(sqs_event(bodies)) == {"batchItemFailures": []}  # replay: duplicate
    assert len(pipe.transactions()) == 1


def test_retry_record_conflict_goes_to_dlq(pipe: Pipeline, proc: Any) -> None:
    tx = proc.validate_record(valid_row(1))
    src = proc.SourceInfo(BUCKET, "in/a.csv", "v1", LAST_MODIFIED_MS)
    message = proc.retry_record_message(tx, src, 2, "ThrottlingException", "slow", 1)
    pipe.run_file("in/b.csv", csv_bytes(row_csv(valid_row(1, amount="3"))))
    response = pipe.invoke(sqs_event([proc.encode_message(message)]))
    assert response == {"batchItemFailures": []}
    (conflict,) = pipe.dlq()
    assert conflict["error_code"] == "DUPLICATE_CONFLICT"
    assert conflict["record"]["account_id"] == "****0001"
    assert "description" not in conflict["record"]


def test_s3_event_from_dead_letter_config(pipe: Pipeline) -> None:
    version = pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    event = s3_event("in/a.csv", version)
    assert pipe.invoke(sqs_event([json.dumps(event)])) == {"batchItemFailures": []}
    assert len(pipe.transactions()) == 1


def test_unknown_messages_are_forwarded_unchanged(pipe: Pipeline) -> None:
    bodies = [
        "{}",
        "[1,2]",
        '{"kind": "retry_record", "record": {}}',
        '{"kind": "resume_file", "bucket": "b", "key": 5, "start_line": 0}',
        '{"Records": 5}',
        '{"Records": [{"eventSource": "aws:s3", "s3": []}]}',
        "\u00e9t\u00e9",
    ]
    assert pipe.invoke(sqs_event(bodies)) == {"batchItemFailures": []}
    assert pipe.sqs.queues[DLQ_URL] == bodies
    # An event it does not know goes to the DLQ as compact ASCII JSON (Q1).
    assert pipe.invoke({"hello": "w\u00f6rld", "n": [1.50]}) == {"forwarded": True}
    assert pipe.sqs.queues[DLQ_URL][-1] == '{"hello":"w\\u00f6rld","n":[1.5]}'


def test_ignores_non_create_events(pipe: Pipeline) -> None:
    event = s3_event("in/a.csv", eventName="ObjectRemoved:Delete")
    assert pipe.invoke(event) == {"files": []}


class Clock:
    """A context whose remaining time drops by `step` ms at every look."""

    def __init__(self, start: int, step: int) -> None:
        self.left = start
        self.step = step

    def __call__(self) -> FakeContext:
        return FakeContext(remaining=self.tick)

    def tick(self) -> int:
        self.left -= self.step
        return self.left


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_resume_file_covers_every_row_once(proc: Any, fmt: str) -> None:
    pipe = Pipeline(proc, batch_rows=3)
    rows = [valid_row(i) for i in range(1, 12)]
    rows[4]["amount"] = "bad"
    rows[5]["merchant_id"] = "multi\nline"  # a quoted line break in CSV
    data = csv_bytes(*[row_csv(r) for r in rows]) if fmt == "csv" else json.dumps(rows).encode()
    low = lambda: 1_000  # noqa: E731 - always under the 30 s margin
    result = pipe.run_file(f"in/big.{fmt}", data, FakeContext(remaining=low))
    first = result["files"][0]
    assert first["resume_line"] is not None and first["stored"] == 3
    (resume,) = pipe.main()
    assert resume == {
        "kind": "resume_file",
        "bucket": BUCKET,
        "key": f"in/big.{fmt}",
        "version_id": first["version_id"],
        "start_line": first["resume_line"],
    }
    rounds = pipe.drain(lambda: FakeContext(remaining=low))
    assert rounds == 3  # one batch of 3 per invocation: 11 rows in 1 + 3 invocations
    lines = sorted(int(i["source_line"]) for i in pipe.transactions())
    if fmt == "csv":
        expected = [2, 3, 4, 5, 7, 9, 10, 11, 12, 13]
    else:
        expected = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert lines == expected
    assert [m["error_code"] for m in pipe.dlq()] == ["INVALID_FORMAT"]


def test_resume_only_after_the_clock_runs_low(proc: Any) -> None:
    pipe = Pipeline(proc, batch_rows=2)
    data = csv_bytes(*[row_csv(valid_row(i)) for i in range(1, 10)])
    clock = Clock(start=40_000, step=3_000)  # 37 s, 34 s, 31 s, 28 s...
    result = pipe.run_file("in/a.csv", data, clock())
    assert result["files"][0]["stored"] == 8 and result["files"][0]["resume_line"] == 10
    pipe.drain()
    assert len(pipe.transactions()) == 9


def test_deferred_files_when_out_of_time(pipe: Pipeline) -> None:
    v1 = pipe.s3.put("in/a.csv", csv_bytes(row_csv(valid_row(1))))
    v2 = pipe.s3.put("in/b.csv", csv_bytes(row_csv(valid_row(2))))
    event = s3_event("in/a.csv", v1)
    event["Records"] += s3_event("in/b.csv", v2)["Records"]
    result = pipe.invoke(event, FakeContext(remaining=lambda: 10))
    assert [f["stored"] for f in result["files"]] == [1, 0]
    (resume,) = pipe.main()
    assert (resume["key"], resume["version_id"], resume["start_line"]) == ("in/b.csv", v2, 0)
    pipe.drain()
    assert len(pipe.transactions()) == 2


def test_logs_and_metrics_carry_no_personal_data(
    pipe: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        row_csv(valid_row(1, account_id="SECRETACCOUNT1", description="private words")),
        row_csv(valid_row(2, account_id="SECRETACCOUNT2", description="more", amount="x")),
    ]
    pipe.run_file("in/a.csv", csv_bytes(*rows), FakeContext(aws_request_id="req-42"))
    out = capsys.readouterr().out
    assert "SECRETACCOUNT" not in out and "private words" not in out
    docs = [json.loads(line) for line in out.splitlines()]
    (log,) = [d for d in docs if d.get("message") == "file processed"]
    assert log["level"] == "INFO" and log["request_id"] == "req-42"
    assert (log["bucket"], log["key"], log["stored"], log["invalid"]) == (BUCKET, "in/a.csv", 1, 1)
    (emf,) = [d for d in docs if "_aws" in d]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == HANDLER_ENV["METRIC_NAMESPACE"]
    assert directive["Dimensions"] == [["Environment"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {
        "RecordsProcessed",
        "RecordsInvalid",
        "RecordsDuplicate",
        "RecordsRetried",
        "FilesFailed",
        "FileProcessingTime",
    }
    assert (emf["Environment"], emf["RecordsProcessed"], emf["RecordsInvalid"]) == ("test", 1, 1)
    for line in pipe.sqs.queues[DLQ_URL]:
        assert "SECRETACCOUNT" not in line and "more" not in line


# --------------------------------------------------------------------------------------------
# The real entry point against moto (real boto3 request shapes)


def test_lambda_handler_with_moto(proc: Any, handler_env: None) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-central-1")
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        sqs = boto3.client("sqs", region_name="eu-central-1")
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        lib_table("transactions").create(ddb, TABLE)
        lib_table("file_status").create(ddb, HANDLER_ENV["FILE_STATUS_TABLE_NAME"])  # contract P26
        main_url = sqs.create_queue(QueueName="sqs-transactions-test")["QueueUrl"]
        dlq_url = sqs.create_queue(QueueName="sqs-transactions-dlq-test")["QueueUrl"]
        import os

        os.environ["SQS_QUEUE_URL"] = main_url
        os.environ["DLQ_URL"] = dlq_url
        rows = [row_csv(valid_row(1)), row_csv(valid_row(2, amount="0"))]
        key = "in/moto file.csv"
        version = s3.put_object(Bucket=BUCKET, Key=key, Body=csv_bytes(*rows))["VersionId"]
        event = s3_event("in/moto+file.csv", version)
        first = proc.lambda_handler(event, FakeContext())["files"][0]
        assert (first["stored"], first["invalid"]) == (1, 1)
        conflict_rows = [row_csv(valid_row(1)), row_csv(valid_row(1, currency="USD"))]
        version2 = s3.put_object(Bucket=BUCKET, Key=key, Body=csv_bytes(*conflict_rows))[
            "VersionId"
        ]
        second = proc.lambda_handler(s3_event("in/moto+file.csv", version2), FakeContext())
        assert (second["files"][0]["duplicates"], second["files"][0]["invalid"]) == (1, 1)
        items = ddb.scan(TableName=TABLE)["Items"]
        assert len(items) == 1 and items[0]["amount"] == {"N": "10.5"}
        assert items[0]["source_version_id"] == {"S": version}
        received = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
        codes = sorted(json.loads(m["Body"])["error_code"] for m in received)
        assert codes == ["DUPLICATE_CONFLICT", "INVALID_VALUE"]
        missing = proc.lambda_handler(s3_event("in/none.csv"), FakeContext())
        assert missing["files"][0]["file_error"] == "OBJECT_NOT_FOUND"


def test_csv_memory_stays_flat(proc: Any) -> None:
    import tracemalloc

    line = row_csv(valid_row(1)).encode() + b"\n"
    rows_per_chunk = (64 << 10) // len(line)
    chunk = line * rows_per_chunk
    chunks = 16  # a 1 MiB file, produced lazily

    def stream() -> Any:
        yield HEADER.encode() + b"\n"
        for _ in range(chunks):
            yield chunk

    tracemalloc.start()
    try:
        count = 0
        for row in proc.csv_rows(stream()):
            proc.validate_record(row.values)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows_per_chunk * chunks
    assert peak < 256 << 10  # far below the 1 MiB read: rows are never all kept
