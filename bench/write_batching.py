"""One conditional PutItem per record against TransactWriteItems of 100, in a 512 MB Lambda's share.

    .venv/bin/python bench/write_batching.py [--rows 4000] [--repeats 2] [--writers 16]

Issue 12, item 4 asks whether batching the processor's conditional writes pays: a
TransactWriteItems carries up to 100 conditional puts on distinct items in one request and
reports each failed condition with the old item (CancellationReasons, in the order of
TransactItems), but it writes nothing when any condition fails, and each item costs two write
units per KB instead of one (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html,
"Capacity management for transactions").

What this measures, for each way of writing and each of two situations:

- **fresh**: every record is new (a first run of a file);
- **rerun**: every record is already stored (a file delivered again, or a resume over written
  batches): each PutItem fails its condition and returns the old item; each transaction is
  cancelled and its reasons carry every old item.

Each run is a child process inside a pipeline_local.sandbox.Sandbox of 512 MB (CPU quota
512/1769 of a core, memory limit 512 MiB), as the processor runs in bench/pipeline.py. It loads
lib/processor_function.py, turns a generated CSV of --rows valid rows into the processor's
items (csv_rows, validate_record, build_item: untimed), then times only the writes, with
--writers threads and the processor's own boto3 configuration:

- **put**: `put_transaction`, the processor's own conditional PutItem (ALL_OLD on a failed
  condition, record_hash compared), one call per record;
- **transact**: groups of 100 records, one TransactWriteItems each, every Put with the same
  condition and ALL_OLD; a cancelled transaction's ConditionalCheckFailed reasons are resolved
  from their old items (duplicate or conflict) and its other records are sent again in a new
  transaction, so that a cancelled request loses none of them.

DynamoDB is the DynamoDB-faithful endpoint (crates/ddb-faithful) with its in-memory store, as in
bench/pipeline.py (`--backend moto` puts the moto server behind it instead; moto's
TransactWriteItems deep-copies every table it touches, which would charge its own cost to the
transactions): its default latency model, and its /_faithful/stats count the write units each
way consumed (a transaction's puts at two units per KB, on the table and, as the endpoint
assumes, on the index; a cancelled transaction at none). Reported per run: wall time and the
child's CPU seconds for the writes, records/s, requests, write units per record. Then, per 1M
records, the Lambda GB-s of the writes at 512 MB and the DynamoDB write units at
bench/costs.py's prices. Writes JSON to build/bench/write_batching.json and prints a Markdown
table.

The endpoint (and moto) run unlimited on the same 2 cores as the child: the wall times
compare the two ways with each other, not with AWS. The CPU seconds are the child's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from costs import PRICES  # noqa: E402 (bench/costs.py: this script's folder is on sys.path)
from lambda_sized import machine_facts  # noqa: E402 (bench/lambda_sized.py)

from pipeline_local.ddb_faithful import start_ddb_faithful  # noqa: E402
from pipeline_local.emulator import aws_env_for, start_emulator  # noqa: E402
from pipeline_local.function_config import PROCESSOR, tunable_defaults  # noqa: E402
from pipeline_local.invokers import load_handler_module  # noqa: E402
from pipeline_local.samples import bulk_file  # noqa: E402
from pipeline_local.sandbox import sandbox_for  # noqa: E402
from pipeline_local.scratch_stack import clients, lib_table  # noqa: E402

MEMORY_MB = 512
MEMORY_GB = MEMORY_MB / 1024  # Lambda bills GB as 1,024 MB
TRANSACT_MAX_ITEMS = 100  # TransactWriteItems: at most 100 actions on distinct items
OUT = REPO / "build" / "bench" / "write_batching.json"
MODES = ("put", "transact")
SITUATIONS = ("fresh", "rerun")


# --------------------------------------------------------------------------------------------
# The child: one way of writing, timed inside the sandbox.


def load_processor() -> ModuleType:
    """lib/processor_function.py as a module (registered: its dataclasses need it)."""
    return load_handler_module(REPO / "lib" / "processor_function.py", name="processor_function")


def processor_items(proc: ModuleType, rows: int) -> list[dict[str, Any]]:
    """The items the processor would write for a generated CSV of `rows` valid rows."""
    sample = bulk_file("incoming/write-batching.csv", rows)
    source = proc.SourceInfo("bench-bucket", sample.key, "v1", 0)
    read = proc.csv_rows(iter([sample.body]))
    if isinstance(read, proc.FileError):
        raise SystemExit(f"sample file refused: {read}")
    items = []
    for row in read:
        tx = proc.validate_record(row.values)
        if not isinstance(tx, proc.Transaction):
            raise SystemExit(f"sample row {row.line} refused: {tx}")
        items.append(proc.build_item(tx, source, row.line, 0, 16))
    return items


class Counter:
    """Outcomes and requests, shared by the writer threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: dict[str, int] = {}
        self.requests = 0
        self.cancelled = 0

    def add(self, outcome: str, n: int = 1) -> None:
        with self.lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n

    def request(self, cancelled: bool = False) -> None:
        with self.lock:
            self.requests += 1
            self.cancelled += int(cancelled)


