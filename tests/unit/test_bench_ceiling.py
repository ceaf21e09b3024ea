"""bench/report.py's modelled ceiling: the hot key before write sharding, the hottest index
partition or the table's ceiling after it (the figure the benchmark page measures against)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def report() -> ModuleType:
    # bench/ is a folder of scripts (report.py imports its neighbour costs.py by name).
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_report", BENCH / "report.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def run(**fields: Any) -> dict[str, Any]:
    """A pipeline run of 1,000 stored items, one write unit each on the table and the index."""
    return {
        "stored": 1000,
        "table_write_units": 1000.0,
        "index_write_units": 1000.0,
        "table_ceiling_wcu_s": 4000.0,
        **fields,
    }


def test_one_status_value_is_one_partition(report: ModuleType) -> None:
    assert report.modelled_ceiling(run()) == 1000.0
    assert report.modelled_ceiling(run(index_partition_write_units=[0, 1000.0, 0, 0])) == 1000.0


def test_sharded_index_is_bound_by_its_hottest_partition(report: ModuleType) -> None:
    # Half the writes on one partition: it throttles at 1,000/s while the others take 1,000.
    spread = [500.0, 250.0, 250.0, 0.0]
    assert report.modelled_ceiling(run(index_partition_write_units=spread)) == 2000.0


def test_even_spread_is_bound_by_the_table(report: ModuleType) -> None:
    spread = [125.0] * 8
    assert report.modelled_ceiling(run(index_partition_write_units=spread)) == 4000.0
    # Two write units per item on the table (items over 1 KB) halve it.
    doubled = run(index_partition_write_units=spread, table_write_units=2000.0)
    assert report.modelled_ceiling(doubled) == 2000.0


def test_a_scaled_table_is_measured_against_its_own_rates(report: ModuleType) -> None:
    # bench/pipeline.py --partition-wcu 250 --table-initial-wcu 1000: the same spread, a
    # quarter of the ceiling.
    spread = [500.0, 250.0, 250.0, 0.0]
    scaled = run(
        index_partition_write_units=spread,
        table_ceiling_wcu_s=1000.0,
        partition_wcu_s=250.0,
        table_initial_wcu_s=1000.0,
    )
    assert report.modelled_ceiling(scaled) == 500.0
    assert report.modelled_ceiling(scaled | {"index_partition_write_units": [125.0] * 8}) == 1000.0


def test_the_projection_is_bound_by_the_table_or_by_the_environments(report: ModuleType) -> None:
    """bench/report_ranges.py's project_writes: a table-bound file takes rows over the ceiling
    (a few seconds more while the mapping's concurrency grows from 5); a file with fewer
    environments than the table can feed is bound by them, range after range."""
    project = sys.modules["report_ranges"].project_writes
    table_bound = project(995_000, 93, 50, 95.0, 3_500.0)
    assert 995_000 / 3_500 < table_bound < 995_000 / 3_500 + 15
    # 5 environments (the mapping's start), 10 ranges of 1,000 rows at 10 rows/s: two rounds.
    assert project(10_000, 10, 5, 10.0, 1e9) == pytest.approx(200, abs=0.5)
    # One range more than the environments: a third round for it alone.
    assert project(11_000, 11, 5, 10.0, 1e9) == pytest.approx(300, abs=0.5)
