"""The ``opus`` backend: libopus through FFmpeg's encoder and the ctypes decoder (libopus.py); in-band
FEC and PLC conceal lost packets."""

from __future__ import annotations

import numpy as np

from ..errors import CodecError, ConfigError
from .base import CodecInfo, register_backend
from .libopus import OpusDecoder, load_libopus
from .pyav import (
    PYAV_HINT,
    PyAVCodec,
    av_stack,
    bundled_version,
    check_choice,
    check_range,
    encode_stream,
    missing_codecs,
)

__all__ = ["Opus", "opus_packet_mode"]

_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_OPUS_FRAMES_MS = (2.5, 5, 10, 20, 40, 60)
_OPUS_APPS = ("voip", "audio", "lowdelay")
_OPUS_VBR = {True: "on", False: "off", "on": "on", "off": "off", "constrained": "constrained"}


def opus_packet_mode(packet: bytes) -> tuple[str, str]:
    """(mode, audio bandwidth) of an Opus packet from its TOC byte (RFC 6716 section 3.1)."""
    config = packet[0] >> 3
    if config < 12:
        return "silk", ("nb", "mb", "wb")[config // 4]
    if config < 16:
        return "hybrid", ("swb", "fb")[(config - 12) // 2]
    return "celt", ("nb", "wb", "swb", "fb")[(config - 16) // 4]


@register_backend("opus")
class Opus(PyAVCodec):
    """Opus through libopus. SILK, hybrid or CELT follows from rate, bitrate and application.

    Encoding goes through FFmpeg's libopus wrapper; decoding calls libopus itself (ctypes) at
    `sample_rate`, because FFmpeg's decoder never passes decode_fec. Pre-skip is not removed,
    so decoded audio lags by the encoder lookahead: 6.5 ms, or 2.5 ms for CELT-only.
    In-band FEC (fec, packet_loss_perc) costs bits as in a real call, and is decoded: when
    packet i is lost and packet i+1 arrived, the LBRR copy of frame i inside packet i+1 is
    decoded (decode_fec=1); otherwise, and for cards without fec, libopus PLC fills the frame.
    """

    encoder = "libopus"

    @classmethod
    def unavailable(cls) -> str | None:
        missing = missing_codecs((cls.encoder, "w"))
        if missing is None and load_libopus() is None:
            return f"libopus cannot be loaded for decoding ({PYAV_HINT}, or apt-get install libopus0)"
        return missing

    def __init__(
        self,
        sample_rate: int = 48000,
        bitrate: int = 32000,
        vbr: bool | str = True,
        complexity: int = 10,
        frame_ms: float = 20,
        application: str = "audio",
        fec: bool = False,
        packet_loss_perc: int = 0,
    ):
        name = "opus"
        self.sample_rate = check_choice(name, "sample_rate", sample_rate, _OPUS_RATES)
        self.bitrate = int(check_range(name, "bitrate", bitrate, 6000, 510000))
        self.vbr = _OPUS_VBR[check_choice(name, "vbr", vbr, list(_OPUS_VBR))]
        self.complexity = int(check_choice(name, "complexity", complexity, range(11)))
        self.frame_ms = check_choice(name, "frame_ms", frame_ms, _OPUS_FRAMES_MS)
        self.application = check_choice(name, "application", application, _OPUS_APPS)
        self.fec = bool(check_choice(name, "fec", fec, (True, False)))
        self.packet_loss_perc = int(check_range(name, "packet_loss_perc", packet_loss_perc, 0, 100))
        if self.fec and self.celt_only:
            raise ConfigError("opus: fec is a SILK feature; it needs frame_ms >= 10 and application voip or audio")

    @property
    def celt_only(self) -> bool:
        """libopus codes CELT only in restricted-lowdelay mode and for frames under 10 ms."""
        return self.application == "lowdelay" or self.frame_ms < 10

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend,
            version=_opus_version(),
            family="opus",
            sample_rate=self.sample_rate,
            frame_samples=round(self.sample_rate * self.frame_ms / 1000),
            lookahead_samples=self._delay(),
            nominal_bitrate=float(self.bitrate),
            bitrate_tolerance=self._bitrate_tolerance(),
            needs=("av",),
        )

    @property
    def celt_expected(self) -> bool:
        """Whether libopus will code speech with CELT, after its speech/music mode thresholds
        (approximated; analysis runs at complexity >= 7, voip biases towards SILK)."""
        if self.celt_only:
            return True
        celt_from = 72000 if self.application == "voip" else 56000 if self.complexity >= 7 else 18000
        return self.bitrate >= celt_from

    def _bitrate_tolerance(self) -> float:
        """CBR is exact; constrained VBR stays near its target. Free VBR on a few seconds of
        speech lands within -12/+5 % on SILK and hybrid, but CELT spends 12-40 % above target."""
        if self.vbr == "off":
            return 0.10
        if self.vbr == "constrained":
            return 0.15
        return 0.45 if self.celt_expected else 0.30

    def _delay(self) -> int:
        """Delay of decoded speech at `sample_rate`, as measured on the 22 demo clips (CMU ARCTIC,
        Asterisk) with libopus decoding at the card's rate.

        The encoder lookahead is 2.5 ms for CELT-only, else 6.5 ms, and at 8 to 16 kHz every
        path reproduces it (SILK narrowband lands 1 sample early at 16 kHz). At 24 and 48 kHz
        SILK and hybrid speech comes out of the decoder's 16 kHz -> API-rate resampler ~2 samples
        (at 48 kHz) early, and voip's pitch-adaptive high-pass pulls it ~2 samples earlier again;
        which path libopus takes is predicted by `celt_expected`.
        """
        rate = self.sample_rate
        if self.celt_only:
            return rate // 400
        if rate <= 16000 or self.celt_expected:
            return rate * 13 // 2000
        early_48k = 4 if self.application == "voip" else 2
        return round((312 - early_48k) * rate / 48000)

    def _encode(self, samples):
        options = {
            "application": self.application,
            "frame_duration": self.frame_ms,
            "vbr": self.vbr,
            "compression_level": self.complexity,
            "fec": int(self.fec),
            "packet_loss": self.packet_loss_perc,
        }
        ctx = self._context("w", self.sample_rate, options, format="flt", bit_rate=self.bitrate)
        return {}, encode_stream(ctx, samples, "flt", self.info.frame_samples)

    def _decode(self, header, packets):
        decoder = OpusDecoder(self.sample_rate, self.backend)
        frame = self.info.frame_samples
        try:
            chunks = [self._decode_one(decoder, packets, i, frame) for i in range(len(packets))]
        finally:
            decoder.close()
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    def _decode_one(self, decoder: OpusDecoder, packets: list[bytes | None], i: int, frame: int) -> np.ndarray:
        if packets[i] is not None:
            samples = decoder.decode(packets[i])
            if len(samples) != frame:
                raise CodecError(
                    f"opus: packet {i} holds {len(samples)} samples; this stream has {frame}-sample frames"
                )
            return samples
        following = packets[i + 1] if i + 1 < len(packets) else None
        # libopus itself falls back to PLC when the following packet carries no LBRR.
        fec = self.fec and following is not None
        return decoder.decode(following if fec else None, frame, fec=fec)


def _opus_version() -> str:
    encoder = bundled_version("libopus*.so*", "opus_get_version_string")
    lib = load_libopus()
    decoder = lib.opus_get_version_string().decode() if lib is not None else None
    both = encoder if decoder in (None, encoder) else f"{encoder} encoder, {decoder} decoder"
    return f"{both or 'libopus'} ({av_stack()})"
