"""Turn bench/results/results.json into docs/benchmarks.md and a PNG chart.

    .venv-bench/bin/python bench/report.py bench/results/results.json \
        --doc docs/benchmarks.md --chart bench/results/benchmarks.png
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

# Lambda gives a function CPU in proportion to its memory: one full vCPU at 1,769 MB.
LAMBDA_MEMORY_MB = 512
FULL_VCPU_MB = 1769
VCPU_SHARE = LAMBDA_MEMORY_MB / FULL_VCPU_MB
LAMBDA_TIMEOUT_S = 300


def derive(r: dict[str, Any]) -> dict[str, Any]:
    cpu_per_record = r["cpu_s"] / r["rows"]
    return {
        **r,
        "records_per_s": r["rows"] / r["wall_s"],
        "cpu_per_100k": cpu_per_record * 100_000,
        "lambda_s": r["cpu_s"] / VCPU_SHARE,
        "max_rows_300s": int(LAMBDA_TIMEOUT_S * VCPU_SHARE / cpu_per_record),
    }


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["rows"] for r in rows})
    impls = [i for i in ("python", "rust") if any(r["impl"] == i for r in rows)]
    colors = {"python": "#3572A5", "rust": "#dea584"}
    panels = [
        ("cpu_per_100k", "CPU seconds per 100k records", True),
        ("records_per_s", "records per second (wall)", True),
        ("peak_rss_mb", "peak RSS (MB)", False),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.6))
    width = 0.38
    for ax, (key, title, log) in zip(axes, panels, strict=True):
        for k, impl in enumerate(impls):
            values = [
                next((r[key] for r in rows if r["impl"] == impl and r["rows"] == n), 0)
                for n in sizes
            ]
            xs = [i + (k - (len(impls) - 1) / 2) * width for i in range(len(sizes))]
            bars = ax.bar(xs, values, width, label=impl, color=colors[impl])
            for bar, v in zip(bars, values, strict=True):
                label = f"{v:,.0f}" if v >= 100 else f"{v:.2f}"
                ax.annotate(
                    label,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        ax.set_xticks(range(len(sizes)), [f"{n:,} rows" for n in sizes])
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.legend(loc="lower right" if not log else "best", framealpha=0.9)
    fig.suptitle("Transaction processor: Python 3.11 (boto3) vs Rust (aws-sdk-rust), same files")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def document(
    doc: dict[str, Any], rows: list[dict[str, Any]], chart_rel: str, note: str = ""
) -> str:
    by = {(r["impl"], r["rows"]): r for r in rows}
    sizes = sorted({r["rows"] for r in rows})
    largest = sizes[-1]
    table = [
        "| implementation | rows | file MB | wall s | records/s | CPU s | CPU s per 100k"
        " records | peak RSS MB | est. s at 0.29 vCPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for impl in ("python", "rust"):
            r = by.get((impl, n))
            if r is None:
                continue
            table.append(
                f"| {impl} | {n:,} | {r['file_bytes'] / 1e6:.1f} | {r['wall_s']:.2f} |"
                f" {fmt_int(r['records_per_s'])} | {r['cpu_s']:.2f} | {r['cpu_per_100k']:.2f} |"
                f" {r['peak_rss_mb']:.0f} | {r['lambda_s']:.0f} |"
            )
    lines: list[str] = []
    py, rs = by.get(("python", largest)), by.get(("rust", largest))
    if py and rs:
        ratio = py["cpu_per_100k"] / rs["cpu_per_100k"]
        lines += [
            f"- CPU per record, {largest:,} rows: Rust uses **{ratio:.1f}x less** than Python"
            f" ({rs['cpu_per_100k']:.2f} s vs {py['cpu_per_100k']:.2f} s per 100k records;"
            " target: at least 10x).",
        ]
    for impl in ("python", "rust"):
        r = by.get((impl, largest))
        if r is None:
            continue
        verdict = "within" if r["lambda_s"] <= LAMBDA_TIMEOUT_S else "over"
        lines.append(
            f"- {impl}: a {largest:,}-row file needs about {r['lambda_s']:.0f} s of a 512 MB"
            f" Lambda's CPU share ({verdict} the {LAMBDA_TIMEOUT_S} s timeout); the largest file"
            f" it can finish in one invocation is about **{r['max_rows_300s']:,} rows** (peak RSS"
            f" {r['peak_rss_mb']:.0f} MB of 512 MB)."
        )
    machine = doc.get("machine", {})
    loads = [x for r in rows for x in r.get("load_avg", [])]
    if loads:
        lines.append(
            f"- Machine load: the 1-minute load average, read when each measurement started and"
            f" ended, was between {min(loads):.1f} and {max(loads):.1f} on"
            f" {machine.get('cpus')} cores. The"
            " benchmark's own threads count in it (Python's 16 writer threads, the sink's two"
            " workers), so a reading above the core count is not by itself other work."
        )
    else:
        lines.append("- Machine load: not recorded by the run that produced these numbers.")
    return f"""# Benchmarks: Python and Rust transaction processors

