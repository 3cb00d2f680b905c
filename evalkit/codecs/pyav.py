"""Codec backends on the real libraries bundled with PyAV (FFmpeg's libavcodec).

Backends: ``opus`` (libopus), ``amr-nb`` (libopencore-amrnb), ``g711`` (mu-law/A-law),
``g722``, ``g726``, ``mp3`` (LAME encoder, FFmpeg decoder) and ``aac`` (FFmpeg's native
encoder and decoder). Every backend drives `av.CodecContext` directly, except the Opus
decoder, which calls the libopus bundled in PyAV's wheel through ctypes (FFmpeg's wrapper cannot
decode in-band FEC). The packets in the bitstream are the codec's own packets, one per frame,
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
import ctypes.util
import glob
import os
from fractions import Fraction
from functools import lru_cache
from typing import Callable, ClassVar

import numpy as np

from ..errors import CodecError, ConfigError
from .base import Codec, CodecInfo, check_packet_sizes, register_backend

__all__ = ["Opus", "AmrNb", "G711", "G722", "G726", "Mp3", "Aac", "encode_stream", "decode_stream",
           "opus_packet_mode", "PYAV_HINT"]

PYAV_HINT = "pip install av==18.1.0"

# A lost packet becomes either substitute bytes for the decoder, or None (= silence).
Concealer = Callable[[int], "bytes | None"]


# -- shared PyAV helpers ------------------------------------------------------------------


def _av():
    import av  # lazy: evalkit must import without PyAV

    return av


def _missing(*codecs: tuple[str, str]) -> str | None:
    """None when PyAV has every (name, 'w'|'r') codec, else why not and how to fix it."""
    try:
        av = _av()
    except ImportError:
        return f"PyAV is not installed ({PYAV_HINT})"
    for name, mode in codecs:
        try:
            av.codec.Codec(name, mode)
        except Exception:
            role = "encoder" if mode == "w" else "decoder"
            return f"PyAV {av.__version__} has no {name} {role} (install the wheel that bundles it: {PYAV_HINT})"
    return None


@lru_cache(maxsize=None)
def _stack() -> str:
    """The FFmpeg and PyAV versions every backend here runs through."""
    av = _av()
    major, minor, micro = av.library_versions["libavcodec"]
    return f"libavcodec {major}.{minor}.{micro}, PyAV {av.__version__}"


@lru_cache(maxsize=None)
def _bundled_version(pattern: str, function: str) -> str | None:
    """Ask a library bundled in PyAV's wheel for its own version string (None if not found)."""
    libs = os.path.join(os.path.dirname(os.path.dirname(_av().__file__)), "av.libs")
    for path in glob.glob(os.path.join(libs, pattern)):
        try:
            call = getattr(ctypes.CDLL(path), function)
            call.restype = ctypes.c_char_p
            return call().decode()
        except (OSError, AttributeError):
            continue
    return None


def _open(name: str, mode: str, rate: int, options: dict | None = None, **attrs):
    """An opened mono CodecContext; one thread, because threaded encoders may not be bit-exact."""
    av = _av()
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
    av = _av()
    pcm = _to_pcm(samples, fmt)
    packets = []
    for start in range(0, pcm.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, start:start + chunk]), format=fmt, layout="mono")
        frame.sample_rate = ctx.sample_rate
        frame.time_base = Fraction(1, ctx.sample_rate)
        frame.pts = start
        packets += ctx.encode(frame)
    packets += ctx.encode(None)  # drain: the encoder's delayed samples come out now
    return [bytes(p) for p in packets]


def decode_stream(ctx, packets: list[bytes | None], conceal: Concealer, gap: int, backend: str,
                  flush_on_loss: bool = False) -> np.ndarray:
    """Decode packets in order; a lost one is replaced by `conceal(i)`, or by `gap` zeros.

    `flush_on_loss` resets the decoder at a loss, for codecs whose packets borrow bytes from
    earlier ones (MP3's bit reservoir): stale bytes would decode as loud garbage. After a loss
    a packet the decoder rejects is silenced too; without one, a decoder error is a CodecError.
    """
    av = _av()
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


def _rechunk(packets: list[bytes], size: int) -> list[bytes]:
    """Cut a continuous codeword stream into packets of `size` bytes (the last may be short)."""
    data = b"".join(packets)
    return [data[i:i + size] for i in range(0, len(data), size)]


