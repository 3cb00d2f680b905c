"""The report's sections, in reading order; each holds its tables, its figures or a 'missing' message.

A section that lacks its data (no profiles, no phoneme metric, no MUSHRA test) says what is
missing and which command fills it, rather than failing the report.
"""

from __future__ import annotations

import pandas as pd

from .build import ReportData
from .display import SMALL_N_MARK, FigureRef, Section, Table, figure_ref, fmt, fmt_p, frame_table, leaderboard_table
from .figures import bar_figure, cost_figure, family_colors, has_bitrates, rate_quality_figure
from .leaderboard import SMALL_N, coverage_gaps, current_results
from .pareto import mark_front, quality_points

__all__ = ["Section", "FigureRef", "build_sections", "figure_ref", "CONTENT_METRICS"]

CONTENT_METRICS = ("per", "hallucinations_per_min")  # outputs of the phoneme metric (issue 5)


def build_sections(report: ReportData) -> list[Section]:
    """Leaderboard, codec comparisons, rate-quality, latency, complexity, content, listening test, agreement."""
    from .sections_listening import listening_sections
    from .sweeps import sweep_sections

    colors = family_colors(report.codecs["family"]) if not report.codecs.empty else {}
    quality = [m for m in report.metrics if m not in CONTENT_METRICS]
    return [
        _leaderboard(report, quality, colors),
        _comparisons(report),
        _rate_quality(report, quality, colors),
        *sweep_sections(report),
        _latency(report, quality, colors),
        _complexity(report, quality, colors),
        _content(report, colors),
        *listening_sections(report),
    ]


def _leaderboard(report: ReportData, quality: list[str], colors: dict) -> Section:
    interval = (
        "percentile bootstrap over items (2000 resamples, seed 0)"
        if report.options.ci == "bootstrap"
        else "Student's t, clipped to the metric's range"
    )
    section = Section(
        "leaderboard",
        "Leaderboard",
        f"Mean over items with its 95 % confidence interval ({interval}) and the number of items n "
        f"below each value; {SMALL_N_MARK} marks n < {SMALL_N}, where an interval says little. The "
        "best codec per metric is highlighted (test conditions in italics do not compete). kbit/s is "
        "measured from the bitstream, duration-weighted over items.",
        tables_first=True,
    )
    if report.board.empty:
        section.missing.append(f"run {report.run.run_id!r} has no metric results yet: `evalkit run EXPERIMENT`")
        return section
    section.notes += coverage_gaps(current_results(report.run.results))
    metrics = [m for m in report.metrics if m in set(report.board["metric"])]
    section.tables.append(leaderboard_table(report.board, report.codecs, metrics, metrics[0], report.names))
    if quality:
        name = report.names.metric(quality[0])
        section.figures.append(
            figure_ref(
                "leaderboard-bars",
                bar_figure(report.board, quality[0], colors, report.names),
                f"{name} per codec (mean, 95 % CI), best at the top.",
            )
        )
    return section


def _comparisons(report: ReportData) -> Section:
    test = "Wilcoxon signed-rank" if report.options.paired_test == "wilcoxon" else "paired t"
    section = Section(
        "comparisons",
        "Codec comparisons",
        f"Per metric, the best codec against each other codec on the items both scored ({test} test "
        "across items, Holm-adjusted within each metric). `evalkit results --compare A B` compares any "
        "two codecs.",
    )
    table = report.comparisons
    if table is None or table.empty:
        section.missing.append("fewer than two codecs with results per metric: nothing to compare")
        return section
    frame = table.assign(
        metric=table["metric"].map(lambda m: report.names.metric(m, unit=False)),
        a=table["a"].map(report.names.codec),
        b=table["b"].map(report.names.codec),
        p=table["p_adjusted"].map(fmt_p),
        significant=table["significant"].map({True: "yes", False: "no"}),
    )
    columns = {
        "metric": "metric",
        "a": "best",
        "b": "against",
        "n": "items",
        "mean_diff": "mean difference",
        "median_diff": "median difference",
        "p": "p (Holm)",
        "significant": "differs (α 0.05)",
    }
    section.tables.append(frame_table(frame, "codec-comparisons", "Best codec against each other codec", columns))
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
    section = Section(
        "rate-quality",
        "Rate–quality",
        "Each metric against the bitrate measured from the bytes (duration-weighted kbit/s), one line "
        "per codec family. The dashed line is the hidden reference; anchors are left out.",
    )
    points = _plottable(report, quality, section)
    if points is None:
        return section
    if not has_bitrates(points):
        section.missing.append(
            "no measured bitrate for these codecs (no round trips stored for the run): "
            "rerun it with `evalkit run EXPERIMENT`"
        )
        return section
    reference = report.board[report.board["family"] == "reference"].groupby("metric")["mean"].first().to_dict()
    figure = rate_quality_figure(points, quality, reference, colors, report.names)
    section.figures.append(
        figure_ref("rate-quality", figure, "Quality against measured bitrate (log axis); error bars are 95 % CIs.")
    )
    return section


