#!/usr/bin/env python3
"""Build the phoneme-hallucination validation set: word-level minimal pairs, resynthesised and spliced.

    .venv/bin/python scripts/build_hallucination_set.py [FOLDER] [--voices flite:slt,...] [--force]

Writes FOLDER/ref/*.wav (what the reference says), FOLDER/flip/*.wav (one word replaced by its
minimal-pair partner: a second take of the whole sentence, or spliced into the reference),
FOLDER/control/*.wav (the second take with the reference's word), FOLDER/manifest.jsonl (one
line per item: kind, text, words, flip_start/flip_end in seconds) and FOLDER/README.txt.
Synthesis is offline and deterministic (Debian flite and festival voices), so the set is
rebuilt rather than committed: about 40 MB of WAV, far above what is worth keeping in git.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalkit.content.synth import INSTALL, VOICES, available_voices  # noqa: E402
from evalkit.content.validation import MANIFEST, PAIRS, build_set  # noqa: E402

DEFAULT = ROOT / "results" / "hallucination-set"
README = """Phoneme-hallucination validation set, built by scripts/build_hallucination_set.py.

Each (voice, pair) gives two items from a carrier sentence and both words of a minimal pair
({pairs} pairs); reference = sentence A. kind "take": flip = sentence B spoken as a second take
(durations x0.96 or x1.04, level -2 or +2 dB), control = sentence A in that same take.
kind "spliced": flip = sentence A with word A's audio replaced by word B's (everything else
sample-identical). flip_start/flip_end: where the differing phones sound (in either take).
Voices: {voices}.
Sources and licences: synthesized with Debian flite (CMU, BSD-style licence) and festival with
the festvox voices kallpc16k, kdlpc16k (free use and redistribution) and us-slt-hts (CMU
ARCTIC slt, BSD-style); the generated audio may be redistributed under the same terms.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--voices", help=f"comma-separated subset of: {', '.join(VOICES)}")
    parser.add_argument("--force", action="store_true", help="replace an existing set")
    args = parser.parse_args(argv)
    if (args.folder / MANIFEST).exists() and not args.force:
        print(f"{args.folder}: a set is already there; pass --force to rebuild it", file=sys.stderr)
        return 1
    voices = args.voices.split(",") if args.voices else available_voices()
    if not voices:
        print(f"no synthesizer voice works here; install with: {INSTALL}", file=sys.stderr)
        return 1
    if args.folder.exists():
        shutil.rmtree(args.folder)
    rows = build_set(args.folder, voices)
    (args.folder / "README.txt").write_text(README.format(pairs=len(PAIRS), voices=", ".join(voices)))
    minutes = sum(r["duration"] for r in rows) / 60
    print(f"{len(rows)} items ({minutes:.1f} min per side) from {len(voices)} voices in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
