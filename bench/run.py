"""Benchmark the Python and Rust processors side by side on the same files and endpoint.

    .venv/bin/python bench/run.py [--sizes 10000,100000,1000000] [--out bench/results]
                                  [--impls python,rust] [--rust-bin-dir target/release]

1. Generates CSV files (`bench-<rows>.csv`, about 0.5 % invalid rows) in build/bench/data.
2. Starts bench/sink.py (a minimal S3/DynamoDB/SQS endpoint, two worker processes) on a free
   loopback port: the emulator's own cost would hide the processors' cost.
3. For every size, runs each implementation on the same S3 event, warm (after one warm-up
   invocation that opens the connections):
   - python: lib/processor_function.py in a fresh process (bench/pyrun.py);
   - rust: the host build of crates/processor as its own process, unlimited, from
     bench/lambda_sized.py's make_invoker (pipeline_local.function_invokers.make_invoker, as the
     tests and the demo get theirs; --rust-bin-dir: a directory with processor/bootstrap or
     processor, and then only that build, else where make_invoker looks).
   Measured: wall time, CPU time of the function's process (user + system, all threads), peak
   RSS of that process.
4. Writes results.json and the chart benchmarks.png to --out; bench/report.py turns them into
   docs/benchmarks.md.

The sink answers every conditional PutItem with success, so every valid row costs one PutItem,
and every invalid row one SQS message (in batches of 10).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lambda_sized import make_invoker as process_invoker  # noqa: E402
from lambda_sized import process_cpu_s, rust_build_problem  # noqa: E402

from pipeline_local.delivery import s3_put_event  # noqa: E402
from pipeline_local.function_config import PROCESSOR, tunable_defaults  # noqa: E402

DATA = REPO / "build" / "bench" / "data"
BUCKET = "bench-bucket"
TIMEOUT_MS = 3_600_000
HEADER = (
    "transaction_id,account_id,amount,currency,transaction_type,timestamp,merchant_id,description"
)
TYPES = ["DEBIT", "CREDIT", "TRANSFER", "PAYMENT", "REFUND"]


def generate(rows: int) -> Path:
    """A CSV file of `rows` data rows (deterministic); 1 row in 200 is invalid."""
    path = DATA / f"bench-{rows}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(rows)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER + "\n")
        for i in range(rows):
            currency = ("EUR", "USD", "JPY", "GBP")[i % 4]
            if currency == "JPY":
                amount = str(rng.randint(1, 900_000))
            else:
                amount = f"{rng.randint(1, 9_999_999) / 100:.2f}"
            if i % 200 == 199:
                amount = "0"  # INVALID_VALUE: one DLQ message
            ts = 1_704_067_200 + i
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
            merchant = f"MERCH-{i % 977:04d}" if i % 3 else ""
            description = f"Purchase {i} at store {i % 131}" if i % 2 else ""
            f.write(
                f"B{i:09d},DE{rng.randint(10**19, 10**20 - 1)},{amount},{currency},"
                f"{TYPES[i % 5]},{stamp},{merchant},{description}\n"
            )
    tmp.rename(path)
    return path


class Sink:
    def __init__(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.port_file = work / "sink.port"
        self.stats = work / "sink-stats.jsonl"
        self.port_file.unlink(missing_ok=True)
        self.stats.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "bench" / "sink.py"),
                "--dir",
                str(DATA),
                "--port-file",
                str(self.port_file),
                "--stats",
                str(self.stats),
            ]
        )
        for _ in range(200):
            if self.port_file.exists() and self.port_file.read_text():
                break
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port_file.read_text()}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def function_env(sink: Sink) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": sink.url,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_REGION": "eu-central-1",
        "DYNAMODB_TABLE_NAME": "dynamodb-transactions-bench",
        "FILE_STATUS_TABLE_NAME": "dynamodb-file-status-bench",
        "SQS_QUEUE_URL": f"{sink.url}/123456789012/sqs-transaction-retry-bench",
        "DLQ_URL": f"{sink.url}/123456789012/sqs-transaction-dlq-bench",
        "ENVIRONMENT": "bench",
        **tunable_defaults(PROCESSOR),
        "MAX_FILE_BYTES": str(1 << 30),
        # CPU per record of one invocation over the whole file: never split into ranges (P33;
        # lib/'s 1 MiB default made the 100,000- and 1,000,000-row invocations only split).
        "RANGE_SPLIT_BYTES": "0",
    }


def run_python(env: dict[str, str], path: Path) -> dict[str, Any]:
    full_env = {**os.environ, **env}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "pyrun.py"),
            BUCKET,
            path.name,
            str(path.stat().st_size),
        ],
        env=full_env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH "))
    return json.loads(line.removeprefix("BENCH "))


def _proc_status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_rust(env: dict[str, str], path: Path, rust_bin_dir: Path | None) -> dict[str, Any]:
    # The processor as its own process, unlimited: its pid is what CPU time and RSS are read from.
    invoker = process_invoker("rust", env, False, rust_bin_dir)
    try:
        warm = s3_put_event(BUCKET, "warm-up.txt", size=1, etag="bench", version_id="bench-v1")
        invoker.invoke(warm, timeout_ms=TIMEOUT_MS)
        pid = invoker.pid
        assert pid is not None
        idle_rss = _proc_status_mb(pid, "VmHWM")
        event = s3_put_event(
            BUCKET, path.name, size=path.stat().st_size, etag="bench", version_id="bench-v1"
        )
        cpu0, wall0 = process_cpu_s(pid), time.monotonic()
        response = invoker.invoke(event, timeout_ms=TIMEOUT_MS)
        cpu1, wall1 = process_cpu_s(pid), time.monotonic()
        return {
            "cpu_s": cpu1 - cpu0,
            "wall_s": wall1 - wall0,
            "peak_rss_mb": _proc_status_mb(pid, "VmHWM"),
            "idle_rss_mb": idle_rss,
            "response": response,
        }
    finally:
        invoker.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--impls", default="python,rust")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--python-max", type=int, default=10**9, help="largest file for Python (rows)"
    )
    parser.add_argument(
        "--rust-bin-dir",
        type=Path,
        default=None,
        help="a directory with the Rust processor's build (another build's, to compare two "
        "builds at one sitting); by default where make_invoker looks",
    )
    args = parser.parse_args()
    # Before any file is generated: a missing build is said at once.
    problem = rust_build_problem(args.rust_bin_dir) if "rust" in args.impls.split(",") else None
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    files = {n: generate(n) for n in sizes}
    sink = Sink(DATA.parent)
    results: list[dict[str, Any]] = []
    try:
        env = function_env(sink)
        for n in sizes:
            for impl in args.impls.split(","):
                if impl == "python" and n > args.python_max:
                    continue
                print(f"{impl:>6} {n:>9,} rows ...", end=" ", flush=True)
                load_before = os.getloadavg()[0]
                run = (
                    run_python(env, files[n])
                    if impl == "python"
                    else run_rust(env, files[n], args.rust_bin_dir)
                )
                run["load_avg"] = [load_before, os.getloadavg()[0]]
                files_out = (run.pop("response") or {}).get("files") or [{}]
                summary = files_out[0]
                if summary.get("rows") != n or summary.get("file_error"):
                    raise RuntimeError(f"{impl} {n}: unexpected result {summary}")
                run.update(
                    impl=impl,
                    rows=n,
                    stored=summary.get("stored"),
                    invalid=summary.get("invalid"),
                    file_bytes=files[n].stat().st_size,
                )
                results.append(run)
                print(
                    f"{run['wall_s']:8.2f} s wall {run['cpu_s']:8.2f} s CPU "
                    f"{run['peak_rss_mb']:7.1f} MB peak RSS"
                )
    finally:
        sink.stop()
    sink_stats = (
        [json.loads(x) for x in sink.stats.read_text().splitlines()] if sink.stats.exists() else []
    )
    doc = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "results": results,
        "sink": sink_stats,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (args.out / "results.json").write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
