"""Can the phoneme detector judge low-rate codecs where the recognizer is confident? (It cannot yet.)

A candidate rule, non-intrusive: on codecs whose own distortion leaves their items "not
judged", judge a place where the recognizer is confident on the decoded audio, read from its
own acoustic scores (PocketSphinx's per-segment acoustic score, per frame: how close the
chosen phone's path stays to the frame's best), and report an edit there, optionally also
needing an envelope change. Swept over thresholds (percentiles of the decoded phones' scores
on the tuning takes) on the validation takes through codec2-1600, amr-nb-4k75 and rvq-3k,
tuning split (bench_hallucination's quick subset) and held-out takes, with the unflipped
controls and bench_hallucination's quick real speech for false alarms per judged minute.

Not part of `make bench` (about 10 min of CPU): `python benchmarks/bench_lowrate_confidence.py`.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from bench_hallucination import SUBSET_STRIDE, _coded, _mono16k, _real_speech, _validation_set

from evalkit.audio import Audio, load
from evalkit.cards import find_card
from evalkit.content.align import align, edit_runs
from evalkit.content.detector import _on_ref_time, _recognize
from evalkit.content.phones import Phone, make_recognizer
from evalkit.content.spectra import HOP_SECONDS, log_mel
from evalkit.content.sphinx import SphinxRecognizer, _pcm16, _phone
from evalkit.content.validation import located
from evalkit.content.warp import warp

CODECS = ("codec2-1600", "amr-nb-4k75", "rvq-3k")
PERCENTILES = (0, 50, 75, 90)  # 0: no confidence gate (every edit)
CHANGES_DB = (None, 2.0)  # None: no envelope change needed
WIDEN = 0.03  # seconds each side of an edit whose decoded phones must be confident


def scored_phones(x: np.ndarray) -> list[Phone]:
    """Decoded phones whose `confidence` holds the per-frame acoustic score (log, x1000; 0 is the best)."""
    decoder = SphinxRecognizer()._decoder()
    decoder.start_utt()
    decoder.process_raw(_pcm16(Audio(x, 16000)).tobytes(), full_utt=True)
    decoder.end_utt()
    phones = []
    for segment in decoder.seg():
        phone = _phone(segment)
        if phone is not None:
            frames = segment.end_frame - segment.start_frame + 1
            score = 1000 * math.log(max(segment.ascore, 1e-300)) / frames
            phones.append(Phone(phone.label, phone.start, phone.end, score))
    return phones


def pair(ref: np.ndarray, deg: np.ndarray) -> dict:
    ref_phones = _recognize(make_recognizer("pocketsphinx"), ref)
    path = warp(log_mel(ref), log_mel(deg))
    deg_phones = [_on_ref_time(p, path) for p in scored_phones(deg)]
    edits = [(e.start, e.end, len(e.ref) + len(e.deg)) for e in edit_runs(align(ref_phones, deg_phones))]
    return {"ref": ref_phones, "deg": deg_phones, "edits": edits, "change": path.change, "seconds": ref.size / 16000}


def flags(p: dict, threshold: float, change_db: float | None) -> list[tuple[float, float]]:
    found = []
    for start, end, _ in p["edits"]:
        scores = [d.confidence for d in p["deg"] if d.start < end + WIDEN and d.end > start - WIDEN]
        if not scores or min(scores) < threshold:
            continue
        near = p["change"][max(0, int((start - WIDEN) / HOP_SECONDS)) : int(math.ceil((end + WIDEN) / HOP_SECONDS)) + 1]
        if change_db is not None and (near.size == 0 or near.max() < change_db):
            continue
        found.append((start, end))
    return found


def judged(p: dict, threshold: float) -> float:
    """Share of the reference's speech frames whose decoded phone (nearest, in a gap) is confident."""
    n = int(math.ceil(p["seconds"] / HOP_SECONDS)) + 1
    speech, score = np.zeros(n, bool), np.full(n, -np.inf)
    for phone in p["ref"]:
        speech[int(phone.start / HOP_SECONDS) : int(math.ceil(phone.end / HOP_SECONDS))] = True
    for phone in p["deg"]:
        span = slice(int(phone.start / HOP_SECONDS), int(math.ceil(phone.end / HOP_SECONDS)))
        score[span] = np.maximum(score[span], phone.confidence)
    covered = np.flatnonzero(np.isfinite(score))
    if not speech.any() or not covered.size:
        return 0.0
    nearest = covered[np.clip(np.searchsorted(covered, np.arange(n)), 0, covered.size - 1)]
    return float(np.mean(np.where(np.isfinite(score), score, score[nearest])[speech] >= threshold))


def tally(takes: list[dict], real: list[dict], threshold: float, change_db: float | None) -> str:
    hits = 0
    control_flags = control_minutes = real_flags = real_minutes = 0.0
    shares = []
    for take in takes:
        flip, control = take["flip"], take["control"]
        hits += any(located(s, e, take["row"]) for s, e in flags(flip, threshold, change_db))
        share = judged(control, threshold)
        shares += [judged(flip, threshold), share]
        control_flags += len(flags(control, threshold, change_db))
        control_minutes += control["seconds"] * share / 60
    for p in real:
        share = judged(p, threshold)
        shares.append(share)
        real_flags += len(flags(p, threshold, change_db))
        real_minutes += p["seconds"] * share / 60
    return (
        f"recall {hits / len(takes):.3f}  fa/min ctrl {control_flags / max(control_minutes, 1e-9):.1f} "
        f"real {real_flags / max(real_minutes, 1e-9):.1f}  judged {np.mean(shares):.2f}"
    )


def main(args: list[str] | None = None) -> None:
    rows = [r for r in _validation_set() if r["kind"] == "take"]
    speech = [x for _, x in _real_speech(1.0)]
    for name in args or CODECS:
        codec, takes = find_card(name).build(), []
        for i, row in enumerate(rows):
            ref = _mono16k(load(row["path"]))
            take = {"row": row, "tuning": i % SUBSET_STRIDE == 0}
            take["flip"] = pair(ref, _coded(codec, load(row["flipped_path"])))
            take["control"] = pair(ref, _coded(codec, load(row["control_path"])))
            takes.append(take)
        real = [pair(x, _coded(codec, Audio(x, 16000))) for x in speech]
        tuning = [t for t in takes if t["tuning"]]
        scores = [d.confidence for t in tuning for d in t["flip"]["deg"]]
        for change_db in CHANGES_DB:
            for q in PERCENTILES:
                threshold = float(np.percentile(scores, q)) if q else -math.inf
                print(
                    f"{name} change>={change_db} score>=p{q} ({threshold:.2f}): tuning "
                    f"{tally(tuning, real, threshold, change_db)} | held-out "
                    f"{tally([t for t in takes if not t['tuning']], real, threshold, change_db)}",
                    flush=True,
                )


if __name__ == "__main__":
    main(sys.argv[1:])
