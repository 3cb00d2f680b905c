"""The shared layer of the codec backends on the libraries bundled with PyAV (FFmpeg's libavcodec).

Backends, one module per codec family: ``opus`` (opus.py; libopus, decoded through the ctypes
binding in libopus.py because FFmpeg's wrapper cannot decode in-band FEC), ``amr-nb`` (amrnb.py;
libopencore-amrnb), ``g711``, ``g722`` and ``g726`` (waveform.py), ``mp3`` (LAME encoder, FFmpeg
decoder) and ``aac`` (FFmpeg's native encoder and decoder) (mpeg.py). Each drives `av.CodecContext`
through the helpers here. The packets in the bitstream are the codec's own packets, one per frame,
and nothing is pickled.

Shared rules:

* ``av`` is imported lazily, so evalkit imports without it; `unavailable()` says what is missing.
* Encoders run single-threaded so the same input always gives the same bytes.
* Decoded audio is *not* trimmed by encoder priming/pre-skip: each backend declares the
  measured delay of its decoded output as ``lookahead_samples`` (the true algorithmic delay).
* A lost packet (None) is concealed per codec: Opus by in-band FEC when the card enables it
  and the next packet arrived, else by libopus PLC; AMR-NB by its bad-frame handler; the
  others by silence for that packet's duration (no PLC, the honest baseline).
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable
from fractions import Fraction
from functools import cache
from typing import ClassVar

import numpy as np

from ..errors import CodecError, ConfigError
from .base import Codec

__all__ = [
    "PyAVCodec",
    "encode_stream",
    "decode_stream",
    "import_av",
    "missing_codecs",
    "av_stack",
    "bundled_version",
    "rechunk",
    "open_context",
    "check_choice",
    "check_range",
    "PYAV_HINT",
    "Concealer",
]

PYAV_HINT = "pip install av==18.1.0"

# A lost packet becomes either substitute bytes for the decoder, or None (= silence).
Concealer = Callable[[int], "bytes | None"]


def import_av():
    import av  # lazy: evalkit must import without PyAV

    return av


def missing_codecs(*codecs: tuple[str, str]) -> str | None:
    """None when PyAV has every (name, 'w'|'r') codec, else why not and how to fix it."""
    try:
        av = import_av()
    except ImportError:
        return f"PyAV is not installed ({PYAV_HINT})"
    for name, mode in codecs:
        try:
            av.codec.Codec(name, mode)
        except Exception:
            role = "encoder" if mode == "w" else "decoder"
            return f"PyAV {av.__version__} has no {name} {role} (install the wheel that bundles it: {PYAV_HINT})"
    return None


@cache
def av_stack() -> str:
    """The FFmpeg and PyAV versions every backend here runs through."""
    av = import_av()
    major, minor, micro = av.library_versions["libavcodec"]
    return f"libavcodec {major}.{minor}.{micro}, PyAV {av.__version__}"


@cache
def bundled_version(pattern: str, function: str) -> str | None:
    """Ask a library bundled in PyAV's wheel for its own version string (None if not found)."""
    libs = os.path.join(os.path.dirname(os.path.dirname(import_av().__file__)), "av.libs")
    for path in glob.glob(os.path.join(libs, pattern)):
        try:
            call = getattr(ctypes.CDLL(path), function)
            call.restype = ctypes.c_char_p
            return call().decode()
        except (OSError, AttributeError):
            continue
    return None


def open_context(name: str, mode: str, rate: int, options: dict | None = None, **attrs):
    """An opened mono CodecContext; one thread, because threaded encoders may not be bit-exact."""
    av = import_av()
    ctx = av.CodecContext.create(name, mode)
    ctx.sample_rate = rate
    ctx.layout = "mono"
    ctx.thread_count = 1
    for key, value in attrs.items():
        setattr(ctx, key, value)
    ctx.options = {key: str(value) for key, value in (options or {}).items()}
    ctx.open()
    return ctx