def _choice(backend: str, name: str, value, allowed):
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise ConfigError(f"{backend}: {name}={value!r} is not supported; allowed: {shown}")
    return value


def _in_range(backend: str, name: str, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(f"{backend}: {name}={value!r} must be a number from {low} to {high}")
    return value


class _PyAVCodec(Codec):
    """Common ground: availability check, encoder/decoder construction, error wrapping."""

    install_hint: ClassVar[str] = PYAV_HINT
    encoder: ClassVar[str] = ""
    decoder: ClassVar[str] = ""

    @classmethod
    def unavailable(cls) -> str | None:
        return _missing((cls.encoder, "w"), (cls.decoder, "r"))

    def _context(self, mode: str, rate: int, options: dict | None = None, **attrs):
        name = self.encoder if mode == "w" else self.decoder
        try:
            return _open(name, mode, rate, options, **attrs)
        except ImportError:
            raise CodecError(f"{self.backend}: PyAV is not installed ({PYAV_HINT})") from None
        except Exception as err:
            raise CodecError(f"{self.backend}: cannot open {name} ({type(err).__name__}: {err})") from None


# -- Opus -----------------------------------------------------------------------------------

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


@lru_cache(maxsize=None)
def _libopus():
    """The libopus PyAV bundles (the one that encodes), else the system's; None if neither loads."""
    package = os.path.dirname(_av().__file__)
    found = glob.glob(os.path.join(os.path.dirname(package), "av.libs", "libopus*.so*"))
    found += glob.glob(os.path.join(package, ".libs", "libopus*.so*"))
    system = ctypes.util.find_library("opus")
    for path in found + ([system] if system else []):
        try:
            return _bind_libopus(ctypes.CDLL(path))
        except (OSError, AttributeError):
            continue
    return None


def _bind_libopus(lib):
    c_float_p = ctypes.POINTER(ctypes.c_float)
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode_float.restype = ctypes.c_int
    # (decoder, data or NULL for PLC, bytes, pcm out, max or exact frame size, decode_fec)
    lib.opus_decode_float.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, c_float_p,
                                      ctypes.c_int, ctypes.c_int]
    lib.opus_decoder_destroy.restype = None
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_strerror.argtypes = [ctypes.c_int]
    lib.opus_get_version_string.restype = ctypes.c_char_p
    return lib