def write_put(
    proc: ModuleType, table: str, items: Sequence[dict[str, Any]], writers: int, counter: Counter
) -> None:
    def one(item: dict[str, Any]) -> None:
        outcome = proc.put_transaction(proc.dynamodb_client, table, item)
        counter.request()
        counter.add(outcome.status)

    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(one, items))


def groups(items: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def transact_group(
    proc: ModuleType, table: str, group: list[dict[str, Any]], counter: Counter
) -> None:
    """One group until every record has an outcome: a cancelled transaction's failed conditions
    are resolved from their old items, its other records go again in a new transaction."""
    pending = group
    while pending:
        try:
            proc.dynamodb_client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(transaction_id)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    }
                    for item in pending
                ]
            )
            counter.request()
            counter.add("stored", len(pending))
            return
        except proc.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            counter.request(cancelled=True)
            reasons = exc.response.get("CancellationReasons") or []
            if len(reasons) != len(pending):
                msg = f"{len(reasons)} cancellation reasons for {len(pending)} puts"
                raise SystemExit(msg) from exc
            again = []
            for item, reason in zip(pending, reasons, strict=True):
                code = reason.get("Code")
                if code == "ConditionalCheckFailed":
                    old = reason.get("Item") or {}
                    old_hash = (old.get("record_hash") or {}).get("S")
                    if old_hash is None:
                        counter.add("failed")  # as P18: no old item to compare with
                    elif old_hash == item["record_hash"]["S"]:
                        counter.add("duplicate")
                    else:
                        counter.add("conflict")
                else:  # "None" (not at fault) or a conflict/throttle: send it again
                    again.append(item)
            pending = again


def write_transact(
    proc: ModuleType, table: str, items: Sequence[dict[str, Any]], writers: int, counter: Counter
) -> None:
    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(
            pool.map(
                lambda g: transact_group(proc, table, g, counter), groups(items, TRANSACT_MAX_ITEMS)
            )
        )


def child(args: argparse.Namespace) -> int:
    proc = load_processor()
    items = processor_items(proc, args.rows)
    counter = Counter()
    write = write_put if args.mode == "put" else write_transact
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.monotonic()
    write(proc, args.table, items, args.writers, counter)
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": usage.ru_utime + usage.ru_stime - cpu_before,
                "records": len(items),
                "requests": counter.requests,
                "cancelled": counter.cancelled,
                "outcomes": counter.outcomes,
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            }
        )
    )
    return 0


# --------------------------------------------------------------------------------------------
# The parent: the endpoint, the sandboxes, the table of results.


def write_units(stats: dict[str, Any], table: str) -> float:
    """Write units the endpoint charged to `table` and its indexes."""
    total = 0.0
    for name, resource_stats in (stats.get("resources") or {}).items():
        if name == table or name.startswith(f"{table}/"):
            total += float(resource_stats.get("consumed_write_units", 0))
    return total


