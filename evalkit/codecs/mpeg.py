"""The MPEG audio backends through PyAV: ``mp3`` (LAME encoder, FFmpeg decoder) and ``aac`` (FFmpeg's
native encoder and decoder)."""

from __future__ import annotations

from functools import cache

from ..errors import CodecError
from .base import CodecInfo, check_packet_sizes, register_backend
from .pyav import (
    PyAVCodec,
    av_stack,
    bundled_version,
    check_choice,
    check_range,
    decode_stream,
    encode_stream,
    open_context,
)

__all__ = ["Mp3", "Aac"]

_MP3_RATES = {  # sample rate -> (samples per frame, allowed CBR bitrates in kbit/s)
    **dict.fromkeys((32000, 44100, 48000), (1152, (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320))),
    **dict.fromkeys((16000, 22050, 24000), (576, (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160))),
}


@register_backend("mp3")
class Mp3(PyAVCodec):
    """MPEG-1/2 Layer III: LAME encodes CBR, FFmpeg's float decoder decodes.

    Decoded audio lags by 1105 samples at every rate: LAME's 576-sample encoder delay plus the
    decoder's 529-sample synthesis delay (no gapless trimming: raw frames carry no LAME tag).
    A lost frame is silenced and the decoder reset, so the next frame, whose bit reservoir may
    lie in the lost one, is not decoded from stale bytes.
    """

    encoder = "libmp3lame"
    decoder = "mp3float"

    def __init__(self, sample_rate: int = 44100, bitrate: int = 64000):
        self.sample_rate = check_choice("mp3", "sample_rate", sample_rate, list(_MP3_RATES))
        allowed = [1000 * k for k in _MP3_RATES[self.sample_rate][1]]
        self.bitrate = check_choice("mp3", f"bitrate at {self.sample_rate} Hz", bitrate, allowed)

    @property
    def info(self) -> CodecInfo:
        lame = bundled_version("libmp3lame*.so*", "get_lame_version")
        return CodecInfo(
            name=self.backend,
            version=f"LAME {lame or '?'} + mp3float ({av_stack()})",
            family="mp3",
            sample_rate=self.sample_rate,
            frame_samples=_MP3_RATES[self.sample_rate][0],
            lookahead_samples=1105,
            nominal_bitrate=float(self.bitrate),
            bitrate_tolerance=0.10,  # CBR frames; the priming and flush frames come on top
            needs=("av",),
        )

    def _encode(self, samples):
        ctx = self._context("w", self.sample_rate, format="fltp", bit_rate=self.bitrate)
        return {}, encode_stream(ctx, samples, "fltp", self.info.frame_samples)

    def _decode(self, header, packets):
        # A CBR Layer III frame: 144 (MPEG-1) or 72 (MPEG-2) x bitrate / rate bytes, plus a padding byte.
        per_frame = (144 if self.sample_rate >= 32000 else 72) * self.bitrate // self.sample_rate + 1
        check_packet_sizes(packets, 1, per_frame, self.backend)
        ctx = self._context("r", self.sample_rate)
        frame = self.info.frame_samples
        return decode_stream(ctx, packets, lambda i: None, frame, self.backend, flush_on_loss=True)


@register_backend("aac")
class Aac(PyAVCodec):
    """AAC-LC through FFmpeg's native encoder and decoder; 1024-sample frames.

    The AudioSpecificConfig travels in the bitstream header. Decoded audio keeps the encoder's
    priming (no trimming). A lost frame is silenced.
    """

    encoder = "aac"
    decoder = "aac"

    def __init__(self, sample_rate: int = 48000, bitrate: int = 64000):
        self.sample_rate = check_choice("aac", "sample_rate", sample_rate, (16000, 22050, 24000, 32000, 44100, 48000))
        self.bitrate = int(check_range("aac", "bitrate", bitrate, 8000, 320000))

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend,
            version=f"aac ({av_stack()})",
            family="aac",
            sample_rate=self.sample_rate,
            frame_samples=1024,
            lookahead_samples=1024,
            nominal_bitrate=float(self.bitrate),
            bitrate_tolerance=0.30,  # average-bitrate control wanders on short speech clips
            needs=("av",),
        )

    def _encode(self, samples):
        ctx = self._context("w", self.sample_rate, format="fltp", bit_rate=self.bitrate)
        packets = encode_stream(ctx, samples, "fltp", 1024)
        return {"asc": bytes(ctx.extradata or b"").hex()}, packets

    def _decode(self, header, packets):
        asc = header.get("asc")
        if asc != self._asc():  # the decoder is configured as the encoder was; its own config is the only valid one
            shown = str(asc)[:40]
            raise CodecError(
                f"aac: bitstream header has AudioSpecificConfig {shown!r}; this decoder expects {self._asc()!r}"
            )
        check_packet_sizes(packets, 1, _AAC_MAX_PACKET, self.backend)
        ctx = self._context("r", self.sample_rate, extradata=bytes.fromhex(asc))
        return decode_stream(ctx, packets, lambda i: None, 1024, self.backend)

    def _asc(self) -> str:
        return _aac_config(self.sample_rate, self.bitrate)


_AAC_MAX_PACKET = 768  # 6144 bits: the most one channel's raw data block may hold


@cache
def _aac_config(rate: int, bitrate: int) -> str:
    """The AudioSpecificConfig (hex) FFmpeg's encoder writes for this configuration."""
    ctx = open_context("aac", "w", rate, format="fltp", bit_rate=bitrate)
    return bytes(ctx.extradata or b"").hex()
