"""Manifest rows for corpora users may have on disk: LibriSpeech, LibriTTS and VCTK folder layouts.

Each loader walks the corpus's documented layout and returns manifest rows (dicts with id,
path, speaker, text, ...) that `write_manifest` turns into a JSONL file readable by
`evalkit.datasets.load_dataset`. Paths are absolute, so a manifest can live anywhere.
Nothing is copied or decoded here.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError

__all__ = ["librispeech_rows", "libritts_rows", "vctk_rows", "write_manifest", "CORPORA"]


def librispeech_rows(root: str | Path) -> list[dict]:
    """LibriSpeech: SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac, texts in SPEAKER-CHAPTER.trans.txt."""
    root = _folder(root, "LibriSpeech")
    rows = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            utt, _, text = line.strip().partition(" ")
            audio = trans.parent / f"{utt}.flac"
            if utt and audio.is_file():
                rows.append(_row(f"librispeech-{utt}", audio, utt.split("-")[0], text, "LibriSpeech", "CC-BY-4.0"))
    return _nonempty(rows, root, "LibriSpeech")


def libritts_rows(root: str | Path, text: str = "normalized") -> list[dict]:
    """LibriTTS(-R): SUBSET/SPEAKER/CHAPTER/UTT.wav with UTT.normalized.txt (or .original.txt)."""
    if text not in ("normalized", "original"):
        raise ConfigError(f"LibriTTS: text must be 'normalized' or 'original', got {text!r}")
    root = _folder(root, "LibriTTS")
    rows = []
    for audio in sorted(root.rglob("*.wav")):
        transcript = audio.with_suffix(f".{text}.txt")
        words = transcript.read_text(encoding="utf-8").strip() if transcript.is_file() else None
        rows.append(_row(f"libritts-{audio.stem}", audio, audio.stem.split("_")[0], words, "LibriTTS", "CC-BY-4.0"))
    return _nonempty(rows, root, "LibriTTS")


def vctk_rows(root: str | Path, mic: str = "mic1") -> list[dict]:
    """VCTK 0.92 (wav48_silence_trimmed/pNNN/pNNN_UUU_mic1.flac) or the older VCTK-Corpus
    (wav48/pNNN/pNNN_UUU.wav); texts in txt/pNNN/pNNN_UUU.txt when present."""
    root = _folder(root, "VCTK")
    rows = []
    for audio in sorted(root.glob("wav48*/p*/*")):
        stem = audio.stem
        if audio.suffix not in (".flac", ".wav") or ("_mic" in stem and not stem.endswith(f"_{mic}")):
            continue
        utt = stem.removesuffix(f"_{mic}")
        speaker = utt.split("_")[0]
        transcript = root / "txt" / speaker / f"{utt}.txt"
        words = transcript.read_text(encoding="utf-8").strip() if transcript.is_file() else None
        rows.append(_row(f"vctk-{utt}", audio, speaker, words, "VCTK", "CC-BY-4.0"))
    return _nonempty(rows, root, "VCTK")


CORPORA = {"librispeech": librispeech_rows, "libritts": libritts_rows, "vctk": vctk_rows}


def write_manifest(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSONL (one object a line), refusing duplicate ids."""
    ids = [row["id"] for row in rows]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{path}: duplicate item ids in the rows to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _row(id_: str, path: Path, speaker: str, text: str | None, corpus: str, licence: str) -> dict:
    return {
        "id": id_,
        "path": str(path.resolve()),
        "speaker": f"{corpus.lower()}-{speaker}",
        "text": text,
        "source": corpus,
        "licence": licence,
    }


def _folder(root: str | Path, corpus: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{corpus}: {root} is not a folder")
    return root


def _nonempty(rows: list[dict], root: Path, corpus: str) -> list[dict]:
    if not rows:
        raise ConfigError(f"{corpus}: no utterances found under {root} (is this the corpus root?)")
    return rows
