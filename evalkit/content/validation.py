"""The project's own hallucination validation set: word-level minimal pairs, two kinds of item.

* Resynthesised ("take"): the reference is the carrier sentence with word A; the flip is the
  whole sentence spoken again with word B, as a second take (a little faster or slower, a
  little louder or softer), so the carrier varies naturally around the flip; the control is
  the same second take with word A, which must raise no flag.
* Spliced: the flipped copy is sentence A with the phones that differ (from the first to the
  last differing phone, by the synthesizer's own timings) taken from sentence B, so
  everything else is sample-identical and the flip's place is known to the millisecond. Both
  versions get a slot of the same length (the shorter one is padded with silence).

Either way the flip's span comes from the synthesizer's own phone timings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..audio import Audio, save
from .synth import SYNTH_RATE, Segment, Synthesis, synthesize

__all__ = [
    "PAIRS",
    "CARRIERS",
    "FlipItem",
    "make_item",
    "make_take",
    "build_set",
    "load_set",
    "located",
    "MANIFEST",
    "TOLERANCE",
    "KINDS",
]

PAIRS = (
    ("served", "surfed"),
    ("bat", "pat"),
    ("thin", "fin"),
    ("ship", "sip"),
    ("dime", "time"),
    ("goat", "coat"),
    ("vine", "wine"),
    ("light", "right"),
    ("bed", "bad"),
    ("zoo", "sue"),
    ("map", "mat"),
    ("fan", "van"),
    ("pin", "pen"),
    ("rich", "ridge"),
    ("mouse", "mouth"),
    ("knee", "me"),
)
CARRIERS = (
    "Please say the word {} again.",
    "I think {} is the answer today.",
    "She wrote {} on the board before lunch.",
    "We heard {} twice in the morning news.",
)
MANIFEST = "manifest.jsonl"
FADE_SECONDS = 0.004  # raised-cosine ramps at the splice points: no clicks for the recognizer to hear
TOLERANCE = 0.1  # seconds: a flag counts as finding the flip when it overlaps the flip's span widened by this
KINDS = ("take", "spliced")
PAUSES = frozenset({"pau", "h#", "#", "sil"})  # the synthesizers' silence segments
TAKE_STRETCH = (0.96, 1.04)  # the second take's durations against the reference's
TAKE_GAIN_DB = (-2.0, 2.0)  # and its level


@dataclass(frozen=True)
class FlipItem:
    """A reference sentence, its flipped twin, and where (seconds) the phones differ."""

    id: str
    voice: str
    text: str  # what the reference says
    flipped_text: str
    word: str
    flipped_word: str
    flip_start: float
    flip_end: float
    ref: Audio
    flipped: Audio
    kind: str = "spliced"
    control: Audio | None = None  # the flip's take with the reference's word (takes only)


def make_take(voice: str, pair: tuple[str, str], carrier: str, stretch: float, gain_db: float) -> FlipItem:
    """Sentence A as the reference; sentence B and sentence A again as a second take."""
    a = synthesize(carrier.format(pair[0]), voice)
    b = synthesize(carrier.format(pair[1]), voice, stretch)
    c = synthesize(carrier.format(pair[0]), voice, stretch)
    start_a, end_a = _times(a.segments, _slot(a.segments, b.segments))
    start_b, end_b = _times(b.segments, _slot(b.segments, a.segments))
    size = max(_samples(s).size for s in (a, b, c))
    gain = 10 ** (gain_db / 20)
    ref, flipped, control = (_pad(_samples(s) * g, size) for s, g in ((a, 1.0), (b, gain), (c, gain)))
    item_id = f"take-{voice.replace(':', '-')}-{pair[0]}-{pair[1]}"
    return FlipItem(
        item_id,
        voice,
        carrier.format(pair[0]),
        carrier.format(pair[1]),
        pair[0],
        pair[1],
        min(start_a, start_b),
        max(end_a, end_b),
        Audio(ref, SYNTH_RATE, item_id),
        Audio(flipped, SYNTH_RATE, item_id),
        "take",
        Audio(control, SYNTH_RATE, item_id),
    )


def make_item(voice: str, pair: tuple[str, str], carrier: str) -> FlipItem:
    """Synthesize both sentences with `voice` and splice B's differing phones into sentence A."""
    a, b = (synthesize(carrier.format(word), voice) for word in pair)
    start, end = _times(a.segments, _slot(a.segments, b.segments))
    piece_a, piece_b = _cut(a, start, end), _cut(b, *_times(b.segments, _slot(b.segments, a.segments)))
    slot = max(piece_a.size, piece_b.size)
    prefix, suffix = _fade(_samples(a)[: _index(start)], tail=True), _fade(_samples(a)[_index(end) :], head=True)
    ref = np.concatenate([prefix, _pad(piece_a, slot), suffix])
    flipped = np.concatenate([prefix, _pad(piece_b, slot), suffix])
    item_id = f"spliced-{voice.replace(':', '-')}-{pair[0]}-{pair[1]}"
    return FlipItem(
        item_id,
        voice,
        carrier.format(pair[0]),
        carrier.format(pair[1]),
        pair[0],
        pair[1],
        start,
        start + slot / SYNTH_RATE,
        Audio(ref, SYNTH_RATE, item_id),
        Audio(flipped, SYNTH_RATE, item_id),
    )


