"""txnctl, the built binary, against the applied stack (issue 14): status, files, errors and
queues of files the pipeline really processed, and a replay that stores a failed record once.

txnctl runs as the operator: a role created in the emulator with the stack's
`operator_policy_json` output, its session's credentials, through the stack's authorization
gateway over HTTPS (SSL_CERT_FILE is the gateway's CA for aws-sdk-rust). Every call it makes is
decided by the model against that policy; a refusal fails the test (tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from pipeline_local import file_status
from pipeline_local import samples as sample_files
from tests.e2e.conftest import E2E
from tests.integration.test_txnctl import txnctl_binary

OPERATOR_ROLE = "txnctl-operator"
RECORD_ERRORS = sample_files.PREFIX + "06-record-errors.csv"
FILE_ERROR = sample_files.PREFIX + "19-missing-column.csv"
_DESERIALIZER = TypeDeserializer()


class Txnctl:
    """Runs `txnctl --json` as the operator role through the gateway."""

    def __init__(self, e2e: E2E, tmp_path: Path) -> None:
        self.outputs = tmp_path / "outputs.json"
        self.outputs.write_text(json.dumps(e2e.stack.outputs))
        gateway = e2e.gateway
        arn = gateway.role_with_policy(OPERATOR_ROLE, e2e.stack.outputs["operator_policy_json"])
        creds = gateway.assume_role(arn, "txnctl-test")
        self.env = {
            **os.environ,
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_REGION": "eu-central-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            **gateway.client_env(creds),
        }

    def __call__(self, *args: str, expect: int = 0) -> Any:
        proc = subprocess.run(
            [str(txnctl_binary()), "--outputs", str(self.outputs), "--json", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == expect, (args, proc.returncode, proc.stdout, proc.stderr)
        return json.loads(proc.stdout)


def _files(samples: sample_files.SampleSet, *keys: str) -> list[sample_files.SampleFile]:
    return [f for f in samples.files if f.key in keys]


def _status_item(e2e: E2E, key: str, version: str) -> dict[str, Any]:
    got = e2e.clients("dynamodb").get_item(
        TableName=e2e.file_status_table,
        Key={"source_key": {"S": key}, "source_version_id": {"S": version}},
    )
    return {k: _DESERIALIZER.deserialize(v) for k, v in got["Item"].items()}


def _counts(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": item["state"],
        "rows_seen": int(item["rows_seen"]),
        "stored": int(item["stored"]),
        "duplicates": int(item["duplicates"]),
        "record_errors": {k: int(v) for k, v in (item.get("record_errors") or {}).items()},
    }


def test_status_files_errors_and_queues_of_processed_files(
    clean_e2e: E2E, samples: sample_files.SampleSet, tmp_path: Path
) -> None:
    e2e = clean_e2e
    valid = sample_files.bulk_file(sample_files.PREFIX + "32-small.json", 12, tag="TS")
    files = [*_files(samples, RECORD_ERRORS, FILE_ERROR), valid]
    dispatcher = e2e.dispatcher()
    uploads = e2e.upload(files, sample_files.Ledger())
    dispatcher.run()
    acc = e2e.account(uploads)
    assert acc.problems() == [] and acc.ok
    txnctl = Txnctl(e2e, tmp_path)
    rows = e2e.error_rows()

    for up in uploads:
        key, version = up.sample.key, up.version_id
        item = _status_item(e2e, key, version)
        report = txnctl("status", key)
        assert report["file"]["source_version_id"] == version
        assert _counts(report["file"]) == _counts(item), key
        mine = [r for r in rows if r["source_key"] == key]
        assert sorted((e["error_code"], e.get("source_line")) for e in report["errors"]) == sorted(
            (r["error_code"], r.get("source_line")) for r in mine
        ), key
        by_file = txnctl("errors", "--file", key)
        assert sorted(e["error_id"] for e in by_file["errors"]) == sorted(
            r["error_id"] for r in mine
        ), key

    assert _counts(_status_item(e2e, RECORD_ERRORS, uploads[0].version_id))["state"] == "done"
    failed = _status_item(e2e, FILE_ERROR, uploads[1].version_id)
    assert failed["state"] == "failed"
    file_error = txnctl("status", FILE_ERROR)["file"]["file_error"]["error_code"]
    assert file_error == uploads[1].sample.file_error == failed["file_error"]["error_code"]
    record_errors = txnctl("status", RECORD_ERRORS)
    assert len(record_errors["errors"]) > 3
    assert all(e["source_line"] for e in record_errors["errors"])

    listed = txnctl("files")
    assert {(f["source_key"], f["source_version_id"]) for f in listed["files"]} == {
        (u.sample.key, u.version_id) for u in uploads
    }
    assert [f["source_key"] for f in txnctl("files", "--state", "failed")["files"]] == [FILE_ERROR]
    queues = {q["queue"]: q for q in txnctl("queues")["queues"]}
    assert (queues["main"]["visible"], queues["dlq"]["visible"]) == (0, 0)


def test_replay_stores_a_failed_record_once(clean_e2e: E2E, tmp_path: Path) -> None:
    """A write that never succeeds ends as a retryable RECORD_WRITE_FAILED row; txnctl replay
    sends resume_file; the record is then stored once and nothing is written twice."""
    e2e = clean_e2e
    small = sample_files.bulk_file(sample_files.PREFIX + "31-poison.json", 40, tag="TR")
    poison = small.rows[17]
    with e2e.faults(rate=0.0) as faults:
        faults.fail_matching(
            "dynamodb",
            "PutItem",
            [f'"{poison.transaction_id}"', e2e.transactions_table],
            times=10_000,
            status=400,
            code="ValidationException",
        )
        dispatcher = e2e.dispatcher()
        uploads = e2e.upload([small], sample_files.Ledger())
        dispatcher.run()
    (up,) = uploads
    (row,) = e2e.error_rows()
    assert row["error_code"] == "RECORD_WRITE_FAILED" and row["retryable"]
    items_before = e2e.items()
    assert len(items_before) == 39
    assert poison.transaction_id not in {i["transaction_id"] for i in items_before}

    txnctl = Txnctl(e2e, tmp_path)
    dry = txnctl("replay", "--dry-run")
    assert [m["body"] for m in dry["messages"]] == [
        {
            "kind": "resume_file",
            "bucket": e2e.bucket,
            "key": small.key,
            "version_id": up.version_id,
            "start_line": poison.line,
        }
    ]
    assert e2e.depths() == {"main": 0, "dlq": 0}
    sent = txnctl("replay")
    assert sent["sent"] == 1
    assert e2e.depths()["main"] == 1
    dispatcher.drain()
    assert e2e.depths() == {"main": 0, "dlq": 0}

    items_after = e2e.items()
    # Exactly one more item, the replayed record; every earlier item unchanged (none rewritten).
    assert len(items_after) == 40
    assert Counter(i["transaction_id"] for i in items_after)[poison.transaction_id] == 1
    as_text = {json.dumps(i, sort_keys=True, default=str) for i in items_after}
    assert {json.dumps(i, sort_keys=True, default=str) for i in items_before} <= as_text
    item = _status_item(e2e, small.key, up.version_id)
    # The re-read stored the pending line and resolved it (P32): the file is done, counted once.
    assert item["state"] == "done"
    assert item["retries_pending"] == 0 and "pending_retry_lines" not in item
    assert item["stored"] + item["duplicates"] == 40
    assert item["rows_seen"] == 40 == file_status.accounted(item)
    # The accounting agrees: the RECORD_WRITE_FAILED row stays (marked replayed_at) as the
    # audit trail, and is not counted beside the stored item.
    (row_after,) = e2e.error_rows()
    assert row_after["error_code"] == "RECORD_WRITE_FAILED" and "replayed_at" in row_after
    accounting = e2e.account(uploads)
    assert accounting.ok, accounting.problems()
    assert txnctl("replay")["sent"] == 0
    assert e2e.depths() == {"main": 0, "dlq": 0}
