"""The report's sections for listening tests of the types beside MUSHRA: each type's statistics with its plot, and
the agreement of its scores with the objective metrics where the type gives a score per stimulus.

- ACR, DCR: MOS / DMOS bars with 95 % t intervals; CCR: CMOS bars; BS.1116: SDG bars.
- AB: the preference table (Wilson intervals, binomial p), Bradley-Terry strengths and the preference matrix.
- ABX: correct identifications per pair of conditions and per listener, with one-sided binomial p.
- Agreement (score types): Pearson, Spearman and Kendall of the type's score (MOS, DMOS, CMOS, SDG) with each
  metric at system and stimulus level, by evalkit.report.agreement, as for MUSHRA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine, select

from .agreement import agreement_table, system_level
from .codecinfo import metric_directions
from .display import Section, agreement_display, figure_ref, frame_table
from .figures import agreement_figure, preference_matrix_figure, score_figure
from .leaderboard import current_results
from .listening import Listening, stimulus_frame
from .names import DisplayNames

if TYPE_CHECKING:
    from .build import ReportData

__all__ = [
    "SCORES",
    "TypedListening",
    "ab_section",
    "abx_section",
    "acr_section",
    "add_typed",
    "analyse_typed",
    "bs1116_section",
    "ccr_section",
    "dcr_section",
    "listening_sections",
    "score_section",
    "statistics_figures",
    "statistics_tables",
    "test_type_of",
    "typed_agreement_figure",
    "typed_statistics",
]

# Per score type: the table analyse() returns, its value column, the axis label, the axis range and the bars' base.
SCORES = {
    "acr": ("mos", "mos", "MOS (1 Bad to 5 Excellent; mean, 95 % CI)", (1.0, 5.0), 1.0),
    "dcr": ("dmos", "dmos", "DMOS (1 very annoying to 5 inaudible; mean, 95 % CI)", (1.0, 5.0), 1.0),
    "ccr": (
        "cmos",
        "cmos",
        "CMOS against the reference (-3 much worse to +3 much better; mean, 95 % CI)",
        (-3.0, 3.0),
        0.0,
    ),
    "bs1116": (
        "sdg",
        "sdg",
        "SDG: coded minus hidden reference (0 transparent, -4 very annoying; mean, 95 % CI)",
        (-4.0, 1.0),
        0.0,
    ),
}


@dataclass
class TypedListening:
    """A test of a type beside MUSHRA: its loaded responses, the type's tables, and its agreement with the run."""

    loaded: Any  # evalkit.listening.analysis.LoadedTest
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    stimuli: pd.DataFrame | None = None
    agreement: pd.DataFrame | None = None
    message: str | None = None  # why a part is missing

    @property
    def name(self) -> str:
        return self.loaded.type.name


def test_type_of(engine: Engine, name: str) -> str | None:
    """The type of listening test `name`, or None when there is no such test (or no listening tables)."""
    from ..store.models_mushra import MushraTest
    from .data import table_exists

    if not table_exists(engine, "mushra_tests"):
        return None
    with engine.connect() as connection:
        return connection.execute(select(MushraTest.test_type).where(MushraTest.name == name)).scalar()


test_type_of.__test__ = False  # a library function, not a pytest test


def add_typed(report: ReportData, engine: Engine, name: str) -> None:
    """Load test `name` (any type but MUSHRA) into the report: statistics, screening and agreement."""
    from ..listening.analysis import load_test

    loaded = load_test(engine, name)
    report.listening = Listening(
        name, loaded.frame, loaded.kept, loaded.excluded, loaded.describe(), setup=loaded.setup
    )
    report.typed = analyse_typed(
        report.run, loaded, report.metrics, report.n_boot, report.seed, report.options.include_reference
    )


def analyse_typed(
    run, loaded, metrics: list[str], n_boot: int, seed: int, include_reference: bool = False
) -> TypedListening:
    """The type's tables over the kept responses and, for score types, the agreement with `run`'s metrics."""
    title = loaded.type.title
    typed = typed_statistics(loaded)
    if not typed.tables:
        return typed
    scores = loaded.type.agreement_scores(loaded.kept, loaded.setup)
    if scores is None and "bradley_terry" in typed.tables:
        typed.agreement = strength_agreement(typed.tables["bradley_terry"], run.results, loaded, metrics)
        typed.message = (
            None
            if not typed.agreement.empty
            else (f"{title} test {loaded.name!r} shares no (item, condition) with run {run.run_id!r}")
        )
        return typed
    if scores is None:
        typed.message = f"{title} answers are choices: no score per stimulus to correlate with the metrics"
        return typed
    setup = loaded.setup
    leave_out = set() if include_reference else setup.reference_and_anchors
    stimuli = stimulus_frame(scores, current_results(run.results), setup.scored_as(), leave_out)
    typed.stimuli = stimuli[stimuli["metric"].isin(metrics)].reset_index(drop=True)
    if typed.stimuli.empty:
        typed.message = (
            f"{title} test {loaded.name!r} shares no (item, condition) with run {run.run_id!r}: score "
            "its conditions on its items in this run"
        )
        return typed
    typed.agreement = agreement_table(typed.stimuli, n_boot, seed, directions=metric_directions())
    return typed


