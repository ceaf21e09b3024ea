"""Processor speed inside a 512 MB Lambda's CPU share and memory, against the moto server.

    .venv/bin/python bench/lambda_sized.py [--rows 10000] [--impl python,rust]
        [--settings limited,unlimited] [--rust-bin-dir DIR]

For each implementation (python: lib/processor_function.py under awslambdaric in its own
process, pipeline_local.python_runtime; rust: the host build of crates/processor,
pipeline_local.rust_runtime; both made by pipeline_local.function_invokers.make_invoker, as the
tests and the demo make theirs; --rust-bin-dir: a directory with processor/bootstrap or
processor, else where make_invoker looks) and each setting (512 MB: the process in a
pipeline_local.sandbox.Sandbox, 0.289 of a core and 512 MiB; unlimited: no cgroup), on a fresh
scratch stack in one moto server:

- cold start: the first invocation of a fresh process (an event the processor forwards to its
  DLQ: one SQS call) minus a warm invocation of the same event;
- the file: one S3 notification for a CSV of --rows valid rows, invoked on the warm process;
  wall time and records stored per second.

The moto server runs unlimited beside the function and answers every call (one conditional
PutItem per row), so these rates include the emulator's own cost on the same 2 cores: they
compare the settings with each other, not with AWS. Prints a table and writes JSON to
build/bench/lambda_sized.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline_local.delivery import s3_event_for_object  # noqa: E402
from pipeline_local.emulator import start_emulator  # noqa: E402
from pipeline_local.function_config import PROCESSOR  # noqa: E402
from pipeline_local.function_invokers import Execution, pipeline_function, rust_binary_for  # noqa: E402
from pipeline_local.function_invokers import make_invoker as local_invoker  # noqa: E402
from pipeline_local.rust_runtime import RustInvoker  # noqa: E402
from pipeline_local.samples import bulk_file  # noqa: E402
from pipeline_local.scratch_stack import (  # noqa: E402
    Stack,
    create_stack,
    delete_stack,
    processor_env,
)
from pipeline_local.wiring import WiringError  # noqa: E402

MEMORY_MB = 512
TIMEOUT_MS = 900_000
OUT = REPO / "build" / "bench" / "lambda_sized.json"


def make_invoker(
    impl: str, env: dict[str, str], limited: bool, rust_bin_dir: Path | None
) -> RustInvoker:
    """The processor at MEMORY_MB as its own process: Lambda-sized when `limited`."""
    fn = pipeline_function(PROCESSOR, impl, memory_mb=MEMORY_MB)
    execution = Execution.LAMBDA_SIZED if limited else Execution.PROCESS
    invoker = local_invoker(fn, env, rust_bin_dir=rust_bin_dir, execution=execution)
    # Both process invokers are RustInvokers (the Python one runs awslambdaric instead).
    if not isinstance(invoker, RustInvoker):
        raise SystemExit(f"{impl}: not a process invoker: {type(invoker).__name__}")
    if limited and invoker.sandbox is None:
        raise SystemExit("no cgroup v1 limits here: nothing to compare")
    return invoker


def rust_build_problem(rust_bin_dir: Path | None) -> str | None:
    """Why the Rust processor's host build cannot be measured, or None. With `rust_bin_dir`,
    only the build there counts: a benchmark of one build must not measure another silently."""
    fn = pipeline_function(PROCESSOR, "rust", memory_mb=MEMORY_MB)
    try:
        rust_binary_for(fn, rust_bin_dir, only_there=True)
    except WiringError as err:
        return str(err)
    return None


def stored_count(stack: Stack) -> int:
    total, kwargs = 0, {"TableName": stack.table, "Select": "COUNT"}
    while True:
        page = stack.ddb.scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a live process (fields 14 and 15 of /proc/<pid>/stat)."""
    if pid is None:
        raise SystemExit("the function process is not running")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(invoker: Any, event: dict[str, Any]) -> tuple[float, Any]:
    started = time.monotonic()
    out = invoker.invoke(event, timeout_ms=TIMEOUT_MS)
    return time.monotonic() - started, out


