"""Reference conditions: the identity codec (the hidden reference) as 16-bit PCM packets."""

from __future__ import annotations

import numpy as np

from .base import Codec, CodecInfo, register_backend

__all__ = ["Identity"]


@register_backend("identity")
class Identity(Codec):
    """Transparent 16-bit PCM in 20 ms packets; the MUSHRA hidden reference."""

    def __init__(self, sample_rate: int = 16000):
        self.sample_rate = int(sample_rate)

    @property
    def info(self) -> CodecInfo:
        frame = self.sample_rate // 50
        return CodecInfo(
            name=self.backend, version="pcm_s16le", family="reference", sample_rate=self.sample_rate,
            frame_samples=frame, lookahead_samples=0, nominal_bitrate=16.0 * self.sample_rate,
        )

    def _encode(self, samples):
        pcm = np.clip(np.round(samples[0] * 32768.0), -32768, 32767).astype("<i2")
        frame = self.info.frame_samples
        return {}, [pcm[i:i + frame].tobytes() for i in range(0, len(pcm), frame)]

    def _decode(self, header, packets):
        frame = self.info.frame_samples
        chunks = [np.frombuffer(p, "<i2") if p is not None else np.zeros(frame, "<i2") for p in packets]
        return np.concatenate(chunks).astype(np.float32) / 32768.0