def typed_statistics(loaded) -> TypedListening:
    """The type's tables over the kept responses (no run needed); `message` says why there are none."""
    if loaded.kept.empty:
        why = "no completed sessions yet" if loaded.frame.empty else "every listener was rejected or screened out"
        return TypedListening(loaded, message=f"{loaded.type.title} test {loaded.name!r}: {why}")
    return TypedListening(loaded, loaded.type.analyse(loaded.kept, loaded.setup))


def strength_agreement(strengths: pd.DataFrame, results: pd.DataFrame, loaded, metrics: list[str]) -> pd.DataFrame:
    """System level only: each condition's Bradley-Terry strength against its metric mean over the test's items;
    Spearman and Kendall on the strengths, Pearson on their log (conditions that never won left out of it)."""
    from .agreement import AGREEMENT_COLUMNS, correlate

    items = set(loaded.kept["item"])
    scored_as = loaded.setup.scored_as()
    ok = current_results(results)
    ok = ok[(ok["status"] == "ok") & ok["item_id"].isin(items) & ok["metric"].isin(metrics)]
    means = ok.groupby(["metric", "codec"])["value"].mean()
    rows = []
    for metric in [m for m in metrics if m in set(ok["metric"])]:
        points = strengths.assign(
            value=[means.get((metric, scored_as.get(c, c)), float("nan")) for c in strengths["condition"]]
        ).dropna(subset=["value"])
        if len(points) < 3:
            continue
        finite = points[points["strength"] > 0]
        for method, frame, column in (
            ("pearson", finite, "log_strength"),
            ("spearman", points, "strength"),
            ("kendall", points, "strength"),
        ):
            r, p = correlate(frame["value"].to_numpy(float), frame[column].to_numpy(float), method)
            rows.append(
                {
                    "metric": metric,
                    "level": "system",
                    "method": method,
                    "n": len(frame),
                    "items": len(items),
                    "r": r,
                    "ci_low": float("nan"),
                    "ci_high": float("nan"),
                    "p_value": p,
                }
            )
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def listening_sections(report: ReportData) -> list[Section]:
    """The listening test's section and the agreement section: MUSHRA's, or those of the test's type."""
    from .sections_mushra import agreement_section, listening_section

    if report.typed is None:
        return [listening_section(report), agreement_section(report)]
    return [report.typed.loaded.type.report_section(report), typed_agreement_section(report)]


def _section(report: ReportData, lead: str) -> tuple[Section, TypedListening]:
    typed = report.typed
    section = Section("listening", f"Listening test ({typed.loaded.type.title})", lead)
    if not typed.tables:
        section.missing.append(typed.message or "no responses")
    section.notes.append(f"Screening: {typed.loaded.describe()}.")
    return section, typed


# The type's tables in reading order (the keys its analyse() returns) and their captions.
TABLE_CAPTIONS = {
    "mos": "MOS per condition (t-based 95 % CI)",
    "dmos": "DMOS per condition (t-based 95 % CI)",
    "cmos": "CMOS per condition (t-based 95 % CI)",
    "sdg": "SDG per condition (t-based 95 % CI)",
    "preferences": "Preference per pair (share: the first preferred)",
    "bradley_terry": "Bradley-Terry strengths (sum to 1) of the decided answers",
    "by_pair": "Correct identifications per pair of conditions",
    "by_listener": "Correct identifications per listener and pair",
}
SCREENING_CAPTION = (
    "Post-screening per listener: mean SDG, one-sided t-test p, share of trials "
    "with the hidden reference graded below the coded signal"
)
CONDITION_COLUMNS = ("condition", "first", "second")


def statistics_tables(typed: TypedListening, names: DisplayNames | None = None) -> list[tuple[str, str, pd.DataFrame]]:
    """The type's statistics as (table id, caption, frame with conditions' display names), in reading order, then
    BS.1116's post-screening table: what the report, the app and `evalkit ratings stats` show."""
    codec = (names or DisplayNames()).codec
    shown = []
    for key in [k for k in TABLE_CAPTIONS if k in typed.tables]:
        table = typed.tables[key]
        renamed = {c: table[c].map(codec) for c in CONDITION_COLUMNS if c in table.columns}
        shown.append((f"{typed.name}-{key.replace('_', '-')}", TABLE_CAPTIONS[key], table.assign(**renamed)))
    screening = typed.loaded.screening
    if typed.name == "bs1116" and screening is not None and not screening.table.empty:
        shown.append(("bs1116-screening", SCREENING_CAPTION, screening.table))
    return shown


