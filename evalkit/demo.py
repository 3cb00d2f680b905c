"""The main job on the bundled demo corpus: every available codec, measured bitrate and latency."""

from __future__ import annotations

import statistics
from pathlib import Path

from .cards import Card, load_cards
from .datasets import Item, load_dataset
from .errors import EvalkitError
from .harness import RoundTrip, roundtrip
from .tables import format_table

__all__ = ["DEMO_MANIFEST", "run_demo", "codec_summary"]

DEMO_MANIFEST = Path(__file__).resolve().parent.parent / "data" / "demo" / "manifest.jsonl"


def run_demo(cards_dir: str | None = None, limit: int | None = None) -> int:
    """Print one line per codec card; an item that fails is reported and the run goes on."""
    items = load_dataset(DEMO_MANIFEST)[:limit]
    audio = [item.load() for item in items]
    cards = {n: c for n, c in load_cards(cards_dir).items() if c.unavailable() is None}
    print(f"demo: {len(items)} items, {sum(a.duration for a in audio):.1f} s of speech, {len(cards)} codecs\n")
    rows, failures = [], []
    for name, card in sorted(cards.items()):
        runs = []
        for item, clip in zip(items, audio):
            try:
                runs.append(roundtrip(card.build(), clip))
            except EvalkitError as err:
                failures.append(f"{name} / {item.id}: {err}")
        rows.append(codec_summary(card, runs))
    header = ["codec", "family", "nominal_kbps", "measured_kbps", "overhead_kbps", "latency_ms",
              "delay_declared", "delay_measured", "delay_ok", "enc_rtf", "dec_rtf"]
    print(format_table(header, rows))
    for line in failures:
        print(f"FAILED {line}")
    return 1 if failures else 0


def codec_summary(card: Card, runs: list[RoundTrip]) -> list[str]:
    """One table row: means over items of the measured quantities."""
    info = card.build().info
    if not runs:
        return [card.name, info.family] + ["-"] * 9
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
    ]
