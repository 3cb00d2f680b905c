"""The main job on the bundled demo corpus: every available codec, measured bitrate and latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from .audio import Audio
from .cards import Card, load_cards
from .codecs import Codec
from .datasets import load_dataset
from .errors import ConfigError, EvalkitError
from .executors import one_thread_torch
from .harness import RoundTrip, roundtrip
from .resources import data_path, is_installed_copy
from .text_tables import format_table

__all__ = [
    "DEMO_MANIFEST",
    "DEMO_EXPERIMENT",
    "run_demo",
    "roundtrip_table",
    "score_demo",
    "codec_summary",
    "warm_codec",
]

DEMO_MANIFEST = data_path("data/demo/manifest.jsonl")
DEMO_EXPERIMENT = data_path("experiments/demo.yaml")


def run_demo(
    out: Callable[[str], None], cards_dir: str | None = None, limit: int | None = None, score: bool = True
) -> int:
    """The round-trip table of every available codec, then the demo experiment's leaderboard, told to `out`."""
    if limit is not None and limit < 1:  # a slice would quietly drop items from the end instead
        raise ConfigError(f"--limit {limit}: give at least 1 item, or leave it out for all")
    status = roundtrip_table(out, cards_dir, limit)
    if score:
        status |= score_demo(out, limit)
    return status


def score_demo(out: Callable[[str], None], limit: int | None = None) -> int:
    """Score the default codec set on the demo corpus into the results database; tell `out` the leaderboard."""
    from dataclasses import replace

    from .experiment import load_experiment
    from .runner import run_experiment
    from .store import connect, delay_check, roundtrips_frame, summary
    from .text_tables import leaderboard_table, misalignment_warnings

    exp = load_experiment(DEMO_EXPERIMENT)
    exp = replace(exp, limit=limit) if limit else exp
    if is_installed_copy(DEMO_EXPERIMENT):  # never write into the installed package: cache in the working folder
        exp = replace(exp, cache=Path("results/cache").resolve())
    out(f"\nscoring {len(exp.codecs)} codecs x {', '.join(exp.metrics)} (incremental: reruns reuse stored rows)")
    frame = run_experiment(exp)
    engine = connect(exp.database)
    out(leaderboard_table(summary(engine, exp.name), sort_by="pesq_wb"))
    for line in misalignment_warnings(delay_check(roundtrips_frame(engine, exp.name))):
        out(line)
    failed = frame[frame.status == "failed"]
    for row in failed.head(20).itertuples():
        out(f"FAILED {row.codec} / {row.item_id} / {row.metric}: {row.reason}")
    from .report.demo_report import write_demo_report

    write_demo_report(out)
    return 0


def roundtrip_table(out: Callable[[str], None], cards_dir: str | None = None, limit: int | None = None) -> int:
    """Tell `out` one line per codec card; an item that fails is reported and the run goes on.

    Speed is warm: each codec is built once (weights loaded) and run once untimed before the
    items are timed, on one thread; the time that took is its own column (load_s)."""
    items = load_dataset(DEMO_MANIFEST)[:limit]
    audio = [item.load() for item in items]
    cards = {n: c for n, c in load_cards(cards_dir).items() if c.unavailable() is None}
    out(f"demo: {len(items)} items, {sum(a.duration for a in audio):.1f} s of speech, {len(cards)} codecs\n")
    rows, failures = [], []
    for name, card in sorted(cards.items()):
        runs, built = [], {}
        for item, clip in zip(items, audio):
            try:
                if clip.sample_rate not in built:
                    built[clip.sample_rate] = warm_codec(card, clip)
                runs.append(roundtrip(built[clip.sample_rate][0], clip))
            except EvalkitError as err:
                failures.append(f"{name} / {item.id}: {err}")
        rows.append(codec_summary(card, runs, max((seconds for _, seconds in built.values()), default=None)))
    header = [
        "codec",
        "family",
        "nominal_kbps",
        "measured_kbps",
        "overhead_kbps",
        "latency_ms",
        "delay_declared",
        "delay_measured",
        "delay_ok",
        "enc_rtf",
        "dec_rtf",
        "load_s",
    ]
    out(format_table(header, rows))
    out(
        "enc_rtf, dec_rtf: warm, one thread, seconds per second of audio; load_s: building the codec "
        "(loading its weights) and one untimed warm-up round trip"
    )
    for line in failures:
        out(f"FAILED {line}")
    return 1 if failures else 0


def warm_codec(card: Card, clip: Audio, seconds: float = 1.0) -> tuple[Codec, float]:
    """The card's codec for `clip`'s rate, built and run once untimed on the clip's first
    `seconds`, on one thread; and how long that took (what the first item would otherwise pay)."""
    start = time.perf_counter()
    codec = card.build(clip.sample_rate)
    one_thread_torch()
    roundtrip(codec, clip.with_samples(clip.samples[:, : max(1, int(seconds * clip.sample_rate))]))
    return codec, time.perf_counter() - start


def codec_summary(card: Card, runs: list[RoundTrip], load_seconds: float | None = None) -> list[str]:
    """One table row: means over items of the measured quantities."""
    info = card.build().info
    if not runs:
        return [card.name, info.family] + ["-"] * 10
    seconds = sum(r.duration for r in runs)
    measured = [r.measured_delay for r in runs if r.measured_delay is not None]
    ok = sum(bool(r.delay_ok) for r in runs)
    nominal = "-" if info.nominal_bitrate is None else f"{info.nominal_bitrate / 1000:.2f}"
    return [
        card.name,
        info.family,
        nominal,
        f"{8 * sum(r.payload_bytes for r in runs) / seconds / 1000:.2f}",
        f"{8 * sum(r.overhead_bytes for r in runs) / seconds / 1000:.2f}",
        f"{info.algorithmic_latency_ms:.1f}",
        str(info.lookahead_samples),
        str(int(statistics.median(measured))) if measured else "-",
        f"{ok}/{len(runs)}",
        f"{sum(r.encode_seconds for r in runs) / seconds:.4f}",
        f"{sum(r.decode_seconds for r in runs) / seconds:.4f}",
        "-" if load_seconds is None else f"{load_seconds:.2f}",
    ]
