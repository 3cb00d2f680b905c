"""`evalkit run` and `evalkit score`: score an experiment, or decoded files made elsewhere, and print the summary."""

from __future__ import annotations

from pathlib import Path

from ..errors import EvalkitError
from .common import current_summary, metric_rows, refuse_overwrite, report_outcome, summary_text, warn_misaligned


def cmd_run(args) -> int:
    """Score an experiment into the results database; prints the summary. Exit status 1 when no
    row of the run succeeded."""
    from ..executors import start_workers_server
    from ..experiment import load_experiment

    exp = load_experiment(args.experiment)
    if not args.scheduler and (exp.workers if args.workers is None else args.workers) != 0:
        start_workers_server()  # its imports overlap with reading the dataset and the database
    from ..runner import run_experiment
    from ..store import connect

    frame = run_experiment(exp, scheduler=args.scheduler, workers=args.workers, retry_failed=args.retry_failed)
    engine = connect(exp.database)
    print(summary_text(current_summary(engine, exp.name, frame)))
    warn_misaligned(engine, exp.name)
    return report_outcome(frame, exp.name)


def cmd_score(args) -> int:
    """Score decoded files made elsewhere against their references: a table, or a stored run."""
    from ..report.names import metric_ranges
    from ..runner import run_experiment, score_pairs
    from ..store import connect, frame_summary
    from ..text_tables import item_table

    exp = _score_experiment(args)
    # A bitrate the user declared or measured from bitstreams is news: printed beside the metrics.
    shown = ("bitrate_kbps",) if args.bitrate_kbps or args.bitstreams else ()
    if args.run:
        frame = run_experiment(exp, workers=args.workers)
        print(item_table(metric_rows(frame, keep=shown)))
        print()
        print(summary_text(current_summary(connect(exp.database), exp.name)))
    else:
        frame = score_pairs(exp, workers=args.workers)
        print(item_table(metric_rows(frame, keep=shown)))
        print()
        summary = frame_summary(metric_rows(frame, keep=shown), bounds=metric_ranges())
        print(summary_text(summary, duration_weighted=False))
    if args.output:
        from ..store import export

        refuse_overwrite(args.output, args.force)
        print(f"wrote {export(frame, args.output)}")
    return report_outcome(frame, exp.name)


def _score_experiment(args):
    """The experiment `evalkit score` runs: the references as the dataset, the decoded files as one condition."""
    from ..datasets import AUDIO_SUFFIXES
    from ..experiment import experiment_from_dict

    if bool(args.pairs) == bool(args.ref or args.deg) or (not args.pairs and not (args.ref and args.deg)):
        raise EvalkitError("score: give --ref and --deg, or --pairs (a .jsonl manifest of {id, ref, deg})")
    ref = Path(args.pairs or args.ref).resolve()
    deg = str(Path(args.pairs).resolve()) if args.pairs else args.deg
    if not args.pairs and ref.is_file() and Path(deg).suffix.lower() in AUDIO_SUFFIXES:
        deg = {ref.stem: str(Path(deg).resolve())}  # one pair: the decoded file is the reference's
    name = args.name or (Path(args.deg).stem.replace("{id}", "").strip("._-") if args.deg else ref.stem) or "decoded"
    condition = {"name": name, "decoded": deg if isinstance(deg, dict) else str(Path(deg).absolute())}
    condition.update({k: v for k, v in (("bitrate_kbps", args.bitrate_kbps), ("bitstreams", args.bitstreams)) if v})
    alignment = {
        k: v
        for k, v in (
            ("max_lag_ms", args.max_lag_ms),
            ("max_length_change", args.max_length_change),
            ("min_correlation", args.min_correlation),
        )
        if v is not None
    }
    config = {
        "name": args.run or "score",
        "dataset": str(ref),
        "codecs": [condition],
        "downmix": args.downmix,
        "metrics": [m.strip() for m in args.metrics.split(",") if m.strip()],
        "alignment": alignment,
        "database": args.database,
        "workers": args.workers,
        "allow_outside": args.allow_outside,
    }
    return experiment_from_dict(config, base=Path.cwd(), source="evalkit score")
