"""`evalkit results`, `report`, `config` and `app`: read stored results back, as tables, files or the app."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import EvalkitError
from .common import current_summary, num, refuse_overwrite, summary_text, warn_misaligned


def cmd_results(args) -> int:
    """Per codec × metric: mean and 95 % confidence interval; optional CSV/Parquet export or a paired comparison."""
    from ..report.data import list_runs
    from ..report.names import metric_ranges
    from ..store import connect, export, results_frame, summary

    engine = connect(args.database, create=False)
    if args.run:
        _require_run(engine, args.run)
    if args.compare:
        return _compare(engine, args)
    runs = [args.run] if args.run else list_runs(engine)
    if args.export:
        refuse_overwrite(args.export, args.force)
        frame = results_frame(engine, args.run) if args.long else _summaries(engine, runs, metric_ranges())
        print(f"wrote {export(frame, args.export)}")
        return 0
    if args.long:
        print(_long_text(results_frame(engine, args.run), all_runs=not args.run))
        return 0
    if len(runs) > 1:  # one table per run: pooling runs would count an item scored twice as two
        print("\n\n".join(f"run {run}:\n{summary_text(current_summary(engine, run))}" for run in runs))
        return 0
    table = current_summary(engine, args.run) if args.run else summary(engine, None, bounds=metric_ranges())
    print(summary_text(table))
    warn_misaligned(engine, args.run)
    if args.run:
        from ..store import run_warnings
        from ..text_tables import warning_lines

        for line in warning_lines(run_warnings(engine, args.run)):
            print(line, file=sys.stderr)
        _warn_coverage(engine, args.run)
    return 0


def _warn_coverage(engine, run: str) -> None:
    """Warn about codecs missing some of the run's items (a run stopped part way)."""
    from ..report.leaderboard import coverage_gaps, current_results
    from ..store import results_frame

    for gap in coverage_gaps(current_results(results_frame(engine, run))):
        print(f"warning: {gap}", file=sys.stderr)


def _summaries(engine, runs: list[str], bounds):
    """The summary of one run, or of several, each row with its run's name (never pooled across runs)."""
    import pandas as pd

    from ..store import summary

    if len(runs) <= 1:
        return summary(engine, runs[0] if runs else None, bounds=bounds)
    return pd.concat([summary(engine, run, bounds=bounds).assign(run_id=run) for run in runs], ignore_index=True)


def _require_run(engine, run: str) -> None:
    from ..report.data import list_runs

    known = list_runs(engine)
    if run not in known:
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "") if known else "none yet"
        raise EvalkitError(
            f"no run named {run!r} in {engine.url.render_as_string(hide_password=True)}; runs there: {shown}"
        )


def _long_text(frame, all_runs: bool) -> str:
    """Every result row, one line each (`results --long` without --export)."""
    from ..text_tables import format_table

    if frame.empty:
        return "no results"
    columns = (["run_id"] if all_runs else []) + ["codec", "item_id", "metric", "status"]
    rows = [[*(getattr(r, c) for c in columns), num(r.value), _short(r.reason)] for r in frame.itertuples()]
    return format_table(columns + ["value", "reason"], rows)


def _short(text, width: int = 80) -> str:
    text = "" if text is None or text != text else str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _compare(engine, args) -> int:
    """`results --compare A B`: paired tests across items, per metric, Holm over the metrics."""
    from ..report.compare import compare_codecs, comparison_text
    from ..report.leaderboard import current_results
    from ..store import results_frame

    if not args.run:
        raise EvalkitError("--compare needs --run: the codecs are compared on that run's items")
    results = current_results(results_frame(engine, args.run))
    table = compare_codecs(results, args.compare[0], args.compare[1], args.metric, args.paired_test)
    print(comparison_text(table))
    return 0


def cmd_config(args) -> int:
    """Write a commented starter experiment."""
    from ..experiment import starter_config

    if args.output == "-":
        print(starter_config(Path.cwd()), end="")
        return 0
    refuse_overwrite(args.output, args.force)
    Path(args.output).write_text(starter_config(Path(args.output).absolute().parent))
    print(f"wrote {args.output}; edit it, then: evalkit run {args.output}")
    return 0


def cmd_report(args) -> int:
    """One self-contained report of a run (HTML, PDF, LaTeX, CSV or Parquet); nothing overwritten without --force."""
    from ..report import build_report, write_report
    from ..report.build import ReportOptions
    from ..report.export import format_for, write_figures
    from ..report.names import load_names
    from ..store import connect

    fmt = format_for(args.output, args.format)  # a bad format or an existing file fails before any work
    refuse_overwrite(args.output, args.force)
    if args.figures and Path(args.figures).exists() and not Path(args.figures).is_dir():
        raise EvalkitError(f"--figures {args.figures}: is a file; give a folder (made when missing)")
    options = ReportOptions(args.include_reference, args.p1401, args.ci, args.paired_test, load_names(args.names))
    engine = connect(args.database, create=False)
    if args.mushra:
        _require_listening_test(engine, args.mushra)
    report = build_report(engine, args.run, mushra=args.mushra, options=options)
    print(f"wrote {write_report(report, args.output, fmt, force=args.force)}")
    if args.figures:
        paths = write_figures(report, args.figures, force=args.force)
        print(f"wrote {len(paths)} figure files to {args.figures}")
    return 0


def _require_listening_test(engine, name: str) -> None:
    """A --mushra name that is not a test of this database is an error before any work (a typo would
    otherwise give a report whose listening sections only say the test is missing)."""
    from ..config import did_you_mean
    from ..report.listening import mushra_tests

    known = mushra_tests(engine)
    if name not in known:
        raise EvalkitError(
            f"--mushra {name}: no listening test of that name{did_you_mean(name, known)} in this database "
            f"(tests: {', '.join(known) or 'none'}); 'evalkit ratings import' stores ratings made elsewhere"
        )


def cmd_app(args) -> int:
    """Start the app (Streamlit for the admin, the listener's pages beside it) and print its URLs."""
    from ..listening.auth import ENV_VAR as ADMIN_HASH_VAR
    from ..report.serve import check_bindable, serve_app

    check_bindable(args.address, args.port)  # a port it cannot use is the one line, before any other
    host = "localhost" if args.address in ("0.0.0.0", "::") else args.address
    print(
        f"every page below needs the admin's sign-in: http://{host}:{args.port}/signin "
        f"(listeners only ever see http://{host}:{args.port}/listen?t=...)"
    )
    if not args.mushra_demo and not os.environ.get(ADMIN_HASH_VAR):  # --mushra-demo makes one for its run
        print(
            f"evalkit: warning: no admin password is set, so sign-in refuses every password: put a hash in "
            f"${ADMIN_HASH_VAR} (make one with 'python -m evalkit.listening.auth')",
            file=sys.stderr,
        )
    return serve_app(print, port=args.port, address=args.address, database=args.database, mushra_demo=args.mushra_demo)
