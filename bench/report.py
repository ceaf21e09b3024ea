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
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from costs import PRICES, cost_per_million

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


IMPL_COLORS = {"python": "#3572A5", "rust": "#dea584"}
BAR_WIDTH = 0.38


def bar_panels(
    rows: list[dict[str, Any]],
    panels: list[tuple[str, str, bool]],
    *,
    figsize: tuple[float, float],
    label: Callable[[float], str],
    missing: float | None,
) -> tuple[Any, list[tuple[Any, str, str, bool]], list[int]]:
    """One panel per (key, title, log scale): a bar per implementation and row count, each
    labelled with `label(value)`; a run not measured is drawn as `missing`, or left out when
    that is None. Returns the figure, (axes, key, title, log) per panel and the row counts, for
    the caller to finish with `finish_panel` and `save_figure`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["rows"] for r in rows})
    impls = [i for i in IMPL_COLORS if any(r["impl"] == i for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=figsize)
    for ax, (key, _title, _log) in zip(axes, panels, strict=True):
        for k, impl in enumerate(impls):
            xs, values = [], []
            for i, n in enumerate(sizes):
                r = next((r for r in rows if r["impl"] == impl and r["rows"] == n), None)
                value = missing if r is None else r[key]
                if value is None:
                    continue
                xs.append(i + (k - (len(impls) - 1) / 2) * BAR_WIDTH)
                values.append(value)
            bars = ax.bar(xs, values, BAR_WIDTH, label=impl, color=IMPL_COLORS[impl])
            for bar, v in zip(bars, values, strict=True):
                ax.annotate(
                    label(v),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    drawn = [(ax, key, title, log) for ax, (key, title, log) in zip(axes, panels, strict=True)]
    return fig, drawn, sizes


def finish_panel(ax: Any, sizes: list[int], title: str, log: bool, legend_loc: str) -> None:
    ax.set_xticks(range(len(sizes)), [f"{n:,} rows" for n in sizes])
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend(loc=legend_loc, framealpha=0.9)


def save_figure(fig: Any, title: str, path: Path) -> None:
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    panels = [
        ("cpu_per_100k", "CPU seconds per 100k records", True),
        ("records_per_s", "records per second (wall)", True),
        ("peak_rss_mb", "peak RSS (MB)", False),
    ]
    fig, drawn, sizes = bar_panels(
        rows,
        panels,
        figsize=(15, 4.6),
        label=lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.2f}",
        missing=0,
    )
    for ax, _key, title, log in drawn:
        finish_panel(ax, sizes, title, log, "lower right" if not log else "best")
    save_figure(
        fig, "Transaction processor: Python 3.11 (boto3) vs Rust (aws-sdk-rust), same files", path
    )


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"


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


def pipeline_chart(runs: list[dict[str, Any]], ceiling: float, path: Path) -> None:
    panels = [
        ("wall_s", "upload -> last record stored (s)", True),
        ("records_per_s", "records stored per second", False),
        ("throttled_total", "throttled DynamoDB requests", False),
    ]
    fig, drawn, sizes = bar_panels(
        runs,
        panels,
        figsize=(16, 4.8),
        label=lambda v: f"{v:,.0f}" if v >= 10 else f"{v:.1f}",
        missing=None,
    )
    for ax, key, title, log in drawn:
        if key == "records_per_s":
            ax.set_ylim(0, ceiling * 1.25)
            ax.axhline(ceiling, color="#c00", linestyle="--", linewidth=1)
            ax.annotate(
                f"modelled ceiling {ceiling:,.0f}/s",
                (0, ceiling),
                xytext=(0, 14),
                textcoords="offset points",
                color="#c00",
                fontsize=8,
            )
        finish_panel(ax, sizes, title, log, "upper left")
    save_figure(
        fig,
        "Pipeline, 512 MB execution environment (0.29 vCPU), DynamoDB-faithful endpoint"
        " (AWS capacities)",
        path,
    )


def index_spread(r: dict[str, Any]) -> tuple[list[float], float]:
    """The index partitions that took writes (their write units) and the hottest one's share
    of them (1.0 when the run did not record the spread: one status value, one partition)."""
    spread = [u for u in r.get("index_partition_write_units") or [] if u > 0]
    return spread, (max(spread) / sum(spread) if spread else 1.0)


def modelled_ceiling(r: dict[str, Any]) -> float:
    """Records/s the modelled table allows, the smaller of two: the table's on-demand ceiling
    over its write units per record, and the index's: its hottest partition (1,000 WCU/s) over
    that partition's share of the index's write units (runs before P40's write sharding, which
    did not record the spread, had one status value: one partition took every write)."""
    stored = max(1, r["stored"])
    table_per = max(1.0, r["table_write_units"] / stored)
    index_per = max(1.0, r["index_write_units"] / stored)
    # A run on a scaled-down table (bench/pipeline.py --partition-wcu) recorded its rates.
    partition = r.get("partition_wcu_s") or PARTITION_WCU_S
    new_table = r.get("table_ceiling_wcu_s") or r.get("table_initial_wcu_s") or 4000.0
    table_ceiling = new_table / table_per
    _, hottest_share = index_spread(r)
    index_ceiling = min(partition / hottest_share, new_table)
    return min(table_ceiling, index_ceiling / index_per)


PARTITION_WCU_S = 1000.0


def git(*args: str) -> str:
    import subprocess

    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def ceiling_explained(r: dict[str, Any], ceiling: float) -> str:
    """What bounds the pipeline on the modelled table, for the page: the hot key before write
    sharding (P40), the hottest index partition or the table's ceiling after it."""
    shards = r.get("status_index_shards")
    cpu_note = (
        "A run well below the ceiling was bound by the processor's CPU instead: its CPU quota"
        " throttled time and the load average in the table show how much the 0.29-core share"
        " (and, on a busy machine, less) held it back."
    )
    if not shards:
        return (
            "Every stored item had `status = PROCESSED`, and the table's only GSI,"
            " `status-index`, was keyed on `status`: every write landed on one index partition,"
            " which serves 1,000 write units per second, and a throttled GSI throttles the base"
            " table's writes. Whatever the processor's speed, the pipeline stored at most about"
            f" **{ceiling:,.0f} records/s** (each item is under 1 KB: one write unit on the"
            " table, one on the index). The table itself would allow 4,000 write units/s when"
            ' new, and twice its previous peak later. The "of ceiling" column is records/s'
            " over that figure. These runs predate the write-sharded index (contract P40). "
            + cpu_note
        )
    spread, share = index_spread(r)
    return (
        f"Stored items carry `status_shard` = `PROCESSED#<n>`, n < {shards} (contract P40), and"
        f" `status_shard-index` is keyed on it: the writes spread over {len(spread)} of the"
        f" index's {r.get('index_partitions')} partitions, the hottest taking {share:.0%} of"
        " them. A partition serves 1,000 write units per second, a new on-demand table 4,000"
        " (twice its previous peak later), and a throttled GSI throttles the base table's"
        f" writes: the pipeline stores at most about **{ceiling:,.0f} records/s** on a new"
        " table (each item is under 1 KB: one write unit on the table, one on the index)."
        ' The "of ceiling" column is records/s over that figure. ' + cpu_note
    )


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


