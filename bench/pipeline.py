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

With `--concurrency N` the main queue is taken by N execution environments side by side
(pipeline_local.delivery.drain_concurrently: the mapping's maximum_concurrency, P36), each its own
512 MB sandbox; with `--range-split-bytes B` the S3 event's invocation splits a larger file into
ranges (P33) whose messages those environments take, `--batch-size` messages per invocation
(lib/main.tf's processor_queue_batch_size, 1). The S3 event's invocation runs in the first
environment (on AWS it comes from the asynchronous pool, outside the mapping's limit). Every
process shares this machine's cores with the emulator and the endpoint: the endpoint's own CPU
per request is the machine's, not DynamoDB's, and it is printed with the results.

    .venv/bin/python bench/pipeline.py --sizes 1000000 --impls rust --concurrency 4 \
        --range-split-bytes 1048576 --batch-size 1 --faithful-threads 2

`--partition-wcu W --table-initial-wcu T` scale the modelled table down (AWS: 1,000 and 4,000):
with W = 250 and T = 1,000 a new table has the same 4 partitions and the same key spread at a
quarter of the rate, so that the table, not this machine's CPU, is what bounds a run, and the
records/s it reaches can be set against its ceiling (the "writes that yield" goal, P37).
Every run records `python_loop_s`, this machine's time for a fixed pure-Python loop: the same
code measured 2.3 times slower on one day than on another, and that figure tells such runs apart.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from lambda_sized import process_cpu_s  # noqa: E402
from run import generate  # noqa: E402

from pipeline_local.ddb_faithful import FaithfulDynamoDB, start_ddb_faithful  # noqa: E402
from pipeline_local.delivery import (  # noqa: E402
    QueuePoller,
    drain,
    drain_concurrently,
    invoke_async,
    s3_event_for_object,
)
from pipeline_local.emulator import start_emulator  # noqa: E402
from pipeline_local.function_invokers import Execution  # noqa: E402
from pipeline_local.function_invokers import make_invoker as function_invoker  # noqa: E402
from pipeline_local.invokers import Invoker, Sandboxed  # noqa: E402
from pipeline_local.scratch_stack import (  # noqa: E402
    create_stack,
    create_tables,
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
        # The ranges (P33) whose messages reached this environment, by their first line.
        self.range_lines: set[int] = set()

    def invoke(self, event: dict[str, Any], *, timeout_ms: int = TIMEOUT_MS) -> Any:
        files = 0
        for record in event.get("Records", []):
            if record.get("eventSource") == "aws:sqs":
                try:
                    body = json.loads(record["body"])
                    kind = body.get("kind")
                except (ValueError, AttributeError):
                    body, kind = {}, None
                if kind in self.message_kinds:
                    self.message_kinds[kind].add(record["messageId"])
                if kind == "resume_file" and "range_line" in body:
                    self.range_lines.add(int(body["range_line"]))
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


def run_case(
    emu: Any,
    faithful: FaithfulDynamoDB,
    impl: str,
    rows: int,
    *,
    concurrency: int = 1,
    range_split_bytes: int = 0,
    batch_size: int = BATCH_SIZE,
    status_index_shards: int | None = None,
    extra_env: dict[str, str] | None = None,
    split_only: bool = False,
) -> dict[str, Any]:
    """One file through the pipeline. `concurrency` execution environments take the main
    queue's batches side by side (the mapping's maximum_concurrency, P36); with
    `range_split_bytes` the S3 event's invocation splits the file into ranges (P33).
    `split_only`: stop after that invocation and measure the split alone (what a 1M-row file's
    projection needs, without processing its rows at one environment's pace)."""
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
    create_tables(ddb, stack)
    faithful.reset()  # both tables are new on-demand tables, counters at zero
    env = {
        **aws,
        **processor_env(stack, "bench"),
        "AWS_ENDPOINT_URL_DYNAMODB": faithful.endpoint,
        "MAX_FILE_BYTES": str(1 << 30),
        "RANGE_SPLIT_BYTES": str(range_split_bytes),
    }
    if status_index_shards is not None:
        env["STATUS_INDEX_SHARDS"] = str(status_index_shards)
    env.update(extra_env or {})
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    sqs_calls = count_calls(stack.sqs)
    load_before = os.getloadavg()
    servers_cpu_before = (process_cpu_s(faithful.pid), process_cpu_s(emu.pid))
    case = f"{impl}-{rows}" + (f"-c{concurrency}" if concurrency > 1 else "")
    try:
        with contextlib.ExitStack() as environments:
            inners = [
                environments.enter_context(
                    make_invoker(impl, env, LOG_DIR / (case if i == 0 else f"{case}-{i}"))
                )
                for i in range(concurrency)
            ]
            sandboxes = [inner.sandbox for inner in inners if isinstance(inner, Sandboxed)]
            counters = [CountingInvoker(inner) for inner in inners]
            invoker = counters[0]  # the S3 event's invocation (the async pool, not the mapping's)
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
            # The S3 event's invocation: with ranges it only splits (reads the object once and
            # sends the range messages); without, it processes the file until its timeout.
            s3_invocation_s = time.monotonic() - started - upload_s
            if split_only:
                queued = stack.sqs.get_queue_attributes(
                    QueueUrl=stack.main_url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
                return {
                    "impl": impl,
                    "rows": rows,
                    "split_only": True,
                    "file_bytes": path.stat().st_size,
                    "range_split_bytes": range_split_bytes,
                    "upload_s": round(upload_s, 2),
                    "s3_invocation_s": round(s3_invocation_s, 2),
                    "billed_ms": counters[0].billed_ms,
                    "range_messages": int(queued),
                    "peak_memory_mb": max(
                        (sb.max_memory_used_mb() for sb in sandboxes), default=None
                    ),
                    "cpu_throttled_s": round(
                        sum(sb.cpu_stat().get("throttled_time", 0) for sb in sandboxes) / 1e9, 2
                    ),
                    "load_avg": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
                }
            pollers = [
                QueuePoller(
                    stack.sqs,
                    stack.main_url,
                    counter,
                    batch_size=batch_size,
                    timeout_ms=TIMEOUT_MS,
                )
                for counter in counters
            ]
            if concurrency == 1:
                drained = drain(pollers, max_rounds=1_000_000, idle_wait_s=0.05)
            else:
                drained = drain_concurrently(pollers, idle_wait_s=0.05, deadline_s=4 * 3600)
            wall_s = time.monotonic() - started
            peaks = [sb.max_memory_used_mb() for sb in sandboxes]
            peak_mb = max(peaks) if sandboxes else None
            cpu_throttled_ns = sum(sb.cpu_stat().get("throttled_time", 0) for sb in sandboxes)
            oom_kills = sum(sb.oom_kills() for sb in sandboxes)
        load_after = os.getloadavg()
        servers_cpu_after = (process_cpu_s(faithful.pid), process_cpu_s(emu.pid))
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
    retry_records = len(set().union(*(c.message_kinds["retry_record"] for c in counters)))
    resumes = len(set().union(*(c.message_kinds["resume_file"] for c in counters)))
    range_lines = set().union(*(c.range_lines for c in counters))
    return {
        "impl": impl,
        "rows": rows,
        "valid_rows": valid,
        "stored": stored,
        "complete": stored == valid,
        # Every row accounted for: the valid ones stored once (the key is the transaction id,
        # so ItemCount == valid means none twice), the invalid ones on the DLQ.
        "accounted": stored == valid and dlq_messages == rows - valid,
        "batch_size": batch_size,
        "upload_s": round(upload_s, 2),
        "s3_invocation_s": round(s3_invocation_s, 2),
        "wall_s": round(wall_s, 2),
        "records_per_s": round(stored / wall_s, 1),
        "concurrency": concurrency,
        "range_split_bytes": range_split_bytes,
        "file_bytes": path.stat().st_size,
        "ranges": len(range_lines),
        "invocations": sum(c.invocations for c in counters),
        "invocations_per_environment": [c.invocations for c in counters],
        "invocation_errors": sum(c.errors for c in counters),
        "billed_ms": sum(c.billed_ms for c in counters),
        "file_invocations": sum(c.file_invocations for c in counters),
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
        "sandbox": bool(sandboxes),
        "cpu_throttled_s": round(cpu_throttled_ns / 1e9, 2) if sandboxes else None,
        "peak_memory_mb": peak_mb,
        "peak_memory_mb_per_environment": peaks,
        "oom_kills": oom_kills,
        # This machine's CPU spent serving the run: the DynamoDB model and the emulator (S3, SQS).
        "endpoint_cpu_s": round(servers_cpu_after[0] - servers_cpu_before[0], 1),
        "emulator_cpu_s": round(servers_cpu_after[1] - servers_cpu_before[1], 1),
        "load_avg": [round(load_before[0], 2), round(load_after[0], 2)],
    }


def python_loop_s() -> float:
    """Seconds this machine takes for 5,000,000 additions in a pure-Python loop, the best of 3:
    a reference for comparing runs made on different days (the host's speed varies)."""
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


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
    parser.add_argument(
        "--concurrency",
        default="1",
        help="execution environments taking the main queue side by side, one case each: 1,2,4",
    )
    parser.add_argument(
        "--range-split-bytes",
        type=int,
        default=0,
        help="RANGE_SPLIT_BYTES (P33): files above it are split into ranges; 0 never splits",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help="the main queue mapping's batch size (lib/main.tf: 10)",
    )
    parser.add_argument(
        "--status-index-shards",
        default="",
        help="STATUS_INDEX_SHARDS (P40; lib/'s default and most 1,000), one case each: 16,1000",
    )
    parser.add_argument(
        "--faithful-threads",
        type=int,
        default=1,
        help="the DynamoDB-faithful endpoint's worker threads (its --threads)",
    )
    parser.add_argument("--latency", default=None, help="ddb-faithful --latency (default: its own)")
    parser.add_argument(
        "--processor-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the processor, for an experiment (the Rust processor"
        " sets its SDK retries in code: AWS_MAX_ATTEMPTS does not change them)",
    )
    parser.add_argument(
        "--partition-wcu",
        type=float,
        default=None,
        help="ddb-faithful --partition-wcu: write units/s per partition (AWS: 1,000)",
    )
    parser.add_argument(
        "--table-initial-wcu",
        type=float,
        default=None,
        help="ddb-faithful --table-initial-wcu: a new on-demand table's write units/s (AWS: 4,000)",
    )
    parser.add_argument(
        "--split-only",
        action="store_true",
        help="only the S3 event's invocation: the split of each file, timed (needs"
        " --range-split-bytes)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pipeline.json")
    args = parser.parse_args()
    if bad := [item for item in args.processor_env if "=" not in item]:
        parser.error(f"--processor-env takes NAME=VALUE, not {bad[0]!r}")
    extra_env = dict(item.split("=", 1) for item in args.processor_env)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    concurrencies = [int(c) for c in args.concurrency.split(",") if c]
    shard_counts: list[int | None] = [int(n) for n in args.status_index_shards.split(",") if n]
    shard_counts = shard_counts or [None]
    # A `timeout` or Ctrl-C still stops the servers and removes the cgroups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    emu = start_emulator()
    os.environ.update(emu.aws_env())
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {
        "memory": True,
        "log_path": LOG_DIR / "ddb-faithful.log",
        "threads": args.faithful_threads,
    }
    if args.latency:
        kwargs["latency"] = args.latency
    scaled = {"--partition-wcu": args.partition_wcu, "--table-initial-wcu": args.table_initial_wcu}
    kwargs["extra_args"] = [f"{k}={v:g}" for k, v in scaled.items() if v is not None]
    loop_s = python_loop_s()
    faithful = start_ddb_faithful(**kwargs)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        # After every case: a run stopped part-way still leaves what it measured.
        doc = {
            "results": results,
            "python_max": args.python_max,
            "latency": args.latency or "default",
            "range_split_bytes": args.range_split_bytes,
            "faithful_threads": args.faithful_threads,
            "commit": commit,
            "machine": {
                "cpus": os.cpu_count(),
                "load_avg_at_save": os.getloadavg()[0],
                "python_loop_s": loop_s,
            },
            "seconds": round(time.monotonic() - started, 1),
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n")

    try:
        for impl in impls:
            for rows in sizes:
                if impl == "python" and rows > args.python_max:
                    continue
                for concurrency, shards in itertools.product(concurrencies, shard_counts):
                    print(
                        f"pipeline {impl:>6} {rows:>9,} rows x{concurrency}"
                        + (f", {shards} shards" if shards else "")
                        + " ...",
                        end=" ",
                        flush=True,
                    )
                    result = run_case(
                        emu,
                        faithful,
                        impl,
                        rows,
                        concurrency=concurrency,
                        range_split_bytes=args.range_split_bytes,
                        batch_size=args.batch_size,
                        status_index_shards=shards,
                        extra_env=extra_env,
                        split_only=args.split_only,
                    )
                    result["partition_wcu_s"] = args.partition_wcu or 1000.0
                    result["table_initial_wcu_s"] = args.table_initial_wcu or 4000.0
                    result["python_loop_s"] = loop_s
                    result["processor_env"] = extra_env
                    results.append(result)
                    if args.split_only:
                        print(
                            f"split {result['s3_invocation_s']:.2f} s into"
                            f" {result['range_messages']} ranges, CPU quota throttled"
                            f" {result['cpu_throttled_s']} s, peak {result['peak_memory_mb']} MB",
                            flush=True,
                        )
                        save()
                        continue
                    print(
                        f"{result['wall_s']:8.1f} s, {result['records_per_s']:7.1f} records/s, "
                        f"stored {result['stored']:,}/{result['valid_rows']:,}, "
                        f"ranges {result['ranges']}, "
                        f"throttled {result['throttled_total']:,}, "
                        f"retry_record {result['retry_record_messages']:,}, "
                        f"invocations {result['invocations']}, "
                        f"peak {result['peak_memory_mb']} MB",
                        flush=True,
                    )
                    save()
    finally:
        faithful.stop()
        emu.stop()
    save()
    print(f"wrote {args.out}")
    return 0 if all(r.get("complete", r.get("split_only")) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
