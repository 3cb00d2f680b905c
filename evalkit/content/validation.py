"""The project's own hallucination validation set: minimal pairs spliced into identical carriers.

For each (voice, pair) the carrier sentence is synthesized twice, once with each word. The
reference keeps sentence A; the flipped copy is sentence A with the phones that differ
(from the first to the last differing phone, by the synthesizer's own timings) taken from
sentence B, so everything else is sample-identical and the flip's place is known to the
millisecond. Both versions get a slot of the same length (the shorter one is padded with
silence), so reference and flip stay time-aligned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..audio import Audio, save
from .synth import SYNTH_RATE, Segment, Synthesis, synthesize

__all__ = ["PAIRS", "CARRIERS", "FlipItem", "make_item", "build_set", "load_set", "located", "MANIFEST", "TOLERANCE"]

PAIRS = (
    ("served", "surfed"), ("bat", "pat"), ("thin", "fin"), ("ship", "sip"), ("dime", "time"),
    ("goat", "coat"), ("vine", "wine"), ("light", "right"), ("bed", "bad"), ("zoo", "sue"),
    ("map", "mat"), ("fan", "van"), ("pin", "pen"), ("rich", "ridge"), ("mouse", "mouth"), ("knee", "me"),
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


def make_item(voice: str, pair: tuple[str, str], carrier: str) -> FlipItem:
    """Synthesize both sentences with `voice` and splice B's differing phones into sentence A."""
    a, b = (synthesize(carrier.format(word), voice) for word in pair)
    start, end = _times(a.segments, _slot(a.segments, b.segments))
    piece_a, piece_b = _cut(a, start, end), _cut(b, *_times(b.segments, _slot(b.segments, a.segments)))
    slot = max(piece_a.size, piece_b.size)
    prefix, suffix = _fade(_samples(a)[: _index(start)], tail=True), _fade(_samples(a)[_index(end):], head=True)
    ref = np.concatenate([prefix, _pad(piece_a, slot), suffix])
    flipped = np.concatenate([prefix, _pad(piece_b, slot), suffix])
    item_id = f"{voice.replace(':', '-')}-{pair[0]}-{pair[1]}"
    return FlipItem(item_id, voice, carrier.format(pair[0]), carrier.format(pair[1]), pair[0], pair[1],
                    start, start + slot / SYNTH_RATE, Audio(ref, SYNTH_RATE, item_id), Audio(flipped, SYNTH_RATE, item_id))


def build_set(folder: Path, voices: list[str]) -> list[dict]:
    """Write ref/ and flip/ WAVs plus a manifest (one line per reference) to `folder`."""
    rows = []
    for v, voice in enumerate(voices):
        for p, pair in enumerate(PAIRS):
            # Alternate direction and carrier so each pair is heard both ways and in several contexts.
            ordered = pair if (v + p) % 2 == 0 else pair[::-1]
            item = make_item(voice, ordered, CARRIERS[(v + p // 2) % len(CARRIERS)])
            rows.append(_write(folder, item))
    (folder / MANIFEST).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def load_set(folder: Path) -> list[dict]:
    """The manifest rows, with `path` and `flipped_path` made absolute."""
    rows = [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"], row["flipped_path"] = str(folder / row["path"]), str(folder / row["flipped_path"])
    return rows


def located(start: float, end: float, row: dict, tolerance: float = TOLERANCE) -> bool:
    """Whether an event at [start, end] s overlaps the row's flip, widened by `tolerance` each side."""
    return start < row["flip_end"] + tolerance and end > row["flip_start"] - tolerance


def _write(folder: Path, item: FlipItem) -> dict:
    save(item.ref, folder / "ref" / f"{item.id}.wav")
    save(item.flipped, folder / "flip" / f"{item.id}.wav")
    row = {k: v for k, v in asdict(item).items() if k not in ("ref", "flipped")}
    row["flip_start"], row["flip_end"] = round(item.flip_start, 4), round(item.flip_end, 4)
    return {**row, "path": f"ref/{item.id}.wav", "flipped_path": f"flip/{item.id}.wav",
            "duration": round(item.ref.duration, 4)}


def _slot(mine: tuple[Segment, ...], other: tuple[Segment, ...]) -> tuple[int, int]:
    """Segment indices [first, last) of what differs between the two sentences (the slot)."""
    names, others = [s.phone for s in mine], [s.phone for s in other]
    head = _common_prefix(names, others)
    tail = _common_prefix(names[head:][::-1], others[head:][::-1])
    return head, max(len(names) - tail, head + 1)  # an insertion still takes one phone of the other


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
    return _fade(_fade(_samples(s)[_index(start): _index(end)], head=True), tail=True)


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
