"""What several commands print alike: run summaries, outcomes, warnings; and the refusal to overwrite a file."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EvalkitError


def refuse_overwrite(path: str, force: bool) -> None:
    if Path(path).exists() and not force:
        raise EvalkitError(f"{path} exists; pass --force to overwrite it")


def num(value) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def current_summary(engine, run_id: str, results=None):
    """The run's summary for each codec's newest configuration and each metric's newest version,
    as the leaderboard shows it: an edited card's earlier rows stay stored (`results --long`) but
    are not listed beside the new ones under the same name."""
    from ..report.leaderboard import current_results
    from ..report.names import metric_ranges
    from ..store import results_frame, summary

    results = results_frame(engine, run_id) if results is None else results
    table = summary(engine, run_id, bounds=metric_ranges())
    if results.empty:
        return table
    keys = ["codec", "codec_hash", "metric", "metric_version"]
    return table.merge(current_results(results)[keys].drop_duplicates(), on=keys).reset_index(drop=True)


def summary_text(frame, duration_weighted: bool = True) -> str:
    """The summary table and a note on its intervals (and on kbit/s, when it is there: stored runs
    weight it by item duration, files scored in memory do not)."""
    from ..text_tables import format_table

    if frame.empty:
        return "no results"
    rows = [
        [
            r.codec,
            r.metric,
            f"{r.n_ok}/{r.n_ok + r.n_failed + r.n_skipped}" + (" (n<5)" if r.n_ok < 5 else ""),
            num(r.mean),
            f"[{num(r.ci_low)}, {num(r.ci_high)}]",
        ]
        for r in frame.itertuples()
    ]
    kbps = "" if "bitrate_kbps" not in set(frame["metric"]) else "bitrate_kbps duration-weighted; "
    if kbps and not duration_weighted:
        kbps = "bitrate_kbps a plain mean over items; "
    note = (
        f"\nCIs: Student's t clipped to each metric's range; {kbps}(n<5): fewer than 5 items, the interval says little"
    )
    return format_table(["codec", "metric", "ok", "mean", "95% CI"], rows) + note


def warn_misaligned(engine, run_id: str | None) -> None:
    from ..store import delay_check, roundtrips_frame
    from ..text_tables import misalignment_warnings

    for line in misalignment_warnings(delay_check(roundtrips_frame(engine, run_id))):
        print(line, file=sys.stderr)


def metric_rows(frame, keep: tuple[str, ...] = ()):
    """The metric rows (cost rows say nothing new about one folder of files), and the cost rows in `keep`."""
    from ..tasks import COST_METRICS

    dropped = [name for name in COST_METRICS if name not in keep]
    return frame[~frame["metric"].isin(dropped)] if not frame.empty else frame


def report_outcome(frame, run: str) -> int:
    """Print the run's warnings, the alignment found and, when many rows failed, why; 1 when
    no row (of the requested metrics, when there are any) succeeded."""
    from ..text_tables import alignment_lines, failure_summary, warning_lines

    for line in warning_lines(frame.attrs.get("warnings", {})) + alignment_lines(frame):
        print(line, file=sys.stderr)
    for line in failure_summary(frame, run):
        print(line, file=sys.stderr)
    scored = metric_rows(frame)
    rows = scored if not scored.empty else frame
    if rows.empty or not (rows["status"] == "ok").any():
        print(f"evalkit: error: no row of run {run!r} succeeded", file=sys.stderr)
        return 1
    return 0
