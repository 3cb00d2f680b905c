"""Goodness of pronunciation as a check on the phoneme detector's flags: measured per codec, not adopted.

    python benchmarks/bench_fit_margin.py [OUT.json] [--limit N] [codec ...]

The idea: a real flip makes the reference's phones fit the decoded audio badly, while a codec
that only made the recognizer mis-hear the same phones leaves them fitting nearly as well as
what it heard. For every event the detector flags (phoneme metric version 4), the decoded
audio's window around it (whole decoded phones, about WINDOW_SECONDS each side, PAD_SECONDS of
slack) is force-aligned with PocketSphinx's acoustic model, normalised with the whole signal's
cepstral mean, to
  heard: the decoded phones there,
  said:  the same with the edit's decoded phones replaced by the reference's,
  free:  the best sequence of any phones (a phone loop),
and the reference's audio at the same place (mapped along the detector's content warp) to
heard and said as well. Margins, in nats per frame of the edit (at least 3 frames):
  heard_edit = heard - said;  free_edit = free - said;
  diff_edit  = (heard - said on the decoded audio) - (heard - said on the reference's audio);
  ref_edit   = said - heard on the reference's audio.
An event is kept when its margin reaches a threshold (or could not be scored). Per codec and
threshold: recall within ±100 ms on the flips and false alarms per judged minute on the
unflipped controls, on the tuning takes (bench_hallucination's quick subset) and on the
held-out takes, and on QUICK_MINUTES of real speech; and the CPU time of the heard/said check
against the detector's own (same run, one thread). Results are kept per codec in OUT.json
(resumed when rerun; `--limit N` takes the first N takes only, for a smoke test).

Not part of `make bench` (about 10 min of CPU per codec on a loaded 2-core machine).

Measured (all 112 takes: 38 tuning, 74 held-out; recall / control false alarms per minute on the
held-out takes; "v4" is the detector as it is, identical to bench_hallucination --held-out):

    codec            v4          heard>=0    heard>=1    diff>=1     diff>=2     diff>=3     free>=2
    reference        0.838/0.35  0.757/0.00  0.568/0.00  0.743/0.35  0.689/0.35  0.595/0.35  0.676/0.35
    opus-24k-fec     0.824/1.74  0.689/1.74  0.581/1.39  0.797/1.39  0.757/1.39  0.649/1.39  0.676/1.39
    opus-32k-hybrid  0.811/1.04  0.703/1.04  0.554/0.70  0.757/0.70  0.703/0.70  0.568/0.70  0.676/1.04
    mp3-32k-16khz    0.838/3.46  0.703/3.12  0.554/1.39  0.811/2.77  0.730/2.08  0.635/1.39  0.581/1.73
    g722-64k         0.838/2.77  0.703/0.69  0.568/0.00  0.757/1.39  0.689/0.69  0.527/0.35  0.622/1.73
    lc3-16k-32kbps   0.811/1.74  0.757/1.04  0.595/1.04  0.770/1.74  0.716/1.74  0.595/1.04  0.649/1.74
    opus-12k         0.770/3.20  0.716/2.49  0.541/1.42  0.730/2.13  0.703/2.13  0.581/1.42  0.622/2.49
    amr-wb-12k65     0.730/6.46  0.676/5.03  0.568/2.51  0.703/5.03  0.635/3.59  0.500/2.87  0.622/5.03

No margin of any kind keeps recall at 0.8 while bringing the controls' false alarms to 1 per
minute, and neither does a margin combined with the envelope change (kept when the change reaches
1.8-3 dB or the margin its threshold; tried on MP3 and LC3 only, whose events carry change_db:
MP3 at best 0.80/2.4 held-out). On the tuning takes every threshold above 0 already costs recall
below 0.8 on most codecs. Real flips often fit the decoded audio only a little better than the
reference's phones (the recognizer's phones are not the best forced fit: 10-19 % of located
flags have heard < said), while several codec false alarms fit much better (e.g. D -> V, margin
8 nats per frame through LC3 and MP3: the acoustic model itself hears the coded phone as another).
Cost: 0.15-0.16 s CPU per flagged event (every senone scored), 0.29-0.32 s per 10 s of these
takes where 41-46 % of pairs have a flag, beside the detector's 0.36-0.53 s in the same run.
So the phoneme metric stays at version 4.
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
import sys
import tempfile
import time
from bisect import bisect_left
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_hallucination import (  # noqa: E402
    GROUPS,
    QUICK_MINUTES,
    SUBSET_STRIDE,
    _coded,
    _mono16k,
    _real_speech,
    _validation_set,
)

from evalkit.audio import Audio, load  # noqa: E402
from evalkit.cards import find_card  # noqa: E402
from evalkit.content import analyze, detector  # noqa: E402
from evalkit.content.align import align, edit_runs  # noqa: E402
from evalkit.content.phones import ARPABET, make_recognizer  # noqa: E402
from evalkit.content.spectra import log_mel  # noqa: E402
from evalkit.content.validation import located  # noqa: E402
from evalkit.content.warp import warp  # noqa: E402

CODECS = GROUPS["identity"] + GROUPS["zoo"]
MODES = ("heard_edit", "free_edit", "diff_edit", "ref_edit")
THRESHOLDS = (-math.inf, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
WINDOW_SECONDS = 0.15  # context each side of the edit, rounded out to whole decoded phones
PAD_SECONDS = 0.03  # slack at the window's edges: the recognizer's phone boundaries are rough
MIN_EDIT_FRAMES = 3  # an inserted or dropped phone spans at least its three HMM states
RATE, FRAME_SECONDS = 16000, 0.01
SCORE_SCALE = 2**10  # see WindowScorer.score
LOOP = "phone_loop"


class WindowScorer:
    """Forced alignment of phone sequences on windows of one signal, every window normalised with
    the whole signal's cepstral mean (a short window's own mean would differ)."""

    def __init__(self, x: np.ndarray):
        from pocketsphinx import Decoder, get_model_path

        self.pcm = np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)
        self.decoder = Decoder(
            hmm=get_model_path("en-us/en-us"),
            dict=_phone_dictionary(),
            lm=None,
            loglevel="FATAL",
            samprate=RATE,
            cmn="live",
            beam=1e-80,  # wide: a window is short (a wide word-exit beam, though, lets the search stop early)
            wip=1.0,  # no insertion penalties: the hypotheses differ in length
            pip=1.0,
            bestpath=False,  # the forward Viterbi path: the lattice's best path can drop the last phone
            compallsen=True,  # every senone scored: all hypotheses share each frame's best-senone normaliser
        )
        loop = " | ".join(sorted(ARPABET))
        self.decoder.add_jsgf_string(LOOP, f"#JSGF V1.0; grammar loop; public <loop> = ({loop})+ ;")
        self.decoder.set_align_text("AH")
        self.cmn = whole_signal_cmn(self.decoder, self.pcm)

    def score(self, labels: list[str] | None, start: float, end: float) -> float | None:
        """Log-likelihood (nats) of `labels` aligned on [start, end] s (None: any phones); None
        when the alignment cannot reach the window's end."""
        start, end = max(0.0, start - PAD_SECONDS), end + PAD_SECONDS
        window = self.pcm[int(round(start * RATE)) : int(round(end * RATE))]
        if labels is not None and (not labels or window.size < RATE * FRAME_SECONDS * 3 * len(labels)):
            return None
        decoder = self.decoder
        if labels is None:
            decoder.activate_search(LOOP)
        else:
            decoder.set_align_text(" ".join(labels))
        decoder.set_cmn(self.cmn)
        decoder.start_utt()
        decoder.process_raw(window.tobytes(), full_utt=False)
        try:
            decoder.end_utt()
        except RuntimeError:
            return None
        hyp = decoder.hyp()
        if hyp is None or (labels is not None and hyp.hypstr.split() != labels):
            return None
        # pocketsphinx keeps the path score (acoustic and HMM transitions, each frame relative to
        # its best senone; no penalties here) in log base 1.0001 scaled down by 2**10, and the
        # binding exponentiates it unscaled. Per-segment scores are not usable: the last segment
        # repeats the one before.
        return math.log(hyp.score) * SCORE_SCALE