GOAL_SECONDS_1M = 300  # issue 12: a 1M-row file stored in under 5 minutes from upload
CONFIGURED_CONCURRENCY = 50  # lib/provider.tf range_max_concurrency's default (P36)


def _range_rate(r: dict[str, Any]) -> float:
    """Records per second one environment stored while it processed ranges: the stored count
    over the billed seconds of every invocation but the S3 event's (which only split)."""
    range_s = r["billed_ms"] / 1000 - r["s3_invocation_s"]
    return r["stored"] / range_s if range_s > 0 else 0.0


def _range_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| impl | rows | file MB, split at | ranges | environments | batch"
        " | upload -> last stored s | split s"
        " | records/s | of ceiling | throttled | retry_record | peak MB per environment"
        " | endpoint CPU s | load avg | every row accounted |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in runs:
        ceiling = modelled_ceiling(r)
        peaks = "/".join(str(p) for p in r.get("peak_memory_mb_per_environment") or [])
        lines.append(
            f"| {r['impl']} | {r['rows']:,} |"
            f" {r['file_bytes'] / 1e6:,.1f}, {r['range_split_bytes']:,} |"
            f" {r['ranges']} | {r['concurrency']} |"
            f" {r['batch_size']} | {r['wall_s']:,.1f} | {r['s3_invocation_s']:,.1f} |"
            f" {r['records_per_s']:,.0f} | {100 * r['records_per_s'] / ceiling:.0f} % of"
            f" {ceiling:,.0f} | {r['throttled_total']:,} | {r['retry_record_messages']:,} |"
            f" {peaks} | {r.get('endpoint_cpu_s', '-')} |"
            f" {r['load_avg'][0]:.1f} -> {r['load_avg'][1]:.1f} |"
            f" {'yes' if r.get('accounted') else '**no**'} |"
        )
    return lines


