"""The methods section and the overview facts: what was measured, with which packages and rates, how tested.

Versions come from the database (roundtrips.packages, results.package/package_version,
roundtrips.codec_version), not from this process, so a report describes the run as it ran.
"""

from __future__ import annotations

import pandas as pd

from ..store.run_results import delay_check
from .build import ReportData
from .codecinfo import COST_METRICS
from .display import frame_table
from .leaderboard import current_results
from .sections import Section

__all__ = ["overview", "methods_section", "package_versions", "sample_rates", "STATISTICS"]

STATISTICS = [
    "Leaderboard means: arithmetic mean over items of the rows with status ok; 95 % confidence interval "
    "mean ± t(0.975, n−1)·s/√n (Student's t) clipped to the range the metric can take (or, with --ci bootstrap, "
    "percentile intervals over items); n < 5 is flagged. Failed and skipped rows are counted, never imputed.",
    "kbit/s: payload bits measured from the bitstream over the seconds of audio, i.e. per-item bitrates weighted "
    "by item duration; its interval is the ratio estimator's.",
    "Codec comparisons: paired over the items both codecs scored, Wilcoxon signed-rank (zero differences "
    "dropped) or paired t, Holm-adjusted over the family of comparisons.",
    "Pareto fronts: a codec is on the front when no other codec has lower or equal cost and better or equal "
    "quality with one of them strictly.",
    "MUSHRA: listener mean per condition (every kept rating once) with the ITU-R BS.1534-3 t interval; "
    "post-screening by the declared rule (see Screening). Omnibus test by design: complete designs get the "
    "repeated-measures ANOVA with Greenhouse–Geisser correction, and the linear mixed model beside it; incomplete "
    "designs the linear mixed model (statsmodels MixedLM, REML; condition fixed, listener and item crossed random "
    "intercepts; Wald χ² test). Pairwise contrasts from the mixed model: Wald z tests, Holm-adjusted.",
    "Agreement: Pearson's r, Spearman's ρ and Kendall's τ-b (scipy.stats), two-sided p-values; system level on "
    "listener means per condition against the metric averaged over the same ratings, stimulus level on listener "
    "means per item × condition. 95 % percentile bootstrap intervals resample items with all their stimuli "
    "(seeded). The hidden reference and anchors are left out unless included on request. Optionally ITU-T P.1401 "
    "RMSE and RMSE* after a monotonic third-order mapping.",
]


def overview(report: ReportData) -> list[tuple[str, str]]:
    """Key facts of the run for the report's header."""
    results = current_results(report.run.results)
    quality = results[~results["metric"].isin(COST_METRICS)]
    counts = quality["status"].value_counts()
    return [
        ("run", report.run.run_id),
        ("dataset", str(report.run.config.get("dataset", "–"))),
        ("items", str(results["item_id"].nunique())),
        ("codecs", str(results["codec"].nunique())),
        ("metrics", ", ".join(report.metrics) or "–"),
        ("results", f"{counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped"),
        ("run created", f"{report.run.created_at:%Y-%m-%d %H:%M} UTC" if report.run.created_at else "–"),
        ("listening test", report.listening.test if report.listening else "–"),
    ]


def package_versions(report: ReportData) -> pd.DataFrame:
    """package, version(s), used for: from round trips (codec side) and results (metric side)."""
    found: dict[str, dict[str, set[str]]] = {}
    for packages in report.run.roundtrips.get("packages", pd.Series(dtype=object)).dropna():
        for name, version in dict(packages).items():
            found.setdefault(name, {}).setdefault(str(version), set()).add("round trips")
    results = current_results(report.run.results).dropna(subset=["package"])
    for row in results[["package", "package_version", "metric"]].drop_duplicates().itertuples():
        found.setdefault(row.package, {}).setdefault(str(row.package_version), set()).add(row.metric)
    rows = [
        {"package": name, "version": version, "used for": ", ".join(sorted(uses))}
        for name, versions in sorted(found.items())
        for version, uses in sorted(versions.items())
    ]
    return pd.DataFrame(rows, columns=["package", "version", "used for"])


def sample_rates(report: ReportData) -> pd.DataFrame:
    """Per metric: the codec output rates it met and the rates it was computed at."""
    results = current_results(report.run.results)
    results = results[~results["metric"].isin(COST_METRICS)]
    rows = [
        {
            "metric": metric,
            "native rates (Hz)": _joined(group["native_rate"]),
            "metric rates (Hz)": _joined(group["metric_rate"]),
        }
        for metric, group in results.groupby("metric", sort=True)
    ]
    return pd.DataFrame(rows, columns=["metric", "native rates (Hz)", "metric rates (Hz)"])


def methods_section(report: ReportData) -> Section:
    section = Section("methods", "Methods")
    section.tables.append(frame_table(package_versions(report), "packages", "Package versions"))
    section.tables.append(frame_table(_codec_versions(report), "codec-versions", "Codec libraries"))
    section.tables.append(frame_table(sample_rates(report), "rates", "Sample rates"))
    section.notes.append(_screening_text(report))
    section.notes += _listening_notes(report)
    if report.listening and report.listening.excluded:
        frame = pd.DataFrame(sorted(report.listening.excluded.items()), columns=["assessor", "reason"])
        section.tables.append(frame_table(frame, "excluded", "Excluded assessors"))
    misaligned = _misaligned(report)
    if not misaligned.empty:
        section.tables.append(
            frame_table(
                misaligned,
                "misaligned",
                "Codecs whose measured delay missed the declared "
                "one (samples; their output was aligned by the declared delay)",
            )
        )
    failures = _failures(report)
    if not failures.empty:
        section.tables.append(frame_table(failures, "failures", "Rows without a value (first reason shown)"))
    section.notes.extend(report.run.notes)
    return section


def _codec_versions(report: ReportData) -> pd.DataFrame:
    trips = current_results(report.run.roundtrips).dropna(subset=["codec_version"])
    frame = trips.groupby("codec")["codec_version"].agg(lambda v: ", ".join(sorted(set(v)))).reset_index()
    return frame.rename(columns={"codec_version": "library and version"})


def _screening_text(report: ReportData) -> str:
    if report.listening is None or report.listening.message:
        return "Screening: no listening test in this report."
    return f"Screening: {report.listening.screening}."


def _listening_notes(report: ReportData) -> list[str]:
    """Where the ratings came from, and the versions of the statistics packages."""
    from importlib.metadata import version

    notes = [
        f"Statistics computed with numpy {version('numpy')}, scipy {version('scipy')} and statsmodels "
        f"{version('statsmodels')}."
    ]
    setup = report.listening.setup if report.listening else None
    if setup is not None and setup.imported:
        files = ", ".join(f"{f['name']} (sha256 {f['sha256'][:12]}…)" for f in setup.imported.get("files", []))
        notes.insert(0, f"Listening test {setup.name!r}: ratings imported from {setup.origin} export {files}.")
    return notes


def _misaligned(report: ReportData) -> pd.DataFrame:
    checks = delay_check(current_results(report.run.roundtrips))
    return checks[checks["misaligned"] > 0].drop(columns="codec_hash")


def _failures(report: ReportData) -> pd.DataFrame:
    results = current_results(report.run.results)
    bad = results[results["status"] != "ok"]
    frame = bad.groupby(["codec", "metric", "status"]).agg(rows=("item_id", "count"), reason=("reason", "first"))
    return frame.reset_index()


def _joined(values: pd.Series) -> str:
    return ", ".join(str(int(v)) for v in sorted(values.dropna().unique())) or "–"