def statistics_figures(typed: TypedListening, names: DisplayNames | None = None) -> list[tuple[str, str, Figure]]:
    """The type's plots as (figure id, caption, figure): score bars with CIs, or AB's preference matrix."""
    from ..listening.preferences import preference_matrix

    names = names or DisplayNames()
    title, test = typed.loaded.type.title, typed.loaded.name
    if typed.name in SCORES and typed.tables:
        key, value, label, limits, base = SCORES[typed.name]
        figure = score_figure(typed.tables[key], value, label, limits, base, names)
        return [(f"{typed.name}-{key}", f"{title} test {test}: {label}.", figure)]
    if typed.name == "ab" and typed.tables:
        figure = preference_matrix_figure(preference_matrix(typed.loaded.kept), names)
        caption = f"AB test {test}: share of decided answers preferring the row's condition over the column's."
        return [("ab-preference-matrix", caption, figure)]
    return []


def type_section(report: ReportData, lead: str) -> Section:
    """A type's section: its statistics tables and plots (statistics_tables, statistics_figures)."""
    section, typed = _section(report, lead)
    if not typed.tables:
        return section
    for id, caption, table in statistics_tables(typed, report.names):
        section.tables.append(frame_table(table, id, caption))
    for id, caption, figure in statistics_figures(typed, report.names):
        section.figures.append(figure_ref(id, figure, caption))
    return section


score_section = type_section  # the score types' sections: bars per condition with 95 % t intervals, and tables


def acr_section(report: ReportData) -> Section:
    return type_section(
        report,
        "Mean opinion score per condition over the kept ratings (ITU-T P.800 absolute "
        "category rating), with Student's t 95 % intervals over the ratings.",
    )


def dcr_section(report: ReportData) -> Section:
    return type_section(
        report,
        "Degradation mean opinion score per condition (ITU-T P.800 degradation category "
        "rating against the reference), with Student's t 95 % intervals over the ratings.",
    )


def ccr_section(report: ReportData) -> Section:
    return type_section(
        report,
        "Comparison mean opinion score per condition against the reference (ITU-T P.800 "
        "comparison category rating, order randomised and sign-corrected), with Student's "
        "t 95 % intervals; below 0 the condition sounds worse than the reference.",
    )


def bs1116_section(report: ReportData) -> Section:
    return type_section(
        report,
        "Subjective difference grade per condition (ITU-R BS.1116-3: grade of the coded "
        "signal minus grade of the hidden reference on the same page), with Student's t "
        "95 % intervals over trials, after post-screening on hidden-reference "
        "identification.",
    )


def ab_section(report: ReportData) -> Section:
    return type_section(
        report,
        "Preferences per pair of conditions: wins, no-preference answers, the share "
        "of decided answers with a Wilson 95 % interval and the two-sided binomial p "
        "against 50 %; with three or more conditions, Bradley-Terry strengths and the "
        "preference matrix.",
    )


def abx_section(report: ReportData) -> Section:
    return type_section(
        report,
        "ABX identification: correct answers per pair of conditions and per listener, "
        "with the one-sided binomial p of doing as well by guessing (50 %).",
    )


def typed_agreement_section(report: ReportData) -> Section:
    typed = report.typed
    key = SCORES[typed.name][0] if typed.name in SCORES else None
    section = Section(
        "agreement",
        "Metric–listener agreement",
        f"Pearson, Spearman and Kendall correlation of each metric with the listeners' "
        f"{(key or 'score').upper()}, at system level (one point per condition) and stimulus level "
        f"(item × condition), with 95 % percentile bootstrap intervals resampling items "
        f"({report.n_boot} resamples, seed {report.seed}). Lower-is-better metrics correlate "
        "negatively when they agree.",
    )
    if typed.agreement is None or typed.agreement.empty:
        section.missing.append(typed.message or "no listener scores to correlate")
        return section
    if typed.stimuli is None:  # AB: Bradley-Terry strengths, one point per condition
        section.lead = (
            "Pearson (on log strength), Spearman and Kendall correlation of each metric's mean over the "
            "test's items with the conditions' Bradley-Terry strengths (system level, no interval: "
            "too few points to resample). Lower-is-better metrics correlate negatively when they agree."
        )
        section.tables.append(agreement_display(typed.agreement, "system", report.names))
        return section
    for level in ("system", "stimulus"):
        section.tables.append(agreement_display(typed.agreement, level, report.names))
    figure = typed_agreement_figure(typed, report.names)
    section.figures.append(
        figure_ref("agreement", figure, f"Listeners' {(key or 'score').upper()} against each metric.")
    )
    return section


def typed_agreement_figure(typed: TypedListening, names: DisplayNames | None = None) -> Figure | None:
    """Per metric: the type's score against the metric, stimuli faint and condition means labelled (None for
    the choice types, which have no score per stimulus)."""
    if typed.stimuli is None or typed.agreement is None or typed.agreement.empty:
        return None
    key = SCORES[typed.name][0] if typed.name in SCORES else "score"
    limits = SCORES[typed.name][3] if typed.name in SCORES else None
    metrics = list(dict.fromkeys(typed.agreement["metric"]))
    stimuli = typed.stimuli
    return agreement_figure(
        stimuli, system_level(stimuli), metrics, names or DisplayNames(), ylabel=key.upper(), ylim=limits
    )
