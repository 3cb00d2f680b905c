"""The `evalkit` command line: one function per command, one readable line per error.

Each command imports what it needs when it runs: building the parser (and `evalkit --help`)
loads no numerical, database or model package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .commands.version_action import VersionAction
from .errors import AudioError, CodecError, EvalkitError

__all__ = ["main"]


def cmd_codecs(args) -> int:
    """Table of every codec card: availability, rate, bitrate, latency."""
    from .cards import load_cards
    from .text_tables import codec_table

    broken: list[str] = []
    print(codec_table(load_cards(args.cards, broken=broken), show_reasons=args.verbose))
    for line in broken:
        print(f"evalkit: error: {line}", file=sys.stderr)
    return 1 if broken else 0


def cmd_roundtrip(args) -> int:
    """Encode and decode one file; print measured bitrate and latency."""
    from .audio import MIN_COST_SECONDS, check_content, load, save
    from .cards import find_card
    from .harness import roundtrip

    _refuse_overwrite(args.output, args.force)
    audio = load(args.input)
    content = check_content(audio, min_seconds=MIN_COST_SECONDS)
    if content.problem == "too short":
        raise AudioError(f"{args.input}: {content.reason}: too short to measure a codec's bitrate and delay")
    _warn_content(args.input, content)
    codec = find_card(args.codec, args.cards).build(audio.sample_rate)
    run = roundtrip(codec, audio, downmix=args.downmix)
    save(run.decoded, args.output)
    info = codec.info
    if run.measured_delay is not None:
        measured = f"{run.measured_delay} samples"
    else:
        measured = f"not measurable ({content.problem or 'silent output'})"
    print(
        f"{args.codec}: {run.bitrate / 1000:.2f} kbit/s payload (nominal {_kbps(info.nominal_bitrate)}), "
        f"+{run.overhead_bytes} bytes container overhead"
    )
    print(
        f"latency: algorithmic {info.algorithmic_latency_ms:.1f} ms; output delay declared "
        f"{run.declared_delay} samples, measured {measured} at {info.sample_rate} Hz"
        + ("" if run.delay_ok in (True, None) else "  MISMATCH")
    )
    print(f"wrote {args.output}")
    return 0


def cmd_encode(args) -> int:
    """Encode an audio file to an evalkit bitstream file."""
    from .audio import MIN_COST_SECONDS, check_content, load, resample, to_mono
    from .cards import find_card

    _refuse_overwrite(args.output, args.force)
    audio = load(args.input)
    codec = find_card(args.codec, args.cards).build(audio.sample_rate)
    audio = to_mono(audio) if args.downmix else audio
    content = check_content(audio, min_seconds=MIN_COST_SECONDS)
    _warn_content(args.input, content)
    data = codec.encode(resample(audio, codec.info.sample_rate))
    Path(args.output).write_bytes(data)
    rate = (
        "too short for a bitrate"
        if content.problem == "too short"
        else f"{8 * len(data) / audio.duration / 1000:.2f} kbit/s"
    )
    print(f"wrote {args.output}: {len(data)} bytes, {rate}")
    return 0


def cmd_decode(args) -> int:
    """Decode an evalkit bitstream file with the card that wrote it."""
    from .audio import align, save
    from .cards import find_card
    from .codecs import StreamConfigError

    _refuse_overwrite(args.output, args.force)
    card = find_card(args.codec, args.cards)
    data = _read_stream(args.input)
    codec = card.build(_stream_rate(data, card) if card.follows_item_rate else None)
    try:
        decoded = codec.decode(data)
    except StreamConfigError as err:
        raise CodecError(f"{args.input}: {err}{_cards_for_stream(card, err.stream_config, args.cards)}") from None
    except CodecError as err:
        raise CodecError(f"{args.input}: {err}") from None
    frames = decoded.frames - codec.info.lookahead_samples
    save(align(decoded, codec.info.lookahead_samples, frames), args.output)
    print(f"wrote {args.output}: {frames / decoded.sample_rate:.2f} s at {decoded.sample_rate} Hz")
    return 0


def _read_stream(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise CodecError(f"{path}: cannot read the bitstream file ({err.strerror or err})") from None


def _cards_for_stream(card, stream_config: dict, directory) -> str:
    """ ": --codec NAME" when a card of the same backend has the stream's configuration."""
    from .cards import load_cards
    from .codecs import BACKENDS

    backend = BACKENDS.get(card.backend)
    rate = {"sample_rate": stream_config.get("sample_rate")}
    names = [
        c.name
        for c in load_cards(directory).values()
        if c.backend == card.backend
        and backend.stream_config(**{**c.params, **(rate if c.follows_item_rate else {})}) == stream_config
    ]
    return f": --codec {names[0]}" if names else ""


