"""The report's listening-test sections: scores per condition with the omnibus tests and contrasts, and the
agreement between each metric and the listeners."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .agreement import system_level
from .display import Section, Table, agreement_display, figure_ref, fmt_p, frame_table
from .figures import agreement_figure, mushra_figure

if TYPE_CHECKING:  # type only: build loads these sections while it runs
    from .build import ReportData

__all__ = ["listening_section", "agreement_section"]

LISTENER_MEAN = (
    "Listener mean: every kept rating counts once (ITU-R BS.1534-3), so on an incomplete design an "
    "item rated by more listeners weighs more; agreement uses the same mean."
)


def listening_section(report: ReportData) -> Section:
    section = Section(
        "listening",
        "Listening test (MUSHRA)",
        "Listener scores per condition after post-screening, the omnibus test the design calls for, "
        "pairwise contrasts from the mixed model (Holm-adjusted), and the objective means of the same "
        "conditions on the same ratings.",
    )
    if report.listener_conditions is None:
        section.missing.append(report.mushra_message or "no MUSHRA test")
        return section
    names, test = report.names, report.listening.test
    section.figures.append(
        figure_ref(
            "mushra",
            mushra_figure(report.listener_conditions, names),
            f"MUSHRA test {test}: listener mean with 95 % t interval.",
        )
    )
    section.tables.append(_merged_table(report))
    if report.omnibus is not None:
        section.notes.append(
            f"Design: {report.omnibus.design.describe()}; primary omnibus test: {report.omnibus.primary}."
        )
        section.tables.append(
            frame_table(
                report.omnibus.table().assign(p=lambda t: t["p"].map(fmt_p)),
                "omnibus",
                "Omnibus tests of the condition effect (primary first)",
            )
        )
        if report.omnibus.contrasts is not None:
            section.tables.append(_contrast_table(report))
        section.notes += report.omnibus.notes
    section.notes.append(LISTENER_MEAN)
    if report.mushra_message:
        section.notes.append(report.mushra_message)
    return section


def agreement_section(report: ReportData) -> Section:
    section = Section(
        "agreement",
        "Metric–listener agreement",
        f"Pearson, Spearman and Kendall correlation of each metric with the MUSHRA listener means, at "
        f"system level (one point per condition) and stimulus level (item × condition), with 95 % "
        f"percentile bootstrap intervals resampling items ({report.n_boot} resamples, seed "
        f"{report.seed}). Lower-is-better metrics correlate negatively when they agree.",
    )
    if report.agreement is None or report.agreement.empty:
        section.missing.append(report.mushra_message or "no listener scores to correlate")
        return section
    for level in ("system", "stimulus"):
        section.tables.append(agreement_display(report.agreement, level, report.names))
    left_out = sorted(set(report.listening.kept["condition"]) - set(report.stimuli["condition"]))
    if report.options.include_reference:
        section.notes.append("The hidden reference and the anchors are included (--include-reference).")
    elif left_out:
        section.notes.append(
            f"Left out: {', '.join(left_out)} (hidden reference, anchors, or conditions without "
            "metric values); pass `--include-reference` to keep the reference and anchors."
        )
    if report.options.p1401:
        section.notes.append(
            "RMSE and RMSE* (ITU-T P.1401, on the 0–100 scale) after a monotonic third-order "
            "mapping of the metric onto the listener means; d = 4 mapping parameters; RMSE* ignores "
            "errors inside each point's 95 % interval of its ratings. NaN below 5 points."
        )
    metrics = list(dict.fromkeys(report.agreement["metric"]))
    figure = agreement_figure(report.stimuli, system_level(report.stimuli), metrics, report.names)
    section.figures.append(figure_ref("agreement", figure, "MUSHRA listener mean against each metric."))
    return section


def _merged_table(report: ReportData) -> Table:
    columns = ["n", "assessors", "mean", "t_low", "t_high"]
    scores = report.listener_conditions.set_index("condition")[columns]
    if report.stimuli is not None and not report.stimuli.empty:
        objective = system_level(report.stimuli).pivot_table(index="condition", columns="metric", values="value")
        scores = scores.join(objective.rename(columns=lambda m: report.names.metric(m)), how="left")
    frame = scores.sort_values("mean", ascending=False).reset_index()
    frame["condition"] = frame["condition"].map(report.names.codec)
    labels = {"n": "ratings", "assessors": "listeners", "mean": "MUSHRA", "t_low": "CI low", "t_high": "CI high"}
    return frame_table(
        frame,
        "mushra-merged",
        "Listener mean (t interval) and metric means over the same ratings",
        {c: labels.get(c, c) for c in frame.columns},
    )


def _contrast_table(report: ReportData) -> Table:
    names = report.names
    table = report.omnibus.contrasts
    frame = pd.DataFrame(
        {
            "a": table["a"].map(names.codec),
            "b": table["b"].map(names.codec),
            "estimate": table["estimate"],
            "ci_low": table["ci_low"],
            "ci_high": table["ci_high"],
            "p": table["p_adjusted"].map(fmt_p),
            "differs": table["significant"].map({True: "yes", False: "no"}),
        }
    )
    return frame_table(
        frame,
        "contrasts",
        "Pairwise contrasts from the mixed model (a − b, Wald 95 % CI, Holm)",
        {
            "a": "a",
            "b": "b",
            "estimate": "a − b",
            "ci_low": "CI low",
            "ci_high": "CI high",
            "p": "p (Holm)",
            "differs": "differs (α 0.05)",
        },
    )
