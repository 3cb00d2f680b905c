"""Phoneme hallucination detector through codecs: recall, false alarms, judged fraction, compute.

Flips: the project's validation set (scripts/build_hallucination_set.py; built here when
missing), "take" items only: a minimal pair's second word spoken in a second take of the whole
sentence (carrier not sample-identical). Each codec codes the flip and the take's control (the
same take with the reference's word); a hit is a flag within ±100 ms of the changed phones,
a false alarm any flag on the control. False alarms are also counted on at least
REAL_MINUTES of real speech (Debian's English Asterisk prompts, the demo corpus's left out),
unflipped, through the same codec, per minute of judged audio. The phone error rate of that
real speech tells which codecs the targets apply to: those within 0.1 of the identity's.
Compute is CPU time on one thread for 10 s of real speech through opus-24k-fec, cold (both
sides recognised) and with the reference's phones reused, beside one stock PocketSphinx
decode of the same audio in the same run. No text is given to the detector anywhere.

By default (as `make bench` runs it) a small fixed validation subset keeps it to a few
minutes: one take in SUBSET_STRIDE (every voice, the pairs rotating), QUICK_MINUTES of real
speech, and one codec or two of each group (QUICK_CODECS). `--full` runs every take, every
codec of GROUPS and REAL_MINUTES of real speech (about 8 min per codec on a loaded 2-core
machine). The quick subset is also the tuning split of the detector's thresholds: `--held-out`
runs the other two takes in three instead (never tuned on), with the quick run's codecs and
real speech. Codec names given on the command line narrow any run.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit.audio import Audio, load, resample
from evalkit.cards import find_card
from evalkit.content import analyze, detector
from evalkit.content.sphinx import SphinxRecognizer
from evalkit.content.synth import available_voices
from evalkit.content.validation import MANIFEST, build_set, load_set, located
from evalkit.harness import roundtrip

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
SET = ROOT / "results" / "hallucination-set"
GROUPS = {
    "identity": ("reference",),
    "zoo": (
        "opus-12k",
        "opus-24k-fec",
        "opus-32k-hybrid",
        "g722-64k",
        "amr-wb-12k65",
        "lc3-16k-32kbps",
        "mp3-32k-16khz",
    ),
    "low-rate": ("codec2-1600", "codec2-3200", "amr-nb-4k75"),
    "neural": ("rvq-1k5", "rvq-3k", "rvq-6k"),
}
REAL_MINUTES = 10.0
QUICK_MINUTES = 1.0
QUICK_CODECS = ("reference", "opus-24k-fec", "mp3-32k-16khz", "codec2-1600", "amr-nb-4k75", "rvq-3k")
SUBSET_STRIDE = 3  # the quick run's takes: every 3rd of the manifest's (38 of 112: every voice, pairs rotating)
MIN_CLIP_SECONDS = 1.0
DEMO_PROMPTS = frozenset({"vm-newuser", "demo-thanks", "priv-introsaved", "demo-nogo"})  # held out in data/demo
TARGET_RECALL, TARGET_FALSE_ALARMS, TARGET_SECONDS, PER_MARGIN = 0.8, 1.0, 0.5, 0.1
REPEATS = 3
RUN_CODECS = ("opus-24k-fec", "g722-64k", "mp3-32k-16khz", "lc3-16k-32kbps")  # the run the per-codec cost is timed on


@dataclass
class Tally:
    """One codec's counts over the flips, their controls and the real speech."""

    hits: int = 0
    flips: int = 0
    control_flags: int = 0
    control_minutes: float = 0.0
    real_flags: int = 0
    real_minutes: float = 0.0  # judged minutes
    errors: float = 0.0  # phone errors (PER x reference phones) on the real speech
    phones: int = 0
    judged: list = field(default_factory=list)  # judged fraction of every item
    not_judged: int = 0
    audio_seconds: float = 0.0  # decoded audio analysed

    def add_real(self, report) -> None:
        self.errors += report.per * report.ref_phones
        self.phones += report.ref_phones
        self._judge(report)
        if report.judged:
            self.real_flags += report.hallucinations
            self.real_minutes += report.duration * report.judged_fraction / 60

    def add_flip(self, report, row: dict) -> None:
        self._judge(report)
        self.flips += 1
        self.hits += report.judged and any(e.flagged and located(e.start, e.end, row) for e in report.events)

    def add_control(self, report) -> None:
        self._judge(report)
        if report.judged:
            self.control_flags += report.hallucinations
            self.control_minutes += report.duration * report.judged_fraction / 60

    def _judge(self, report) -> None:
        self.audio_seconds += report.duration
        self.judged.append(report.judged_fraction)
        self.not_judged += not report.judged

    @property
    def per(self) -> float:
        return self.errors / self.phones if self.phones else float("nan")


