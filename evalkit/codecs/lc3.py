"""LC3 (Bluetooth LE Audio Low Complexity Communication Codec) through lc3py / Google's liblc3.

One LC3 frame per packet, 10 ms or 7.5 ms, at 8, 16, 24, 32 or 48 kHz and a constant frame
size of 20-400 bytes: the bit rate must be a whole number of bytes per frame (8 bits per byte
over 10 or 7.5 ms), so ``nominal_bitrate`` is exact. The decoded output lags the input by
liblc3's own ``lc3_delay_samples`` (2.5 ms at 10 ms frames, 4 ms at 7.5 ms), which measurement
on speech confirms to the sample.

A lost packet is decoded with no data, which runs liblc3's packet-loss concealment
(``lc3_decode(decoder, NULL, ...)``).
"""

from __future__ import annotations

import ctypes
from functools import cache, cached_property
from importlib import metadata

import numpy as np

from ..errors import CodecError, ConfigError
from .base import Codec, CodecInfo, register_backend

__all__ = ["Lc3", "LC3_RATES", "LC3_FRAME_US"]

LC3_RATES = (8000, 16000, 24000, 32000, 48000)
LC3_FRAME_US = {10: 10000, 7.5: 7500}  # frame_ms -> microseconds
MIN_BYTES, MAX_BYTES = 20, 400  # per frame and channel (liblc3)
_PCM_FLOAT = 3  # enum lc3_pcm_format: LC3_PCM_FORMAT_FLOAT


def _lc3():
    import lc3  # lazy: lc3py's module is called `lc3`; evalkit imports without it

    return lc3


@cache
def _version() -> str:
    try:
        return f"liblc3 {metadata.version('lc3py')} (lc3py)"
    except metadata.PackageNotFoundError:
        return "liblc3 (lc3py, unknown version)"


@register_backend("lc3")
class Lc3(Codec):
    """LC3 at one sample rate, frame duration and constant bit rate."""

    install_hint = "pip install lc3py"

    def __init__(self, sample_rate: int = 16000, bitrate: int = 32000, frame_ms: float = 10):
        if sample_rate not in LC3_RATES:
            raise ConfigError(f"lc3: sample_rate {sample_rate!r} is not an LC3 rate; choose one of {list(LC3_RATES)}")
        if frame_ms not in LC3_FRAME_US:
            raise ConfigError(f"lc3: frame_ms {frame_ms!r} is not an LC3 frame duration; choose 10 or 7.5")
        self.sample_rate, self.frame_us = int(sample_rate), LC3_FRAME_US[frame_ms]
        self.frame_bytes = _frame_bytes(bitrate, self.frame_us)
        self.bitrate = int(bitrate)

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            _release(_lc3().Encoder(10000, 16000))
        except ImportError as err:
            return f"lc3py is not importable ({err}); {cls.install_hint}"
        except Exception as err:  # lc3py present but its liblc3 will not load
            return f"lc3py cannot load liblc3 ({type(err).__name__}: {err}); {cls.install_hint}"
        return None

    @cached_property
    def info(self) -> CodecInfo:
        probe = _lc3().Encoder(self.frame_us, self.sample_rate)
        frame, delay = probe.get_frame_samples(), probe.get_delay_samples()
        _release(probe)
        return CodecInfo(
            name=self.backend,
            version=_version(),
            family="lc3",
            sample_rate=self.sample_rate,
            frame_samples=frame,
            lookahead_samples=delay,  # liblc3's lc3_delay_samples
            nominal_bitrate=8e6 * self.frame_bytes / self.frame_us,
            bitrate_tolerance=0.03,
            needs=("lc3py",),
        )

    def _encode(self, samples):
        encoder = _lc3().Encoder(self.frame_us, self.sample_rate)
        frame = self.info.frame_samples
        pcm = np.clip(samples[0], -1.0, 1.0).astype(np.float32)
        try:
            packets = [encoder.encode(pcm[i : i + frame].tolist(), self.frame_bytes) for i in range(0, len(pcm), frame)]
        finally:
            _release(encoder)
        return {"frame_us": self.frame_us, "frame_bytes": self.frame_bytes}, packets

    def _decode(self, header, packets):
        if (header.get("frame_us"), header.get("frame_bytes")) != (self.frame_us, self.frame_bytes):
            raise CodecError(
                f"lc3: stream has {str(header.get('frame_us'))[:12]} us frames of {str(header.get('frame_bytes'))[:12]} "
                f"bytes; this decoder takes {self.frame_us} us frames of {self.frame_bytes} bytes"
            )
        decoder = _lc3().Decoder(self.frame_us, self.sample_rate)
        try:
            return np.concatenate([self._decode_one(decoder, packet, i) for i, packet in enumerate(packets)])
        finally:
            _release(decoder)

    def _decode_one(self, decoder, packet: bytes | None, index: int) -> np.ndarray:
        if packet is None:
            return _conceal(decoder, self.info.frame_samples)
        if len(packet) != self.frame_bytes:
            raise CodecError(
                f"lc3: packet {index} has {len(packet)} bytes; this stream has {self.frame_bytes}-byte frames"
            )
        return np.frombuffer(decoder.decode(packet), dtype=np.float32)


def _frame_bytes(bitrate, frame_us: int) -> int:
    """Bytes per frame for `bitrate`; it must be whole bytes within liblc3's 20-400."""
    low, high = MIN_BYTES * 8e6 / frame_us, MAX_BYTES * 8e6 / frame_us
    step = 8e6 / frame_us
    nbytes = bitrate * frame_us / 8e6 if isinstance(bitrate, (int, float)) and not isinstance(bitrate, bool) else None
    if nbytes is None or not MIN_BYTES <= nbytes <= MAX_BYTES or nbytes != int(nbytes):
        raise ConfigError(
            f"lc3: bitrate {bitrate!r} must be a multiple of {step:g} bit/s from {low:g} to {high:g} "
            f"(whole bytes per {frame_us / 1000:g} ms frame)"
        )
    return int(nbytes)


def _conceal(decoder, frame: int) -> np.ndarray:
    """liblc3's packet-loss concealment: lc3_decode with no input data.

    lc3py's `decode` insists on bytes, so this calls liblc3 on lc3py's own decoder handle.
    """
    handles = getattr(decoder, "_Decoder__decoders", None)
    if not handles:
        raise CodecError("lc3: this lc3py version exposes no decoder handle for packet-loss concealment")
    pcm = (ctypes.c_float * frame)()
    if decoder.lib.lc3_decode(handles[0], None, 0, _PCM_FLOAT, pcm, 1) < 0:
        raise CodecError("lc3: liblc3 packet-loss concealment failed")
    return np.ctypeslib.as_array(pcm).copy()


def _release(coder) -> None:
    """Free liblc3's state now: lc3py 1.1.3's __del__ builds a generator that never runs, so it leaks."""
    for name in ("_Encoder__encoders", "_Decoder__decoders"):
        handles = getattr(coder, name, None)
        if handles:
            for handle in handles:
                coder.free(handle)
            setattr(coder, name, [])  # a fixed lc3py must not free them twice