def whole_signal_cmn(decoder, pcm: np.ndarray) -> str:
    """The cepstral mean of the whole 16-bit signal `pcm` (for `decoder.set_cmn` before a window)."""
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), no_search=True, full_utt=True)
    cmn = decoder.get_cmn(True)
    try:
        decoder.end_utt()
    except RuntimeError:
        pass  # nothing was searched; the mean is what this pass is for
    return cmn


@lru_cache(maxsize=1)
def _phone_dictionary() -> str:
    """A dictionary whose words are single phones, written once per process to a temporary file."""
    folder = Path(tempfile.mkdtemp(prefix="evalkit-gop-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "phones.dict"
    path.write_text("".join(f"{p} {p}\n" for p in sorted(ARPABET)))
    return str(path)


def _window(edit, deg, on_ref) -> tuple[float, float, list[str], list[str], int] | None:
    """Decoded seconds, heard and said phones, and the edit's frames around `edit`."""
    index = {id(p): i for i, p in enumerate(on_ref)}
    if edit.deg:
        first, last = index[id(edit.deg[0])], index[id(edit.deg[-1])] + 1
    else:
        first = last = bisect_left([p.start for p in on_ref], edit.start)
    if not deg:
        return None
    centre_start = deg[first].start if first < last else (deg[first - 1].end if first else deg[0].start)
    centre_end = deg[last - 1].end if first < last else centre_start
    lo, hi = first, last
    while lo > 0 and deg[lo - 1].start > centre_start - WINDOW_SECONDS:
        lo -= 1
    while hi < len(deg) and deg[hi].end < centre_end + WINDOW_SECONDS:
        hi += 1
    if lo == hi:  # a deletion between two phones: one each side
        lo, hi = max(0, lo - 1), min(len(deg), hi + 1)
    heard = [p.label for p in deg[lo:hi]]
    said = heard[: first - lo] + [p.label for p in edit.ref] + heard[last - lo :]
    span = centre_end - centre_start if first < last else edit.end - edit.start
    return deg[lo].start, deg[hi - 1].end, heard, said, max(MIN_EDIT_FRAMES, int(round(span / FRAME_SECONDS)))


def flagged_windows(ref: np.ndarray, deg: np.ndarray, report) -> tuple:
    """The detector's content warp, and `_window` of each flagged event of `report` in order."""
    recognizer = make_recognizer(detector.DEFAULT_RECOGNIZER)  # the detector's memo gives its phones back
    ref_phones = detector._recognize(recognizer, ref, shared=True)
    deg_phones = detector._recognize(recognizer, deg)
    path = warp(log_mel(ref), log_mel(deg))
    on_ref = [detector._on_ref_time(p, path) for p in deg_phones]
    edits = edit_runs(align(ref_phones, on_ref))
    return path, [_window(edit, deg_phones, on_ref) for event, edit in zip(report.events, edits) if event.flagged]


def _scores(ref: np.ndarray, deg: np.ndarray, report) -> tuple[list[dict | None], float]:
    """Per flagged event of `report`, the alignment scores behind every margin; the CPU seconds
    of the heard/said pair on the decoded audio (what a check would cost)."""
    if not report.hallucinations:
        return [], 0.0
    path, windows = flagged_windows(ref, deg, report)
    on_deg, on_reference, seconds, out = None, WindowScorer(ref), 0.0, []
    for window in windows:
        start_cpu = time.process_time()
        on_deg = on_deg or WindowScorer(deg)
        if window is None:
            out.append(None)
            continue
        start, end, heard_phones, said_phones, frames = window
        heard, said = on_deg.score(heard_phones, start, end), on_deg.score(said_phones, start, end)
        seconds += time.process_time() - start_cpu
        ref_start, ref_end = path.to_ref_seconds(start), path.to_ref_seconds(end)
        out.append(
            {
                "heard": heard,
                "said": said,
                "free": on_deg.score(None, start, end),
                "ref_heard": on_reference.score(heard_phones, ref_start, ref_end),
                "ref_said": on_reference.score(said_phones, ref_start, ref_end),
                "edit_frames": frames,
            }
        )
    return out, seconds


def _item(ref: np.ndarray, deg: np.ndarray, cost: dict, **extra) -> dict:
    start = time.process_time()
    report = analyze(ref, deg)
    cost["detector"] += time.process_time() - start
    scores, seconds = _scores(ref, deg, report)
    cost["check"] += seconds
    flagged = [e for e in report.events if e.flagged]
    events = [
        {"start": e.start, "end": e.end, "ref": e.ref_phones, "deg": e.deg_phones, "change_db": e.change_db, "raw": raw}
        for e, raw in zip(flagged, scores)
    ]
    return {
        "judged": report.judged,
        "minutes": report.duration * report.judged_fraction / 60,
        "events": events,
        **extra,
    }


def measure(name: str, rows: list[dict], real) -> dict:
    cost = {"detector": 0.0, "check": 0.0}
    return {"items": coded_items(name, rows, real, lambda ref, deg, **extra: _item(ref, deg, cost, **extra)), **cost}


def coded_items(name: str, rows: list[dict], real, item) -> list[dict]:
    """`item(ref, decoded, kind=, split=[, span=])` for every take's flip and control and every
    real-speech clip through codec `name`, in that order (the real speech last)."""
    codec, items = find_card(name).build(), []
    for i, row in enumerate(rows):
        split = "tuning" if i % SUBSET_STRIDE == 0 else "held-out"
        ref = _mono16k(load(row["path"]))
        flipped, control = _coded(codec, load(row["flipped_path"])), _coded(codec, load(row["control_path"]))
        items.append(item(ref, flipped, kind="flip", split=split, span=[row["flip_start"], row["flip_end"]]))
        items.append(item(ref, control, kind="control", split=split))
    for _, x in real:
        items.append(item(x, _coded(codec, Audio(x, RATE)), kind="real", split="real"))
    return items


def margin(raw: dict | None, mode: str) -> float | None:
    """The event's margin in nats per frame of the edit; None where an alignment failed."""
    if raw is None or raw["heard"] is None or raw["said"] is None:
        return None
    deg = raw["heard"] - raw["said"]
    if mode == "heard_edit":
        value = deg
    elif mode == "free_edit":
        value = None if raw["free"] is None else raw["free"] - raw["said"]
    elif raw["ref_heard"] is None or raw["ref_said"] is None:
        value = None
    else:
        on_ref = raw["ref_heard"] - raw["ref_said"]
        value = deg - on_ref if mode == "diff_edit" else -on_ref
    return None if value is None else value / raw["edit_frames"]


def tally(items: list[dict], split: str, threshold: float, mode: str) -> tuple[float, float, float]:
    """`tally_kept`, keeping the events whose margin reaches `threshold` (or could not be scored)."""
    return tally_kept(items, split, lambda e: not ((m := margin(e["raw"], mode)) is not None and m < threshold))


def tally_kept(items: list[dict], split: str, keep) -> tuple[float, float, float]:
    """Recall on the split's flips and false alarms per judged minute on its controls and on real
    speech, counting only the events `keep(event)` keeps."""

    def kept(item):
        return [e for e in item["events"] if keep(e)]

    flips = [i for i in items if i["split"] == split and i["kind"] == "flip"]
    hits = sum(
        bool(i["judged"])
        and any(located(e["start"], e["end"], {"flip_start": i["span"][0], "flip_end": i["span"][1]}) for e in kept(i))
        for i in flips
    )

    def rate(kind: str, which: str) -> float:
        chosen = [i for i in items if i["kind"] == kind and i["split"] == which and i["judged"]]
        minutes = sum(i["minutes"] for i in chosen)
        return sum(len(kept(i)) for i in chosen) / minutes if minutes else math.nan

    return hits / len(flips) if flips else math.nan, rate("control", split), rate("real", "real")


def report(name: str, result: dict) -> None:
    print(
        f"{name}: heard/said check {result['check']:.1f} s CPU beside the detector's {result['detector']:.1f} s "
        f"({100 * result['check'] / result['detector']:.1f}%); recall / false alarms per min (controls), "
        "tuning | held-out | real speech"
    )
    for mode in MODES:
        cells = []
        for threshold in THRESHOLDS:
            tune, held = (
                tally(result["items"], "tuning", threshold, mode),
                tally(result["items"], "held-out", threshold, mode),
            )
            cells.append(f"{threshold:>4}: {tune[0]:.2f}/{tune[1]:.1f} | {held[0]:.2f}/{held[1]:.1f} | {held[2]:.1f}")
        print(f"  {mode}\n    " + "\n    ".join(cells), flush=True)


def main(args: list[str]) -> None:
    run_codecs(args, Path("results/fit-margin.json"), measure, report)


def run_codecs(args: list[str], default_out: Path, measure, report) -> None:
    """`measure(name, takes, real)` per codec named in `args` (all of CODECS by default), kept in
    the JSON file named there (default_out otherwise) and resumed from it; `report(name, result)`.
    `--limit N`: the first N takes, no real speech."""
    out = next((Path(a) for a in args if a.endswith(".json")), default_out)
    limit = int(args[args.index("--limit") + 1]) if "--limit" in args else None
    names = [a for a in args if not a.endswith(".json") and a != "--limit" and a != str(limit)] or list(CODECS)
    detector.PHONE_CACHE = 100_000  # every reference is recognised once for all codecs
    done = json.loads(out.read_text()) if out.exists() else {}
    rows = [r for r in _validation_set() if r["kind"] == "take"][:limit]
    real = _real_speech(QUICK_MINUTES) if limit is None else []
    for name in names:
        if name not in done:
            done[name] = measure(name, rows, real)
            out.write_text(json.dumps(done))
        report(name, done[name])


if __name__ == "__main__":
    main(sys.argv[1:])
