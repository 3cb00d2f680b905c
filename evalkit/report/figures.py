"""Figures of the report and the app, built on matplotlib's Figure (no pyplot, no global state).

The app shows a figure with st.pyplot(fig); the report embeds it as an SVG data URI, so the HTML
needs no network and stays vector when printed to PDF.
"""

from __future__ import annotations

import base64
import functools
import io
import math

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from scipy import signal

from ..audio import Audio
from .codecinfo import REFERENCE_FAMILIES, higher_is_better
from .names import DisplayNames

__all__ = [
    "family_colors",
    "family_markers",
    "rate_quality_figure",
    "cost_figure",
    "spectrogram_figure",
    "bar_figure",
    "mushra_figure",
    "agreement_figure",
    "score_figure",
    "preference_matrix_figure",
    "svg_data_uri",
    "save_figure",
    "has_bitrates",
    "sweep_figure",
    "value_order",
    "STYLE",
    "FIGURE_FORMATS",
]

STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "0.4",
    "svg.fonttype": "none",
    "svg.hashsalt": "evalkit",
}
_FRONT = "#111827"
_MARKERS = ("o", "s", "^", "D")
_GREY = "#9ca3af"  # reference conditions (hidden reference, anchors): shown, never competing
_PLAIN = DisplayNames()
FIGURE_FORMATS = ("pdf", "svg")