def _to_pcm(samples: np.ndarray, fmt: str) -> np.ndarray:
    """Float samples (channels, frames) as the (1, frames) array a mono AudioFrame of `fmt` takes."""
    x = np.ascontiguousarray(samples[:1], dtype=np.float32)
    if fmt in ("s16", "s16p"):
        return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    return x


def _to_float(frame) -> np.ndarray:
    """A decoded mono AudioFrame as float32 samples in [-1, 1)."""
    x = frame.to_ndarray().reshape(-1)
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    if x.dtype == np.int32:
        return x.astype(np.float32) / 2147483648.0
    return x.astype(np.float32)


def encode_stream(ctx, samples: np.ndarray, fmt: str, chunk: int) -> list[bytes]:
    """Feed samples through an opened encoder `chunk` samples at a time, flush, return its packets."""
    av = import_av()
    pcm = _to_pcm(samples, fmt)
    packets = []
    for start in range(0, pcm.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm[:, start : start + chunk]), format=fmt, layout="mono"
        )
        frame.sample_rate = ctx.sample_rate
        frame.time_base = Fraction(1, ctx.sample_rate)
        frame.pts = start
        packets += ctx.encode(frame)
    packets += ctx.encode(None)  # drain: the encoder's delayed samples come out now
    return [bytes(p) for p in packets]


def decode_stream(
    ctx, packets: list[bytes | None], conceal: Concealer, gap: int, backend: str, flush_on_loss: bool = False
) -> np.ndarray:
    """Decode packets in order; a lost one is replaced by `conceal(i)`, or by `gap` zeros.

    `flush_on_loss` resets the decoder at a loss, for codecs whose packets borrow bytes from
    earlier ones (MP3's bit reservoir): stale bytes would decode as loud garbage. After a loss
    a packet the decoder rejects is silenced too; without one, a decoder error is a CodecError.
    """
    av = import_av()
    out: list[np.ndarray] = []
    lost = False
    for i, packet in enumerate(packets):
        if packet is None:
            lost = True
            packet = conceal(i)
            if flush_on_loss:
                ctx.flush_buffers()
            if packet is None:
                out.append(np.zeros(gap, np.float32))
                continue
        try:
            out += [_to_float(f) for f in ctx.decode(av.Packet(packet))]
        except av.error.FFmpegError as err:
            if not lost:
                raise CodecError(f"{backend}: packet {i} does not decode ({err})") from None
            out.append(np.zeros(gap, np.float32))
    out += [_to_float(f) for f in ctx.decode(None)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def rechunk(packets: list[bytes], size: int) -> list[bytes]:
    """Cut a continuous codeword stream into packets of `size` bytes (the last may be short)."""
    data = b"".join(packets)
    return [data[i : i + size] for i in range(0, len(data), size)]


def check_choice(backend: str, name: str, value, allowed):
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise ConfigError(f"{backend}: {name}={value!r} is not supported; allowed: {shown}")
    return value


def check_range(backend: str, name: str, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{backend}: {name}={value!r} must be a number from {low} to {high}")
    return value


class PyAVCodec(Codec):
    """Common ground: availability check, encoder/decoder construction, error wrapping."""

    install_hint: ClassVar[str] = PYAV_HINT
    encoder: str = ""  # a backend may pick its FFmpeg codec per instance (G.711's law)
    decoder: str = ""

    @classmethod
    def unavailable(cls) -> str | None:
        return missing_codecs((cls.encoder, "w"), (cls.decoder, "r"))

    def _context(self, mode: str, rate: int, options: dict | None = None, **attrs):
        name = self.encoder if mode == "w" else self.decoder
        try:
            return open_context(name, mode, rate, options, **attrs)
        except ImportError:
            raise CodecError(f"{self.backend}: PyAV is not installed ({PYAV_HINT})") from None
        except Exception as err:
            raise CodecError(f"{self.backend}: cannot open {name} ({type(err).__name__}: {err})") from None