def build_set(folder: Path, voices: list[str], kinds: tuple[str, ...] = KINDS) -> list[dict]:
    """Write ref/, flip/ and control/ WAVs plus a manifest (one line per reference) to `folder`."""
    rows = []
    for v, voice in enumerate(voices):
        for p, pair in enumerate(PAIRS):
            # Alternate direction and carrier so each pair is heard both ways and in several contexts.
            ordered = pair if (v + p) % 2 == 0 else pair[::-1]
            carrier = CARRIERS[(v + p // 2) % len(CARRIERS)]
            if "take" in kinds:
                take = (TAKE_STRETCH[(v + p) % 2], TAKE_GAIN_DB[(v + p // 2) % 2])
                rows.append(_write(folder, make_take(voice, ordered, carrier, *take)))
            if "spliced" in kinds:
                rows.append(_write(folder, make_item(voice, ordered, carrier)))
    (folder / MANIFEST).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def load_set(folder: Path) -> list[dict]:
    """The manifest rows, with `path` and `flipped_path` made absolute."""
    rows = [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines() if line.strip()]
    for row in rows:
        for key in ("path", "flipped_path", "control_path"):
            if row.get(key):
                row[key] = str(folder / row[key])
    return rows


def located(start: float, end: float, row: dict, tolerance: float = TOLERANCE) -> bool:
    """Whether an event at [start, end] s overlaps the row's flip, widened by `tolerance` each side."""
    return start < row["flip_end"] + tolerance and end > row["flip_start"] - tolerance


def _write(folder: Path, item: FlipItem) -> dict:
    save(item.ref, folder / "ref" / f"{item.id}.wav")
    save(item.flipped, folder / "flip" / f"{item.id}.wav")
    control = None
    if item.control is not None:
        control = f"control/{item.id}.wav"
        save(item.control, folder / control)
    row = {k: v for k, v in asdict(item).items() if k not in ("ref", "flipped", "control")}
    row["flip_start"], row["flip_end"] = round(item.flip_start, 4), round(item.flip_end, 4)
    return {
        **row,
        "path": f"ref/{item.id}.wav",
        "flipped_path": f"flip/{item.id}.wav",
        "control_path": control,
        "duration": round(item.ref.duration, 4),
    }


def _slot(mine: tuple[Segment, ...], other: tuple[Segment, ...]) -> tuple[int, int]:
    """Segment indices [first, last) of what differs between the two sentences (the slot).

    Pauses are left out of the comparison: a second take may phrase the sentence differently.
    """
    spoken = [i for i, s in enumerate(mine) if s.phone not in PAUSES]
    names, others = [mine[i].phone for i in spoken], [s.phone for s in other if s.phone not in PAUSES]
    head = min(_common_prefix(names, others), len(names) - 1)
    tail = _common_prefix(names[head:][::-1], others[head:][::-1])
    last = min(max(len(names) - tail, head + 1), len(names))  # an insertion still takes one phone of the other
    return spoken[head], spoken[last - 1] + 1


def _common_prefix(x: list[str], y: list[str]) -> int:
    n = 0
    while n < min(len(x), len(y)) and x[n] == y[n]:
        n += 1
    return n


def _times(segments: tuple[Segment, ...], span: tuple[int, int]) -> tuple[float, float]:
    return segments[span[0]].start, segments[span[1] - 1].end


def _index(seconds: float) -> int:
    return int(round(seconds * SYNTH_RATE))


def _samples(s: Synthesis) -> np.ndarray:
    return s.audio.samples[0].astype(np.float64)


def _cut(s: Synthesis, start: float, end: float) -> np.ndarray:
    return _fade(_fade(_samples(s)[_index(start) : _index(end)], head=True), tail=True)


def _pad(x: np.ndarray, size: int) -> np.ndarray:
    return np.pad(x, (0, size - x.size))


def _fade(x: np.ndarray, head: bool = False, tail: bool = False) -> np.ndarray:
    n = min(_index(FADE_SECONDS), x.size // 2)
    if n == 0:
        return x
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    x = x.copy()
    if head:
        x[:n] *= ramp
    if tail:
        x[-n:] *= ramp[::-1]
    return x
