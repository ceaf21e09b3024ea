"""The benchmark page's section on issue 12's goals: a file's ranges on several environments
side by side (ranges-*.json), the scaled-table runs and the projections for a 1M-row file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from costs import cost_per_million
from report_model import PARTITION_WCU_S, ceiling_explained, index_spread, modelled_ceiling

GOAL_SECONDS_1M = 300  # issue 12: a 1M-row file stored in under 5 minutes from upload
CONFIGURED_CONCURRENCY = 50  # lib/provider.tf range_max_concurrency's default (P36)


def _range_rate(r: dict[str, Any]) -> float:
    """Records per second one environment stored while it processed ranges: the stored count
    over the billed seconds of every invocation but the S3 event's (which only split)."""
    range_s = r["billed_ms"] / 1000 - r["s3_invocation_s"]
    return r["stored"] / range_s if range_s > 0 else 0.0


def _results(results_dir: Path, name: str) -> dict[str, Any] | None:
    """One of bench/pipeline.py's result files, or None when this run did not make it."""
    path = results_dir / name
    return json.loads(path.read_text()) if path.exists() else None


def _split_seconds(results_dir: Path, impl: str) -> float | None:
    """The S3 event's invocation on a 1M-row file, alone (split-1m.json, --split-only)."""
    doc = _results(results_dir, "split-1m.json") or {"results": []}
    runs = [r for r in doc["results"] if r["impl"] == impl]
    return float(runs[0]["s3_invocation_s"]) if runs else None


def _split_ranges(results_dir: Path) -> int | None:
    """How many ranges the 1M-row file's split queued (split-1m.json)."""
    runs = (_results(results_dir, "split-1m.json") or {"results": []})["results"]
    return int(runs[0]["range_messages"]) if runs else None


def _full_scale_ceilings(
    results_dir: Path, rust: list[dict[str, Any]], base: dict[str, Any]
) -> list[tuple[int, float, float]]:
    """(shards, records/s a new table allows at AWS's rates, share of it the writes reached)
    for each shard count of the scaled-table runs; without them, the full-rate Rust run's."""
    scaled = _results(results_dir, "ranges-rust-scaled.json")
    if scaled:
        out = []
        for r in sorted(scaled["results"], key=_shards):
            ceiling = modelled_ceiling(r)
            full = ceiling * PARTITION_WCU_S / r["partition_wcu_s"]
            out.append((_shards(r), full, min(1.0, r["records_per_s"] / ceiling)))
        return out
    ref = rust[0] if rust else base
    return [(_shards(ref), modelled_ceiling(ref), 1.0)]


def _shards(r: dict[str, Any]) -> int:
    return int(r.get("status_index_shards") or 16)


