"""Assemble everything a report shows about one run (and optionally one MUSHRA test) into ReportData.

The HTML, PDF, LaTeX, CSV and Parquet outputs and the app all read this one structure, so they
cannot disagree about a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from .. import __version__
from ..mushra.omnibus import Omnibus, omnibus
from .agreement import agreement_table, system_level
from .codecinfo import metric_directions
from .compare import best_versus_rest
from .data import RunData, load_run
from .drilldown import read_events
from .leaderboard import codec_table, current_results, leaderboard, metric_order
from .listening import NO_MUSHRA, Listening, condition_scores, load_listening, mushra_tests, stimulus_frame
from .names import DisplayNames
from .pareto import complexity_table

__all__ = [
    "ReportData",
    "ReportOptions",
    "build_report",
    "ListeningAnalysis",
    "analyse_listening",
    "objective_by_condition",
    "no_test_message",
    "N_BOOT",
    "SEED",
]

N_BOOT = 2000  # bootstrap resamples of the agreement intervals
SEED = 0


@dataclass(frozen=True)
class ReportOptions:
    """Choices a reader may make: which conditions agreement uses, P.1401 errors, intervals, names."""

    include_reference: bool = False  # agreement with the hidden reference and anchors too
    p1401: bool = False  # RMSE and RMSE* after a monotonic third-order mapping
    ci: str = "t"  # leaderboard intervals: "t" (clipped to the metric's range) or "bootstrap"
    paired_test: str = "wilcoxon"  # codec comparisons across items: "wilcoxon" or "t"
    names: DisplayNames = field(default_factory=DisplayNames)


@dataclass
class ReportData:
    """One run's leaderboard, costs, content events and listening results, ready to show."""

    run: RunData
    board: pd.DataFrame
    codecs: pd.DataFrame
    metrics: list[str]
    complexity: pd.DataFrame
    complexity_note: str | None
    events: pd.DataFrame | None
    database: str
    listening: Listening | None = None
    mushra_message: str | None = None
    stimuli: pd.DataFrame | None = None
    listener_conditions: pd.DataFrame | None = None
    agreement: pd.DataFrame | None = None
    omnibus: Omnibus | None = None
    comparisons: pd.DataFrame | None = None
    typed: Any = None  # evalkit.report.sections_listening.TypedListening: a test of a type beside MUSHRA
    options: ReportOptions = field(default_factory=ReportOptions)
    n_boot: int = N_BOOT
    seed: int = SEED
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    evalkit_version: str = __version__

    @property
    def names(self) -> DisplayNames:
        return self.options.names


def build_report(
    engine: Engine,
    run_id: str,
    mushra: str | None = None,
    ratings: pd.DataFrame | None = None,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    options: ReportOptions | None = None,
    screening=None,
) -> ReportData:
    """Read and compute everything for run `run_id`; `ratings` stands in for the MUSHRA tables (tests)."""
    options = options or ReportOptions()
    run = load_run(engine, run_id)
    complexity, note = complexity_table(engine, run)
    board = leaderboard(run, ci=options.ci)
    report = ReportData(
        run,
        board,
        codec_table(run),
        metric_order(run),
        complexity,
        note,
        read_events(engine, run_id),
        engine.url.render_as_string(hide_password=True),
        options=options,
        n_boot=n_boot,
        seed=seed,
    )
    report.comparisons = best_versus_rest(current_results(run.results), board, report.metrics, options.paired_test)
    if mushra is None:
        report.mushra_message = no_test_message(engine)
    elif ratings is None and _typed(engine, mushra):
        from .sections_listening import add_typed

        add_typed(report, engine, mushra)
    else:
        _add_listening(report, load_listening(engine, mushra, ratings=ratings, screening=screening))
    return report


def _typed(engine: Engine, name: str) -> bool:
    """Whether listening test `name` exists and is of a type beside MUSHRA (its own sections then)."""
    from .sections_listening import test_type_of

    return test_type_of(engine, name) not in (None, "mushra")


@dataclass
class ListeningAnalysis:
    """Listener scores per condition, the omnibus tests, merged stimuli and their agreement; `message` when incomplete."""

    conditions: pd.DataFrame | None = None
    omnibus: Omnibus | None = None
    stimuli: pd.DataFrame | None = None
    agreement: pd.DataFrame | None = None
    left_out: tuple[str, ...] = ()
    message: str | None = None


def analyse_listening(
    run: RunData,
    listening: Listening,
    metrics: list[str],
    n_boot: int = N_BOOT,
    seed: int = SEED,
    include_reference: bool = False,
    p1401: bool = False,
) -> ListeningAnalysis:
    """Condition scores, omnibus tests, the stimulus frame of `metrics` and the agreement of one test against `run`."""
    if listening.message:
        return ListeningAnalysis(message=listening.message)
    if listening.kept.empty:
        return ListeningAnalysis(
            message=f"post-screening excluded every assessor of MUSHRA test {listening.test!r} (see Methods)"
        )
    setup = listening.setup
    order = [c for c in setup.order() if c in set(listening.kept["condition"])] if setup is not None else None
    analysis = ListeningAnalysis(condition_scores(listening.kept), omnibus(listening.kept, conditions=order))
    left_out = set() if include_reference or setup is None else setup.reference_and_anchors
    analysis.left_out = tuple(sorted(left_out & set(listening.kept["condition"])))
    stimuli = stimulus_frame(
        listening.kept, current_results(run.results), setup.scored_as() if setup is not None else None, left_out
    )
    analysis.stimuli = stimuli[stimuli["metric"].isin(metrics)].reset_index(drop=True)
    if analysis.stimuli.empty:
        analysis.message = (
            f"MUSHRA test {listening.test!r} shares no (item, condition) with run "
            f"{run.run_id!r}: score its conditions on its items in this run, or map its conditions "
            "to codec cards on import (`evalkit ratings import --map`)"
        )
        return analysis
    analysis.agreement = agreement_table(analysis.stimuli, n_boot, seed, p1401=p1401, directions=metric_directions())
    return analysis


def _add_listening(report: ReportData, listening: Listening) -> None:
    report.listening = listening
    analysis = analyse_listening(
        report.run,
        listening,
        report.metrics,
        report.n_boot,
        report.seed,
        report.options.include_reference,
        report.options.p1401,
    )
    report.listener_conditions, report.stimuli, report.omnibus = analysis.conditions, analysis.stimuli, analysis.omnibus
    report.agreement, report.mushra_message = analysis.agreement, analysis.message


def no_test_message(engine: Engine) -> str:
    """What to do when no MUSHRA test is selected: create one, or name one of those there are."""
    tests = mushra_tests(engine)
    if not tests:
        return f"{NO_MUSHRA}, then pass `--mushra NAME` to `evalkit report`"
    return f"no MUSHRA test selected: pass `--mushra NAME` (tests in this database: {', '.join(tests)})"


def objective_by_condition(report: ReportData) -> pd.DataFrame:
    """System level: listener mean next to each metric's mean over the same ratings."""
    if report.stimuli is None or report.stimuli.empty:
        return pd.DataFrame()
    return system_level(report.stimuli)
