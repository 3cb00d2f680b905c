"""What each app page shows, computed here so the pages only lay it out (and AppTest stays thin).

Every view returns frames and matplotlib figures, plus a `message` when its data is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine

from .agreement import system_level
from .build import N_BOOT, SEED, ListeningAnalysis, analyse_listening
from .codecinfo import COST_METRICS
from .data import UNKNOWN_SPEAKER, RunData
from .figures import agreement_figure, cost_figure, family_colors, has_bitrates, rate_quality_figure
from .leaderboard import codec_table, filter_results, leaderboard, leaderboard_wide, metric_order
from .listening import NO_MUSHRA, load_listening, mushra_tests
from .pareto import complexity_table, mark_front, quality_points
from .sections_listening import (
    analyse_typed,
    statistics_figures,
    statistics_tables,
    test_type_of,
    typed_agreement_figure,
    typed_statistics,
)
from .sweeps import SweepViews, sweep_views

__all__ = [
    "FilterOptions",
    "filter_options",
    "leaderboard_view",
    "rate_quality_view",
    "sweep_view",
    "CostView",
    "cost_view",
    "AgreementView",
    "agreement_view",
    "StatisticsView",
    "statistics_view",
    "COST_AXES",
]

# cost axis name -> (points column, axis label, log axis)
COST_AXES = {
    "latency": ("latency_ms", "algorithmic latency (ms)", False),
    "complexity": ("complexity_rtf", "encode + decode real-time factor", True),
}


@dataclass
class FilterOptions:
    datasets: list[str]
    speakers: list[str]
    metrics: list[str]
    notes: list[str] = field(default_factory=list)


def filter_options(run: RunData) -> FilterOptions:
    """Choices for the leaderboard filters: the run's datasets, its manifest's speakers, its metrics."""
    datasets = sorted(run.results["dataset"].dropna().unique().tolist())
    items = set(run.results["item_id"])
    speakers = sorted({run.speakers.get(item, UNKNOWN_SPEAKER) for item in items}) if run.speakers else []
    return FilterOptions(datasets, speakers, metric_order(run, include_cost=True), list(run.notes))


def leaderboard_view(
    run: RunData, datasets=None, speakers=None, metrics=None, sort_by: str | None = None, ascending: bool | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(wide table for display, long table for download) under the filters."""
    board = leaderboard(run, datasets, speakers, metrics, include_cost=bool(set(metrics or ()) & set(COST_METRICS)))
    items = filter_results(run, datasets, speakers)["item_id"].unique()
    return leaderboard_wide(board, codec_table(run, items), sort_by, ascending), board


def rate_quality_view(run: RunData, metrics: list[str]) -> tuple[Figure | None, pd.DataFrame]:
    """The rate-quality figure of `metrics` and its points (None when there is nothing to plot)."""
    board = leaderboard(run, metrics=metrics)
    codecs = codec_table(run)
    points = quality_points(board, codecs)
    if points.empty or not has_bitrates(points):
        return None, points
    reference = board[board["family"] == "reference"].groupby("metric")["mean"].first().to_dict()
    colors = family_colors(codecs["family"])
    return rate_quality_figure(points, [m for m in metrics if m in set(points["metric"])], reference, colors), points


def sweep_view(run: RunData, metrics: list[str]) -> SweepViews:
    """Quality of `metrics` against each swept card parameter of the run (no plots when it holds no sweep)."""
    return sweep_views(run, leaderboard(run, metrics=metrics), metrics)


@dataclass
class CostView:
    figure: Figure | None
    front: pd.DataFrame
    points: pd.DataFrame
    message: str | None = None