def _latency(report: ReportData, quality: list[str], colors: dict) -> Section:
    section = Section(
        "latency",
        "Quality vs latency",
        "Algorithmic latency (frame + lookahead, as each codec declares it and the harness "
        "checks). Circled codecs form the Pareto front: none is both faster and better.",
    )
    points = _plottable(report, quality, section)
    if points is None:
        return section
    if points["latency_ms"].isna().all():
        section.missing.append("no latency known for these codecs (their cards cannot be built here)")
        return section
    points = mark_front(points[points["latency_ms"].notna()], "latency_ms")
    figure = cost_figure(points, "latency_ms", "algorithmic latency (ms)", quality, colors, names=report.names)
    section.figures.append(figure_ref("latency", figure, "Quality against latency."))
    section.tables.append(_front_table(report, points, "latency_ms", "ms", "pareto-latency"))
    return section


def _complexity(report: ReportData, quality: list[str], colors: dict) -> Section:
    section = Section(
        "complexity",
        "Quality vs complexity",
        "Encode + decode real-time factor (CPU seconds per second of audio); lower is cheaper.",
    )
    if report.complexity_note:
        section.missing.append(report.complexity_note)
    points = _points(report)
    points = points[points["complexity_rtf"].notna()] if not points.empty else points
    if points.empty or not quality:
        return section
    points = mark_front(points, "complexity_rtf")
    sources = ", ".join(sorted(set(points["complexity_source"])))
    figure = cost_figure(
        points, "complexity_rtf", "encode + decode RTF", quality, colors, log_x=True, names=report.names
    )
    section.figures.append(figure_ref("complexity", figure, f"Quality against complexity (source: {sources})."))
    section.tables.append(_front_table(report, points, "complexity_rtf", "RTF", "pareto-complexity"))
    return section


def _front_table(report: ReportData, points: pd.DataFrame, cost: str, unit: str, id: str) -> Table:
    """One row per metric: its Pareto front from the cheapest codec to the best."""
    rows = []
    for metric, group in points[points["pareto"]].groupby("metric", sort=False):
        steps = [
            f"{report.names.codec(r.codec)} ({fmt(getattr(r, cost))} {unit}, {fmt(r.mean)})"
            for r in group.sort_values(cost).itertuples()
        ]
        rows.append(
            {"metric": report.names.metric(metric), "Pareto front, cheapest first (cost, quality)": " → ".join(steps)}
        )
    return frame_table(pd.DataFrame(rows), id, "Codecs on the Pareto front")


def _content(report: ReportData, colors: dict) -> Section:
    section = Section(
        "content",
        "Content fidelity",
        "Phone error rate and hallucination events per minute (phoneme metric): content changes "
        "that PESQ, ViSQOL and STOI do not see.",
    )
    present = [m for m in CONTENT_METRICS if m in set(report.board["metric"])]
    if not present:
        section.missing.append("no phoneme results: add metric `phoneme` to the experiment and rerun it")
        return section
    for metric in present:
        section.figures.append(
            figure_ref(
                f"content-{metric}",
                bar_figure(report.board, metric, colors, report.names),
                f"{report.names.metric(metric)} per codec (mean, 95 % CI).",
            )
        )
    if report.events is not None and not report.events.empty:
        counts = report.events.groupby("codec").size().rename("events").reset_index()
        section.tables.append(frame_table(counts, "events", "Stored hallucination events per codec"))
    return section
