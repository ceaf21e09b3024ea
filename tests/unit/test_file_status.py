"""The Python processor's per-file status updates (contract/decisions.md P26 to P31) against an
in-process DynamoDB (moto's mock): counted once per batch, retries resolved once, "done" only
when every row is accounted for. The Rust twin is held to the same items by the conformance
suite (tests/conformance/file_status.py)."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline_local.scratch_stack import lib_table
from tests.unit.conftest import HANDLER_ENV

LIB = Path(__file__).resolve().parents[2] / "lib"
TABLE = "file-status"
KEY = "in/f.csv"


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any, Any]]:
    for name in list(os.environ):  # an emulator's endpoint (set by other suites) bypasses moto
        if name.startswith("AWS_ENDPOINT_URL") or name == "AWS_PROFILE":
            monkeypatch.delenv(name)
    for name, value in HANDLER_ENV.items():  # the handler reads its configuration at import
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(LIB))
    with mock_aws():
        import processor_function as proc

        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        lib_table("file_status").create(ddb, TABLE)
        aws = proc.Aws(s3=None, dynamodb=ddb, sqs=None)
        cfg = dataclasses.replace(
            proc.load_config(HANDLER_ENV),
            table_name="t",
            queue_url="q",
            dlq_url="d",
            file_status_table=TABLE,
        )
        yield proc, aws, cfg
    sys.modules.pop("processor_function", None)


def item(aws: Any, version: str = "v1") -> dict[str, Any]:
    raw = aws.dynamodb.get_item(
        TableName=TABLE, Key={"source_key": {"S": KEY}, "source_version_id": {"S": version}}
    )["Item"]
    return raw


def n(raw: dict[str, Any], name: str) -> int:
    return int(raw[name]["N"])


def source(proc: ModuleType) -> Any:
    return proc.SourceInfo("bucket-1", KEY, "v1", 0)


def test_a_batch_is_counted_once_and_done_needs_the_end(env: Any) -> None:
    proc, aws, cfg = env
    src = source(proc)
    proc.status_open(aws, cfg, src)
    assert item(aws)["state"] == {"S": "received"}
    first = proc.BatchStatus(rows=3, stored=2, record_errors={"INVALID_VALUE": 1})
    assert proc.status_batch(aws, cfg, src, first, 0, 5, end_of_range=False)
    # A re-run (a killed invocation retried) reads the same batch again: not counted.
    assert not proc.status_batch(aws, cfg, src, first, 0, 5, end_of_range=False)
    proc.status_finish(aws, cfg, KEY, "v1")
    assert item(aws)["state"] == {"S": "processing"}  # the end of the file was not reached
    last = proc.BatchStatus(rows=2, duplicates=1, record_errors={"INVALID_VALUE": 1})
    assert proc.status_batch(aws, cfg, src, last, 5, 7, end_of_range=True)
    proc.status_finish(aws, cfg, KEY, "v1")
    got = item(aws)
    assert got["state"] == {"S": "done"}
    assert (n(got, "rows_seen"), n(got, "stored"), n(got, "duplicates")) == (5, 2, 1)
    assert got["record_errors"] == {"M": {"INVALID_VALUE": {"N": "2"}}}
    assert got["cursors"] == {"M": {"0": {"N": "7"}}}
    assert n(got, "ranges_open") == 0
    # The same event delivered again: the open keeps the state, batches are not counted.
    proc.status_open(aws, cfg, src)
    assert not proc.status_batch(aws, cfg, src, first, 0, 5, end_of_range=False)
    assert item(aws)["state"] == {"S": "done"} and n(item(aws), "rows_seen") == 5


def test_a_retry_is_resolved_once_and_only_after_its_batch(env: Any) -> None:
    proc, aws, cfg = env
    src = source(proc)
    proc.status_open(aws, cfg, src)
    # The retry consumer is faster than the batch's status update: come back later.
    assert not proc.status_retry_resolved(aws, cfg, src, 3, "stored")
    batch = proc.BatchStatus(rows=2, stored=1, retry_lines=[3])
    assert proc.status_batch(aws, cfg, src, batch, 0, 4, end_of_range=True)
    proc.status_finish(aws, cfg, KEY, "v1")
    assert item(aws)["state"] == {"S": "processing"}  # a retry is pending
    assert item(aws)["pending_retry_lines"] == {"NS": ["3"]}
    assert proc.status_retry_resolved(aws, cfg, src, 3, "stored")
    got = item(aws)
    assert got["state"] == {"S": "done"}
    assert (n(got, "stored"), n(got, "retries_pending")) == (2, 0)
    assert "pending_retry_lines" not in got
    # The same retry_record delivered again: nothing changes, and the message is done.
    assert proc.status_retry_resolved(aws, cfg, src, 3, "duplicate")
    assert item(aws) == got


def test_a_conflicting_retry_becomes_a_record_error(env: Any) -> None:
    proc, aws, cfg = env
    src = source(proc)
    proc.status_open(aws, cfg, src)
    batch = proc.BatchStatus(rows=1, retry_lines=[2])
    assert proc.status_batch(aws, cfg, src, batch, 0, 3, end_of_range=True)
    assert proc.status_retry_resolved(aws, cfg, src, 2, "conflict")
    got = item(aws)
    assert got["record_errors"] == {"M": {"DUPLICATE_CONFLICT": {"N": "1"}}}
    assert got["state"] == {"S": "done"}


def test_a_file_error_fails_the_file_but_never_a_done_one(env: Any) -> None:
    proc, aws, cfg = env
    src = source(proc)
    proc.status_failed(aws, cfg, src, proc.FileError("EMPTY_FILE", "file: no rows"))
    got = item(aws)
    assert got["state"] == {"S": "failed"}
    assert got["file_error"]["M"]["error_code"] == {"S": "EMPTY_FILE"}
    other = proc.SourceInfo("bucket-1", KEY, "v2", 0)
    proc.status_open(aws, cfg, other)
    batch = proc.BatchStatus(rows=1, stored=1)
    proc.status_batch(aws, cfg, other, batch, 0, 3, end_of_range=True)
    proc.status_finish(aws, cfg, KEY, "v2")
    proc.status_failed(aws, cfg, other, proc.FileError("OBJECT_NOT_FOUND", "file: gone"))
    assert item(aws, "v2")["state"] == {"S": "done"}
    assert "file_error" not in item(aws, "v2")


def test_an_unversioned_object_is_version_null(env: Any) -> None:
    proc, _, _ = env
    assert proc.status_key("k", None)["source_version_id"] == {"S": "null"}
    assert proc.iso_ms(1_704_067_200_123) == "2024-01-01T00:00:00.123Z"
