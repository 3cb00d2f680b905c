"""Content-addressed cache of decoded audio: the key covers everything that changes the output."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from .audio import Audio, load

__all__ = ["DecodedCache", "file_digest"]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes: an item changes its key when its audio changes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DecodedCache:
    """Decoded audio stored as float WAV under `root/ab/abcdef....wav`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(item_digest: str, config_hash: str, codec_version: str, downmix: bool) -> str:
        from .codecs.bitstream import FORMAT_VERSION  # here: the codecs package imports this module

        text = f"{item_digest}|{config_hash}|{codec_version}|{FORMAT_VERSION}|{downmix}"
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.wav"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str, id: str | None = None) -> Audio | None:
        path = self.path(key)
        return load(path, id=id) if path.is_file() else None

    def put(self, key: str, audio: Audio) -> Path:
        """Write atomically, so a killed run never leaves half a file under the final name.

        The file is written from memory rather than by libsndfile, whose close forces it to disk
        (fsync): a cache entry lost in a power cut is only recomputed, and the sync cost more than
        the write."""
        import soundfile as sf

        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.wav")
        buffer = io.BytesIO()
        sf.write(buffer, audio.samples.T, audio.sample_rate, subtype="FLOAT", format="WAV")
        partial.write_bytes(buffer.getbuffer())
        os.replace(partial, path)
        return path