def main(args: list[str] | None = None) -> None:
    """The quick subset, `--held-out` or `--full`; codec names narrow any (`bench_hallucination.py --full rvq-1k5`)."""
    args = list(args or [])
    full, held_out = "--full" in args, "--held-out" in args
    only = [a for a in args if a not in ("--full", "--held-out")] or (None if full else list(QUICK_CODECS))
    started = time.perf_counter()
    detector.PHONE_CACHE = 100_000  # every reference is recognised once for all codecs
    rows = [r for r in _validation_set() if r["kind"] == "take"]
    if held_out:
        rows = [r for i, r in enumerate(rows) if i % SUBSET_STRIDE]
    elif not full:
        rows = rows[::SUBSET_STRIDE]
    real = _real_speech(REAL_MINUTES if full else QUICK_MINUTES)
    print(
        "full set"
        if full
        else f"held-out takes ({len(rows)}: those the quick subset leaves out)"
        if held_out
        else f"quick subset ({len(rows)} takes, one in {SUBSET_STRIDE}; {QUICK_MINUTES:g} min of real speech; "
        "--held-out for the other takes, --full for all)"
    )
    minutes = sum(x.size for _, x in real) / 16000 / 60
    print(
        f"{len(rows)} take flips + {len(rows)} controls (synthetic voices), {minutes:.1f} min of real speech "
        f"({len(real)} Asterisk prompts); hit = flag within ±100 ms of the changed phones; no text given"
    )
    header = [
        "codec",
        "group",
        "per_real",
        "targeted",
        "recall",
        "fa_per_min_real",
        "fa_per_min_ctrl",
        "judged",
        "not_judged_items",
        "s_per_10s",
    ]
    print("  ".join(header), flush=True)
    identity, verdicts = None, []
    for group, names in GROUPS.items():
        for name in (n for n in names if not only or n in only):
            start = time.process_time()
            t = _tally(name, rows, real)
            seconds = 10 * (time.process_time() - start) / t.audio_seconds
            identity = t.per if identity is None and group == "identity" else identity
            identity = 0.0 if identity is None else identity  # recognising identical audio twice: PER 0
            targeted = t.per <= identity + PER_MARGIN
            recall, fa = t.hits / t.flips, _rate(t.real_flags, t.real_minutes)
            print(
                "  ".join(
                    [
                        name,
                        group,
                        f"{t.per:.3f}",
                        "yes" if targeted else "no",
                        f"{recall:.3f}",
                        f"{fa:.2f}",
                        f"{_rate(t.control_flags, t.control_minutes):.2f}",
                        f"{statistics.mean(t.judged):.3f}",
                        str(t.not_judged),
                        f"{seconds:.2f}",
                    ]
                ),
                flush=True,
            )
            if targeted:
                verdicts.append((name, recall, fa))
    cold, warm, base = _compute(real)
    print(
        f"compute per 10 s of audio, one thread: {cold:.3f} s cold (ref + deg recognised), {warm:.3f} s with the "
        f"reference's phones reused; baseline one stock PocketSphinx decode {base:.3f} s (cold = {cold / base:.2f}x); "
        "s_per_10s above: the whole codec row (codec round trips included, references recognised once)"
    )
    run = _run_cost(real)
    print(
        f"per codec in a run of {len(RUN_CODECS)} codecs ({', '.join(RUN_CODECS)}) over the real speech, "
        f"seconds per 10 s, one thread, every pair with an empty in-process memo (another worker): "
        f"{run.cold:.3f} s cold; with the run's shared reference store {run.shared:.3f} s "
        f"(first codec {run.first:.3f} s, later codecs {run.later:.3f} s) = {run.shared / run.cold:.2f}x; "
        f"results {'identical' if run.identical else 'DIFFER'}"
    )
    worst_recall = min((r for _, r, _ in verdicts), default=float("nan"))
    worst_fa = max((f for _, _, f in verdicts), default=float("nan"))
    print(
        f"targets on the {len(verdicts)} codecs within {PER_MARGIN} PER of the identity "
        f"({', '.join(n for n, _, _ in verdicts)}): recall {worst_recall:.3f} >= {TARGET_RECALL} "
        f"{_verdict(worst_recall >= TARGET_RECALL)}; false alarms {worst_fa:.2f}/min <= {TARGET_FALSE_ALARMS} "
        f"{_verdict(worst_fa <= TARGET_FALSE_ALARMS)}; compute {cold:.3f} s <= {TARGET_SECONDS} "
        f"{_verdict(cold <= TARGET_SECONDS)} (one pair cold); per codec in a run {run.shared:.3f} s <= "
        f"{TARGET_SECONDS} {_verdict(run.shared <= TARGET_SECONDS)}"
    )
    print(f"wall time {time.perf_counter() - started:.0f} s")


