"""txnctl (crates/txnctl), the built binary, against a real moto server over HTTP: every
command's --json output, replay --dry-run, replay twice, and the error exits.

Only the `stack_outputs` fixture knows where the resources come from (here: created as
/work/notes/file-status-schema.md and lib/main.tf define them); everything else reads their
names from the outputs, so the tests run unchanged against the applied stack."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline_local.clients import Clients
from pipeline_local.constants import BUILD_DIR, REGION
from pipeline_local.emulator import Emulator, start_emulator
from pipeline_local.host_builds import cargo_builds, first_executable
from pipeline_local.scratch_stack import lib_table

BUCKET = "s3-transactions-test-123456789012"
DAY = "2026-11-30"
LAST_MODIFIED_MS = 1_796_025_600_000


def txnctl_binary() -> Path:
    found = first_executable(cargo_builds("txnctl"))
    if found is not None:
        return found
    raise FileNotFoundError(
        f"no txnctl binary in {cargo_builds('txnctl')}; build it with "
        "`cargo build --release -p txnctl` (scripts/build-rust.sh --host does)"
    )


def _create_resources(emulator: Emulator) -> dict[str, str]:
    """The two tables and two queues as the stack defines them; returns the outputs."""
    clients = Clients(emulator.endpoint)
    ddb, sqs = clients("dynamodb"), clients("sqs")
    lib_table("file_status").create(ddb, "dynamodb-file-status-test")
    lib_table("errors").create(ddb, "dynamodb-errors-test")
    dlq_url = sqs.create_queue(QueueName="sqs-transaction-dlq-test")["QueueUrl"]
    main_url = sqs.create_queue(QueueName="sqs-transaction-retry-test")["QueueUrl"]
    return {
        "file_status_table_name": "dynamodb-file-status-test",
        "errors_table_name": "dynamodb-errors-test",
        "main_queue_url": main_url,
        "dlq_url": dlq_url,
        "aws_region": REGION,
    }


@pytest.fixture(scope="module")
def stack_outputs() -> Iterator[tuple[Emulator, dict[str, str]]]:
    """The emulator and the stack's outputs (the one fixture to change for the applied stack)."""
    emulator = start_emulator(log_path=BUILD_DIR / "txnctl-emulator.log")
    try:
        yield emulator, _create_resources(emulator)
    finally:
        emulator.stop()


def _status(key: str, version: str, state: str, first: str, **counts: Any) -> dict[str, Any]:
    item = {
        "source_bucket": BUCKET,
        "source_key": key,
        "source_version_id": version,
        "state": state,
        "rows_seen": 0,
        "stored": 0,
        "duplicates": 0,
        "retries_pending": 0,
        "record_errors": {},
        "first_activity": first,
        "last_activity": first,
        "activity_day": first[:10],
        "processor": "python3.11",
    }
    item.update(counts)
    return item


def _error(error_id: str, key: str, version: str, code: str, line: int | None) -> dict[str, Any]:
    retryable = code in ("RECORD_WRITE_FAILED", "FILE_RESUME_FAILED", "FILE_PROCESSING_FAILED")
    item: dict[str, Any] = {
        "error_id": error_id,
        "timestamp": LAST_MODIFIED_MS,
        "detected_at": LAST_MODIFIED_MS + 5,
        "error_code": code,
        "error_type": "PROCESSING" if retryable else "VALIDATION",
        "error_message": f"{code.lower()}: seeded for the txnctl test",
        "retryable": retryable,
        "source_bucket": BUCKET,
        "source_key": key,
        "source_version_id": version,
        "expires_at": LAST_MODIFIED_MS // 1000 + 86400 * 30,
    }
    if line is not None:
        item["source_line"] = line
    if not retryable:
        item["transaction_id"] = f"TX-{error_id}"
        item["field"] = "amount"
        item["record"] = {"transaction_id": f"TX-{error_id}", "account_id": "****3000"}
    return item


