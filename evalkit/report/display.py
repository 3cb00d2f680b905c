"""Display structures of the report: sections, figures and tables whose cells keep the exact number.

Each numeric cell carries `value` (repr of the float, written to data-value) so the page can be
sorted, and tests can check it against the database, without parsing rounded text. Everything a
reader needs is printed (intervals, n, p-values): a tooltip only repeats it, since a PDF has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

from .codecinfo import REFERENCE_FAMILIES, higher_is_better
from .figures import svg_data_uri
from .leaderboard import SMALL_N
from .names import DisplayNames

__all__ = [
    "Cell",
    "Table",
    "Section",
    "FigureRef",
    "fmt",
    "fmt_p",
    "leaderboard_table",
    "frame_table",
    "agreement_display",
    "SMALL_N_MARK",
]

SMALL_N_MARK = "†"  # after n when fewer than SMALL_N items stand behind a number


@dataclass
class Cell:
    text: str
    value: str | None = None  # exact number for sorting and checking
    sub: str = ""  # smaller second line, e.g. the CI half-width
    title: str = ""  # tooltip
    cls: str = ""
    key: str | None = None  # the id behind a display name (data-key), for tools and tests


@dataclass
class Table:
    id: str
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    numeric: list[bool] = field(default_factory=list)
    sortable: bool = True  # the page may sort it by a clicked header (a screen-only hint says so)
    keys: list[str] = field(default_factory=list)  # per column, the id behind its display name (data-key)


@dataclass
class FigureRef:
    id: str
    uri: str
    caption: str
    figure: Figure | None = None  # kept so each figure can be written alone (PDF, SVG)


def figure_ref(id: str, figure, caption: str) -> FigureRef:
    """A figure as the report shows it: inline SVG, and the figure kept for writing it alone."""
    return FigureRef(id, svg_data_uri(figure), caption, figure)


@dataclass
class Section:
    id: str
    title: str
    lead: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureRef] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables_first: bool = False


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


def fmt_p(p) -> str:
    """A p-value as papers print it: p < 0.001 below that, else three decimals."""
    if p is None or pd.isna(p):
        return "p –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _number(value, sub: str = "", title: str = "", cls: str = "") -> Cell:
    exact = None if value is None or pd.isna(value) else repr(float(value))
    return Cell(fmt(value), exact, sub, title, cls)


def leaderboard_table(
    board: pd.DataFrame, codecs: pd.DataFrame, metrics: list[str], sort_by: str, names: DisplayNames | None = None
) -> Table:
    """Codec rows (best first by `sort_by`), kbps and latency, then mean ± half CI and n per metric."""
    names = names or DisplayNames()
    means = board.pivot_table(index="codec", columns="metric", values="mean", aggfunc="first")
    order = (
        means[sort_by].sort_values(ascending=not higher_is_better(sort_by), na_position="last").index
        if sort_by in means
        else sorted(codecs["codec"])
    )
    best = {m: _best(board, m) for m in metrics}
    info = codecs.set_index("codec")
    rows = []
    for codec in order:
        meta = info.loc[codec] if codec in info.index else None
        family = str(meta["family"]) if meta is not None else ""
        muted = " condition" if family in REFERENCE_FAMILIES else ""
        label = names.codec(codec)
        row = [
            Cell(
                label,
                sub=codec if label != codec else "",
                cls="name" + muted,
                title="test condition" if muted else "",
                key=codec,
            ),
            Cell(family),
        ]
        row += [
            _number(meta["measured_kbps"] if meta is not None else None),
            _number(meta["latency_ms"] if meta is not None else None),
        ]
        row += [_metric_cell(board, codec, metric, best[metric]) for metric in metrics]
        rows.append(row)
    arrows = [f"{names.metric(m)} {'↑' if higher_is_better(m) else '↓'}" for m in metrics]
    columns = ["codec", "family", "kbit/s", "latency ms"] + arrows
    return Table(
        "leaderboard",
        columns,
        rows,
        numeric=[False, False] + [True] * (2 + len(metrics)),
        keys=["codec", "family", "kbit/s", "latency_ms"] + list(metrics),
    )


def _metric_cell(board: pd.DataFrame, codec: str, metric: str, best: str | None) -> Cell:
    match = board[(board["codec"] == codec) & (board["metric"] == metric)]
    if match.empty:
        return Cell("–")
    row = match.iloc[0]
    total = row["n_ok"] + row["n_failed"] + row["n_skipped"]
    interval = f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]" if pd.notna(row["ci_low"]) else "no interval"
    count = f"n = {row['n_ok']}" + (f"/{total}" if row["n_ok"] < total else "")
    cls = "best" if codec == best else ""
    if row["n_ok"] < total:
        cls = f"{cls} partial".strip()
    if row["n_ok"] < SMALL_N:
        count, cls = f"{count} {SMALL_N_MARK}", f"{cls} small-n".strip()
    return _number(row["mean"], f"{interval} {count}", f"95 % CI {interval}, {count} of {total}", cls)


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
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in columns]
    integer = [pd.api.types.is_integer_dtype(frame[c]) for c in columns]
    rows = [
        [_cell(row[c], is_num, is_int) for c, is_num, is_int in zip(columns, numeric, integer)]
        for _, row in frame.iterrows()
    ]
    return Table(id, list(columns.values()), rows, caption, numeric)


def _cell(value, numeric: bool, integer: bool) -> Cell:
    if pd.isna(value):
        return Cell("–" if numeric else "")
    if integer:
        return Cell(str(int(value)), str(int(value)))
    return _number(value) if numeric else Cell(str(value))


def agreement_display(agreement: pd.DataFrame, level: str, names: DisplayNames | None = None) -> Table:
    """Metric rows; per method r with its bootstrap interval and p below (RMSE rows: the error alone)."""
    names = names or DisplayNames()
    rows = []
    for metric, group in agreement[agreement["level"] == level].groupby("metric", sort=False):
        first = group.iloc[0]
        cells = [
            Cell(names.metric(metric), cls="name", key=metric),
            Cell(str(int(first["n"])), str(int(first["n"]))),
            Cell(str(int(first["items"])), str(int(first["items"]))),
        ]
        for row in group.itertuples():
            if row.method.startswith("rmse"):
                cells.append(_number(row.r))
                continue
            ci = f"[{fmt(row.ci_low, 2)}, {fmt(row.ci_high, 2)}]"
            cells.append(_number(row.r, f"{ci} {fmt_p(row.p_value)}"))
        rows.append(cells)
    methods = list(dict.fromkeys(agreement.loc[agreement["level"] == level, "method"]))
    headers = [m.upper() if m.startswith("rmse") else f"{m} r" for m in methods]
    label = {"system": "System level (one point per condition)", "stimulus": "Stimulus level (item × condition)"}
    return Table(
        f"agreement-{level}",
        ["metric", "n", "items"] + headers,
        rows,
        f"{label.get(level, level)}: coefficient, 95 % bootstrap interval over items and p below",
        [False, True, True] + [True] * len(methods),
    )