def scaled_table_lines(results_dir: Path) -> list[str]:
    """The Rust runs on a table scaled down (ranges-rust-scaled.json): the share of the ceiling
    the writes reach when the table, not this machine, is the bottleneck (issue 12's 90 %)."""
    path = results_dir / "ranges-rust-scaled.json"
    if not path.exists():
        return []
    doc = json.loads(path.read_text())
    out = ["### Rust when the table is the bottleneck: a table scaled to a quarter", ""]
    for r in doc["results"]:
        ceiling = modelled_ceiling(r)
        spread, share = index_spread(r)
        hottest_rate = max(spread, default=0.0) / r["wall_s"]
        out.append(
            f"- The endpoint modelled partitions of {r['partition_wcu_s']:,.0f} write units/s"
            f" and a new table of {r['table_initial_wcu_s']:,.0f} (AWS: 1,000 and 4,000): the"
            f" same {r.get('index_partitions')} index partitions and the same key spread, the"
            f" hottest taking {share:.1%} of the writes, so the ceiling is {ceiling:,.0f}"
            f" records/s with {r['status_index_shards']} status-index shards, which this"
            f" machine exceeds. {r['rows']:,} rows in {r['ranges']}"
            f" ranges on {r['concurrency']} environments: {r['wall_s']:,.1f} s,"
            f" {r['records_per_s']:,.0f} records/s = **{100 * r['records_per_s'] / ceiling:.1f} %"
            f" of the ceiling**; the hottest partition took {hottest_rate:,.0f} of its"
            f" {r['partition_wcu_s']:,.0f} units/s over the whole run, split and last range"
            f" included; {r['throttled_total']:,} throttled requests, {r['retry_record_messages']}"
            f" retry_record, every row accounted for:"
            f" {'yes' if r.get('accounted') else '**no**'}; peak"
            f" {r['peak_memory_mb']} MB; commit `{doc.get('commit', '?')}`.",
        )
    widest = max(doc["results"], key=lambda r: r["status_index_shards"])
    full_scale = modelled_ceiling(widest) * PARTITION_WCU_S / widest["partition_wcu_s"]
    out.append(
        f"- At AWS's rates the {widest['status_index_shards']}-shard spread allows about"
        f" {full_scale:,.0f} records/s on a new table: a 1M-row file would need at least"
        f" {995_000 / full_scale:,.0f} s of writes, still not under {GOAL_SECONDS_1M} s from"
        " upload once the split and the last range are added. lib/ keeps 16 shards (a"
        " by-status read costs one Query per shard). A table whose earlier peaks raised its"
        " ceiling (on-demand doubling) or a pre-warmed one has more partitions and a higher"
        " ceiling; this page measures new tables only."
    )
    out += [
        "- Why a scaled table: on AWS's own figures the ceiling (about 2,670 records/s) is more"
        " than this machine serves next to the endpoint and the emulator (the runs above), so"
        " those runs cannot show how close the writes come to it. A quarter of the rates keeps"
        " the partitions and the spread, and leaves the processors' CPU idle part of the time.",
        "",
    ]
    return out