def _tally(name: str, rows: list[dict], real: list[tuple[str, np.ndarray]]) -> Tally:
    codec, tally = find_card(name).build(), Tally()
    for row in rows:
        ref = _mono16k(load(row["path"]))
        tally.add_flip(analyze(ref, _coded(codec, load(row["flipped_path"]))), row)
        tally.add_control(analyze(ref, _coded(codec, load(row["control_path"]))))
    for _, x in real:
        tally.add_real(analyze(x, _coded(codec, Audio(x, 16000))))
    return tally


def _validation_set() -> list[dict]:
    if not (SET / MANIFEST).exists():
        build_set(SET, available_voices())
    return load_set(SET)


def _real_speech(minutes: float) -> list[tuple[str, np.ndarray]]:
    """English Asterisk prompts (Allison), by name, demo prompts left out, until `minutes` are reached."""
    from build_demo_corpus import SOUNDS, VOICES, decode_g722

    voice = next(v for v in VOICES if v.language == "en")
    clips, total = [], 0.0
    for path in sorted((SOUNDS / voice.folder).rglob("*.g722")):
        if path.stem in DEMO_PROMPTS:
            continue
        x = decode_g722(path)
        if x.size < MIN_CLIP_SECONDS * 16000:
            continue
        clips.append((path.stem, x))
        total += x.size / 16000 / 60
        if total >= minutes:
            break
    return clips


def _coded(codec, audio: Audio) -> np.ndarray:
    return _mono16k(roundtrip(codec, audio).decoded)


def _mono16k(audio: Audio) -> np.ndarray:
    return resample(audio, 16000).samples[0].astype(np.float64)


def _compute(real: list[tuple[str, np.ndarray]]) -> tuple[float, float, float]:
    """Median CPU seconds per 10 s: cold detector, detector with ref phones cached, stock decode."""
    x = np.concatenate([clip for _, clip in real])[: 10 * 16000]
    y = _coded(find_card("opus-24k-fec").build(), Audio(x, 16000))
    stock = SphinxRecognizer(settings={}, bigram=False)
    cold, warm, base = [], [], []
    for _ in range(REPEATS):
        detector.forget_phones()
        cold.append(_cpu(lambda: analyze(x, y)))
        detector.forget_phones()
        analyze(x, x)  # recognises the reference once, as for the codec before this one
        warm.append(_cpu(lambda: analyze(x, y)))
        base.append(_cpu(lambda: stock.recognize(Audio(x, 16000))))
    scale = 10.0 / (x.size / 16000)
    return tuple(statistics.median(v) * scale for v in (cold, warm, base))


@dataclass
class RunCost:
    cold: float  # per codec, seconds per 10 s: both sides recognised every time
    shared: float  # per codec, averaged over the run, references from the run's store
    first: float  # the first codec (it recognises and stores the references)
    later: float  # every later codec
    identical: bool  # the reports equal with and without the store


def _run_cost(real: list[tuple[str, np.ndarray]]) -> RunCost:
    """CPU time of the detector over RUN_CODECS, codec by codec as runner.plan orders a run's
    tasks, cold and with the references shared through a store (as in a run's cache folder)."""
    decoded = {name: [_coded(find_card(name).build(), Audio(x, 16000)) for _, x in real] for name in RUN_CODECS}
    seconds = 10.0 / (sum(x.size for _, x in real) / 16000)

    def one_run(root: Path | None) -> tuple[list[float], list]:
        detector.share_reference_phones(root)
        times, reports = [], []
        for name in RUN_CODECS:
            start = time.process_time()
            for (_, x), y in zip(real, decoded[name]):
                detector.forget_phones()
                reports.append(analyze(x, y))
            times.append((time.process_time() - start) * seconds)
        detector.share_reference_phones(None)
        return times, reports

    with tempfile.TemporaryDirectory() as root:
        cold, plain = one_run(None)
        shared, stored = one_run(Path(root))
    return RunCost(
        statistics.mean(cold),
        statistics.mean(shared),
        shared[0],
        statistics.mean(shared[1:]),
        plain == stored,
    )


def _rate(flags: int, minutes: float) -> float:
    return flags / minutes if minutes else float("nan")


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    main(sys.argv[1:])
