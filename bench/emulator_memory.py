"""Memory of the Python processor on large CSV files, end to end against the moto server.

Uploads a generated CSV of N valid rows, delivers the S3 event to the processor as Lambda's
async invocation would (300 s timeout, so large files go through the resume_file path), drains
the main queue and the DLQ through their consumers, and samples this process's resident set
size every 100 ms. Prints rows, stored items, invocations, wall time, and RSS before, at peak
and after, for each size. Flat memory means the peak does not grow with the row count.

    .venv/bin/python -m bench.emulator_memory 10000 100000

The emulator handles about 500 PutItem/s, so this measures memory and correctness, not speed
(see bench/ for throughput against a minimal sink).
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from pipeline_local.constants import DEFAULT_MEMORY_MB
from pipeline_local.delivery import QueuePoller, drain, invoke_async, s3_event_for_object
from pipeline_local.emulator import start_emulator
from pipeline_local.function_config import DLQ_PROCESSOR, PROCESSOR, tunable_defaults
from pipeline_local.function_invokers import make_invoker, pipeline_function
from pipeline_local.sample_model import MINOR_UNITS
from pipeline_local.scratch_stack import create_stack

# (code, minor units) from the sample model, which tests/unit/test_contract.py holds to the
# contract's table.
CURRENCIES = [(code, str(MINOR_UNITS[code])) for code in ("EUR", "JPY", "KWD", "USD", "GBP")]
TYPES = ["DEBIT", "CREDIT", "TRANSFER", "PAYMENT", "REFUND"]


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_kib()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            self.peak = max(self.peak, rss_kib())


def csv_bytes(rows: int) -> bytes:
    lines = ["transaction_id,account_id,amount,currency,transaction_type,timestamp,merchant_id"]
    for i in range(rows):
        currency, minor = CURRENCIES[i % len(CURRENCIES)]
        amount = (
            f"{1 + i % 5000}"
            if minor == "0"
            else f"{1 + i % 5000}.{i % 10 ** int(minor):0{minor}d}"
        )
        lines.append(
            f"TXN-{i:09d},DE{89370400440532013000 + i:020d},{amount},{currency},"
            f"{TYPES[i % 5]},2026-0{1 + i % 9}-1{i % 10}T{i % 24:02d}:{i % 60:02d}:00Z,M-{i % 997}"
        )
    return ("\n".join(lines) + "\n").encode()


def count_items(ddb: object, table: str) -> int:
    total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        page = ddb.scan(**kwargs)  # type: ignore[attr-defined]
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def measure(rows: int) -> dict[str, float]:
    emu = start_emulator()
    os.environ.update(emu.aws_env())
    try:
        stack = create_stack(emu)
        body = csv_bytes(rows)
        key = f"incoming/large-{rows}.csv"
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
        env = emu.aws_env() | {
            "DYNAMODB_TABLE_NAME": stack.table,
            "FILE_STATUS_TABLE_NAME": stack.status_table,
            "SQS_QUEUE_URL": stack.main_url,
            "DLQ_URL": stack.dlq_url,
            "ENVIRONMENT": "bench",
            **tunable_defaults(PROCESSOR),
        }
        dlq_env = emu.aws_env() | {
            "ERRORS_TABLE_NAME": stack.errors_table,
            "ENVIRONMENT": "bench",
            **tunable_defaults(DLQ_PROCESSOR),
        }
        processor = make_invoker(
            pipeline_function(PROCESSOR, "python", memory_mb=DEFAULT_MEMORY_MB), env
        )
        dlq_processor = make_invoker(
            pipeline_function(DLQ_PROCESSOR, "python", memory_mb=DEFAULT_MEMORY_MB), dlq_env
        )
        event = s3_event_for_object(stack.s3, stack.bucket, key)

        before = rss_kib()
        sampler = RssSampler()
        sampler.start()
        started = time.monotonic()
        first = invoke_async(
            processor,
            event,
            timeout_ms=300_000,
            sqs=stack.sqs,
            dead_letter_queue_url=stack.main_url,
        )
        stats = drain(
            [
                QueuePoller(stack.sqs, stack.main_url, processor, timeout_ms=300_000),
                QueuePoller(stack.sqs, stack.dlq_url, dlq_processor, timeout_ms=300_000),
            ],
            max_rounds=10_000,
        )
        wall = time.monotonic() - started
        sampler.stopped.set()
        sampler.join()
        stored = count_items(stack.ddb, stack.table)
        errors = count_items(stack.ddb, stack.errors_table)
        return {
            "rows": rows,
            "file_mib": len(body) / 2**20,
            "stored": stored,
            "error_rows": errors,
            "invocations": first.attempts + stats.deliveries,
            "wall_s": wall,
            "rss_before_mib": before / 1024,
            "rss_peak_mib": sampler.peak / 1024,
            "rss_after_mib": rss_kib() / 1024,
        }
    finally:
        emu.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", type=int)
    args = parser.parse_args()
    columns = ["rows", "file MiB", "stored", "error rows", "invocations", "wall s"]
    columns += ["RSS before MiB", "RSS peak MiB", "RSS after MiB"]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    failed = False
    for rows in args.rows:
        r = measure(rows)
        print(
            f"| {r['rows']:,} | {r['file_mib']:.1f} | {r['stored']:,} | {r['error_rows']} | "
            f"{r['invocations']} | {r['wall_s']:.0f} | {r['rss_before_mib']:.0f} | "
            f"{r['rss_peak_mib']:.0f} | {r['rss_after_mib']:.0f} |",
            flush=True,
        )
        failed |= r["stored"] != rows or r["error_rows"] != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
