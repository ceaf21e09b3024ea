"""Time from upload to the last record stored, Lambda-sized, against a DynamoDB that throttles.

    .venv/bin/python bench/pipeline.py [--sizes 10000,100000,1000000] [--python-max 100000]
        [--impls rust,python] [--out bench/results/pipeline.json]

For every implementation and file size (files from bench/run.py's generator, 1 row in 200
invalid), on a fresh set of resources:

- S3 and SQS: the real emulator (moto server, pipeline_local.emulator); DynamoDB: the
  DynamoDB-faithful endpoint (crates/ddb-faithful, `--memory`, default latency, AWS's
  capacities: 1,000 write units/s per partition, a new on-demand table at 4,000, GSI
  back-pressure), reset before every run so each table starts as a new on-demand table.
- The processor runs as one 512 MB execution environment (pipeline_local.sandbox: CPU quota
  512/1769 of a core, memory limit 512 MiB), Python under awslambdaric
  (PythonProcessInvoker), Rust the host build (RustInvoker).
- Driven as the pipeline drives it (pipeline_local.delivery, the Dispatcher's parts): the upload,
  then the S3 notification as an asynchronous invocation (2 retries), then the main queue's event
  source mapping (batches of 10, ReportBatchItemFailures) until the queue is empty: the
  processor's resume_file messages (a file it could not finish inside its 300 s timeout) and
  retry_record messages (records DynamoDB kept throttling past the SDK's retries).
- Measured: wall time from the start of the upload to the empty queue (the last record stored),
  the count stored (the table's ItemCount), throttled requests by reason and the consumed write
  units (the endpoint's /_faithful/stats), invocations and their billed duration, retry_record
  and resume_file messages, SQS calls, the CPU quota's throttled time, peak memory, and the
  1-minute load average before and after.

One execution environment at a time: on AWS the event source mapping could run up to five
concurrent ones at first; with the status-index hot key the table, not the function, sets the
pace either way (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import generate  # noqa: E402

from pipeline_local.ddb_faithful import FaithfulDynamoDB, start_ddb_faithful  # noqa: E402
from pipeline_local.delivery import QueuePoller, drain, invoke_async, s3_event_for_object  # noqa: E402
from pipeline_local.emulator import start_emulator  # noqa: E402
from pipeline_local.function_invokers import Execution  # noqa: E402
from pipeline_local.function_invokers import make_invoker as function_invoker  # noqa: E402
from pipeline_local.invokers import Invoker, Sandboxed  # noqa: E402
from pipeline_local.sandbox import Sandbox  # noqa: E402
from pipeline_local.scratch_stack import (  # noqa: E402
    create_errors_table,
    create_stack,
    create_status_table,
    create_transactions_table,
    delete_stack,
    processor_env,
)
from pipeline_local.wiring import FunctionConfig  # noqa: E402

MEMORY_MB = 512  # lib/main.tf local.lambda_common.memory_size
TIMEOUT_MS = 300_000  # lib/main.tf local.lambda_common.timeout
MAXIMUM_RETRY_ATTEMPTS = 2  # lib/main.tf aws_lambda_function_event_invoke_config
BATCH_SIZE = 10  # lib/main.tf aws_lambda_event_source_mapping batch_size
RUST_BIN = REPO / "target" / "release" / "processor"
# impl -> (runtime, handler) as lib/main.tf configures the processor for each.
RUNTIMES = {
    "python": ("python3.11", "processor_function.lambda_handler"),
    "rust": ("provided.al2023", "bootstrap"),
}
LOG_DIR = REPO / "build" / "bench" / "logs"


class CountingInvoker:
    """Counts what the Lambda service would bill and what the processor was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.invocations = 0
        self.billed_ms = 0
        self.errors = 0
        self.message_kinds: dict[str, set[str]] = {"retry_record": set(), "resume_file": set()}
        self.file_invocations = 0

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = TIMEOUT_MS) -> Any:
        files = 0
        for record in event.get("Records", []):
            if record.get("eventSource") == "aws:sqs":
                try:
                    kind = json.loads(record["body"]).get("kind")
                except (ValueError, AttributeError):
                    kind = None
                if kind in self.message_kinds:
                    self.message_kinds[kind].add(record["messageId"])
                files += kind == "resume_file"
            elif record.get("eventSource") == "aws:s3":
                files += 1
        self.file_invocations += files
        self.invocations += 1
        started = time.monotonic()
        try:
            return self.inner.invoke(event, timeout_ms=timeout_ms)
        except Exception:
            self.errors += 1
            raise
        finally:
            # Lambda bills duration rounded up to the millisecond.
            self.billed_ms += math.ceil((time.monotonic() - started) * 1000)


