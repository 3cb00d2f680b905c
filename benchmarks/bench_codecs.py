"""Encode and decode real-time factor of every available codec card, one thread.

Timings are warm medians over repeats on the same 10 s of demo speech, printed beside the
identity codec measured in the same run (the machine is shared and noisy, so the ratio is
the number to compare across runs).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from evalkit.audio import Audio, resample
from evalkit.cards import load_cards
from evalkit.datasets import load_dataset
from evalkit.demo_pipeline import DEMO_MANIFEST
from evalkit.text_tables import format_table

REPEATS = 5
BASELINE = "reference"


def speech(seconds: float = 10.0) -> Audio:
    clips = [resample(item.load(), 16000).samples[0] for item in load_dataset(DEMO_MANIFEST)]
    joined = np.concatenate(clips)[: int(seconds * 16000)]
    return Audio(joined, 16000, "bench-speech")


def time_codec(codec, audio: Audio) -> tuple[float, float]:
    """Median encode and decode seconds over REPEATS, after one warm-up."""
    native = resample(audio, codec.info.sample_rate)
    data = codec.encode(native)
    codec.decode(data)
    enc, dec = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        data = codec.encode(native)
        middle = time.perf_counter()
        codec.decode(data)
        enc.append(middle - start)
        dec.append(time.perf_counter() - middle)
    return statistics.median(enc), statistics.median(dec)


def main() -> None:
    audio = speech()
    cards = {n: c for n, c in load_cards().items() if c.unavailable() is None}
    built = {name: timed_build(card) for name, card in sorted(cards.items())}
    timings = {name: time_codec(codec, audio) for name, (codec, _) in built.items()}
    base_enc, base_dec = timings[BASELINE]
    rows = []
    for name, (enc, dec) in timings.items():
        codec, load = built[name]
        rows.append(
            [
                name,
                codec.info.family,
                f"{enc / audio.duration:.5f}",
                f"{dec / audio.duration:.5f}",
                f"{enc / base_enc:.1f}",
                f"{dec / base_dec:.1f}",
                f"{load:.3f}",
            ]
        )
    print(
        f"{audio.duration:.0f} s of speech, one thread, median of {REPEATS} warm runs; baseline = {BASELINE} (PCM); "
        "load_s: building the codec (its weights loaded), apart from the RTFs"
    )
    print(format_table(["codec", "family", "enc_rtf", "dec_rtf", "enc_x_baseline", "dec_x_baseline", "load_s"], rows))


def timed_build(card):
    start = time.perf_counter()
    codec = card.build()
    return codec, time.perf_counter() - start
