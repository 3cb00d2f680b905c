"""Phoneme hallucination detector: recall of injected flips, false alarms, compute per 10 s.

The project's validation set (scripts/build_hallucination_set.py; built here when missing)
holds minimal-pair flips spliced into otherwise identical sentences. Each transparent
condition codes both the reference and its flipped twin: a flag overlapping the flip's span
(widened by 100 ms) is a hit, any flag on the coded reference a false alarm. False alarms are
also counted on the demo corpus (real speech, five languages). Compute is CPU time on one
thread, cold (both signals recognized) and with the reference's phones reused, printed beside
one stock PocketSphinx decode of the same audio measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from evalkit.audio import Audio, load, resample
from evalkit.cards import find_card
from evalkit.content import analyze
from evalkit.content.detector import forget_phones
from evalkit.content.sphinx import SphinxRecognizer
from evalkit.content.synth import available_voices
from evalkit.content.validation import MANIFEST, build_set, load_set, located
from evalkit.datasets import load_dataset
from evalkit.demo import DEMO_MANIFEST
from evalkit.harness import roundtrip
from evalkit.tables import format_table

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "results" / "hallucination-set"
TRANSPARENT = ("reference", "opus-24k-fec", "opus-32k-hybrid", "g722-64k")
INFORMATIVE = ("opus-12k", "opus-6k", "amr-nb-12k2")  # not transparent: printed, not judged
TARGET_RECALL, TARGET_FALSE_ALARMS, TARGET_SECONDS = 0.8, 1.0, 0.5
REPEATS = 3


def main() -> None:
    rows = _validation_set()
    demo = [(item.load(), item.text) for item in load_dataset(DEMO_MANIFEST)]
    table, worst = [], {"recall": 1.0, "fa": 0.0}
    for name in TRANSPARENT + INFORMATIVE:
        codec = find_card(name).build()
        recall, synthetic_fa = _score_set(codec, rows)
        real_fa = _false_alarms(codec, demo)
        if name in TRANSPARENT:
            worst = {"recall": min(worst["recall"], recall), "fa": max(worst["fa"], synthetic_fa, real_fa)}
        table.append([name, "yes" if name in TRANSPARENT else "no", f"{recall:.3f}", f"{synthetic_fa:.2f}", f"{real_fa:.2f}"])
    minutes = sum(r["duration"] for r in rows) / 60
    print(f"{len(rows)} flips ({minutes:.1f} min per side), demo corpus {sum(a.duration for a, _ in demo) / 60:.1f} min; "
          "hit = flag within ±100 ms of the flip; text given")
    print(format_table(["condition", "transparent", "recall", "fa_per_min_synth", "fa_per_min_demo"], table))
    cold, warm, base = _compute(demo)
    print(f"compute per 10 s of audio, one thread: {cold:.3f} s cold (ref + deg recognized), {warm:.3f} s "
          f"with the reference's phones reused; baseline one stock PocketSphinx decode {base:.3f} s "
          f"(cold = {cold / base:.2f}x baseline)")
    print(f"targets: recall {worst['recall']:.3f} >= {TARGET_RECALL} {_verdict(worst['recall'] >= TARGET_RECALL)}; "
          f"false alarms {worst['fa']:.2f}/min <= {TARGET_FALSE_ALARMS} {_verdict(worst['fa'] <= TARGET_FALSE_ALARMS)}; "
          f"compute {cold:.3f} s <= {TARGET_SECONDS} {_verdict(cold <= TARGET_SECONDS)}")


def _validation_set() -> list[dict]:
    if not (SET / MANIFEST).exists():
        build_set(SET, available_voices())
    return load_set(SET)


def _score_set(codec, rows: list[dict]) -> tuple[float, float]:
    """(recall of flips, false alarms per minute on the coded references)."""
    hits, flags, seconds = 0, 0, 0.0
    for row in rows:
        ref, flipped = load(row["path"]), load(row["flipped_path"])
        hit = _report(ref, roundtrip(codec, flipped).decoded, row["text"]).events
        hits += any(e.flagged and located(e.start, e.end, row) for e in hit)
        flags += _report(ref, roundtrip(codec, ref).decoded, row["text"]).hallucinations
        seconds += ref.duration
    return hits / len(rows), 60 * flags / seconds


def _false_alarms(codec, demo: list[tuple[Audio, str | None]]) -> float:
    flags = sum(_report(ref, roundtrip(codec, ref).decoded, text).hallucinations for ref, text in demo)
    return 60 * flags / sum(ref.duration for ref, _ in demo)


def _report(ref: Audio, deg: Audio, text: str | None):
    return analyze(_mono16k(ref), _mono16k(deg), text)


def _mono16k(audio: Audio) -> np.ndarray:
    return resample(audio, 16000).samples[0].astype(np.float64)


def _compute(demo: list[tuple[Audio, str | None]]) -> tuple[float, float, float]:
    """Median CPU seconds per 10 s: cold detector, detector with ref phones cached, stock decode."""
    ref = Audio(np.concatenate([_mono16k(a) for a, _ in demo])[: 10 * 16000], 16000)
    deg = roundtrip(find_card("opus-24k-fec").build(), ref).decoded
    x, y = _mono16k(ref), _mono16k(deg)
    stock = SphinxRecognizer(settings={}, bigram=False)
    cold, warm, base = [], [], []
    for _ in range(REPEATS):
        forget_phones()
        cold.append(_cpu(lambda: analyze(x, y)))
        forget_phones()
        analyze(x, x)  # recognizes the reference once, as for the codec before this one
        warm.append(_cpu(lambda: analyze(x, y)))
        base.append(_cpu(lambda: stock.recognize(ref)))
    scale = 10.0 / ref.duration
    return tuple(statistics.median(v) * scale for v in (cold, warm, base))


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    main()