def count_calls(client: Any) -> Counter[str]:
    """Counts a boto3 client's API calls by operation name."""
    calls: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.*.*", hook)
    return calls


def stored_count(ddb: Any, table: str) -> int:
    """Items in the table. The in-memory store (dynoxide) answers DescribeTable's ItemCount
    exactly and at once (AWS refreshes it about every six hours); a Scan with Select=COUNT
    pages so slowly on 1M items there that it took minutes."""
    return int(ddb.describe_table(TableName=table)["Table"]["ItemCount"])


def make_invoker(impl: str, env: dict[str, str], log_dir: Path) -> Invoker:
    """The processor as one Lambda-sized execution environment, through the harness's one
    invoker factory (pipeline_local.function_invokers)."""
    runtime, handler = RUNTIMES[impl]
    fn = FunctionConfig.local("processor", runtime, handler, memory_mb=MEMORY_MB, environment=env)
    log_dir.mkdir(parents=True, exist_ok=True)
    return function_invoker(
        fn, env, rust_bin_dir=RUST_BIN.parent, log_dir=log_dir, execution=Execution.LAMBDA_SIZED
    )


def run_case(emu: Any, faithful: FaithfulDynamoDB, impl: str, rows: int) -> dict[str, Any]:
    path = generate(rows)
    stack = create_stack(emu)
    aws = emu.aws_env()
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=faithful.endpoint,
        region_name=aws["AWS_DEFAULT_REGION"],
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
    )
    create_transactions_table(ddb, stack.table)
    create_errors_table(ddb, stack.errors_table)
    create_status_table(ddb, stack.status_table)
    faithful.reset()  # both tables are new on-demand tables, counters at zero
    env = {
        **aws,
        **processor_env(stack, "bench"),
        "AWS_ENDPOINT_URL_DYNAMODB": faithful.endpoint,
        "MAX_FILE_BYTES": str(1 << 30),
    }
    sandbox: Sandbox | None = None
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    sqs_calls = count_calls(stack.sqs)
    load_before = os.getloadavg()
    try:
        with make_invoker(impl, env, LOG_DIR / f"{impl}-{rows}") as inner:
            sandbox = inner.sandbox if isinstance(inner, Sandboxed) else None
            invoker = CountingInvoker(inner)
            key = f"incoming/bench-{rows}.csv"
            started = time.monotonic()
            with path.open("rb") as body:
                stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
            event = s3_event_for_object(stack.s3, stack.bucket, key)
            upload_s = time.monotonic() - started
            first = invoke_async(
                invoker,
                event,
                timeout_ms=TIMEOUT_MS,
                maximum_retry_attempts=MAXIMUM_RETRY_ATTEMPTS,
            )
            if first.error is not None:
                raise RuntimeError(f"{impl} {rows}: the S3 invocation failed: {first.error}")
            poller = QueuePoller(
                stack.sqs,
                stack.main_url,
                invoker,
                batch_size=BATCH_SIZE,
                timeout_ms=TIMEOUT_MS,
            )
            drained = drain([poller], max_rounds=1_000_000, idle_wait_s=0.05)
            wall_s = time.monotonic() - started
            peak_mb = sandbox.max_memory_used_mb() if sandbox is not None else None
            cpu_stat = sandbox.cpu_stat() if sandbox is not None else {}
            oom_kills = sandbox.oom_kills() if sandbox is not None else 0
        load_after = os.getloadavg()
        stats = faithful.stats()
        stored = stored_count(ddb, stack.table)
        dlq_messages = int(
            stack.sqs.get_queue_attributes(
                QueueUrl=stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
    finally:
        delete_stack(stack)
        for table in (stack.table, stack.errors_table):
            # Only frees the endpoint's memory: nothing to do if it fails.
            with contextlib.suppress(Exception):
                ddb.delete_table(TableName=table)
    valid = rows - rows // 200
    resources = stats.get("resources", {})
    table_res = resources.get(stack.table, {})
    index_res = resources.get(f"{stack.table}/index/status_shard-index", {})
    retry_records = len(invoker.message_kinds["retry_record"])
    resumes = len(invoker.message_kinds["resume_file"])
    return {
        "impl": impl,
        "rows": rows,
        "valid_rows": valid,
        "stored": stored,
        "complete": stored == valid,
        "upload_s": round(upload_s, 2),
        "wall_s": round(wall_s, 2),
        "records_per_s": round(stored / wall_s, 1),
        "invocations": invoker.invocations,
        "invocation_errors": invoker.errors,
        "billed_ms": invoker.billed_ms,
        "file_invocations": invoker.file_invocations,
        "resume_file_messages": resumes,
        "retry_record_messages": retry_records,
        "drain_rounds": drained.rounds,
        "dlq_messages": dlq_messages,
        "throttled_total": stats.get("throttled_total", 0),
        "throttled": stats.get("throttled", {}),
        "admitted": stats.get("admitted", {}),
        "ddb_requests": stats.get("requests", 0),
        "table_write_units": table_res.get("consumed_write_units", 0.0),
        "index_write_units": index_res.get("consumed_write_units", 0.0),
        "table_read_units": table_res.get("consumed_read_units", 0.0),
        "table_partitions": table_res.get("partitions"),
        "table_ceiling_wcu_s": table_res.get("ceiling_write_units_per_s"),
        "index_partitions": index_res.get("partitions"),
        "index_highest_second": index_res.get("highest_second_write_equivalent_units"),
        # How the status_shard values spread over the index's partitions (P40): the hottest
        # partition throttles first, so its share of the writes sets the index's ceiling.
        "index_partition_write_units": index_res.get("partition_write_units"),
        "status_index_shards": int(env["STATUS_INDEX_SHARDS"]),
        # The event source mapping's side (receive, delete, change visibility) as this driver
        # made the calls; the processor's sends are counted from the messages it sent.
        "sqs_driver_calls": dict(sqs_calls),
        "sandbox": sandbox is not None,
        "cpu_throttled_s": round(cpu_stat["throttled_time"] / 1e9, 2) if cpu_stat else None,
        "peak_memory_mb": peak_mb,
        "oom_kills": oom_kills,
        "load_avg": [round(load_before[0], 2), round(load_after[0], 2)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--impls", default="rust,python")
    parser.add_argument(
        "--python-max",
        type=int,
        default=100_000,
        help="largest file for Python (at 0.29 vCPU it stores about 350 records/s)",
    )
    parser.add_argument("--latency", default=None, help="ddb-faithful --latency (default: its own)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pipeline.json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    # A `timeout` or Ctrl-C still stops the servers and removes the cgroups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    emu = start_emulator()
    os.environ.update(emu.aws_env())
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"memory": True, "log_path": LOG_DIR / "ddb-faithful.log"}
    if args.latency:
        kwargs["latency"] = args.latency
    faithful = start_ddb_faithful(**kwargs)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        # After every case: a run stopped part-way still leaves what it measured.
        doc = {
            "results": results,
            "python_max": args.python_max,
            "latency": args.latency or "default",
            "seconds": round(time.monotonic() - started, 1),
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n")

    try:
        for impl in impls:
            for rows in sizes:
                if impl == "python" and rows > args.python_max:
                    continue
                print(f"pipeline {impl:>6} {rows:>9,} rows ...", end=" ", flush=True)
                result = run_case(emu, faithful, impl, rows)
                results.append(result)
                print(
                    f"{result['wall_s']:8.1f} s, {result['records_per_s']:7.1f} records/s, "
                    f"stored {result['stored']:,}/{result['valid_rows']:,}, "
                    f"throttled {result['throttled_total']:,}, "
                    f"retry_record {result['retry_record_messages']:,}, "
                    f"invocations {result['invocations']}",
                    flush=True,
                )
                save()
    finally:
        faithful.stop()
        emu.stop()
    save()
    print(f"wrote {args.out}")
    return 0 if all(r["complete"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
