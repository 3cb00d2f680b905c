"""Parameter sweeps: each metric against the one card parameter a sweep varies, read from the run's stored experiment.

A run stores its experiment as written, so a `{card, sweep}` entry says which codecs are variants of
which card and at which parameter value; codec names are never parsed for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ..experiment import sweep_variants
from .build import ReportData
from .data import RunData
from .display import Cell, Section, Table, figure_ref, fmt
from .figures import sweep_figure, value_order
from .leaderboard import leaderboard
from .names import DisplayNames

PLAIN = DisplayNames()

__all__ = ["Sweep", "SweepPlot", "run_sweeps", "sweep_points", "sweep_views", "sweep_sections", "SWEEP_COLUMNS"]

SWEEP_COLUMNS = ["card", "param", "value", "codec", "role", "metric", "mean", "ci_low", "ci_high", "n_ok", "n_failed"]
RTF = "decode_rtf"  # the cost row the table adds per value


@dataclass(frozen=True)
class Sweep:
    """One card run at several values of one parameter; `values` maps each variant in the run to its value."""

    card: str
    param: str
    values: dict[str, Any]
    baseline: str | None = None  # a codec of the run drawn beside the sweep as a horizontal line


@dataclass
class SweepScan:
    sweeps: list[Sweep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # sweeps the report cannot draw, and why


def run_sweeps(config: dict, codecs: set[str]) -> SweepScan:
    """The sweeps of a stored experiment `config` that have results among `codecs`."""
    scan = SweepScan()
    entries = config.get("codecs")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not (
            isinstance(entry, dict) and isinstance(entry.get("card"), str) and isinstance(entry.get("sweep"), dict)
        ):
            continue
        sweep = _one_sweep(entry, codecs, f"codecs[{index}]", scan.notes)
        if sweep is not None:
            scan.sweeps.append(sweep)
    return scan


def _one_sweep(entry: dict, codecs: set[str], key: str, notes: list[str]) -> Sweep | None:
    card, grid = entry["card"], entry["sweep"]
    plain = (str, int, float, bool)  # what an experiment accepts as a sweep value; anything else was not a run's
    if not grid or not all(isinstance(v, list) and v and all(isinstance(x, plain) for x in v) for v in grid.values()):
        return None
    varied = [param for param, values in grid.items() if len(values) > 1] or sorted(grid)
    if len(varied) != 1:
        notes.append(
            f"{key} ({card}) sweeps {len(varied)} parameters at once ({', '.join(map(str, varied))}): "
            "only one-parameter sweeps are plotted; split it into one sweep per parameter"
        )
        return None
    param = varied[0]
    values = {name: params[param] for name, params in sweep_variants(card, grid) if name in codecs}
    if not values:
        return None
    baseline = entry.get("baseline")
    return Sweep(card, str(param), values, baseline if isinstance(baseline, str) and baseline in codecs else None)


def sweep_points(board: pd.DataFrame, sweeps: list[Sweep]) -> pd.DataFrame:
    """Leaderboard rows of each sweep's variants (role 'sweep', with their value) and of its baseline (role
    'baseline', no value), tagged with the card and parameter (SWEEP_COLUMNS)."""
    frames = []
    for sweep in sweeps:
        rows = board[board["codec"].isin(list(sweep.values))]
        frames.append(
            rows.assign(card=sweep.card, param=sweep.param, value=rows["codec"].map(sweep.values), role="sweep")
        )
        if sweep.baseline:
            rows = board[board["codec"] == sweep.baseline]
            frames.append(rows.assign(card=sweep.card, param=sweep.param, value=None, role="baseline"))
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=SWEEP_COLUMNS)
    return pd.concat(frames, ignore_index=True)[SWEEP_COLUMNS]


@dataclass
class SweepPlot:
    """The sweeps of one parameter: their points (the metrics and the decode RTF), the metrics plotted, the figure."""

    param: str
    sweeps: list[Sweep]
    points: pd.DataFrame
    metrics: list[str]
    figure: Figure


@dataclass
class SweepViews:
    plots: list[SweepPlot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.plots or self.notes or self.missing)


def sweep_views(run: RunData, board: pd.DataFrame, metrics: list[str], names: DisplayNames = PLAIN) -> SweepViews:
    """A figure and points per swept parameter of `run`, from its leaderboard `board` of `metrics`."""
    codecs = set(run.results["codec"]) if not run.results.empty else set()
    scan = run_sweeps(run.config, codecs)
    views = SweepViews(notes=scan.notes)
    if not scan.sweeps:
        return views
    board = pd.concat([board, leaderboard(run, metrics=[RTF], include_cost=True)], ignore_index=True)
    for param in dict.fromkeys(sweep.param for sweep in scan.sweeps):
        sweeps = [sweep for sweep in scan.sweeps if sweep.param == param]
        points = sweep_points(board, sweeps)
        scored = points[(points["role"] == "sweep") & points["mean"].notna()]
        plotted = [m for m in metrics if m in set(scored["metric"])]
        if not plotted:
            views.missing.append(f"no results yet for the sweeps of {param!r}: `evalkit run EXPERIMENT`")
            continue
        views.plots.append(SweepPlot(param, sweeps, points, plotted, sweep_figure(points, plotted, names)))
    return views


def sweep_sections(report: ReportData) -> list[Section]:
    """A 'Parameter sweeps' section when the run holds a sweep; none otherwise."""
    metrics = [m for m in report.metrics if m in set(report.board["metric"])]
    views = sweep_views(report.run, report.board, metrics, report.names)
    if not views.any:
        return []
    section = Section(
        "sweeps",
        "Parameter sweeps",
        "Each metric against the card parameter a sweep varies (values from the run's stored experiment), "
        "one line per swept card, with 95 % CIs; a sweep's baseline codec is the dashed line of its colour. "
        "The table adds the decode real-time factor per value (seconds of decoding per second of audio, timed "
        "in the run: a busy machine inflates it).",
        missing=views.missing,
        notes=views.notes,
    )
    for plot in views.plots:
        caption = f"Quality against {plot.param}; error bars are 95 % CIs."
        section.figures.append(figure_ref(f"sweep-{_slug(plot.param)}", plot.figure, caption))
        section.tables.append(_sweep_table(plot, report.names))
    return [section]


def _sweep_table(plot: SweepPlot, names: DisplayNames) -> Table:
    """Per card and value (then its baseline): each metric's mean with its CI and n, and the decode RTF."""
    columns = ["card", plot.param, *(names.metric(m) for m in plot.metrics), "decode RTF"]
    rows = []
    for sweep in plot.sweeps:
        mine = plot.points[plot.points["card"] == sweep.card]
        for codec, value in sorted(sweep.values.items(), key=lambda pair: value_order(pair[1])):
            rows.append(
                [Cell(names.codec(sweep.card), key=codec), Cell(str(value)), *_cells(mine, codec, plot.metrics)]
            )
        if sweep.baseline:
            label = Cell(f"baseline: {names.codec(sweep.baseline)}", key=sweep.baseline)
            rows.append([Cell(names.codec(sweep.card)), label, *_cells(mine, sweep.baseline, plot.metrics)])
    numeric = [False, False, *([True] * (len(plot.metrics) + 1))]
    caption = f"Quality and decode speed against {plot.param}"
    return Table(f"sweep-{_slug(plot.param)}-table", columns, rows, caption, numeric)


def _cells(points: pd.DataFrame, codec: str, metrics: list[str]) -> list[Cell]:
    return [_stat_cell(points, codec, metric) for metric in [*metrics, RTF]]


def _stat_cell(points: pd.DataFrame, codec: str, metric: str) -> Cell:
    """Mean, with the CI, n and any failed items below it; '–' when nothing was scored."""
    rows = points[(points["codec"] == codec) & (points["metric"] == metric)]
    if rows.empty:
        return Cell("–")
    row = rows.iloc[0]
    failed = int(row["n_failed"])
    sub = f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}] n {int(row['n_ok'])}" + (
        f", {failed} failed" if failed else ""
    )
    exact = None if pd.isna(row["mean"]) else repr(float(row["mean"]))
    return Cell(fmt(row["mean"]), exact, sub)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "param"