class _OpusDecoder:
    """One libopus decoder state at `rate`: packets, FEC and PLC in, float samples out."""

    def __init__(self, rate: int, backend: str):
        self.lib, self.backend = _libopus(), backend
        if self.lib is None:
            raise CodecError(f"{backend}: libopus cannot be loaded ({PYAV_HINT}, or apt-get install libopus0)")
        error = ctypes.c_int()
        self.state = self.lib.opus_decoder_create(rate, 1, ctypes.byref(error))
        if not self.state:
            raise CodecError(f"{backend}: opus_decoder_create failed ({self._message(error.value)})")
        self.buffer = np.zeros(rate * 120 // 1000, np.float32)  # the longest Opus packet, 120 ms

    def decode(self, packet: bytes | None, samples: int | None = None, fec: bool = False) -> np.ndarray:
        """Decode a packet; None runs PLC for `samples`; fec=True recovers the frame *before* `packet`."""
        size = len(self.buffer) if samples is None else samples
        pcm = self.buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        n = self.lib.opus_decode_float(self.state, packet, len(packet or b""), pcm, size, int(fec))
        if n < 0:
            raise CodecError(f"{self.backend}: opus_decode failed ({self._message(n)})")
        return self.buffer[:n].copy()

    def close(self) -> None:
        if self.state:
            self.lib.opus_decoder_destroy(self.state)
            self.state = None

    def _message(self, code: int) -> str:
        return self.lib.opus_strerror(code).decode(errors="replace")


@register_backend("opus")
class Opus(_PyAVCodec):
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
        missing = _missing((cls.encoder, "w"))
        if missing is None and _libopus() is None:
            return f"libopus cannot be loaded for decoding ({PYAV_HINT}, or apt-get install libopus0)"
        return missing

    def __init__(self, sample_rate: int = 48000, bitrate: int = 32000, vbr: bool | str = True,
                 complexity: int = 10, frame_ms: float = 20, application: str = "audio",
                 fec: bool = False, packet_loss_perc: int = 0):
        name = "opus"
        self.sample_rate = _choice(name, "sample_rate", sample_rate, _OPUS_RATES)
        self.bitrate = int(_in_range(name, "bitrate", bitrate, 6000, 510000))
        self.vbr = _OPUS_VBR[_choice(name, "vbr", vbr, list(_OPUS_VBR))]
        self.complexity = int(_choice(name, "complexity", complexity, range(11)))
        self.frame_ms = _choice(name, "frame_ms", frame_ms, _OPUS_FRAMES_MS)
        self.application = _choice(name, "application", application, _OPUS_APPS)
        self.fec = bool(_choice(name, "fec", fec, (True, False)))
        self.packet_loss_perc = int(_in_range(name, "packet_loss_perc", packet_loss_perc, 0, 100))
        if self.fec and self.celt_only:
            raise ConfigError("opus: fec is a SILK feature; it needs frame_ms >= 10 and application voip or audio")

    @property
    def celt_only(self) -> bool:
        """libopus codes CELT only in restricted-lowdelay mode and for frames under 10 ms."""
        return self.application == "lowdelay" or self.frame_ms < 10

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend, version=_opus_version(), family="opus", sample_rate=self.sample_rate,
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
            "application": self.application, "frame_duration": self.frame_ms, "vbr": self.vbr,
            "compression_level": self.complexity, "fec": int(self.fec), "packet_loss": self.packet_loss_perc,
        }
        ctx = self._context("w", self.sample_rate, options, format="flt", bit_rate=self.bitrate)
        return {}, encode_stream(ctx, samples, "flt", self.info.frame_samples)

    def _decode(self, header, packets):
        decoder = _OpusDecoder(self.sample_rate, self.backend)
        frame = self.info.frame_samples
        try:
            chunks = [self._decode_one(decoder, packets, i, frame) for i in range(len(packets))]
        finally:
            decoder.close()
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    def _decode_one(self, decoder: _OpusDecoder, packets: list[bytes | None], i: int, frame: int) -> np.ndarray:
        if packets[i] is not None:
            samples = decoder.decode(packets[i])
            if len(samples) != frame:
                raise CodecError(f"opus: packet {i} holds {len(samples)} samples; this stream has {frame}-sample frames")
            return samples
        following = packets[i + 1] if i + 1 < len(packets) else None
        # libopus itself falls back to PLC when the following packet carries no LBRR.
        fec = self.fec and following is not None
        return decoder.decode(following if fec else None, frame, fec=fec)


def _opus_version() -> str:
    encoder = _bundled_version("libopus*.so*", "opus_get_version_string")
    lib = _libopus()
    decoder = lib.opus_get_version_string().decode() if lib is not None else None
    both = encoder if decoder in (None, encoder) else f"{encoder} encoder, {decoder} decoder"
    return f"{both or 'libopus'} ({_stack()})"


# -- AMR-NB ---------------------------------------------------------------------------------

# Mode -> (bit/s, bytes per 20 ms packet in the RFC 4867 storage format: 1 ToC byte + payload).
_AMR_MODES = {0: (4750, 13), 1: (5150, 14), 2: (5900, 16), 3: (6700, 18),
              4: (7400, 20), 5: (7950, 21), 6: (10200, 27), 7: (12200, 32)}
_AMR_BY_RATE = {rate: mode for mode, (rate, _) in _AMR_MODES.items()}
# Storage-format frame size by frame type: speech modes 0-7, SID 8, NO_DATA 15.
_AMR_FRAME_BYTES = {**{mode: size for mode, (_, size) in _AMR_MODES.items()}, 8: 6, 15: 1}


