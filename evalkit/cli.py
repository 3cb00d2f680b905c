"""The `evalkit` command line: one function per command, one readable line per error.

Each command imports what it needs when it runs: building the parser (and `evalkit --help`)
loads no numerical, database or model package.
"""

from __future__ import annotations

import argparse
import os
import sys

from .commands.codec_commands import (
    cmd_codecs,
    cmd_decode,
    cmd_demo,
    cmd_encode,
    cmd_metrics,
    cmd_roundtrip,
    cmd_train,
)
from .commands.results_commands import cmd_app, cmd_config, cmd_report, cmd_results
from .commands.scoring_commands import cmd_run, cmd_score
from .commands.version_action import VersionAction
from .errors import EvalkitError, first_line, terminal_safe

__all__ = ["main"]


def cmd_profile(args) -> int:
    """Complexity, speed, latency and packet-loss curves of codec cards; stored in the database."""
    from .commands.profile_command import run_profile

    return run_profile(args)


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
        p.add_argument(
            "input", help="a bitstream from 'evalkit encode'" if name == "decode" else "audio: WAV, FLAC or Ogg"
        )
        p.add_argument("--codec", required=True, help="codec card name (see 'evalkit codecs')")
        p.add_argument(
            "-o",
            "--output",
            required=True,
            help="a bitstream file" if name == "encode" else "decoded audio: .wav, .flac or .ogg",
        )
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
    p.add_argument("kind", choices=["default"], help="default: a commented experiment on the demo corpus")
    p.add_argument("-o", "--output", default="-", help="file to write (default: print)")
    p.add_argument("--force", action="store_true", help="overwrite the output")
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
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file; its suffix picks the format (.html, .pdf, .tex, .csv, .parquet)",
    )
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
    p.add_argument(
        "--paired-test",
        choices=["wilcoxon", "t"],
        default="wilcoxon",
        help="codec comparisons' test (default: wilcoxon)",
    )
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
    i.add_argument(
        "--format",
        required=True,
        choices=["webmushra", "beaqlejs", "long"],
        dest="ratings_format",
        help="webMUSHRA's mushra.csv, BeaqleJS's JSON, or a long table (CSV/Parquet) (see docs/ratings.md)",
    )
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
    e.add_argument("test", help="the listening test's name")
    e.add_argument("-o", "--output", required=True, help=".csv or .parquet (webmushra: .csv)")
    e.add_argument(
        "--format",
        choices=["tidy", "webmushra"],
        default="tidy",
        dest="ratings_format",
        help="evalkit's tidy table (default) or webMUSHRA's layout",
    )
    e.add_argument("--completed-only", action="store_true", help="only listeners who finished")
    e.add_argument("--force", action="store_true", help="overwrite the output")
    s = commands.add_parser("stats", help="screening, design, per-condition scores, omnibus tests and contrasts")
    s.add_argument("test", help="the listening test's name")
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
    r.add_argument("test", help="the listening test's name")
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
        help="metrics disagree most (default), conditions spread most, or items cover the quality range",
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
    w.add_argument(
        "--test-conditions", type=int, default=2, help="with --per-session: conditions in the test (default: 2)"
    )
    for parser in (r, d, s, w):
        parser.add_argument("--database", help=database)
    p.set_defaults(func=cmd_listening)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EvalkitError as err:
        print(f"evalkit: error: {terminal_safe(str(err))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `evalkit results | head`: the reader has all it wanted, nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush then writes nowhere
        return 141  # a shell's status for a writer its pipe closed on (128 + SIGPIPE)
    except OSError as err:  # a file or folder the user named cannot be written or read
        where = f"{err.filename}: " if err.filename else ""
        print(f"evalkit: error: {terminal_safe(f'{where}{err.strerror or err}')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if (message := _database_failure(err)) is None:
            raise
        where = f"{args.database}: " if getattr(args, "database", None) else ""
        print(f"evalkit: error: {terminal_safe(where + message)}", file=sys.stderr)
        return 1


def _database_failure(err: Exception) -> str | None:
    """The message for a read or write the results database refused (read-only, disk full, locked,
    connection lost), else None. Rows stored before it are kept; a run resumes from them."""
    if "sqlalchemy" not in sys.modules:  # not imported: the error cannot be the database's
        return None
    from sqlalchemy.exc import OperationalError

    if not isinstance(err, OperationalError):
        return None
    reason = first_line(err.orig or err) or type(err.orig or err).__name__
    if "readonly database" in reason:
        return (
            "the results database is read-only (SQLite: attempt to write a readonly database); make the file "
            "and its folder writable, or give --database (or the experiment's database:) another one"
        )
    return (
        f"the results database failed ({reason}); rows stored before it are kept: fix the cause (disk space, "
        "another process holding it, the server) and run the same command again, a run resumes where it stopped"
    )


if __name__ == "__main__":
    sys.exit(main())