def _warn_content(path: str, content) -> None:
    """Silent, constant and clipped input still round-trips; say what its numbers are worth."""
    if content.problem and content.problem != "too short":
        print(f"evalkit: warning: {path}: {content.reason}; its delay cannot be measured", file=sys.stderr)
    if content.warning:
        print(f"evalkit: warning: {path}: {content.warning}", file=sys.stderr)


def _stream_rate(data: bytes, card) -> int | None:
    """The rate a card that follows its input's rate wrote into the bitstream's header."""
    from .codecs import BACKENDS, Bitstream
    from .errors import CodecError

    try:
        rate = Bitstream.from_bytes(data, BACKENDS.get(card.backend).backend).header.get("sample_rate")
    except CodecError:
        return None  # the decoder itself will say what is wrong with the bytes
    return rate if isinstance(rate, int) else None


def cmd_demo(args) -> int:
    """Round-trip the bundled demo corpus through every available codec card."""
    from .demo_pipeline import run_demo

    return run_demo(print, cards_dir=args.cards, limit=args.limit, score=not args.no_score)


def cmd_metrics(args) -> int:
    """Table of every registered metric and whether it can run here."""
    from .metrics import METRICS
    from .text_tables import format_table

    rows = []
    for name in METRICS.names():
        entry = METRICS.get(name)
        spec, missing = entry.spec, entry.unavailable()
        rates = ",".join(str(r) for r in spec.sample_rates) if spec.sample_rates else "any"
        rows.append(
            [
                name,
                ",".join(spec.outputs),
                "yes" if spec.needs_reference else "no",
                "higher" if spec.higher_is_better else "lower",
                rates,
                "no: " + missing if missing else "yes",
            ]
        )
    print(format_table(["name", "outputs", "reference", "better", "rates_hz", "available"], rows))
    return 0


def cmd_run(args) -> int:
    """Score an experiment into the results database; prints the summary. Exit status 1 when no
    row of the run succeeded."""
    from .executors import start_workers_server
    from .experiment import load_experiment

    exp = load_experiment(args.experiment)
    if not args.scheduler and (exp.workers if args.workers is None else args.workers) != 0:
        start_workers_server()  # its imports overlap with reading the dataset and the database
    from .runner import run_experiment
    from .store import connect

    frame = run_experiment(exp, scheduler=args.scheduler, workers=args.workers, retry_failed=args.retry_failed)
    engine = connect(exp.database)
    print(_summary_text(_current_summary(engine, exp.name, frame)))
    _warn_misaligned(engine, exp.name)
    return _report_outcome(frame, exp.name)


def cmd_score(args) -> int:
    """Score decoded files made elsewhere against their references: a table, or a stored run."""
    from .runner import run_experiment, score_pairs
    from .store import connect, frame_summary, summary
    from .text_tables import item_table

    exp = _score_experiment(args)
    if args.run:
        frame = run_experiment(exp, workers=args.workers)
        print(item_table(_scored(frame)))
        print()
        print(_summary_text(summary(connect(exp.database), exp.name)))
    else:
        frame = score_pairs(exp, workers=args.workers)
        print(item_table(_scored(frame)))
        print()
        print(_summary_text(frame_summary(_scored(frame))))
    if args.output:
        from .store import export

        _refuse_overwrite(args.output, args.force)
        print(f"wrote {export(frame, args.output)}")
    return _report_outcome(frame, exp.name)


def _score_experiment(args):
    """The experiment `evalkit score` runs: the references as the dataset, the decoded files as one condition."""
    from .datasets import AUDIO_SUFFIXES
    from .experiment import experiment_from_dict

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


def _scored(frame):
    """The metric rows (cost rows say nothing new about one folder of files)."""
    from .tasks import COST_METRICS

    return frame[~frame["metric"].isin(COST_METRICS)] if not frame.empty else frame