@register_backend("amr-nb")
class AmrNb(_PyAVCodec):
    """AMR-NB (3GPP TS 26.090) through libopencore-amrnb: 8 kHz, 20 ms, eight modes.

    Packets are the storage-format frames FFmpeg produces: a ToC byte (mode, quality bit) and
    the octet-padded speech bits. A lost packet reaches the decoder as a NO_DATA frame, which
    outside DTX it treats as a bad frame: its own concealment (substitution, then muting) fills
    it. (A ToC with the quality bit cleared does not work: FFmpeg passes bfi=0 and opencore
    then decodes the payload as if it were good.) With dtx=True, silence is sent as 6-byte SID
    and 1-byte NO_DATA frames, so the bitrate falls below the mode's.

    Delay: 40 samples, the 5 ms LPC lookahead, as measured on most speech. On low male voices
    ACELP reproduces the band below ~300 Hz with a large phase error, and a plain waveform
    cross-correlation then peaks 7-12 samples later; a 250 Hz high-pass before correlating
    (or GCC-PHAT) finds 40 +-1 on every demo clip.
    """

    encoder = "libopencore_amrnb"
    decoder = "libopencore_amrnb"

    def __init__(self, mode: int | None = None, bitrate: int | None = None, dtx: bool = False):
        if mode is None and bitrate is None:
            mode = 7
        if mode is not None and bitrate is not None and _AMR_MODES.get(mode, (None,))[0] != bitrate:
            raise ConfigError(f"amr-nb: mode={mode!r} and bitrate={bitrate!r} disagree; give one of them")
        if mode is None:
            mode = _AMR_BY_RATE.get(_choice("amr-nb", "bitrate", bitrate, list(_AMR_BY_RATE)))
        self.mode = _choice("amr-nb", "mode", mode, list(_AMR_MODES))
        self.dtx = bool(_choice("amr-nb", "dtx", dtx, (True, False)))

    @property
    def bitrate(self) -> int:
        return _AMR_MODES[self.mode][0]

    @property
    def packet_bytes(self) -> int:
        return _AMR_MODES[self.mode][1]

    @property
    def info(self) -> CodecInfo:
        framed = 8 * self.packet_bytes * 50
        return CodecInfo(
            name=self.backend, version=f"libopencore-amrnb ({_stack()})", family="amr-nb",
            sample_rate=8000, frame_samples=160, lookahead_samples=40,  # the 5 ms LPC lookahead
            nominal_bitrate=float(self.bitrate),
            # Constant rate, but each packet carries a ToC byte and octet padding on top of the
            # mode's bits (+5 % at 12.2k, +9.5 % at 4.75k), plus the flush packets.
            bitrate_tolerance=framed / self.bitrate - 1 + 0.05,
            needs=("av",),
        )

    def _encode(self, samples):
        ctx = self._context("w", 8000, {"dtx": int(self.dtx)}, format="s16", bit_rate=self.bitrate)
        return {}, encode_stream(ctx, samples, "s16", 160)

    def _decode(self, header, packets):
        for i, packet in enumerate(packets):
            if packet is not None and _AMR_FRAME_BYTES.get(packet[0] >> 3 & 0x0F if packet else -1) != len(packet):
                raise CodecError(f"amr-nb: packet {i} is not an AMR-NB storage frame ({len(packet)} bytes)")
        ctx = self._context("r", 8000)
        return decode_stream(ctx, packets, self._bad_frame, 160, self.backend)

    @staticmethod
    def _bad_frame(i: int) -> bytes:
        return bytes([0x7C])  # ToC: F=0, FT=15 (NO_DATA), Q=1; no payload


# -- G.711, G.722, G.726 ------------------------------------------------------------------------


class _Waveform(_PyAVCodec):
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
            name=self.backend, version=f"{self.encoder} ({_stack()})", family=self.family,
            sample_rate=self.rate, frame_samples=self.frame_samples, lookahead_samples=self.delay,
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
        return {}, _rechunk(packets, self.packet_bytes)

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
        self.law = _choice("g711", "law", law, list(self._LAWS))
        self.encoder = self.decoder = self._LAWS[self.law]

    @classmethod
    def unavailable(cls) -> str | None:
        return _missing(*[(name, mode) for name in cls._LAWS.values() for mode in "wr"])


@register_backend("g722")
class G722(_Waveform):
    """G.722 sub-band ADPCM, 16 kHz, 64 kbit/s (FFmpeg encodes mode 1 only).

    The analysis and synthesis QMF banks delay the output by 22 samples (measured, 1.375 ms).
    """

    encoder = decoder = family = "g722"
    rate = 16000
    delay = 22

    def __init__(self, bitrate: int = 64000):
        self.bitrate = _choice("g722", "bitrate", bitrate, (64000,))


