"""The figures bench/report.py measures runs against: a 512 MB Lambda's CPU share, and the
modelled DynamoDB table's ceiling in records/s (its partitions, its index's spread)."""

from __future__ import annotations

import subprocess
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


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