def cost_view(engine: Engine, run: RunData, metrics: list[str], axis: str = "latency") -> CostView:
    """Quality against latency or complexity for `metrics`, with the Pareto front per metric."""
    column, label, log_x = COST_AXES[axis]
    complexity, note = complexity_table(engine, run) if axis == "complexity" else (None, None)
    codecs = codec_table(run)
    points = quality_points(leaderboard(run, metrics=metrics), codecs, complexity)
    points = points[points[column].notna()] if not points.empty else points
    if points.empty:
        return CostView(None, points, points, note or f"no {axis} known for these codecs")
    points = mark_front(points, column)
    front = points[points["pareto"]].sort_values(["metric", column])[["metric", "codec", "family", column, "mean"]]
    figure = cost_figure(points, column, label, metrics, family_colors(codecs["family"]), log_x=log_x)
    return CostView(figure, front.reset_index(drop=True), points, note)


@dataclass
class AgreementView:
    tests: list[str]
    analysis: ListeningAnalysis
    figure: Figure | None = None
    excluded: dict[str, str] = field(default_factory=dict)
    screening: str = ""
    title: str = "MUSHRA"  # the test type's title
    # types beside MUSHRA: their statistics as (id, caption, table) and plots as (id, caption, figure)
    statistics: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, str, Figure]] = field(default_factory=list)


def agreement_view(
    engine: Engine,
    run: RunData,
    test: str | None,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    include_reference: bool = False,
) -> AgreementView:
    """Listening test `test` against `run`: its statistics, agreement table and scatter per metric.

    MUSHRA shows its condition scores; the other types their own statistics (MOS, DMOS, CMOS, SDG, preferences,
    ABX identification), as the report does. The hidden reference and anchors are left out of the agreement
    unless `include_reference`.
    """
    tests = mushra_tests(engine)  # every type's tests share the one table
    if test is None:
        return AgreementView(tests, ListeningAnalysis(message=NO_MUSHRA if not tests else "choose a listening test"))
    if test_type_of(engine, test) not in (None, "mushra"):
        return typed_agreement_view(engine, run, test, tests, n_boot, seed, include_reference)
    listening = load_listening(engine, test)
    analysis = analyse_listening(run, listening, metric_order(run), n_boot, seed, include_reference)
    view = AgreementView(tests, analysis, excluded=listening.excluded, screening=listening.screening)
    if analysis.agreement is not None and not analysis.agreement.empty:
        metrics = list(dict.fromkeys(analysis.agreement["metric"]))
        view.figure = agreement_figure(analysis.stimuli, system_level(analysis.stimuli), metrics)
    return view


@dataclass
class StatisticsView:
    """A test of a type beside MUSHRA on its own: the report's tables and plots, and who was left out and why."""

    title: str
    screening: str
    excluded: dict[str, str]
    statistics: list[tuple[str, str, pd.DataFrame]]
    figures: list[tuple[str, str, Figure]]
    message: str | None = None


def statistics_view(engine: Engine, test: str, completed_only: bool = True) -> StatisticsView:
    """Test `test`'s statistics as its report section shows them (MOS, DMOS, CMOS, SDG, preferences, ABX)."""
    from ..listening.analysis import load_test

    loaded = load_test(engine, test, completed_only)
    typed = typed_statistics(loaded)
    return StatisticsView(
        loaded.type.title,
        loaded.describe(),
        loaded.excluded,
        statistics_tables(typed),
        statistics_figures(typed),
        typed.message,
    )


def typed_agreement_view(
    engine: Engine, run: RunData, test: str, tests: list[str], n_boot: int, seed: int, include_reference: bool
) -> AgreementView:
    """A test of a type beside MUSHRA: the report's statistics, plots and agreement for it."""
    from ..listening.analysis import load_test

    loaded = load_test(engine, test)
    typed = analyse_typed(run, loaded, metric_order(run), n_boot, seed, include_reference)
    analysis = ListeningAnalysis(stimuli=typed.stimuli, agreement=typed.agreement, message=typed.message)
    return AgreementView(
        tests,
        analysis,
        typed_agreement_figure(typed),
        loaded.excluded,
        loaded.describe(),
        loaded.type.title,
        statistics_tables(typed),
        statistics_figures(typed),
    )
