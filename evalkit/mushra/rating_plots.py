"""Figures of MUSHRA results: boxplots per condition and means with 95 % intervals.

Both return a matplotlib Figure built without pyplot, so nothing is displayed and no global
state is touched; the app shows it (st.pyplot(fig)) and reports save it (fig.savefig(path)).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ..listening.pages import SCALE

__all__ = ["boxplot", "mean_ci_plot"]


def _axes(title: str | None, width: float) -> tuple[Figure, object]:
    figure = Figure(figsize=(max(4.0, width), 4.0), layout="constrained")
    axes = figure.add_subplot()
    axes.set_ylim(0, 100)
    axes.set_ylabel("score")
    for label, low, high in SCALE:  # the scale's five bands, as the listener saw them
        axes.axhline(low, color="0.85", linewidth=0.8, zorder=0)
        axes.text(1.0, (low + high) / 2, f" {label}", transform=axes.get_yaxis_transform(), va="center", fontsize=7)
    if title:
        axes.set_title(title)
    return figure, axes


def _order(frame: pd.DataFrame, order: list[str] | None) -> list[str]:
    present = list(dict.fromkeys(frame["condition"]))
    return [c for c in order if c in present] if order else sorted(present)


def boxplot(frame: pd.DataFrame, order: list[str] | None = None, title: str | None = None) -> Figure:
    """One box per condition (median, quartiles, 1.5 IQR whiskers) over all kept ratings."""
    conditions = _order(frame, order)
    figure, axes = _axes(title, 0.8 * len(conditions) + 1.5)
    data = [frame.loc[frame["condition"] == c, "score"].to_numpy() for c in conditions]
    axes.boxplot(data, tick_labels=conditions, showfliers=True)
    axes.tick_params(axis="x", labelrotation=45)
    return figure


def mean_ci_plot(
    summary: pd.DataFrame, interval: str = "t", order: list[str] | None = None, title: str | None = None
) -> Figure:
    """Means with their 95 % interval ("t" or "boot") from condition_summary."""
    conditions = _order(summary, order)
    table = summary.set_index("condition").loc[conditions]
    figure, axes = _axes(title, 0.8 * len(conditions) + 1.5)
    low, high = table[f"{interval}_low"], table[f"{interval}_high"]
    positions = range(1, len(conditions) + 1)
    axes.errorbar(positions, table["mean"], yerr=[table["mean"] - low, high - table["mean"]], fmt="o", capsize=4)
    axes.set_xticks(list(positions), conditions, rotation=45)
    axes.set_xlim(0.5, len(conditions) + 0.5)
    return figure
