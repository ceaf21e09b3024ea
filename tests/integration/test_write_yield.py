"""Writes that yield to throttling (contract/decisions.md P37), end to end: each processor
(Python and Rust, each as its own process) stores a file through the DynamoDB-faithful endpoint
(crates/ddb-faithful) in front of a real moto server while the transactions table and its index
serve only TABLE_WCU writes per second. Every record is stored once and none becomes a
retry_record, although the endpoint throttled many writes: the writers slowed down instead.

Without P37 the SDKs' retries alone meet this throttling: their retry quota (500 tokens at 5 per
throttle) runs dry and every write throttled after that becomes a retry_record message. With the
processor's own retries switched off (no code counted as a throttle), this test measured 54
(Python) and 153 (Rust) of the 200 records handed on as retry_records; with them, none, in
about 20 s per implementation (2-core machine, other work running)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_local.constants import BUILD_DIR
from pipeline_local.ddb_faithful import FaithfulDynamoDB, start_ddb_faithful
from pipeline_local.delivery import s3_event_for_object
from pipeline_local.emulator import Emulator
from pipeline_local.function_invokers import Execution, make_invoker
from pipeline_local.rust_runtime import RustInvoker
from pipeline_local.scratch_stack import Stack, create_stack, delete_stack, processor_env
from pipeline_local.wiring import FunctionConfig

ROWS = 200
# Write units/s of a new on-demand table (and of its index) on the endpoint: far below what
# either processor sends (16 or 64 writes in flight at a few ms each), even slowed by the SDK's
# own backoff (at 25 the Python processor's SDK retries alone kept up), so most of the run is
# throttled, and the file takes about ROWS / TABLE_WCU seconds.
TABLE_WCU = 10
RUNTIMES = {
    "python": ("python3.11", "processor_function.lambda_handler"),
    "rust": ("provided.al2023", "bootstrap"),
}
HEADER = "transaction_id,account_id,amount,currency,transaction_type,timestamp"
LOG_DIR = BUILD_DIR / "write-yield"


@pytest.fixture(scope="module")
def faithful(emulator: Emulator) -> Iterator[FaithfulDynamoDB]:
    """The endpoint in front of the session's moto server (tests/conftest.py)."""
    ddb = start_ddb_faithful(
        upstream=emulator.endpoint,
        extra_args=["--table-initial-wcu", str(TABLE_WCU)],
        log_path=BUILD_DIR / "write-yield-ddb-faithful.log",
    )
    try:
        yield ddb
    finally:
        ddb.stop()


def csv_file(rows: int) -> bytes:
    lines = [HEADER] + [
        f"Y-{i:06d},ACC{i},{i}.25,EUR,CREDIT,2024-04-01T00:00:{i % 60:02d}Z" for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def queued(stack: Stack, url: str) -> int:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def stored_items(stack: Stack) -> int:
    count, params = 0, {"TableName": stack.table, "Select": "COUNT"}
    while True:
        page = stack.ddb.scan(**params)
        count += int(page["Count"])
        if "LastEvaluatedKey" not in page:
            return count
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def pace_lines(log_lines: list[str]) -> list[dict[str, Any]]:
    """The processor's "writes yielded to throttling" lines (one per invocation)."""
    found = []
    for line in log_lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        fields = doc.get("fields", doc) if isinstance(doc, dict) else {}
        if fields.get("message") == "writes yielded to throttling":
            found.append(fields)
    return found


@pytest.mark.parametrize("impl", ["python", "rust"])
def test_a_throttled_table_slows_the_writers_and_loses_nothing(
    emulator: Emulator, faithful: FaithfulDynamoDB, impl: str
) -> None:
    stack = create_stack(emulator)
    try:
        faithful.reset()  # throttle counters at zero; the new tables start at TABLE_WCU
        env = {
            **emulator.aws_env(),
            **processor_env(stack, "yield"),
            "AWS_ENDPOINT_URL_DYNAMODB": faithful.endpoint,
        }
        runtime, handler = RUNTIMES[impl]
        fn = FunctionConfig.local("processor", runtime, handler, memory_mb=512, environment=env)
        key = "in/throttled.csv"
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=csv_file(ROWS))
        event = s3_event_for_object(stack.s3, stack.bucket, key)
        log_dir = Path(LOG_DIR / impl)
        log_dir.mkdir(parents=True, exist_ok=True)
        invoker = make_invoker(fn, env, log_dir=log_dir, execution=Execution.PROCESS)
        # Both run as their own process (PythonProcessInvoker is a RustInvoker): logs kept.
        assert isinstance(invoker, RustInvoker)
        with invoker:
            started = time.monotonic()
            response = invoker.invoke(event, timeout_ms=300_000)
            elapsed_s = time.monotonic() - started
            log_lines = list(invoker.log_lines)
        stats = faithful.stats()
        (result,) = response["files"]
        # Every record stored once, in this invocation: nothing handed on, nothing duplicated.
        assert (result["rows"], result["stored"], result["duplicates"]) == (ROWS, ROWS, 0)
        assert (result["retried"], result["resume_line"]) == (0, None)
        assert queued(stack, stack.main_url) == 0, "retry_record or resume_file messages"
        assert queued(stack, stack.dlq_url) == 0
        assert stored_items(stack) == ROWS
        # The table did throttle, and the processor saw it and waited instead of giving up.
        assert stats["throttled_total"] > 0, stats
        (pace,) = pace_lines(log_lines)
        assert int(pace["throttled"]) > 0 and int(pace["gave_up"]) == 0, pace
        assert int(pace["lowest_limit"]) < (16 if impl == "python" else 64), pace
        # The limit keeps the throttles to about one or two per record (measured 245 Python,
        # 275 Rust; the Rust processor without the limit's halving: 1,487).
        assert stats["throttled_total"] < 4 * ROWS, stats
        # The SDKs leave the records' throttles to the processor (P37): it saw them all (378 of
        # 378 Python, 663 of 663 Rust; Python with botocore's retries: 17 of 255). A tenth
        # is left for throttles of the file status updates, which the endpoint counts too.
        assert int(pace["throttled"]) >= 0.9 * stats["throttled_total"], (pace, stats)
        print(
            f"{impl}: {ROWS} rows in {elapsed_s:.1f} s at {TABLE_WCU} WCU/s, endpoint throttled "
            f"{stats['throttled_total']}, processor retried {pace['retried']}, lowest limit "
            f"{pace['lowest_limit']}"
        )
    finally:
        delete_stack(stack)