def run_one(
    emu: Any, impl: str, limited: bool, rows: int, rust_bin_dir: Path | None
) -> dict[str, Any]:
    stack = create_stack(emu)
    try:
        sample = bulk_file(f"incoming/lambda-sized-{rows}.csv", rows)
        stack.s3.put_object(Bucket=stack.bucket, Key=sample.key, Body=sample.body)
        env = processor_env(stack, "bench")
        with make_invoker(impl, env, limited, rust_bin_dir) as invoker:
            sandbox = invoker.sandbox
            ping = {"bench": "cold start probe"}
            cold_s, _ = timed(invoker, ping)
            warm_s, _ = timed(invoker, ping)
            event = s3_event_for_object(stack.s3, stack.bucket, sample.key)
            cpu_before = process_cpu_s(invoker.pid)
            file_s, out = timed(invoker, event)
            cpu_s = process_cpu_s(invoker.pid) - cpu_before
            peak_mb = sandbox.max_memory_used_mb() if sandbox is not None else None
            throttled = sandbox.cpu_stat() if sandbox is not None else {}
        stored = stored_count(stack)
        if stored != rows:
            raise SystemExit(f"{impl}: stored {stored} of {rows} rows: {json.dumps(out)[:300]}")
        return {
            "impl": impl,
            "setting": f"{MEMORY_MB} MB (0.289 vCPU)" if limited else "unlimited",
            "rows": rows,
            "cold_invocation_s": round(cold_s, 3),
            "warm_invocation_s": round(warm_s, 3),
            "cold_start_s": round(cold_s - warm_s, 3),
            "file_wall_s": round(file_s, 2),
            "records_per_s": round(rows / file_s, 1),
            # The function process's own CPU time for the file (user + system, all threads):
            # what the quota rations, whatever else the machine is doing.
            "file_cpu_s": round(cpu_s, 2),
            "cpu_share_of_wall": round(cpu_s / file_s, 3),
            "throttled_periods": throttled.get("nr_throttled"),
            "throttled_s": round(throttled["throttled_time"] / 1e9, 2) if throttled else None,
            "peak_memory_mb": peak_mb,
        }
    finally:
        delete_stack(stack)


def machine_facts(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The machine and its 1-minute load average before (`load_before`, os.getloadavg() when the
    run began) and now, for a benchmark's results."""
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_avg_1m_before": round(load_before[0], 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--impl", default="python,rust")
    parser.add_argument("--settings", default="limited,unlimited")
    parser.add_argument("--rust-bin-dir", type=Path, default=None)
    args = parser.parse_args()
    impls = [i.strip() for i in args.impl.split(",") if i.strip()]
    settings = [s.strip() == "limited" for s in args.settings.split(",") if s.strip()]
    problem = rust_build_problem(args.rust_bin_dir) if args.rust_bin_dir is not None else None
    if "rust" in impls and problem is not None:
        print(problem, file=sys.stderr)
        return 2
    # A `timeout` or Ctrl-C still stops the emulator and removes the cgroups.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    emu = start_emulator()
    os.environ.update(emu.aws_env())
    load_before = os.getloadavg()
    results = []
    try:
        for impl in impls:
            for limited in settings:
                result = run_one(emu, impl, limited, args.rows, args.rust_bin_dir)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        emu.stop()
    machine = machine_facts(load_before)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    print(f"\nmachine: {machine}")
    print(
        "| impl | setting | rows | cold start s | file wall s | records/s | file CPU s "
        "| CPU/wall | throttled s | peak MB |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['impl']} | {r['setting']} | {r['rows']} | {r['cold_start_s']} | "
            f"{r['file_wall_s']} | {r['records_per_s']} | {r['file_cpu_s']} | "
            f"{r['cpu_share_of_wall']} | {_or_dash(r['throttled_s'])} | "
            f"{_or_dash(r['peak_memory_mb'])} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
