"""Display tables for the HTML report: cells keep the exact stored number beside its formatted text.

Each numeric cell carries `value` (repr of the float, written to data-value) so the page can be
sorted, and tests can check it against the database, without parsing rounded text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from .codecinfo import REFERENCE_FAMILIES, higher_is_better

__all__ = ["Cell", "Table", "fmt", "leaderboard_table", "frame_table", "agreement_display"]


@dataclass
class Cell:
    text: str
    value: str | None = None  # exact number for sorting and checking
    sub: str = ""  # smaller second line, e.g. the CI half-width
    title: str = ""  # tooltip
    cls: str = ""


@dataclass
class Table:
    id: str
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    numeric: list[bool] = field(default_factory=list)


def fmt(value, digits: int = 3) -> str:
    """Numbers to about `digits` significant decimals; '–' for missing values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or pd.isna(value):
        return "–"
    value = float(value)
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 10:
        return f"{value:.2f}"
    return f"{value:.{digits}f}"


def _number(value, sub: str = "", title: str = "", cls: str = "") -> Cell:
    exact = None if value is None or pd.isna(value) else repr(float(value))
    return Cell(fmt(value), exact, sub, title, cls)


def leaderboard_table(board: pd.DataFrame, codecs: pd.DataFrame, metrics: list[str], sort_by: str) -> Table:
    """Codec rows (best first by `sort_by`), kbps and latency, then mean ± half CI per metric."""
    means = board.pivot_table(index="codec", columns="metric", values="mean", aggfunc="first")
    order = means[sort_by].sort_values(ascending=not higher_is_better(sort_by), na_position="last").index \
        if sort_by in means else sorted(codecs["codec"])
    best = {m: _best(board, m) for m in metrics}
    info = codecs.set_index("codec")
    rows = []
    for codec in order:
        meta = info.loc[codec] if codec in info.index else None
        family = str(meta["family"]) if meta is not None else ""
        muted = " condition" if family in REFERENCE_FAMILIES else ""
        row = [Cell(codec, cls="name" + muted, title="test condition" if muted else ""), Cell(family)]
        row += [_number(meta["measured_kbps"] if meta is not None else None),
                _number(meta["latency_ms"] if meta is not None else None)]
        row += [_metric_cell(board, codec, metric, best[metric]) for metric in metrics]
        rows.append(row)
    arrows = [f"{m} {'↑' if higher_is_better(m) else '↓'}" for m in metrics]
    columns = ["codec", "family", "kbit/s", "latency ms"] + arrows
    return Table("leaderboard", columns, rows, numeric=[False, False] + [True] * (2 + len(metrics)))


def _metric_cell(board: pd.DataFrame, codec: str, metric: str, best: str | None) -> Cell:
    match = board[(board["codec"] == codec) & (board["metric"] == metric)]
    if match.empty:
        return Cell("–")
    row = match.iloc[0]
    half = (row["ci_high"] - row["ci_low"]) / 2
    total = row["n_ok"] + row["n_failed"] + row["n_skipped"]
    sub = f"±{fmt(half)}" if pd.notna(half) else ""
    title = f"95 % CI [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}], n = {row['n_ok']} of {total}"
    cls = "best" if codec == best else ""
    if row["n_ok"] < total:
        sub, cls = f"{sub} ({row['n_ok']}/{total})".strip(), f"{cls} partial".strip()
    return _number(row["mean"], sub, title, cls)


def _best(board: pd.DataFrame, metric: str) -> str | None:
    """The best codec of `metric`; the hidden reference and anchors are conditions, not contenders."""
    rows = board[(board["metric"] == metric) & board["mean"].notna() & ~board["family"].isin(REFERENCE_FAMILIES)]
    if rows.empty:
        return None
    index = rows["mean"].idxmax() if higher_is_better(metric) else rows["mean"].idxmin()
    return str(rows.loc[index, "codec"])


def frame_table(frame: pd.DataFrame, id: str, caption: str = "", columns: dict[str, str] | None = None) -> Table:
    """Any frame as a Table; numeric columns formatted, `columns` renames and selects."""
    columns = columns or {c: c for c in frame.columns}
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in columns]
    integer = [pd.api.types.is_integer_dtype(frame[c]) for c in columns]
    rows = [[_cell(row[c], is_num, is_int) for c, is_num, is_int in zip(columns, numeric, integer)]
            for _, row in frame.iterrows()]
    return Table(id, list(columns.values()), rows, caption, numeric)


def _cell(value, numeric: bool, integer: bool) -> Cell:
    if pd.isna(value):
        return Cell("–" if numeric else "")
    if integer:
        return Cell(str(int(value)), str(int(value)))
    return _number(value) if numeric else Cell(str(value))


def agreement_display(agreement: pd.DataFrame, level: str) -> Table:
    """Metric rows; per method r with its bootstrap CI below, p in the tooltip."""
    rows = []
    for metric, group in agreement[agreement["level"] == level].groupby("metric", sort=False):
        cells = [Cell(metric, cls="name"), _number(group["n"].iloc[0])]
        cells[1].text = str(int(group["n"].iloc[0]))
        for row in group.itertuples():
            ci = f"[{fmt(row.ci_low, 2)}, {fmt(row.ci_high, 2)}]"
            cells.append(_number(row.r, ci, f"p = {row.p_value:.3g}" if pd.notna(row.p_value) else "p undefined"))
        rows.append(cells)
    methods = list(dict.fromkeys(agreement["method"]))
    return Table(f"agreement-{level}", ["metric", "n"] + [f"{m} r" for m in methods], rows,
                 f"{level.capitalize()} level: coefficient, 95 % bootstrap interval below",
                 [False, True] + [True] * len(methods))