def run_child(
    mode: str, table: str, rows: int, writers: int, env: dict[str, str]
) -> dict[str, Any]:
    sandbox = sandbox_for("write-batching", MEMORY_MB)
    if sandbox is None:
        raise SystemExit("no cgroup v1 limits here: the comparison needs a Lambda's CPU share")
    env = {**env, "DYNAMODB_TABLE_NAME": table}
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--mode",
        mode,
        "--table",
        table,
        "--rows",
        str(rows),
        "--writers",
        str(writers),
    ]
    with sandbox:
        done = subprocess.run(
            sandbox.wrap(argv), env=env, capture_output=True, text=True, check=False, timeout=1800
        )
        throttled = sandbox.cpu_stat()
    if done.returncode != 0:
        raise SystemExit(f"{mode}: child exited {done.returncode}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["quota_throttled_s"] = round(throttled.get("throttled_time", 0) / 1e9, 2)
    return result


def per_million(result: dict[str, Any]) -> dict[str, float]:
    """Lambda GB-s (the writes' wall time at 512 MB) and DynamoDB write units, per 1M records."""
    scale = 1_000_000 / result["records"]
    gb_s = result["wall_s"] * MEMORY_GB * scale
    wru = result["write_units"] * scale
    lam, ddb = PRICES["lambda_gb_s"], PRICES["ddb_wru"]
    return {
        "lambda_gb_s": round(gb_s, 1),
        "lambda_usd": round(gb_s * lam.usd / lam.per, 4),
        "ddb_wru": round(wru),
        "ddb_usd": round(wru * ddb.usd / ddb.per, 4),
    }


def parent(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # The in-memory store by default, as bench/pipeline.py: moto's TransactWriteItems deep-copies
    # each table it touches (to roll back), which would bill its own cost to the transactions.
    emu = start_emulator() if args.backend == "moto" else None
    ddb = start_ddb_faithful(upstream=emu.endpoint) if emu else start_ddb_faithful(memory=True)
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    try:
        env = dict(os.environ)
        env.update(aws_env_for(ddb.endpoint))
        # The processor reads its whole configuration at import (lib/ owns the defaults); only
        # DynamoDB is called here, so the queues and the status table are never used.
        env.update(tunable_defaults(PROCESSOR))
        env.update(
            SQS_QUEUE_URL="unused",
            DLQ_URL="unused",
            FILE_STATUS_TABLE_NAME="unused",
            ENVIRONMENT="bench",
        )
        _, admin, _ = clients(ddb)  # the endpoint is an Emulator: same clients helper
        for repeat in range(args.repeats):
            for mode in MODES:
                table = f"write-batching-{mode}-{uuid.uuid4().hex[:8]}"
                lib_table("transactions").create(admin, table)
                for situation in SITUATIONS:
                    ddb.reset()
                    result = run_child(mode, table, args.rows, args.writers, env)
                    result.update(
                        mode=mode,
                        situation=situation,
                        repeat=repeat,
                        write_units=write_units(ddb.stats(), table),
                    )
                    result.update(per_million(result))
                    print(json.dumps(result), flush=True)
                    results.append(result)
                admin.delete_table(TableName=table)
    finally:
        ddb.stop()
        if emu:
            emu.stop()
    machine = {
        **machine_facts(load_before),
        "rows": args.rows,
        "writers": args.writers,
        "backend": args.backend,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    print(f"\nmachine: {machine}")
    print(markdown(results))
    return 0


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """One row per (mode, situation): medians over the repeats."""
    lines = [
        "| writes | records | requests | cancelled | wall s | records/s | CPU s | CPU ms/record "
        "| WRU/record | Lambda GB-s per 1M | Lambda $ per 1M | DynamoDB $ per 1M |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        for situation in SITUATIONS:
            runs = [r for r in results if r["mode"] == mode and r["situation"] == situation]
            if not runs:
                continue

            def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return float(statistics.median(r[key] for r in runs))

            records = runs[0]["records"]
            lines.append(
                f"| {mode}, {situation} | {records:,} | {med('requests'):,.0f} | "
                f"{med('cancelled'):,.0f} | {med('wall_s'):.2f} | {records / med('wall_s'):,.0f} | "
                f"{med('cpu_s'):.2f} | {1000 * med('cpu_s') / records:.2f} | "
                f"{med('write_units') / records:.2f} | {med('lambda_gb_s'):,.0f} | "
                f"{med('lambda_usd'):.4f} | {med('ddb_usd'):.4f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--writers", type=int, default=16, help="the Python processor's 16")
    parser.add_argument(
        "--backend",
        choices=("memory", "moto"),
        default="memory",
        help="the endpoint's in-memory store (default) or the moto server behind it",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    raise SystemExit(main())