Both implementations of the processor (lib/processor_function.py and crates/processor) process
the same generated CSV files, one S3 event each, warm (after one warm-up invocation), against the
same local endpoint. Generated {doc.get("generated_at", "")} on {machine.get("cpus")} cores
({machine.get("platform")}, Python {machine.get("python")}).

Reproduce (about 16 minutes on 2 idle cores, most of it the Python run on 1M rows):

```sh
make bench                      # = bench/run.sh: host build, measurements, this page
BENCH_SIZES=10000,100000 make bench   # a quicker run
```

![CPU per 100k records, throughput and peak memory]({chart_rel})

{chr(10).join(table)}

{chr(10).join(lines)}
{note}
## What is measured

- **Files**: `bench-<rows>.csv` with all eight columns, 1 row in 200 invalid (amount 0, one DLQ
  message each); generated once into build/bench/data by bench/run.py (sizes in the table).
- **Endpoint**: bench/sink.py, a minimal S3/DynamoDB/SQS endpoint on 127.0.0.1 (two worker
  processes): it serves the file for GetObject, answers every PutItem with `{{}}` and every
  SendMessageBatch entry as successful. The emulator (moto) spends about 1.8 ms of its own CPU
  per PutItem (emulator-notes.md) and would hide the processors' cost.
- **Python**: the real handler in a fresh process (bench/pyrun.py loads it as the local
  PythonInvoker does): boto3, 16 writer threads, 1,000-row batches.
- **Rust**: the host (x86_64) release build of crates/processor run by
  pipeline_local/rust_runtime.py's RustInvoker behind a local Lambda Runtime API; 64 PutItem in
  flight on a current-thread Tokio runtime, the CSV parser on one blocking thread.
- **Machine load**: the 1-minute load average before and after each measurement is kept in
  results.json (`load_avg`); other work on the machine inflates CPU time somewhat (shared
  caches and hyper-threads) and wall time a lot.
- **CPU s**: user + system time of the function's process during the measured invocation (all
  threads). **Peak RSS**: the process's high-water mark (VmHWM / ru_maxrss), interpreter and
  SDK included. **records/s**: rows / wall time; on this 2-core machine the sink, the processor
  and anything else running share the cores, so wall time is the noisier number.

## The 300 s estimate at 0.29 vCPU

Lambda allocates CPU in proportion to memory; a function gets one full vCPU at 1,769 MB, so a
512 MB function gets about 512 / 1,769 = **0.29 vCPU**. The processors are CPU-bound (the
SDK's request signing and serialisation, parsing, validation; Rust keeps 64 writes in flight
and Python 16, so DynamoDB latency overlaps with work), so the time on such a Lambda is
estimated as CPU seconds measured here / 0.29, and the largest file one invocation can finish
as 300 s x 0.29 / (CPU s per record). This is an estimate: on AWS, requests use TLS (more CPU
per request than the plain HTTP of the local sink), DynamoDB answers in milliseconds instead of
microseconds (covered by the requests in flight as long as the write capacity is there), the
Graviton2 core is slower per cycle than this machine's core, and the processor stops
`TIME_SAFETY_MARGIN_MS` (30 s) before its deadline and continues the file in another
invocation (resume_file), so a larger file is still finished, in several invocations.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--doc", type=Path, required=True)
    parser.add_argument("--chart", type=Path, required=True)
    parser.add_argument("--note", default="", help="a sentence about this run, shown as is")
    args = parser.parse_args()
    doc = json.loads(args.results.read_text())
    rows = [derive(r) for r in doc["results"]]
    chart(rows, args.chart)
    rel = os.path.relpath(args.chart, args.doc.parent)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    note = f"\n{args.note}\n" if args.note else ""
    args.doc.write_text(document(doc, rows, rel, note))
    print(f"wrote {args.doc} and {args.chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
