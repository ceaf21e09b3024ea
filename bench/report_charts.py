"""The benchmark page's PNG charts (matplotlib): bars per implementation and row count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