def project_writes(rows: int, ranges: int, environments: int, rate: float, ceiling: float) -> float:
    """Seconds to store `rows` in `ranges` equal ranges taken one per environment by up to
    `environments` at once, each storing at most `rate` records/s, all together at most
    `ceiling` (shared evenly). The mapping's concurrency starts at 5 and grows by 300 a minute
    (services-sqs-scaling). Steps of 0.1 s."""
    left = [rows / ranges] * ranges  # rows left in each range, in the order they are queued
    t, dt = 0.0, 0.1
    while left and t < 24 * 3600:
        # The first `active` ranges are in progress: one finished frees its environment for
        # the next range in the queue at once.
        active = min(environments, 5 + int(300 * t / 60), len(left))
        each = min(rate, ceiling / active) * dt
        for i in range(active):
            left[i] -= each
        left = [rest for rest in left[:active] if rest > 0] + left[active:]
        t += dt
    return t


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
    doc = _results(results_dir, "ranges-rust-scaled.json")
    if doc is None:
        return []
    out = [
        "### Rust when the table is the bottleneck, and a 1M-row file: a table scaled to a quarter",
        "",
    ]
    for r in doc["results"]:
        ceiling = modelled_ceiling(r)
        spread, share = index_spread(r)
        hottest_rate = max(spread, default=0.0) / r["wall_s"]
        out.append(
            f"- The endpoint modelled partitions of {r['partition_wcu_s']:,.0f} write units/s"
            f" and a new table of {r['table_initial_wcu_s']:,.0f} (AWS: 1,000 and 4,000): the"
            f" same {r.get('index_partitions')} index partitions and the same key spread, the"
            f" hottest taking {share:.1%} of the writes, so the ceiling is {ceiling:,.0f}"
            f" records/s with {r['status_index_shards']:,} status-index shards, which this"
            f" machine exceeds. {r['rows']:,} rows"
            f" ({r['file_bytes'] / 1e6:,.1f} MB, split at {r['range_split_bytes']:,} bytes)"
            f" in {r['ranges']}"
            f" ranges on {r['concurrency']} environments: {r['wall_s']:,.1f} s,"
            f" {r['records_per_s']:,.0f} records/s = **{100 * r['records_per_s'] / ceiling:.1f} %"
            f" of the ceiling**; the hottest partition took {hottest_rate:,.0f} of its"
            f" {r['partition_wcu_s']:,.0f} units/s over the whole run, split and last range"
            f" included; {r['throttled_total']:,} throttled requests, {r['retry_record_messages']}"
            f" retry_record, every row accounted for:"
            f" {'yes' if r.get('accounted') else '**no**'}; peak"
            f" {r['peak_memory_mb']} MB; commit `{doc.get('commit', '?')}`.",
        )
    split_1m = _split_seconds(results_dir, "rust")
    for r in doc["results"]:
        scale = PARTITION_WCU_S / r["partition_wcu_s"]
        if round(r["rows"] * scale) != 1_000_000:
            continue
        # The writes take as long as at AWS's rates with `scale` times the rows; the split
        # does not scale with the rates: a 1M-row file's own split replaces this file's.
        equivalent = r["wall_s"] - r["s3_invocation_s"] + (split_1m or r["s3_invocation_s"])
        verdict = "under" if equivalent < GOAL_SECONDS_1M else "**not** under"
        out.append(
            f"- At AWS's rates the same run is a 1,000,000-row file on a new table, with"
            f" {r['status_index_shards']:,} status-index shards: the writes take as long with"
            f" {scale:g} times the rows at {scale:g} times the rates, ranges of the same size"
            f" and {scale:g} times the environments ({r['concurrency']} feed the scaled rate,"
            f" {r['concurrency'] * scale:g} would feed AWS's, within lib/'s range_max_concurrency"
            f" of {CONFIGURED_CONCURRENCY});"
            + (
                f" with the 1M-row file's own split ({split_1m:.1f} s at a 512 MB share,"
                ' measured alone: "Splitting a 1M-row file") in place of this file\'s'
                f" ({r['s3_invocation_s']:.1f} s)"
                if split_1m
                else ""
            )
            + f": **about {equivalent:,.0f} s from upload to the last record stored**,"
            f" {verdict} the goal's {GOAL_SECONDS_1M} s."
        )
    out.append(
        "- lib/'s default is 1,000 shards since 2026-12-02 (it was 16): the 5-minute goal"
        " needs them on a new table, and a by-status read costs one Query per shard"
        " (docs/operations.md says when fewer will do). A table whose earlier peaks raised"
        " its ceiling (on-demand doubling) or a pre-warmed one has more partitions and a"
        " higher ceiling; this page measures new tables only."
    )
    out += [
        "- Why a scaled table: on AWS's own figures the ceiling (about 2,670 records/s) is more"
        " than this machine serves next to the endpoint and the emulator (the runs above), so"
        " those runs cannot show how close the writes come to it. A quarter of the rates keeps"
        " the partitions and the spread, and leaves the processors' CPU idle part of the time.",
        "",
    ]
    return out