@pytest.fixture(scope="module")
def cli(
    stack_outputs: tuple[Emulator, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """Seeds the tables named by the outputs and returns a runner of the binary."""
    emulator, outputs = stack_outputs
    ddb = boto3.resource(
        "dynamodb",
        endpoint_url=emulator.endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    status = ddb.Table(outputs["file_status_table_name"])
    for item in (
        _status(
            "in/ok.csv",
            "v1",
            "done",
            f"{DAY}T08:00:00.000Z",
            rows_seen=5,
            stored=3,
            duplicates=0,
            record_errors={"INVALID_VALUE": 1, "MISSING_FIELD": 1},
        ),
        _status("in/ok.csv", "v0", "done", f"{DAY}T07:00:00.000Z", rows_seen=5, stored=5),
        _status(
            "in/bad.json",
            "v1",
            "failed",
            f"{DAY}T09:00:00.000Z",
            file_error={"error_code": "MALFORMED_FILE", "error_message": "file: not valid JSON"},
        ),
        _status("in/slow.csv", "v1", "processing", f"{DAY}T10:00:00.000Z", rows_seen=40),
    ):
        status.put_item(Item=item)
    errors = ddb.Table(outputs["errors_table_name"])
    for item in (
        _error("a1", "in/ok.csv", "v1", "MISSING_FIELD", 4),
        _error("a2", "in/ok.csv", "v1", "INVALID_VALUE", 2),
        _error("a0", "in/ok.csv", "v0", "INVALID_VALUE", 2),
        _error("b1", "in/bad.json", "v1", "FILE_PROCESSING_FAILED", None),
        _error("c1", "in/slow.csv", "v1", "RECORD_WRITE_FAILED", 31),
        _error("c2", "in/slow.csv", "v1", "RECORD_WRITE_FAILED", 12),
        _error("c3", "in/slow.csv", "v1", "FILE_RESUME_FAILED", 35),
    ):
        errors.put_item(Item=item)
    outputs_file = tmp_path_factory.mktemp("txnctl") / "outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    env = {**os.environ, **emulator.aws_env()}
    binary = txnctl_binary()

    def invoke(args: tuple[str, ...], outputs_path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), "--outputs", str(outputs_path), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def capture(args: tuple[str, ...], proc: subprocess.CompletedProcess[str]) -> None:
        # TXNCTL_CAPTURE=DIR keeps the human output of the commands for docs/operations.md.
        if os.environ.get("TXNCTL_CAPTURE"):
            with open(Path(os.environ["TXNCTL_CAPTURE"]) / "captured.txt", "a") as out:
                out.write(f"$ txnctl {' '.join(args)}   # exit {proc.returncode}\n")
                out.write(proc.stdout + proc.stderr + "\n")

    def run(*args: str, expect: int = 0, outputs_path: Path = outputs_file) -> Any:
        proc = invoke(("--json", *args), outputs_path)
        assert proc.returncode == expect, (args, proc.returncode, proc.stdout, proc.stderr)
        read_only = args[0] != "replay" or "--dry-run" in args
        if read_only and os.environ.get("TXNCTL_CAPTURE"):
            capture(args, invoke(args, outputs_path))
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def human(*args: str) -> str:
        proc = invoke(args, outputs_file)
        assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
        capture(args, proc)
        return proc.stdout

    run.sqs = Clients(emulator.endpoint)("sqs")  # type: ignore[attr-defined]
    run.outputs = outputs  # type: ignore[attr-defined]
    run.errors = errors  # type: ignore[attr-defined]
    run.human = human  # type: ignore[attr-defined]
    return run


def test_status_shows_the_latest_version_with_its_errors_by_code_and_line(cli: Any) -> None:
    report = cli("status", "in/ok.csv")
    assert report["file"]["source_version_id"] == "v1"
    assert report["file"]["record_errors"] == {"INVALID_VALUE": 1, "MISSING_FIELD": 1}
    assert report["versions"] == ["v1", "v0"]
    assert [(e["error_code"], e["source_line"]) for e in report["errors"]] == [
        ("INVALID_VALUE", 2),
        ("MISSING_FIELD", 4),
    ]
    assert report["errors"][0]["record"]["account_id"] == "****3000"
    older = cli("status", "in/ok.csv", "--version", "v0")
    assert older["file"]["stored"] == 5
    assert [e["error_id"] for e in older["errors"]] == ["a0"]


def test_files_by_day_and_state(cli: Any) -> None:
    report = cli("files", "--since", DAY)
    assert [(f["source_key"], f["source_version_id"]) for f in report["files"]] == [
        ("in/ok.csv", "v0"),
        ("in/ok.csv", "v1"),
        ("in/bad.json", "v1"),
        ("in/slow.csv", "v1"),
    ]
    failed = cli("files", "--since", DAY, "--state", "failed")
    assert [f["source_key"] for f in failed["files"]] == ["in/bad.json"]
    assert failed["files"][0]["file_error"]["error_code"] == "MALFORMED_FILE"
    later = cli("files", "--since", f"{DAY}T08:30:00Z")
    assert [f["source_key"] for f in later["files"]] == ["in/bad.json", "in/slow.csv"]


def test_errors_by_file_code_and_transaction(cli: Any) -> None:
    by_file = cli("errors", "--file", "in/ok.csv")
    assert sorted(e["error_id"] for e in by_file["errors"]) == ["a0", "a1", "a2"]
    by_code = cli("errors", "--file", "in/ok.csv", "--code", "MISSING_FIELD")
    assert [e["error_id"] for e in by_code["errors"]] == ["a1"]
    by_tx = cli("errors", "--transaction", "TX-a2")
    assert [e["error_id"] for e in by_tx["errors"]] == ["a2"]
    assert all("description" not in (e["record"] or {}) for e in by_file["errors"])


def test_queues_report_depth_and_age(cli: Any) -> None:
    cli.sqs.send_message(QueueUrl=cli.outputs["dlq_url"], MessageBody='{"kind": "x"}')
    report = cli("queues")
    by_role = {q["queue"]: q for q in report["queues"]}
    assert by_role["dlq"]["visible"] == 1
    assert by_role["main"]["visible"] == 0
    assert by_role["main"]["name"] == "sqs-transaction-retry-test"
    # No age from the emulator: moto answers CloudWatch in XML, aws-sdk-cloudwatch speaks
    # rpcv2 CBOR (and moto has no SQS metrics anyway). The age is n/a, with the reason.
    assert by_role["dlq"]["oldest_age_seconds"] is None
    assert by_role["dlq"]["age_note"].startswith("cloudwatch:GetMetricStatistics: ")


def _drain(cli: Any) -> list[dict[str, Any]]:
    bodies = []
    while True:
        got = cli.sqs.receive_message(
            QueueUrl=cli.outputs["main_queue_url"], MaxNumberOfMessages=10
        ).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(json.loads(m["Body"]))
            cli.sqs.delete_message(
                QueueUrl=cli.outputs["main_queue_url"], ReceiptHandle=m["ReceiptHandle"]
            )


def test_replay_dry_run_then_twice(cli: Any) -> None:
    dry = cli("replay", "--dry-run")
    assert [m["body"] for m in dry["messages"]] == [
        {
            "kind": "resume_file",
            "bucket": BUCKET,
            "key": "in/bad.json",
            "version_id": "v1",
            "start_line": 0,
        },
        {
            "kind": "resume_file",
            "bucket": BUCKET,
            "key": "in/slow.csv",
            "version_id": "v1",
            "start_line": 12,
        },
    ]
    assert {m["result"] for m in dry["messages"]} == {"would send"}
    assert _drain(cli) == []

    first = cli("replay", "--file", "in/slow.csv")
    assert first["sent"] == 1
    assert _drain(cli) == [dry["messages"][1]["body"]]
    marked = [
        cli.errors.get_item(Key={"error_id": i, "timestamp": LAST_MODIFIED_MS})["Item"]
        for i in ("c1", "c2", "c3")
    ]
    assert all("replayed_at" in item for item in marked)

    second = cli("replay", "--file", "in/slow.csv")
    assert second["sent"] == 0
    assert second["messages"] == []
    assert len(second["skipped"]) == 3
    assert _drain(cli) == []

    rest = cli("replay")
    assert [m["body"]["key"] for m in rest["messages"]] == ["in/bad.json"]
    assert rest["sent"] == 1
    assert _drain(cli) == [dry["messages"][0]["body"]]


def test_replay_tables_for_people(cli: Any) -> None:
    cli.errors.put_item(Item=_error("d1", "in/late.csv", "v7", "RECORD_WRITE_FAILED", 3))
    first = cli.human("replay", "--file", "in/late.csv")
    assert "| sent " in first and "RECORD_WRITE_FAILED@3" in first
    second = cli.human("replay", "--file", "in/late.csv")
    assert "0 resume_file messages" in second and "replayed already at" in second
    assert len(_drain(cli)) == 1


def test_errors_exit_with_documented_codes(cli: Any, tmp_path: Path) -> None:
    unknown = cli("status", "in/nope.csv", expect=4)
    assert unknown["error"] == "not_found"
    assert "in/nope.csv" in unknown["message"]
    missing = cli("queues", expect=3, outputs_path=tmp_path / "absent.json")
    assert "make up" in missing["message"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**cli.outputs, "errors_table_name": "dynamodb-errors-gone"}))
    gone = cli("errors", "--file", "in/ok.csv", expect=4, outputs_path=broken)
    assert "dynamodb:Query" in gone["message"]
    usage = subprocess.run(
        [str(txnctl_binary()), "errors"], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 2