def _report_outcome(frame, run: str) -> int:
    """Print the run's warnings, the alignment found and, when many rows failed, why; 1 when
    no row (of the requested metrics, when there are any) succeeded."""
    from .text_tables import alignment_lines, failure_summary, warning_lines

    for line in warning_lines(frame.attrs.get("warnings", {})) + alignment_lines(frame):
        print(line, file=sys.stderr)
    for line in failure_summary(frame, run):
        print(line, file=sys.stderr)
    scored = _scored(frame)
    rows = scored if not scored.empty else frame
    if rows.empty or not (rows["status"] == "ok").any():
        print(f"evalkit: error: no row of run {run!r} succeeded", file=sys.stderr)
        return 1
    return 0


def cmd_results(args) -> int:
    """Per codec × metric: mean and 95 % confidence interval; optional CSV/Parquet export or a paired comparison."""
    from .report.names import metric_ranges
    from .store import connect, export, results_frame, summary

    engine = connect(args.database, create=False)
    if args.run:
        _require_run(engine, args.run)
    if args.compare:
        return _compare(engine, args)
    if args.export:
        _refuse_overwrite(args.export, args.force)
        frame = results_frame(engine, args.run) if args.long else summary(engine, args.run, bounds=metric_ranges())
        print(f"wrote {export(frame, args.export)}")
        return 0
    if args.long:
        print(_long_text(results_frame(engine, args.run), all_runs=not args.run))
        return 0
    table = _current_summary(engine, args.run) if args.run else summary(engine, None, bounds=metric_ranges())
    print(_summary_text(table))
    _warn_misaligned(engine, args.run)
    if args.run:
        from .store import run_warnings
        from .text_tables import warning_lines

        for line in warning_lines(run_warnings(engine, args.run)):
            print(line, file=sys.stderr)
    return 0


def _require_run(engine, run: str) -> None:
    from .report.data import list_runs

    known = list_runs(engine)
    if run not in known:
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "") if known else "none yet"
        raise EvalkitError(
            f"no run named {run!r} in {engine.url.render_as_string(hide_password=True)}; runs there: {shown}"
        )


def _long_text(frame, all_runs: bool) -> str:
    """Every result row, one line each (`results --long` without --export)."""
    from .text_tables import format_table

    if frame.empty:
        return "no results"
    columns = (["run_id"] if all_runs else []) + ["codec", "item_id", "metric", "status"]
    rows = [[*(getattr(r, c) for c in columns), _num(r.value), _short(r.reason)] for r in frame.itertuples()]
    return format_table(columns + ["value", "reason"], rows)


def _short(text, width: int = 80) -> str:
    text = "" if text is None or text != text else str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _compare(engine, args) -> int:
    """`results --compare A B`: paired tests across items, per metric, Holm over the metrics."""
    from .report.compare import compare_codecs, comparison_text
    from .report.leaderboard import current_results
    from .store import results_frame

    if not args.run:
        raise EvalkitError("--compare needs --run: the codecs are compared on that run's items")
    results = current_results(results_frame(engine, args.run))
    table = compare_codecs(results, args.compare[0], args.compare[1], args.metric, args.paired_test)
    print(comparison_text(table))
    return 0


def cmd_config(args) -> int:
    """Write a commented starter experiment."""
    from .experiment import DEFAULT_CONFIG

    if args.output == "-":
        print(DEFAULT_CONFIG, end="")
        return 0
    _refuse_overwrite(args.output, args.force)
    Path(args.output).write_text(DEFAULT_CONFIG)
    print(f"wrote {args.output}; edit it, then: evalkit run {args.output}")
    return 0


def cmd_profile(args) -> int:
    """Complexity, speed, latency and packet-loss curves of codec cards; stored in the database."""
    from .commands.profile_command import run_profile

    return run_profile(args)


