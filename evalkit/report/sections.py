"""The report's sections, in reading order; each holds its tables, its figures or a 'missing' message.

A section that lacks its data (no profiles, no phoneme metric, no MUSHRA test) says what is
missing and which command fills it, rather than failing the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .agreement import condition_level
from .build import ReportData
from .cost import mark_front, quality_points
from .plots import (agreement_figure, bar_figure, cost_figure, family_colors, mushra_figure, rate_quality_figure,
                    svg_data_uri)
from .tables import Table, agreement_display, fmt, frame_table, leaderboard_table

__all__ = ["Section", "FigureRef", "build_sections", "CONTENT_METRICS"]

CONTENT_METRICS = ("per", "hallucinations_per_min")  # outputs of the phoneme metric (issue 5)


@dataclass
class FigureRef:
    id: str
    uri: str
    caption: str


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


def build_sections(report: ReportData) -> list[Section]:
    """Leaderboard, rate-quality, latency, complexity, content, listening test, agreement."""
    colors = family_colors(report.codecs["family"]) if not report.codecs.empty else {}
    quality = [m for m in report.metrics if m not in CONTENT_METRICS]
    return [_leaderboard(report, quality, colors), _rate_quality(report, quality, colors),
            _latency(report, quality, colors), _complexity(report, quality, colors), _content(report, colors),
            _listening(report), _agreement(report)]


def _figure(id: str, figure, caption: str) -> FigureRef:
    return FigureRef(id, svg_data_uri(figure), caption)


def _leaderboard(report: ReportData, quality: list[str], colors: dict) -> Section:
    section = Section("leaderboard", "Leaderboard",
                      "Mean over items with the 95 % confidence interval (Student's t) below each value; "
                      "the best codec per metric is highlighted (test conditions in italics do not compete). "
                      "Click a column header to sort.", tables_first=True)
    if report.board.empty:
        section.missing.append(f"run {report.run.run_id!r} has no metric results yet: `evalkit run EXPERIMENT`")
        return section
    metrics = [m for m in report.metrics if m in set(report.board["metric"])]
    section.tables.append(leaderboard_table(report.board, report.codecs, metrics, metrics[0]))
    if quality:
        section.figures.append(_figure("leaderboard-bars", bar_figure(report.board, quality[0], colors),
                                       f"{quality[0]} per codec (mean, 95 % CI), best at the top."))
    return section


def _points(report: ReportData) -> pd.DataFrame:
    return quality_points(report.board, report.codecs, report.complexity)


def _plottable(report: ReportData, quality: list[str], section: Section) -> pd.DataFrame | None:
    """The quality points to plot, or None once `section` says there are none yet."""
    points = _points(report)
    if points.empty or not quality:
        section.missing.append("no codec results to plot yet: `evalkit run EXPERIMENT`")
        return None
    return points


def _rate_quality(report: ReportData, quality: list[str], colors: dict) -> Section:
    section = Section("rate-quality", "Rate–quality",
                      "Each metric against the bitrate measured from the bytes, one line per codec family. "
                      "The dashed line is the hidden reference; anchors are left out.")
    points = _plottable(report, quality, section)
    if points is None:
        return section
    reference = report.board[report.board["family"] == "reference"].groupby("metric")["mean"].first().to_dict()
    section.figures.append(_figure("rate-quality", rate_quality_figure(points, quality, reference, colors),
                                   "Quality against measured bitrate (log axis); error bars are 95 % CIs."))
    return section


def _latency(report: ReportData, quality: list[str], colors: dict) -> Section:
    section = Section("latency", "Quality vs latency",
                      "Algorithmic latency (frame + lookahead, as each codec declares it and the harness "
                      "checks). Circled codecs form the Pareto front: none is both faster and better.")
    points = _plottable(report, quality, section)
    if points is None:
        return section
    if points["latency_ms"].isna().all():
        section.missing.append("no latency known for these codecs (their cards cannot be built here)")
        return section
    points = mark_front(points[points["latency_ms"].notna()], "latency_ms")
    section.figures.append(_figure("latency", cost_figure(points, "latency_ms", "algorithmic latency (ms)",
                                                          quality, colors), "Quality against latency."))
    section.tables.append(_front_table(points, "latency_ms", "ms", "pareto-latency"))
    return section


def _complexity(report: ReportData, quality: list[str], colors: dict) -> Section:
    section = Section("complexity", "Quality vs complexity",
                      "Encode + decode real-time factor (CPU seconds per second of audio); lower is cheaper.")
    if report.complexity_note:
        section.missing.append(report.complexity_note)
    points = _points(report)
    points = points[points["complexity_rtf"].notna()] if not points.empty else points
    if points.empty or not quality:
        return section
    points = mark_front(points, "complexity_rtf")
    sources = ", ".join(sorted(set(points["complexity_source"])))
    section.figures.append(_figure("complexity", cost_figure(points, "complexity_rtf", "encode + decode RTF",
                                                             quality, colors, log_x=True),
                                   f"Quality against complexity (source: {sources})."))
    section.tables.append(_front_table(points, "complexity_rtf", "RTF", "pareto-complexity"))
    return section


def _front_table(points: pd.DataFrame, cost: str, unit: str, id: str) -> Table:
    """One row per metric: its Pareto front from the cheapest codec to the best."""
    rows = []
    for metric, group in points[points["pareto"]].groupby("metric", sort=False):
        steps = [f"{r.codec} ({fmt(getattr(r, cost))} {unit}, {fmt(r.mean)})"
                 for r in group.sort_values(cost).itertuples()]
        rows.append({"metric": metric, "Pareto front, cheapest first (cost, quality)": " → ".join(steps)})
    return frame_table(pd.DataFrame(rows), id, "Codecs on the Pareto front")


def _content(report: ReportData, colors: dict) -> Section:
    section = Section("content", "Content fidelity",
                      "Phone error rate and hallucination events per minute (phoneme metric): content changes "
                      "that PESQ, ViSQOL and STOI do not see.")
    present = [m for m in CONTENT_METRICS if m in set(report.board["metric"])]
    if not present:
        section.missing.append("no phoneme results: add metric `phoneme` to the experiment and rerun it")
        return section
    for metric in present:
        section.figures.append(_figure(f"content-{metric}", bar_figure(report.board, metric, colors),
                                       f"{metric} per codec (mean, 95 % CI)."))
    if report.events is not None and not report.events.empty:
        counts = report.events.groupby("codec").size().rename("events").reset_index()
        section.tables.append(frame_table(counts, "events", "Stored hallucination events per codec"))
    return section


def _listening(report: ReportData) -> Section:
    section = Section("listening", "Listening test (MUSHRA)",
                      "Listener scores per condition after post-screening, with the objective means of the same "
                      "conditions on the same items.")
    if report.listener_conditions is None:
        section.missing.append(report.mushra_message or "no MUSHRA test")
        return section
    section.figures.append(_figure("mushra", mushra_figure(report.listener_conditions),
                                   f"MUSHRA test {report.listening.test}: mean score with 95 % t interval."))
    section.tables.append(_merged_table(report))
    if report.mushra_message:
        section.notes.append(report.mushra_message)
    return section


def _merged_table(report: ReportData) -> Table:
    scores = report.listener_conditions.set_index("condition")[["n", "mean", "t_low", "t_high"]]
    if report.stimuli is not None and not report.stimuli.empty:
        objective = condition_level(report.stimuli).pivot_table(index="condition", columns="metric", values="value")
        scores = scores.join(objective, how="left")
    frame = scores.sort_values("mean", ascending=False).reset_index()
    return frame_table(frame, "mushra-merged", "MUSHRA mean (t interval) and metric means of the same stimuli",
                       {c: {"n": "ratings", "mean": "MUSHRA", "t_low": "CI low", "t_high": "CI high"}.get(c, c)
                        for c in frame.columns})


def _agreement(report: ReportData) -> Section:
    section = Section("agreement", "Metric–listener agreement",
                      f"Pearson, Spearman and Kendall correlation of each metric with the MUSHRA scores, at "
                      f"condition level (means over items) and stimulus level (item × condition), with "
                      f"95 % percentile bootstrap intervals ({report.n_boot} resamples, seed {report.seed}). "
                      "Lower-is-better metrics correlate negatively when they agree.")
    if report.agreement is None or report.agreement.empty:
        section.missing.append(report.mushra_message or "no listener scores to correlate")
        return section
    for level in ("condition", "stimulus"):
        section.tables.append(agreement_display(report.agreement, level))
    metrics = list(dict.fromkeys(report.agreement["metric"]))
    figure = agreement_figure(report.stimuli, condition_level(report.stimuli), metrics)
    section.figures.append(_figure("agreement", figure, "MUSHRA score against each metric."))
    return section
