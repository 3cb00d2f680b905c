"""The ITU-T waveform coders through PyAV: ``g711`` (mu-law/A-law), ``g722`` and ``g726``."""

from __future__ import annotations

from typing import ClassVar

from .base import CodecInfo, check_packet_sizes, register_backend
from .pyav import PyAVCodec, av_stack, check_choice, decode_stream, encode_stream, missing_codecs, rechunk

__all__ = ["G711", "G722", "G726"]


class _Waveform(PyAVCodec):
    """Sample-by-sample ITU coders: a continuous codeword stream cut into 20 ms packets.

    The encoder's output is re-cut at 20 ms boundaries (byte-aligned for every code size here),
    because FFmpeg's G.726 encoder emits packets of 1640 to 4096 samples of its own choosing.
    A lost packet is replaced by 20 ms of silence: these standards define no concealment.
    """

    family: ClassVar[str] = ""
    rate: ClassVar[int] = 8000
    delay: ClassVar[int] = 0  # decoded lag in samples, measured
    bitrate: int = 64000

    @property
    def frame_samples(self) -> int:
        return self.rate // 50

    @property
    def packet_bytes(self) -> int:
        return self.bitrate // 400  # bits per 20 ms / 8

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend,
            version=f"{self.encoder} ({av_stack()})",
            family=self.family,
            sample_rate=self.rate,
            frame_samples=self.frame_samples,
            lookahead_samples=self.delay,
            nominal_bitrate=float(self.bitrate),
            bitrate_tolerance=0.05,  # exact rate; only the end padding comes on top
            needs=("av",),
        )

    def _encoder_options(self) -> dict:
        return {}

    def _decoder_options(self) -> dict:
        return {}

    def _encode(self, samples):
        ctx = self._context("w", self.rate, self._encoder_options(), format="s16")
        packets = encode_stream(ctx, samples, "s16", self.frame_samples)
        return {}, rechunk(packets, self.packet_bytes)

    def _decode(self, header, packets):
        check_packet_sizes(packets, 1, self.packet_bytes, self.backend)
        ctx = self._context("r", self.rate, self._decoder_options())
        return decode_stream(ctx, packets, lambda i: None, self.frame_samples, self.backend)


@register_backend("g711")
class G711(_Waveform):
    """G.711 log-PCM, mu-law or A-law, 8 kHz, 64 kbit/s; no delay."""

    family = "g711"
    _LAWS = {"mu": "pcm_mulaw", "a": "pcm_alaw"}

    def __init__(self, law: str = "mu"):
        self.law = check_choice("g711", "law", law, list(self._LAWS))
        self.encoder = self.decoder = self._LAWS[self.law]

    @classmethod
    def unavailable(cls) -> str | None:
        return missing_codecs(*[(name, mode) for name in cls._LAWS.values() for mode in "wr"])


@register_backend("g722")
class G722(_Waveform):
    """G.722 sub-band ADPCM, 16 kHz, 64 kbit/s (FFmpeg encodes mode 1 only).

    The analysis and synthesis QMF banks delay the output by 22 samples (measured, 1.375 ms).
    """

    encoder = decoder = family = "g722"
    rate = 16000
    delay = 22

    def __init__(self, bitrate: int = 64000):
        self.bitrate = check_choice("g722", "bitrate", bitrate, (64000,))


@register_backend("g726")
class G726(_Waveform):
    """G.726 ADPCM, 8 kHz, 16/24/32/40 kbit/s (2 to 5 bits per sample, MSB-first); no delay."""

    encoder = decoder = family = "g726"

    def __init__(self, bitrate: int = 32000):
        self.bitrate = check_choice("g726", "bitrate", bitrate, (16000, 24000, 32000, 40000))

    def _encoder_options(self) -> dict:
        return {"code_size": self.bitrate // 8000}

    def _decoder_options(self) -> dict:
        # The decoder learns the code size from bits_per_coded_sample, as from a WAV header.
        return {"bits_per_coded_sample": self.bitrate // 8000}