def ranges_section(results_dir: Path, before: list[dict[str, Any]]) -> str:
    """Issue 12's goals from bench/pipeline.py's range runs (ranges-rust.json,
    ranges-python.json), against the one-environment runs of pipeline.json ("before")."""
    docs = {
        impl: json.loads(path.read_text())
        for impl in ("rust", "python")
        if (path := results_dir / f"ranges-{impl}.json").exists()
    }
    if not docs:
        return ""
    runs = [r for doc in docs.values() for r in doc["results"]]
    out: list[str] = [
        "## Large files in ranges, side by side (issue 12)",
        "",
        "The S3 event's invocation splits a file larger than `RANGE_SPLIT_BYTES` into at most"
        " 100 ranges (P33) and sends one message per range to the main queue; N 512 MB"
        " execution environments take them one per invocation (`processor_queue_batch_size` 1,"
        " the mapping's `maximum_concurrency`, P36), side by side"
        " (`pipeline_local.delivery.drain_concurrently`). Same endpoint, emulator and sandbox as"
        " above, the endpoint with"
        f" {', '.join(sorted({str(d.get('faithful_threads', 1)) for d in docs.values()}))}"
        " worker threads; every process shares this machine's two cores, the DynamoDB"
        " endpoint's own CPU included (its column: CPU seconds it spent serving the run, which"
        " on AWS is not ours). Python's scaling file is split below lib/'s 1 MiB minimum so"
        " that one file gives enough ranges for every environment count.",
        "",
        *_range_table(runs),
        "",
    ]
    commits = sorted({str(doc.get("commit", "?")) for doc in docs.values()})
    out.append(
        f"Measured at commit {', '.join(f'`{c}`' for c in commits)}, separately from the"
        " one-environment runs above (bench/run.sh runs both)."
    )
    out.append("")
    rust = docs.get("rust", {}).get("results", [])
    if rust:
        out += ["### Rust: the table's ceiling, and a 1M-row file", ""]
        cores = os.cpu_count() or 1
        for r in rust:
            ceiling = modelled_ceiling(r)
            # Throttles alone do not make the table the bound: bursts throttle well below it.
            table_bound = r["throttled_total"] and r["records_per_s"] >= 0.8 * ceiling
            bound = (
                f"the modelled table was the bottleneck ({r['throttled_total']:,} throttled"
                " requests, none lost)"
                if table_bound
                else f"this machine was the bottleneck, not the table: the endpoint used"
                f" {r.get('endpoint_cpu_s', 0):,.0f} and the emulator"
                f" {r.get('emulator_cpu_s', 0):,.0f} of the run's {r['wall_s'] * cores:,.0f}"
                f" CPU seconds ({cores} cores), the environments the rest"
                f" ({r['throttled_total']:,} throttled requests, none lost)"
            )
            share = 100 * r["records_per_s"] / ceiling
            out.append(
                f"- {r['rows']:,} rows in {r['ranges']} ranges on {r['concurrency']}"
                f" environments: **{r['wall_s']:,.0f} s** from upload to the last record"
                f" stored, {r['records_per_s']:,.0f} records/s = **{share:.0f} % of the"
                f" modelled ceiling** of {ceiling:,.0f} records/s; {bound}."
            )
        ref = rust[0]
        ceiling = modelled_ceiling(ref)
        out += [
            "- " + ceiling_explained(ref, ceiling),
            f"- At that ceiling a 1M-row file needs at least {995_000 / ceiling:,.0f} s of"
            f" writes on a new table: the 5-minute goal needs {995_000 / GOAL_SECONDS_1M:,.0f}"
            " records/s, more than a new on-demand table's status index serves with the"
            " default 16 shards. What would lift it: more `status_index_shards` (100 spread"
            " the index's writes closer to even over its four partitions, measured in the next"
            " section; lib/ keeps 16), or a pre-warmed table (DynamoDB's warm throughput;"
            " hashicorp/aws 5.100.0 has no `warm_throughput` argument, so lib/ cannot set it yet).",
            "",
        ]
    out += scaled_table_lines(results_dir)
    py = sorted(docs.get("python", {}).get("results", []), key=lambda x: x["concurrency"])
    if py:
        base = py[0]
        out += [
            "### Python: how ranges scale with environments",
            "",
            "| environments | upload -> last stored s | after the split s | speedup | of linear |",
            "|---:|---:|---:|---:|---:|",
        ]
        base_after = base["wall_s"] - base["s3_invocation_s"]
        efficiency = 1.0
        for r in py:
            after = r["wall_s"] - r["s3_invocation_s"]
            speedup = base_after / after * base["concurrency"] if after > 0 else 0.0
            efficiency = speedup / r["concurrency"]
            out.append(
                f"| {r['concurrency']} | {r['wall_s']:,.1f} | {after:,.1f} | {speedup:.2f}x |"
                f" {100 * efficiency:.0f} % |"
            )
        rate = _range_rate(base)
        ceiling = modelled_ceiling(rust[0]) if rust else modelled_ceiling(base)
        split_per_row = base["s3_invocation_s"] / base["rows"]
        split_1m = split_per_row * 1_000_000
        demand = CONFIGURED_CONCURRENCY * rate * efficiency
        writes_s = 995_000 / min(demand, ceiling)
        range_tail = 1_000_000 / 100 / rate  # the last range, started last
        projected = split_1m + writes_s + range_tail
        out += [
            "",
            f"- Scaling: {py[-1]['concurrency']} environments ran"
            f" {100 * efficiency:.0f} % of linear after the split (goal: within 20 %, so at"
            " least 80 %), measured up to the concurrency this machine hosts next to the"
            " endpoint and the emulator.",
            f"- **Projected 1M-row file at the configured concurrency"
            f" ({CONFIGURED_CONCURRENCY}): about {projected:,.0f} s** (goal: under"
            f" {GOAL_SECONDS_1M} s). Assumptions: one environment stores {rate:,.0f}"
            f" records/s in its ranges (measured, {base['rows']:,} rows, one environment);"
            f" {CONFIGURED_CONCURRENCY} environments at the efficiency measured above would"
            f" ask for {demand:,.0f} records/s, so the table's ceiling of {ceiling:,.0f}"
            f" records/s (the Rust run's key spread) sets the pace: {writes_s:,.0f} s of"
            f" writes; the split reads the whole file in one environment, {split_1m:,.0f} s"
            f" scaled by rows from {base['s3_invocation_s']:.1f} s for {base['rows']:,};"
            f" the last range adds about {range_tail:,.0f} s (10,000 rows at one"
            " environment's rate). AWS starts an SQS mapping's concurrency at 5 and adds up"
            " to 300 per minute (services-sqs-scaling), which this projection ignores.",
            "",
        ]
    out += ["### Cost per 1M records, before and after", ""]
    out += [
        "| impl | run | environments | Lambda | DynamoDB | SQS | KMS | total USD per 1M |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, group in (("before: one environment", before), ("after: ranges", runs)):
        for r in group:
            c = cost_per_million(r)
            out.append(
                f"| {r['impl']} | {label}, {r['rows']:,} rows | {r.get('concurrency', 1)} |"
                f" ${c['lambda_gb_s'] + c['lambda_request']:.3f} | ${c['ddb_wru']:.3f} |"
                f" ${c['sqs_request']:.4f} | ${c['kms_request']:.4f} |"
                f" **${sum(c.values()):.3f}** |"
            )
    peak = max((r["peak_memory_mb"] or 0) for r in runs)
    lost = sum(max(0, r["valid_rows"] - r["stored"]) for r in runs)
    out += [
        "",
        f"- Peak memory of any environment in these runs: **{peak} MB** (goal: under 256 MB;"
        " a range holds one batch, whatever the file's size).",
        f"- Records lost: **{lost}**; stored twice: **0** (an item's key is its"
        " transaction id, so the table's item count equal to the valid rows means each once);"
        " every invalid row on the DLQ: "
        + ("yes" if all(r.get("accounted") for r in runs) else "**no**")
        + ".",
        "",
    ]
    return "\n".join(out) + "\n"


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
