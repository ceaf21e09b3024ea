"""Turn one `make bench` run (bench/results/) into docs/benchmarks.md and its PNG charts.

    .venv-bench/bin/python bench/report.py bench/results --doc docs/benchmarks.md

Reads pipeline.json (bench/pipeline.py: upload -> last record stored), results.json
(bench/run.py: CPU per record), load-start.txt/load-end.txt and bench-seconds.txt (bench/run.sh);
writes pipeline.png and benchmarks.png (CPU per record) next to them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from costs import PRICES, cost_per_million
from report_charts import chart, pipeline_chart
from report_model import (
    LAMBDA_TIMEOUT_S,
    PARTITION_WCU_S,
    ceiling_explained,
    derive,
    fmt_int,
    git,
    index_spread,
    modelled_ceiling,
)
from report_ranges import ranges_section

# index_spread and modelled_ceiling are the page's model, tested through this module
# (tests/unit/test_bench_ceiling.py).
__all__ = ["index_spread", "main", "modelled_ceiling", "page"]


def cpu_section(
    doc: dict[str, Any], rows: list[dict[str, Any]], chart_rel: str, note: str = ""
) -> str:
    by = {(r["impl"], r["rows"]): r for r in rows}
    sizes = sorted({r["rows"] for r in rows})
    # The ratio at the largest size both ran (Python may stop short of the largest file).
    both = [n for n in sizes if ("python", n) in by and ("rust", n) in by]
    largest = both[-1] if both else sizes[-1]
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
        own = [n for (i, n) in by if i == impl]
        if not own:
            continue
        r = by[(impl, max(own))]
        verdict = "within" if r["lambda_s"] <= LAMBDA_TIMEOUT_S else "over"
        lines.append(
            f"- {impl}: a {r['rows']:,}-row file needs about {r['lambda_s']:.0f} s of a 512 MB"
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
    return f"""## CPU per record: Python and Rust side by side, no limits

Both implementations of the processor (lib/processor_function.py and crates/processor) process
the same generated CSV files, one S3 event each, warm (after one warm-up invocation), against
bench/sink.py, an endpoint that answers at once with unlimited capacity, on the unlimited
machine: what each costs in CPU per record, whatever the table allows
({machine.get("platform")}, Python {machine.get("python")}, at {doc.get("generated_at", "")}).

![CPU per 100k records, throughput and peak memory]({chart_rel})

{chr(10).join(table)}

{chr(10).join(lines)}
{note}
### What is measured here

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

### The 300 s estimate at 0.29 vCPU

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


