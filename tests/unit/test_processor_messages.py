"""Unit tests of lib/processor_function.py: masking, DLQ message texts, sending in batches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.conftest import (
    BUCKET,
    DLQ_URL,
    LAST_MODIFIED_MS,
    MAIN_URL,
    Pipeline,
    valid_row,
)

# --------------------------------------------------------------------------------------------
# Masking and messages


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("DE89370400440532013000", "****3000"),
        (" DE8937 ", "****8937"),
        ("12345", "****2345"),
        ("1234", "****"),
        ("", "****"),
        (12345, "****"),
        (["DE89370400440532013000"], "****"),
    ],
)
def test_mask_account(proc: Any, value: Any, masked: str) -> None:
    assert proc.mask_account(value) == masked


def test_masked_record(proc: Any) -> None:
    record = {
        "transaction_id": " t1 ",
        "account_id": "DE89370400440532013000",
        "amount": proc.JsonNumber("1e3"),
        "description": "secret",
        "merchant_id": None,
        "flag": True,
        "nested": {"a": [1, "b"]},
        "k" * 100: "v" * 1000,
    }
    masked = proc.masked_record(record)
    assert masked == {
        "transaction_id": "t1",
        "account_id": "****3000",
        "amount": "1e3",
        "flag": "true",
        "nested": '{"a":[1,"b"]}',
        "k" * 64: "v" * 256,
    }
    many = {f"k{i}": "v" for i in range(100)}
    assert len(proc.masked_record(many)) == 32


def source(proc: Any) -> Any:
    return proc.SourceInfo(BUCKET, "in/a.csv", "v1", LAST_MODIFIED_MS)


def test_record_error_message(proc: Any) -> None:
    error = proc.RecordError("INVALID_VALUE", "amount", "amount: must be greater than 0")
    values = valid_row(7, amount="-1")
    message = proc.record_error_message(error, source(proc), 9, values, 1234)
    assert message == {
        "kind": "record_error",
        "error_code": "INVALID_VALUE",
        "error_message": "amount: must be greater than 0",
        "field": "amount",
        "transaction_id": "tx-00007",
        "source": {
            "bucket": BUCKET,
            "key": "in/a.csv",
            "version_id": "v1",
            "line": 9,
            "last_modified": LAST_MODIFIED_MS,
        },
        "record": {
            "transaction_id": "tx-00007",
            "account_id": "****0007",
            "amount": "-1",
            "currency": "EUR",
            "transaction_type": "DEBIT",
            "timestamp": "2024-03-01T10:00:00Z",
            "merchant_id": "m-1",
        },
        "failed_at": 1234,
        "processor": "python3.11/1.0.0",
    }
    bad_id = proc.record_error_message(
        error, source(proc), 9, valid_row(1, transaction_id="a b"), 1
    )
    assert bad_id["transaction_id"] is None


def test_file_error_message(proc: Any) -> None:
    error = proc.FileError("INVALID_HEADER", "header: unknown column 'x'")
    message = proc.file_error_message(error, source(proc), 55)
    assert message == {
        "kind": "file_error",
        "error_code": "INVALID_HEADER",
        "error_message": "header: unknown column 'x'",
        "source": {
            "bucket": BUCKET,
            "key": "in/a.csv",
            "version_id": "v1",
            "line": None,
            "last_modified": LAST_MODIFIED_MS,
        },
        "failed_at": 55,
        "processor": "python3.11/1.0.0",
    }


def test_encode_message_is_ascii_and_bounded(proc: Any) -> None:
    error = proc.RecordError("UNKNOWN_FIELD", "x", "x: unknown field")
    values = {f"{'é' * 64}{i}": "\U0001f600" * 300 for i in range(40)}
    body = proc.encode_message(proc.record_error_message(error, source(proc), 2, values, 1))
    assert body.isascii() and len(body) <= 262_144
    huge = {"record": {"x": "y" * 300_000}, "kind": "record_error"}
    assert json.loads(proc.encode_message(huge))["record"] is None


def test_send_messages_batches_by_count_and_size(proc: Any, pipe: Pipeline) -> None:
    bodies = [json.dumps({"i": i}) for i in range(25)]
    proc.send_messages(pipe.sqs, DLQ_URL, bodies)
    assert pipe.sqs.calls == 3 and pipe.sqs.queues[DLQ_URL] == bodies
    big = ["x" * 100_000] * 5
    proc.send_messages(pipe.sqs, MAIN_URL, big)
    assert pipe.sqs.calls == 6 and len(pipe.sqs.queues[MAIN_URL]) == 5


def test_send_messages_retries_failed_entries(proc: Any, pipe: Pipeline) -> None:
    pipe.sqs.fail_calls = 2
    pipe.sqs.raise_calls = 1
    proc.send_messages(pipe.sqs, DLQ_URL, ["a", "b"])
    assert pipe.sqs.queues[DLQ_URL] == ["a", "b"]


def test_send_messages_raises_when_entries_keep_failing(proc: Any, pipe: Pipeline) -> None:
    pipe.sqs.fail_calls = 10
    with pytest.raises(proc.TransientError):
        proc.send_messages(pipe.sqs, DLQ_URL, ["a"])