@register_backend("g726")
class G726(_Waveform):
    """G.726 ADPCM, 8 kHz, 16/24/32/40 kbit/s (2 to 5 bits per sample, MSB-first); no delay."""

    encoder = decoder = family = "g726"

    def __init__(self, bitrate: int = 32000):
        self.bitrate = _choice("g726", "bitrate", bitrate, (16000, 24000, 32000, 40000))

    def _encoder_options(self) -> dict:
        return {"code_size": self.bitrate // 8000}

    def _decoder_options(self) -> dict:
        # The decoder learns the code size from bits_per_coded_sample, as from a WAV header.
        return {"bits_per_coded_sample": self.bitrate // 8000}


# -- MP3 and AAC ------------------------------------------------------------------------------

_MP3_RATES = {  # sample rate -> (samples per frame, allowed CBR bitrates in kbit/s)
    **dict.fromkeys((32000, 44100, 48000), (1152, (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320))),
    **dict.fromkeys((16000, 22050, 24000), (576, (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160))),
}


@register_backend("mp3")
class Mp3(_PyAVCodec):
    """MPEG-1/2 Layer III: LAME encodes CBR, FFmpeg's float decoder decodes.

    Decoded audio lags by 1105 samples at every rate: LAME's 576-sample encoder delay plus the
    decoder's 529-sample synthesis delay (no gapless trimming: raw frames carry no LAME tag).
    A lost frame is silenced and the decoder reset, so the next frame, whose bit reservoir may
    lie in the lost one, is not decoded from stale bytes.
    """

    encoder = "libmp3lame"
    decoder = "mp3float"

    def __init__(self, sample_rate: int = 44100, bitrate: int = 64000):
        self.sample_rate = _choice("mp3", "sample_rate", sample_rate, list(_MP3_RATES))
        allowed = [1000 * k for k in _MP3_RATES[self.sample_rate][1]]
        self.bitrate = _choice("mp3", f"bitrate at {self.sample_rate} Hz", bitrate, allowed)

    @property
    def info(self) -> CodecInfo:
        lame = _bundled_version("libmp3lame*.so*", "get_lame_version")
        return CodecInfo(
            name=self.backend, version=f"LAME {lame or '?'} + mp3float ({_stack()})", family="mp3",
            sample_rate=self.sample_rate, frame_samples=_MP3_RATES[self.sample_rate][0],
            lookahead_samples=1105, nominal_bitrate=float(self.bitrate),
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
class Aac(_PyAVCodec):
    """AAC-LC through FFmpeg's native encoder and decoder; 1024-sample frames.

    The AudioSpecificConfig travels in the bitstream header. Decoded audio keeps the encoder's
    priming (no trimming). A lost frame is silenced.
    """

    encoder = "aac"
    decoder = "aac"

    def __init__(self, sample_rate: int = 48000, bitrate: int = 64000):
        self.sample_rate = _choice("aac", "sample_rate", sample_rate, (16000, 22050, 24000, 32000, 44100, 48000))
        self.bitrate = int(_in_range("aac", "bitrate", bitrate, 8000, 320000))

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend, version=f"aac ({_stack()})", family="aac", sample_rate=self.sample_rate,
            frame_samples=1024, lookahead_samples=1024, nominal_bitrate=float(self.bitrate),
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
            raise CodecError(f"aac: bitstream header has AudioSpecificConfig {shown!r}; this decoder expects {self._asc()!r}")
        check_packet_sizes(packets, 1, _AAC_MAX_PACKET, self.backend)
        ctx = self._context("r", self.sample_rate, extradata=bytes.fromhex(asc))
        return decode_stream(ctx, packets, lambda i: None, 1024, self.backend)

    def _asc(self) -> str:
        return _aac_config(self.sample_rate, self.bitrate)


_AAC_MAX_PACKET = 768  # 6144 bits: the most one channel's raw data block may hold


@lru_cache(maxsize=None)
def _aac_config(rate: int, bitrate: int) -> str:
    """The AudioSpecificConfig (hex) FFmpeg's encoder writes for this configuration."""
    ctx = _open("aac", "w", rate, format="fltp", bit_rate=bitrate)
    return bytes(ctx.extradata or b"").hex()