def _styled(build):
    """Build the figure under STYLE: matplotlib reads most of it when axes are created."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def family_colors(families) -> dict[str, tuple]:
    """A colour per family, the strong ones to the families with most codecs (then by name; test conditions,
    shown grey anyway, last): tab20's ten dark hues, then its ten light ones (markers differ from the 11th on)."""
    cmap = colormaps["tab20"]
    return {name: cmap(2 * (index % 10) + (index // 10) % 2) for index, name in enumerate(_family_order(families))}


def family_markers(colors: dict[str, tuple]) -> dict[str, str]:
    """A marker per family of `colors` (in its order) that, with the colour, stays unique up to 40 families."""
    return {name: _MARKERS[(index // 10) % len(_MARKERS)] for index, name in enumerate(colors)}


def _family_order(families) -> list[str]:
    counts = pd.Series(list(families), dtype=object).value_counts()
    return sorted(counts.index, key=lambda name: (name in REFERENCE_FAMILIES, -counts[name], name))


def _grid(count: int, width: float = 10.0, height: float = 3.4, columns: int = 2) -> tuple[Figure, list]:
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(width, height * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for extra in axes[count:]:
        extra.set_visible(False)
    return figure, axes[:count]


def _label(metric: str, names: DisplayNames = _PLAIN) -> str:
    return f"{names.metric(metric)}, {'higher' if higher_is_better(metric) else 'lower'} is better"


def has_bitrates(points: pd.DataFrame) -> bool:
    """Whether any point has a measured bitrate a log axis can show (none without round trips)."""
    kbps = pd.to_numeric(points.get("measured_kbps", pd.Series(dtype=float)), errors="coerce")
    return bool((kbps > 0).any())


@_styled
def rate_quality_figure(
    points: pd.DataFrame,
    metrics: list[str],
    reference: dict[str, float] | None = None,
    colors: dict | None = None,
    names: DisplayNames = _PLAIN,
) -> Figure:
    """Each metric against measured kbps (log axis), one line per codec family, with 95 % CIs.

    Points without a positive measured bitrate are left out (a log axis cannot show them); a
    panel left with none says so instead of drawing an empty log axis.
    """
    figure, axes = _grid(len(metrics))
    colors = colors or family_colors(points["family"])
    markers = family_markers(colors)
    points = points[pd.to_numeric(points["measured_kbps"], errors="coerce") > 0]
    for ax, metric in zip(axes, metrics):
        rows = points[points["metric"] == metric]
        ax.set_ylabel(_label(metric, names))
        if rows.empty:
            ax.text(0.5, 0.5, "no measured bitrate", ha="center", va="center", transform=ax.transAxes, color="0.4")
            continue
        for family, group in rows.sort_values("measured_kbps").groupby("family", sort=True):
            _line_with_ci(ax, group, "measured_kbps", colors[family], markers[family], family)
        if reference and _near(reference.get(metric), rows):
            ax.axhline(reference[metric], color="0.45", linestyle="--", linewidth=0.9, label="reference")
        _plain_log(ax)
        ax.set_xlabel("measured bitrate (kbit/s, duration-weighted)")
    if axes:
        _shared_legend(figure, axes)
    return figure


@_styled
def cost_figure(
    points: pd.DataFrame,
    cost: str,
    xlabel: str,
    metrics: list[str],
    colors: dict | None = None,
    log_x: bool = False,
    names: DisplayNames = _PLAIN,
) -> Figure:
    """Each metric against a cost, codecs coloured by family; the Pareto front (column `pareto`) drawn."""
    figure, axes = _grid(len(metrics))
    colors = colors or family_colors(points["family"])
    markers = family_markers(colors)
    for ax, metric in zip(axes, metrics):
        finite = np.isfinite(points[cost].astype(float)) & np.isfinite(points["mean"].astype(float))
        rows = points[(points["metric"] == metric) & finite]
        rows = rows[rows[cost] > 0] if log_x else rows
        ax.set_ylabel(_label(metric, names))
        if rows.empty:  # every row of this metric failed or was skipped: an empty log axis cannot be drawn
            ax.text(0.5, 0.5, "no scored rows", ha="center", va="center", transform=ax.transAxes, color="0.4")
            continue
        for family, group in rows.groupby("family", sort=True):
            ax.scatter(
                group[cost], group["mean"], s=24, color=colors[family], marker=markers[family], label=family, zorder=3
            )
        front = rows[rows["pareto"]].sort_values(cost)
        ax.step(front[cost], front["mean"], where="post", color=_FRONT, linewidth=1.1, zorder=2, label="Pareto front")
        ax.scatter(front[cost], front["mean"], s=70, facecolors="none", edgecolors=_FRONT, linewidths=1.0, zorder=4)
        for index, row in enumerate(front.itertuples()):  # alternate above/below: front points crowd
            ax.annotate(
                names.codec(row.codec),
                (getattr(row, cost), row.mean),
                xytext=(5, 4 if index % 2 else -9),
                textcoords="offset points",
                fontsize=7,
                color="0.25",
            )
        if log_x:
            _plain_log(ax)
        ax.set_xlabel(xlabel)
    if axes:
        _shared_legend(figure, axes)
    return figure


@_styled
def sweep_figure(points: pd.DataFrame, metrics: list[str], names: DisplayNames = _PLAIN) -> Figure:
    """Each metric against one swept parameter (sweeps.SWEEP_COLUMNS): one line per card with 95 % CIs, and
    each card's baseline (role 'baseline') a dashed horizontal line in the card's colour.

    Numeric values share a linear axis, or a log one when all are positive and span 8x or more;
    other values (a sampler's name) are placed in order as categories.
    """
    figure, axes = _grid(len(metrics))
    cards = list(dict.fromkeys(points["card"]))
    colors = {card: colormaps["tab10"](index % 10) for index, card in enumerate(cards)}
    swept = points[(points["role"] == "sweep") & points["mean"].notna()]
    values = sorted(set(swept["value"]), key=value_order)
    numeric = all(value_order(v)[0] == 0 for v in values)
    position = {v: float(v) if numeric else float(i) for i, v in enumerate(values)}
    log_x = numeric and min(position.values()) > 0 and max(position.values()) >= 8 * min(position.values())
    for ax, metric in zip(axes, metrics):
        rows = points[(points["metric"] == metric) & points["mean"].notna()]
        for index, card in enumerate(cards):
            line = rows[(rows["card"] == card) & (rows["role"] == "sweep")]
            x = _dodge(line["value"].map(position), list(position.values()), index - (len(cards) - 1) / 2, log_x)
            line = line.assign(x=x).sort_values("x")
            if not line.empty:
                _line_with_ci(ax, line, "x", colors[card], _MARKERS[index % len(_MARKERS)], names.codec(card))
        for card in cards:
            for row in rows[(rows["card"] == card) & (rows["role"] == "baseline")].itertuples():
                label = f"{names.codec(row.codec)} (baseline of {names.codec(card)})"
                ax.axhline(row.mean, color=colors[card], linestyle="--", linewidth=0.9, label=label)
        if log_x:
            _plain_log(ax)
        ax.set_xticks(list(position.values()), [str(v) for v in values])
        ax.set_xlabel(str(points["param"].iloc[0]))
        ax.set_ylabel(_label(metric, names))
    if axes:
        _shared_legend(figure, axes)
    return figure


def _dodge(x: pd.Series, positions: list[float], offset: float, log_x: bool) -> pd.Series:
    """`x` shifted by `offset` steps of 1.2 % of the axis span (in decades on a log axis), so that the
    lines of several cards keep their intervals apart."""
    if log_x:
        return x * 10 ** (0.012 * offset * math.log10(max(positions) / min(positions)))
    return x + 0.012 * offset * ((max(positions) - min(positions)) or 1.0)


def value_order(value) -> tuple:
    """Sort key of parameter values: numbers by size, then anything else as written."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (0, float(value), "") if is_number else (1, 0.0, str(value))


@_styled
def spectrogram_figure(reference: Audio | None, decoded: Audio | None, title: str = "") -> Figure:
    """Log-magnitude spectrograms of reference and decoded audio on one colour scale."""
    panels = [(name, audio) for name, audio in (("reference", reference), ("decoded", decoded)) if audio is not None]
    figure = Figure(figsize=(10, 2.4 * max(1, len(panels))), layout="constrained")
    axes = figure.subplots(max(1, len(panels)), 1, squeeze=False, sharex=True).ravel()
    image = None
    for ax, (name, audio) in zip(axes, panels):
        freqs, times, power = _spectrogram(audio)
        image = ax.pcolormesh(
            times, freqs / 1000, power, shading="auto", cmap="magma", vmin=-100, vmax=0, rasterized=True
        )
        ax.set_ylabel(f"{name}\nkHz")
        ax.grid(False)
    axes[-1].set_xlabel("time (s)")
    if image is not None:
        figure.colorbar(image, ax=axes.tolist(), label="dB", pad=0.01)
    if title:
        figure.suptitle(title)
    return figure


@_styled
def bar_figure(board: pd.DataFrame, metric: str, colors: dict | None = None, names: DisplayNames = _PLAIN) -> Figure:
    """Per codec mean of `metric` with its CI, best at the top."""
    rows = board[board["metric"] == metric].sort_values("mean", ascending=higher_is_better(metric))
    colors = colors or family_colors(rows["family"])
    figure = Figure(figsize=(10, 0.2 * len(rows) + 1.0), layout="constrained")
    ax = figure.subplots()
    errors = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]).clip(min=0)
    fills = [_GREY if f in REFERENCE_FAMILIES else colors.get(f, _GREY) for f in rows["family"]]
    ax.barh(
        [names.codec(c) for c in rows["codec"]],
        rows["mean"],
        height=0.7,
        xerr=np.nan_to_num(errors),
        color=fills,
        error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.3"},
    )
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(y=0.01)
    ax.set_xlabel(_label(metric, names))
    ax.grid(axis="y", visible=False)
    return figure


@_styled
def mushra_figure(conditions: pd.DataFrame, names: DisplayNames = _PLAIN) -> Figure:
    """MUSHRA mean score per condition with its t interval, on the 0-100 scale."""
    rows = conditions.sort_values("mean")
    figure = Figure(figsize=(10, 0.32 * len(rows) + 1.3), layout="constrained")
    ax = figure.subplots()
    errors = np.vstack([rows["mean"] - rows["t_low"], rows["t_high"] - rows["mean"]])
    ax.errorbar(
        rows["mean"],
        [names.codec(c) for c in rows["condition"]],
        xerr=np.nan_to_num(errors),
        fmt="o",
        color="#1f4e79",
        ecolor="#1f4e79",
        elinewidth=1,
        capsize=3,
    )
    for boundary in (20, 40, 60, 80):
        ax.axvline(boundary, color="0.85", linewidth=0.8, zorder=0)
    ax.set_xlim(0, 100)
    ax.set_xlabel("MUSHRA score (mean, 95 % CI)")
    ax.grid(axis="y", visible=False)
    return figure


@_styled
def agreement_figure(
    stimuli: pd.DataFrame,
    conditions: pd.DataFrame,
    metrics: list[str],
    names: DisplayNames = _PLAIN,
    ylabel: str = "MUSHRA score",
    ylim: tuple[float, float] | None = (0, 100),
) -> Figure:
    """Per metric: listener score against metric value, stimuli faint, condition means labelled."""
    figure, axes = _grid(len(metrics), height=3.6)
    for ax, metric in zip(axes, metrics):
        points = stimuli[stimuli["metric"] == metric]
        means = conditions[conditions["metric"] == metric]
        ax.scatter(points["value"], points["score"], s=10, color="#9ca3af", alpha=0.6, label="stimulus")
        ax.scatter(means["value"], means["score"], s=34, color="#1f4e79", zorder=3, label="condition mean")
        for row in means.itertuples():
            ax.annotate(
                names.codec(row.condition),
                (row.value, row.score),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=7,
                color="0.3",
            )
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_xlabel(_label(metric, names))
        ax.set_ylabel(ylabel)
    if axes:
        _shared_legend(figure, axes)
    return figure


@_styled
def score_figure(
    table: pd.DataFrame, value: str, xlabel: str, limits: tuple[float, float], base: float, names: DisplayNames = _PLAIN
) -> Figure:
    """Bars of `value` per condition from `base` (1 for MOS, 0 for CMOS and SDG) with their 95 % CI, best at the top."""
    rows = table.sort_values(value)
    figure = Figure(figsize=(10, 0.32 * len(rows) + 1.3), layout="constrained")
    ax = figure.subplots()
    errors = np.vstack([rows[value] - rows["ci_low"], rows["ci_high"] - rows[value]]).clip(min=0)
    ax.barh(
        [names.codec(c) for c in rows["condition"]],
        rows[value] - base,
        left=base,
        height=0.6,
        color="#1f4e79",
        xerr=np.nan_to_num(errors),
        error_kw={"elinewidth": 0.8, "capsize": 3, "ecolor": "0.3"},
    )
    ax.axvline(base, color="0.4", linewidth=0.8)
    ax.set_xlim(*limits)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    return figure


@_styled
def preference_matrix_figure(matrix: pd.DataFrame, names: DisplayNames = _PLAIN) -> Figure:
    """Share of decided answers preferring the row's condition over the column's, each cell labelled."""
    size = 0.6 * len(matrix) + 2.0
    figure = Figure(figsize=(size + 1.5, size), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(matrix.to_numpy(float), vmin=0, vmax=1, cmap="RdBu")
    labels = [names.codec(c) for c in matrix.index]
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (row, column), share in np.ndenumerate(matrix.to_numpy(float)):
        if np.isfinite(share):
            ax.text(
                column,
                row,
                f"{share:.0%}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(share - 0.5) > 0.3 else "black",
            )
    ax.grid(False)
    ax.set_xlabel("compared with")
    ax.set_ylabel("preferred condition")
    figure.colorbar(image, ax=ax, label="share preferring the row")
    return figure


def svg_data_uri(figure: Figure) -> str:
    """The figure as an SVG data URI for an <img> (self-contained: no file, no network)."""
    buffer = io.BytesIO()
    with rc_context(STYLE):  # svg.* settings are read when saving
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def save_figure(figure: Figure, path) -> None:
    """Write one figure alone, as PDF or SVG by the suffix (no date: the same figure gives the same file)."""
    fmt = str(path).rsplit(".", 1)[-1].lower()
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(fmt, {})
    with rc_context(STYLE):
        figure.savefig(path, format=fmt, metadata=metadata)


def _near(value: float | None, rows: pd.DataFrame) -> bool:
    """Whether a reference level lies close enough to the data that drawing it keeps the data readable."""
    if value is None or not np.isfinite(value) or rows.empty:
        return False
    low, high = float(rows["ci_low"].fillna(rows["mean"]).min()), float(rows["ci_high"].fillna(rows["mean"]).max())
    span = max(high - low, 1e-9)
    return low - 0.5 * span <= value <= high + 0.5 * span


def _plain_log(ax) -> None:
    """Log x axis labelled 0.5, 1, 2, 5, 10, ... instead of powers of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _line_with_ci(ax, group: pd.DataFrame, x: str, color, marker: str, label: str) -> None:
    errors = np.vstack([group["mean"] - group["ci_low"], group["ci_high"] - group["mean"]]).clip(min=0)
    ax.errorbar(
        group[x],
        group["mean"],
        yerr=np.nan_to_num(errors),
        color=color,
        marker=marker,
        markersize=4,
        linewidth=1.3,
        elinewidth=0.8,
        capsize=2,
        label=label,
    )


def _shared_legend(figure: Figure, axes: list) -> None:
    handles, labels = {}, []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    figure.legend(
        [handles[label] for label in labels],
        labels,
        loc="outside lower center",
        ncols=min(8, max(1, len(labels))),
        frameon=False,
    )


def _spectrogram(audio: Audio) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mono = audio.samples.mean(axis=0)
    window = 2 ** int(round(math.log2(audio.sample_rate * 0.025)))  # ~25 ms frames
    freqs, times, spec = signal.stft(mono, audio.sample_rate, nperseg=window, noverlap=window * 3 // 4)
    power = 20 * np.log10(np.abs(spec) + 1e-10)
    return freqs, times, power - power.max()