def pipeline_section(pipe: dict[str, Any], chart_rel: str) -> tuple[str, list[str]]:
    runs = pipe["results"]
    head = [
        "| implementation | rows | stored | upload -> last stored s | records/s | of ceiling"
        " | throttled requests | retry_record records | resume_file | invocations | CPU quota"
        " throttled s | peak MB | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        ceiling = modelled_ceiling(r)
        head.append(
            f"| {r['impl']} | {r['rows']:,} | {r['stored']:,} | {r['wall_s']:,.1f} |"
            f" {r['records_per_s']:,.0f} | {100 * r['records_per_s'] / ceiling:.0f} % |"
            f" {r['throttled_total']:,} | {r['retry_record_messages']:,} |"
            f" {r['resume_file_messages']} | {r['invocations']} |"
            f" {r['cpu_throttled_s'] if r['cpu_throttled_s'] is not None else '-'} |"
            f" {r['peak_memory_mb'] if r['peak_memory_mb'] is not None else '-'} |"
            f" {r['load_avg'][0]:.1f} -> {r['load_avg'][1]:.1f} |"
        )
    reasons: dict[str, int] = {}
    for r in runs:
        for reason, n in r.get("throttled", {}).items():
            reasons[reason] = reasons.get(reason, 0) + n
    cost = [
        "| implementation | rows | Lambda GB-s | Lambda requests | DynamoDB WRU | SQS requests"
        " | KMS requests | **total USD per 1M records** |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        c = cost_per_million(r)
        cost.append(
            f"| {r['impl']} | {r['rows']:,} | ${c['lambda_gb_s']:.4f} |"
            f" ${c['lambda_request']:.4f} | ${c['ddb_wru']:.4f} | ${c['sqs_request']:.4f} |"
            f" ${c['kms_request']:.4f} | **${sum(c.values()):.3f}** |"
        )
    prices = [
        f"- {k}: ${p.usd:g} per {p.per:,.0f} {p.unit}, <{p.url}>: {p.checked}."
        for k, p in PRICES.items()
    ]
    ceiling = modelled_ceiling(runs[0]) if runs else PARTITION_WCU_S
    ceiling_text = ceiling_explained(runs[0] if runs else {}, ceiling)
    incomplete = [r for r in runs if not r["complete"]]
    skipped = (
        f"Python runs files up to {pipe['python_max']:,} rows: at its 512 MB CPU share it stores"
        " a few hundred records per second, so 1,000,000 rows would take about an hour of"
        " the run (`BENCH_PYTHON_MAX=1000000 make bench` runs it)."
    )
    headline: list[str] = []
    for r in runs:
        headline.append(
            f"- {r['impl']}, {r['rows']:,} rows: **{r['wall_s']:,.0f} s** from upload to the"
            f" last record stored, {r['records_per_s']:,.0f} records/s"
            f" ({100 * r['records_per_s'] / modelled_ceiling(r):.0f} % of the modelled"
            f" ceiling), {r['throttled_total']:,} throttled requests,"
            f" {r['retry_record_messages']:,} records through retry_record,"
            f" ${sum(cost_per_million(r).values()):.3f} per 1M records."
        )
    completeness = (
        "- INCOMPLETE runs (stored fewer than the valid rows): "
        + ", ".join(f"{r['impl']} {r['rows']:,}" for r in incomplete)
        if incomplete
        else "- Every run stored every valid row (the table's item count, queue empty)."
    )
    by_reason = ", ".join(f"`{k}` {v:,}" for k, v in sorted(reasons.items())) or "none"
    text = f"""## What a user waits for and pays: the pipeline at Lambda size

![wall time, records/s against the modelled ceiling, throttled requests]({chart_rel})

{chr(10).join(head)}

{chr(10).join(headline)}
- {skipped}
{completeness}
- Throttled requests by reason, all runs: {by_reason}.

### The ceiling as it is today

{ceiling_text}

### Cost per 1M records (eu-central-1, on-demand, no free tier)

From the counts each run measured, scaled to 1,000,000 stored records:

{chr(10).join(cost)}

Prices used (bench/costs.py cites each page):

{chr(10).join(prices)}

What the counts are: Lambda: every invocation of the processor (the S3 event, then every
batch from the main queue), its duration rounded up to 1 ms, at 512 MB; DynamoDB: the write
units the faithful endpoint charged to the table and to status-index (throttled requests are not
billed); SQS: the processor's sends (one request per retry_record or resume_file message, an
upper bound; invalid rows to the DLQ in batches of 10), the event source mapping's receives,
deletes and visibility changes, and the DLQ processor's receive and delete per batch of 10
(it does not run here; its errors-table writes are not counted); the idle long polls of an event
source mapping cost per hour, not per record, and are left out; KMS: one Decrypt per file
invocation (S3 object; the Bucket Key makes this an upper bound), per started 300 s a
GenerateDataKey and a Decrypt per queue sent to and a Decrypt per queue polled, and a table-key
Decrypt. Prices not checked against the AWS page are marked so above.

### How it is driven

- **Stack**: S3 and SQS on the real emulator (moto server); DynamoDB on the DynamoDB-faithful
  endpoint (crates/ddb-faithful `--memory`, default latency {pipe.get("latency")}: about 4 ms
  median, 15 ms p99; 1,000 WCU/s and 3,000 RCU/s per partition, a new on-demand table at
  4,000 WCU/s, GSI back-pressure, AWS's throttle answers). The tables are created as
  lib/main.tf declares them (status-index included) and the endpoint is reset before every run,
  so each table starts as a new on-demand table.
- **Invocations**: one 512 MB execution environment (pipeline_local/sandbox.py: a cgroup v1
  CPU quota of 512/1769 of one core, a 512 MiB memory limit; OOM is Lambda's
  Runtime.OutOfMemory): Python under awslambdaric (PythonProcessInvoker), Rust the host
  (x86_64) release build behind RustInvoker. Timeout 300 s, `TIME_SAFETY_MARGIN_MS` 30 s.
- **Flow**: the timer starts before the upload (PutObject of the whole file) and stops when
  the main queue is empty: the S3 notification is invoked asynchronously (2 retries), then the
  main queue's event source mapping (pipeline_local.delivery.QueuePoller, batches of 10,
  ReportBatchItemFailures) delivers the processor's resume_file messages (a file it could not
  finish within one invocation) and retry_record messages (records DynamoDB still throttled
  after the SDK's retries) until none is left. One execution environment at a time: on AWS the
  mapping would start up to five at once; with the hot key the table sets the pace either way.
- **Not modelled**: TLS, the network between Lambda and DynamoDB beyond the endpoint's latency,
  Graviton2's speed per cycle (the Rust build here is x86_64), cold starts in other execution
  environments, and the DLQ processor.
"""
    return text, [f"{r['impl']} {r['rows']}" for r in runs]


def page(results_dir: Path, doc_path: Path) -> str:
    import platform

    pipe = json.loads((results_dir / "pipeline.json").read_text())
    cpu_doc = json.loads((results_dir / "results.json").read_text())
    runs = pipe["results"]
    ceiling = modelled_ceiling(runs[0]) if runs else PARTITION_WCU_S
    pipeline_png = results_dir / "pipeline.png"
    cpu_png = results_dir / "benchmarks.png"
    pipeline_chart(runs, ceiling, pipeline_png)
    rows = [derive(r) for r in cpu_doc["results"]]
    chart(rows, cpu_png)
    rel = lambda p: os.path.relpath(p, doc_path.parent)  # noqa: E731
    pipeline_text, _ = pipeline_section(pipe, rel(pipeline_png))
    cpu_text = cpu_section(cpu_doc, rows, rel(cpu_png))
    ranges_text = ranges_section(results_dir, runs)

    def read(name: str) -> str:
        path = results_dir / name
        return path.read_text().strip() if path.exists() else "not recorded"

    seconds = read("bench-seconds.txt")
    minutes = f"{int(seconds) / 60:.0f} minutes" if seconds.isdigit() else seconds
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu_model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    # A hand-written remark about this run (bench/results/note.md), shown as is.
    note_path = results_dir / "note.md"
    note = note_path.read_text().strip() + "\n\n" if note_path.exists() else ""
    # When and on what the measurements ran (bench/run.sh records the commit before it starts;
    # the page may be rendered again later from the same results).
    measured_at = str(cpu_doc.get("generated_at", "")).replace("T", " ").replace("Z", " UTC")
    commit_path = results_dir / "commit.txt"
    commit, branch = (
        commit_path.read_text().split()[:2]
        if commit_path.exists()
        else (git("rev-parse", "--short", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD"))
    )
    loads = [float(x) for r in [*runs, *cpu_doc["results"]] for x in r.get("load_avg", [])]
    peak_load = max(loads, default=0.0)
    contended = (
        f"this run was **contended** (1-minute load average up to {peak_load:.1f} on"
        f" {os.cpu_count()} cores, more than the benchmark's own processes)"
        if peak_load > 2 * (os.cpu_count() or 1)
        else f"the 1-minute load average stayed at or under {peak_load:.1f}"
    )
    return f"""# Benchmarks: what a user waits for and pays, and CPU per record

Generated by one `make bench` run (bench/run.sh), measurements ended
{measured_at}, commit `{commit}` (branch `{branch}`), in {minutes} end to end.

- **Machine**: {os.cpu_count()} cores ({cpu_model}), {mem_gib:.0f} GiB,
  {platform.platform()}.
- **Load**: {contended}. `uptime` when the run started: `{read("load-start.txt")}`;
  when the measurements ended: `{read("load-end.txt")}`; each run's 1-minute load average
  before and after is in the tables. On a busy machine wall times are upper bounds: the CPU
  quota (0.29 of a core) is a ceiling, not a guarantee, when the cores are busy. Re-run `make
  bench` on a quiet machine for clean figures: the structure is the same.

```sh
make bench                                   # everything on this page, one run
BENCH_SIZES=10000,100000 make bench          # quicker
BENCH_PYTHON_MAX=1000000 make bench          # Python on 1M rows too (about an hour more)
```

{note}{pipeline_text}
{ranges_text}
{cpu_text}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("results", type=Path, help="bench/results")
    parser.add_argument("--doc", type=Path, required=True)
    args = parser.parse_args()
    text = page(args.results, args.doc)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(text)
    print(f"wrote {args.doc}, {args.results / 'pipeline.png'}, {args.results / 'benchmarks.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