def cmd_report(args) -> int:
    """One self-contained report of a run (HTML, PDF, LaTeX, CSV or Parquet); nothing overwritten without --force."""
    from .report import build_report, write_report
    from .report.build import ReportOptions
    from .report.export import format_for, write_figures
    from .report.names import load_names
    from .store import connect

    fmt = format_for(args.output, args.format)  # a bad format or an existing file fails before any work
    _refuse_overwrite(args.output, args.force)
    options = ReportOptions(args.include_reference, args.p1401, args.ci, args.paired_test, load_names(args.names))
    report = build_report(connect(args.database, create=False), args.run, mushra=args.mushra, options=options)
    print(f"wrote {write_report(report, args.output, fmt, force=args.force)}")
    if args.figures:
        paths = write_figures(report, args.figures, force=args.force)
        print(f"wrote {len(paths)} figure files to {args.figures}")
    return 0


def cmd_app(args) -> int:
    """Start the app (Streamlit for the admin, the listener's pages beside it) and print its URLs."""
    from .report.serve import serve_app

    host = "localhost" if args.address in ("0.0.0.0", "::") else args.address
    print(
        f"every page below needs the admin's sign-in: http://{host}:{args.port}/signin "
        f"(listeners only ever see http://{host}:{args.port}/listen?t=...)"
    )
    return serve_app(print, port=args.port, address=args.address, database=args.database, mushra_demo=args.mushra_demo)


def _current_summary(engine, run_id: str, results=None):
    """The run's summary for each codec's newest configuration and each metric's newest version,
    as the leaderboard shows it: an edited card's earlier rows stay stored (`results --long`) but
    are not listed beside the new ones under the same name."""
    from .report.leaderboard import current_results
    from .report.names import metric_ranges
    from .store import results_frame, summary

    results = results_frame(engine, run_id) if results is None else results
    table = summary(engine, run_id, bounds=metric_ranges())
    if results.empty:
        return table
    keys = ["codec", "codec_hash", "metric", "metric_version"]
    return table.merge(current_results(results)[keys].drop_duplicates(), on=keys).reset_index(drop=True)


def _summary_text(frame) -> str:
    from .text_tables import format_table

    if frame.empty:
        return "no results"
    rows = [
        [
            r.codec,
            r.metric,
            f"{r.n_ok}/{r.n_ok + r.n_failed + r.n_skipped}" + (" (n<5)" if r.n_ok < 5 else ""),
            _num(r.mean),
            f"[{_num(r.ci_low)}, {_num(r.ci_high)}]",
        ]
        for r in frame.itertuples()
    ]
    note = (
        "\nCIs: Student's t clipped to each metric's range; bitrate_kbps duration-weighted; "
        "(n<5): fewer than 5 items, the interval says little"
    )
    return format_table(["codec", "metric", "ok", "mean", "95% CI"], rows) + note


def _warn_misaligned(engine, run_id: str | None) -> None:
    from .store import delay_check, roundtrips_frame
    from .text_tables import misalignment_warnings

    for line in misalignment_warnings(delay_check(roundtrips_frame(engine, run_id))):
        print(line, file=sys.stderr)


def _num(value) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def _refuse_overwrite(path: str, force: bool) -> None:
    if Path(path).exists() and not force:
        raise EvalkitError(f"{path} exists; pass --force to overwrite it")


