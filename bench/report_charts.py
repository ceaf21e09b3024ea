"""The benchmark page's PNG charts (matplotlib): bars per implementation and row count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

IMPL_COLORS = {"python": "#3572A5", "rust": "#dea584"}
BAR_WIDTH = 0.38


class Panel(NamedTuple):
    """One panel of a chart: the rows' value it draws, its title, log scale or not, and where
    its legend goes."""

    key: str
    title: str
    log: bool
    legend_loc: str


@dataclass(frozen=True)
class BarChart:
    """One PNG of panels side by side, each a bar per implementation and row count, labelled
    with `label(value)`; a run not measured is drawn as `missing`, or left out when that is
    None."""

    title: str
    panels: tuple[Panel, ...]
    figsize: tuple[float, float]
    label: Callable[[float], str]
    missing: float | None


CPU_CHART = BarChart(
    title="Transaction processor: Python 3.11 (boto3) vs Rust (aws-sdk-rust), same files",
    panels=(
        Panel("cpu_per_100k", "CPU seconds per 100k records", True, "best"),
        Panel("records_per_s", "records per second (wall)", True, "best"),
        Panel("peak_rss_mb", "peak RSS (MB)", False, "lower right"),
    ),
    figsize=(15, 4.6),
    label=lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.2f}",
    missing=0,
)
PIPELINE_CHART = BarChart(
    title="Pipeline, 512 MB execution environment (0.29 vCPU), DynamoDB-faithful endpoint"
    " (AWS capacities)",
    panels=(
        Panel("wall_s", "upload -> last record stored (s)", True, "upper left"),
        Panel("records_per_s", "records stored per second", False, "upper left"),
        Panel("throttled_total", "throttled DynamoDB requests", False, "upper left"),
    ),
    figsize=(16, 4.8),
    label=lambda v: f"{v:,.0f}" if v >= 10 else f"{v:.1f}",
    missing=None,
)


def draw(
    rows: list[dict[str, Any]],
    spec: BarChart,
    path: Path,
    decorate: Callable[[Any, Panel], None] | None = None,
) -> None:
    """Draws `spec` from `rows` into the PNG at `path`; `decorate(axes, panel)` adds to a
    panel before its ticks, title and legend are set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["rows"] for r in rows})
    impls = [i for i in IMPL_COLORS if any(r["impl"] == i for r in rows)]
    fig, axes = plt.subplots(1, len(spec.panels), figsize=spec.figsize)
    for ax, panel in zip(axes, spec.panels, strict=True):
        for k, impl in enumerate(impls):
            xs, values = [], []
            for i, n in enumerate(sizes):
                r = next((r for r in rows if r["impl"] == impl and r["rows"] == n), None)
                value = spec.missing if r is None else r[panel.key]
                if value is None:
                    continue
                xs.append(i + (k - (len(impls) - 1) / 2) * BAR_WIDTH)
                values.append(value)
            bars = ax.bar(xs, values, BAR_WIDTH, label=impl, color=IMPL_COLORS[impl])
            for bar, v in zip(bars, values, strict=True):
                ax.annotate(
                    spec.label(v),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    for ax, panel in zip(axes, spec.panels, strict=True):
        if decorate is not None:
            decorate(ax, panel)
        ax.set_xticks(range(len(sizes)), [f"{n:,} rows" for n in sizes])
        ax.set_title(panel.title)
        if panel.log:
            ax.set_yscale("log")
        ax.legend(loc=panel.legend_loc, framealpha=0.9)
    fig.suptitle(spec.title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    draw(rows, CPU_CHART, path)


def pipeline_chart(runs: list[dict[str, Any]], ceiling: float, path: Path) -> None:
    def ceiling_line(ax: Any, panel: Panel) -> None:
        if panel.key != "records_per_s":
            return
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

    draw(runs, PIPELINE_CHART, path, ceiling_line)