def split_lines(results_dir: Path) -> list[str]:
    """The S3 event's invocation alone on a 1M-row file (split-1m.json, --split-only)."""
    doc = _results(results_dir, "split-1m.json")
    if doc is None:
        return []
    out = [
        "### Splitting a 1M-row file",
        "",
        "The S3 event's invocation alone (bench/pipeline.py `--split-only`): one 512 MB"
        " execution environment reads the whole object from the emulator, finds the"
        " row-aligned boundaries, records the ranges in the file status and queues one message"
        " per range. Its Lambda runtime starts cold.",
        "",
        "| impl | rows | file MB, split at | ranges queued | split s | CPU quota throttled s"
        " | peak MB | load avg |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in doc["results"]:
        out.append(
            f"| {r['impl']} | {r['rows']:,} |"
            f" {r['file_bytes'] / 1e6:,.1f}, {r['range_split_bytes']:,} |"
            f" {r['range_messages']} | {r['s3_invocation_s']:.1f} | {r['cpu_throttled_s']} |"
            f" {r['peak_memory_mb']} | {r['load_avg'][0]:.1f} -> {r['load_avg'][1]:.1f} |"
        )
    out += ["", f"Commit `{doc.get('commit', '?')}`.", ""]
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
            " records/s, more than a new on-demand table's status index serves with"
            f" {ref['status_index_shards']} shards. More `status_index_shards` spread the"
            " index's writes closer to even over its four partitions: the next section"
            " measures 16 and 1,000 where the table, not this machine, is the bound. A"
            " pre-warmed table would lift the ceiling too (DynamoDB's warm throughput;"
            " hashicorp/aws 5.100.0 has no `warm_throughput` argument, so lib/ cannot set it).",
            "",
        ]
    out += scaled_table_lines(results_dir)
    out += split_lines(results_dir)
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
        split_1m = _split_seconds(results_dir, "python")
        split_note = f'{split_1m:.1f} s measured alone ("Splitting a 1M-row file")'
        if split_1m is None:  # no split-only run: scaled by rows from this file's split
            split_1m = base["s3_invocation_s"] / base["rows"] * 1_000_000
            split_note = f"{split_1m:.0f} s scaled by rows from {base['s3_invocation_s']:.1f} s"
        ranges_1m = _split_ranges(results_dir) or 93
        out += [
            "",
            f"- Scaling: {py[-1]['concurrency']} environments ran"
            f" {100 * efficiency:.0f} % of linear after the split (goal: within 20 %, so at"
            " least 80 %), measured up to the concurrency this machine hosts next to the"
            " endpoint and the emulator.",
        ]
        for shards, ceiling, reached in _full_scale_ceilings(results_dir, rust, base):
            writes_s = project_writes(
                995_000, ranges_1m, CONFIGURED_CONCURRENCY, rate * efficiency, ceiling * reached
            )
            projected = split_1m + writes_s
            verdict = "under" if projected < GOAL_SECONDS_1M else "**not** under"
            out.append(
                f"- **Projected 1M-row file at the configured concurrency"
                f" ({CONFIGURED_CONCURRENCY}) with {shards:,} status-index shards: about"
                f" {projected:,.0f} s**, {verdict} the goal's {GOAL_SECONDS_1M} s: the split"
                f" {split_note}, then {writes_s:,.0f} s of writes."
            )
        out += [
            f"- The projection's assumptions: one environment stores {rate:,.0f} records/s in"
            f" its ranges (measured, {base['rows']:,} rows, one environment), times the"
            f" {100 * efficiency:.0f} % of linear measured above; the 1M-row file's"
            f" {ranges_1m} ranges of equal size go out in order, one per environment, the"
            " mapping's concurrency starting at 5 and growing by 300 a minute"
            f" (services-sqs-scaling) up to {CONFIGURED_CONCURRENCY}; together the"
            " environments store no more than the new table's ceiling at AWS's rates for"
            " that shard count (the quarter-scale runs' key spread, times 4), times the share"
            " of it the Rust writes reached there (Python's writes reached 97 to 98 % of a"
            " scaled table's ceiling in the runs of 2026-12-01, above). That share already"
            " includes that run's own ramp and last ranges, which the projection then models"
            " again: it errs long. 995,000 of the rows are valid. bench/report_ranges.py's"
            " `project_writes` steps it 0.1 s at a time.",
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