def _kbps(bitrate: float | None) -> str:
    return "n/a" if bitrate is None else f"{bitrate / 1000:.2f} kbit/s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalkit", description=__doc__)
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument(
        "--cards",
        help="more folders of codec cards (os.pathsep-separated), added to the built-in "
        "ones, $EVALKIT_CARDS and packages' cards",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("codecs", help="list codec cards and where each comes from")
    p.add_argument("-v", "--verbose", action="store_true", help="show each card's folder and why a card is unavailable")
    p.set_defaults(func=cmd_codecs)

    for name, func, help_text in (
        ("roundtrip", cmd_roundtrip, "encode + decode a file, print bitrate and latency"),
        ("encode", cmd_encode, "encode a file to a bitstream"),
        ("decode", cmd_decode, "decode a bitstream to audio"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("input")
        p.add_argument("--codec", required=True, help="codec card name (see 'evalkit codecs')")
        p.add_argument("-o", "--output", required=True)
        p.add_argument("--force", action="store_true", help="overwrite the output")
        if name != "decode":
            p.add_argument("--downmix", action="store_true", help="average channels for mono codecs")
        p.set_defaults(func=func)

    p = sub.add_parser("metrics", help="list metrics")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("run", help="score an experiment (incremental and resumable)")
    p.add_argument("experiment", help="experiment YAML (see 'evalkit config default')")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--workers", type=int, help="local worker processes (0: run in this process)")
    p.add_argument("--retry-failed", action="store_true", help="recompute rows that failed before")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="score decoded files made elsewhere against their references")
    p.add_argument("--ref", help="references: an audio file, a folder, a .jsonl manifest or a wav.scp")
    p.add_argument(
        "--deg",
        help="decoded audio: a file, a folder (matched by id), a pattern with {id}, or a .jsonl manifest of {id, deg}",
    )
    p.add_argument("--pairs", help="a .jsonl manifest of {id, ref, deg}, instead of --ref and --deg")
    p.add_argument("--metrics", default="pesq_wb,stoi,si_sdr", help="comma-separated (default: pesq_wb,stoi,si_sdr)")
    p.add_argument("--name", help="the condition's name (default: from --deg)")
    p.add_argument("--bitrate-kbps", type=float, help="declared bitrate of the decoded files")
    p.add_argument("--bitstreams", help="the bitstream files (same forms as --deg): their sizes give the bitrate")
    p.add_argument("--run", help="store the rows as this run in the results database (incremental)")
    p.add_argument("--database", help="database URL (default: $EVALKIT_DB_URL or results/evalkit.db)")
    p.add_argument("--downmix", action="store_true", help="average the channels of multichannel files")
    p.add_argument(
        "--allow-outside",
        action="store_true",
        help="let manifests name files outside their own folder (absolute paths, '..')",
    )
    p.add_argument("--workers", type=int, help="worker processes (0: this process; default: one per core)")
    p.add_argument("--max-lag-ms", type=float, help="alignment: largest lag searched (default 500)")
    p.add_argument("--max-length-change", type=float, help="alignment: largest length change, a fraction (default 0.2)")
    p.add_argument("--min-correlation", type=float, help="alignment: weakest correlation trusted (default 0.5)")
    p.add_argument("-o", "--output", help="also write every row to .csv or .parquet")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("results", help="summarise or export stored results")
    p.add_argument("--run", help="run name (default: all runs)")
    p.add_argument("--database", help="database URL (default: $EVALKIT_DB_URL or results/evalkit.db)")
    p.add_argument("--export", help="write .csv or .parquet instead of printing")
    p.add_argument("--long", action="store_true", help="every row, not the summary (printed, or with --export written)")
    p.add_argument("--force", action="store_true", help="overwrite the export file")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="paired tests of codec A against B across items")
    p.add_argument("--metric", action="append", help="with --compare: only this metric (repeatable)")
    p.add_argument(
        "--paired-test",
        choices=["wilcoxon", "t"],
        default="wilcoxon",
        help="with --compare: Wilcoxon signed-rank (default) or paired t",
    )
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("config", help="write a starter configuration")
    p.add_argument("kind", choices=["default"])
    p.add_argument("-o", "--output", default="-", help="file to write (default: print)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("profile", help="complexity, speed, latency and packet-loss curves of codec cards")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--codec", action="append", help="codec card name (repeatable)")
    which.add_argument("--all", action="store_true", help="every available card")
    p.add_argument("--loss-rates", default="1,3,5,10,20", help="packet loss in percent (default: 1,3,5,10,20)")
    p.add_argument("--no-loss", action="store_true", help="skip the packet-loss curves (fast)")
    p.add_argument("--seeds", type=int, default=1, help="loss patterns per condition (default: 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported (default: 5)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of demo speech (default: 10)")
    p.add_argument("--database", help="database URL (default: $EVALKIT_DB_URL or results/evalkit.db)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("report", help="write a self-contained report of a run (html, pdf, latex, csv, parquet)")
    p.add_argument("--run", required=True, help="run name")
    p.add_argument("--mushra", help="MUSHRA test whose ratings to merge and correlate with the metrics")
    p.add_argument("-o", "--output", required=True, help="output file; its suffix picks the format")
    p.add_argument("--format", choices=["html", "pdf", "csv", "parquet", "latex"], help="override the suffix")
    p.add_argument("--database", help="database URL (default: $EVALKIT_DB_URL or results/evalkit.db)")
    p.add_argument("--force", action="store_true", help="overwrite the output")
    p.add_argument("--names", help="YAML of display names: codecs: {id: name}, metrics: {id: name}")
    p.add_argument(
        "--include-reference",
        action="store_true",
        help="agreement with the hidden reference and anchors too (left out by default)",
    )
    p.add_argument("--p1401", action="store_true", help="agreement also as ITU-T P.1401 RMSE and RMSE*")
    p.add_argument(
        "--ci",
        choices=["t", "bootstrap"],
        default="t",
        help="leaderboard intervals: t clipped to the metric's range (default) or bootstrap over items",
    )
    p.add_argument("--paired-test", choices=["wilcoxon", "t"], default="wilcoxon", help="codec comparisons' test")
    p.add_argument("--figures", metavar="DIR", help="also write each figure alone to DIR (PDF and SVG)")
    p.set_defaults(func=cmd_report)

    _ratings_parser(sub)
    _listening_parser(sub)

    p = sub.add_parser("app", help="start the Streamlit app (leaderboards, plots, drill-down, MUSHRA)")
    p.add_argument("--port", type=int, default=8501, help="port (default: 8501)")
    p.add_argument("--address", default="localhost", help="address to listen on (default: localhost)")
    p.add_argument("--database", help="database URL (default: $EVALKIT_DB_URL or results/evalkit.db)")
    p.add_argument("--mushra-demo", action="store_true", help="also serve the demo MUSHRA test and print its links")
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("demo", help="round-trip the demo corpus through every available codec")
    p.add_argument("--limit", type=int, default=None, help="use only the first N items")
    p.add_argument("--no-score", action="store_true", help="only the round-trip table, no metrics")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a neural codec from a YAML config (resumes from its run folder)")
    p.add_argument("config", help="training config YAML, e.g. configs/train_rvq.yaml")
    p.add_argument("--steps", type=int, help="override the config's step count")
    p.add_argument("--max-minutes", type=float, help="override the wall-clock budget (resumed runs included)")
    p.set_defaults(func=cmd_train)
    return parser


def cmd_ratings(args) -> int:
    """Import, export or analyse listening-test ratings (webMUSHRA, BeaqleJS, long tables)."""
    from .commands.ratings_command import run_ratings

    return run_ratings(args)


def _ratings_parser(sub) -> None:
    database = "database URL (default: $EVALKIT_DB_URL or results/evalkit.db)"
    p = sub.add_parser(
        "ratings", help="import, export and analyse listening-test ratings (webMUSHRA, BeaqleJS, tables)"
    )
    commands = p.add_subparsers(dest="ratings_command", required=True)
    i = commands.add_parser("import", help="store ratings made elsewhere as an external MUSHRA test")
    i.add_argument("files", nargs="+", metavar="FILE", help="the export (BeaqleJS: one file per listener, or a folder)")
    i.add_argument("--format", required=True, choices=["webmushra", "beaqlejs", "long"], dest="ratings_format")
    i.add_argument("--test", help="name of the test in evalkit (default: the map's, else the file's)")
    i.add_argument("--map", help="YAML: condition names, roles, codec cards, items (see docs/ratings.md)")
    i.add_argument("--reference", help="the hidden reference condition ('none': there is none)")
    i.add_argument("--anchor", action="append", dest="anchors", help="an anchor condition (repeatable)")
    i.add_argument("--mid-anchor", help="the anchor BS.1534-3's second screening rule looks at")
    i.add_argument(
        "--screening",
        choices=["bs1534-3", "reference", "none"],
        help="post-screening rule (default: bs1534-3, both rules)",
    )
    i.add_argument("--replace", action="store_true", help="replace an earlier import of the same test")
    e = commands.add_parser("export", help="write a test's ratings: evalkit's tidy CSV/Parquet or webMUSHRA's CSV")
    e.add_argument("test")
    e.add_argument("-o", "--output", required=True, help=".csv or .parquet (webmushra: .csv)")
    e.add_argument("--format", choices=["tidy", "webmushra"], default="tidy", dest="ratings_format")
    e.add_argument("--completed-only", action="store_true", help="only listeners who finished")
    e.add_argument("--force", action="store_true", help="overwrite the output")
    s = commands.add_parser("stats", help="screening, design, per-condition scores, omnibus tests and contrasts")
    s.add_argument("test")
    for parser in (i, e, s):
        parser.add_argument("--database", help=database)
    p.set_defaults(func=cmd_ratings)


def cmd_listening(args) -> int:
    """Listening-test tools: rejections and repeat panel workers, item selection, power analysis."""
    from .commands.listening_command import run_listening

    return run_listening(args)


def _listening_parser(sub) -> None:
    database = "database URL (default: $EVALKIT_DB_URL or results/evalkit.db)"
    p = sub.add_parser("listening", help="listening tests: rejections, repeat workers, item selection, power analysis")
    commands = p.add_subparsers(dest="listening_command", required=True)
    r = commands.add_parser("rejections", help="rejected sessions of a test with their panel ids, rules and reasons")
    r.add_argument("test")
    r.add_argument("--record", action="store_true", help="first record time-limit and screening rejections")
    d = commands.add_parser("duplicates", help="panel workers seen in more than one test")
    for parser in (r, d):
        parser.add_argument("--export", choices=["csv"], help="write CSV (to --output, else to stdout)")
        parser.add_argument("-o", "--output", help="CSV file for --export csv")
        parser.add_argument("--force", action="store_true", help="overwrite the output")
    s = commands.add_parser("select-items", help="items of a scored run that tell its codecs apart best")
    s.add_argument("--run", required=True, help="run name")
    s.add_argument("--count", type=int, default=8, help="items to choose (default: 8)")
    s.add_argument(
        "--by",
        choices=["disagreement", "spread", "coverage"],
        default="disagreement",
        help="metrics disagree most, conditions spread most, or items cover the quality range",
    )
    s.add_argument("--metric", action="append", dest="metrics", help="metric to use (repeatable; default: all)")
    s.add_argument("--codec", action="append", dest="codecs", help="codec to use (repeatable; default: all)")
    w = commands.add_parser("power", help="listeners needed to detect a difference (MUSHRA or ACR)")
    w.add_argument("--effect", type=float, help="difference to detect, on the test's scale")
    w.add_argument("--run", help="instead of --effect: the run whose metric difference to detect")
    w.add_argument("--metric", help="with --run: the metric")
    w.add_argument("--codecs", nargs=2, metavar=("BETTER", "WORSE"), help="with --run: the two codecs")
    w.add_argument("--slope", type=float, help="with --run: test-scale units per metric unit (default: from --pilot)")
    w.add_argument("--items", type=int, required=True, help="items each listener rates in each condition")
    w.add_argument("--pilot", help="pilot test whose ratings give the spread")
    w.add_argument("--condition", action="append", dest="conditions", help="pilot condition to use (repeatable)")
    w.add_argument("--noise", type=float, help="without a pilot: sd of a rating around its listener's mean")
    w.add_argument("--interaction", type=float, help="without a pilot: sd of the listener x condition effect")
    w.add_argument("--listener-sd", type=float, help="without a pilot: sd of listeners' offsets (simulation only)")
    w.add_argument("--type", choices=["mushra", "acr"], help="the scale (default: the pilot's, else mushra)")
    w.add_argument("--power", type=float, default=0.8, help="wanted power (default: 0.8)")
    w.add_argument("--alpha", type=float, default=0.05, help="two-sided significance level (default: 0.05)")
    w.add_argument("--simulate", type=int, default=0, metavar="N", help="also simulate N tests to check the power")
    w.add_argument("--seed", type=int, default=0, help="seed of the simulation (default: 0)")
    w.add_argument("--per-session", type=int, help="incomplete design: pages each listener rates (trials_per_session)")
    w.add_argument("--test-conditions", type=int, default=2, help="with --per-session: conditions in the test")
    for parser in (r, d, s, w):
        parser.add_argument("--database", help=database)
    p.set_defaults(func=cmd_listening)


def cmd_train(args) -> int:
    """Train (or resume) a neural codec; exports its weights and prints their sha256."""
    from .errors import UnavailableError
    from .neural.codec import torch_missing

    if torch_missing():
        raise UnavailableError(torch_missing())
    from .neural.train import train

    train(args.config, steps=args.steps, max_minutes=args.max_minutes)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EvalkitError as err:
        print(f"evalkit: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a file or folder the user named cannot be written or read
        where = f"{err.filename}: " if err.filename else ""
        print(f"evalkit: error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
