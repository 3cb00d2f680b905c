"""Speex and GSM 06.10 encoded by the Debian ffmpeg command-line tool, decoded with PyAV.

The encoders are the reference libraries linked into Debian's ffmpeg (libspeex, libgsm),
run as a subprocess on 16-bit PCM with bit-exact flags, single-threaded, under a timeout.
Decoding uses FFmpeg's native ``speex``/``gsm`` decoders through PyAV, one packet at a time.

* ``speex``: ffmpeg writes Speex in Ogg; PyAV demuxes that Ogg file into the real Speex packets
  (one 20 ms frame each, ``frames_per_packet`` 1, CBR at a quality 0-10), and the fields of the
  Speex header (rate, mode, bitstream version, frame size, frames per packet, VBR, encoder
  version) travel in our header dict; the decoder rebuilds the 80-byte Speex header from them.
  Narrow-band (8 kHz), wide-band (16 kHz) and ultra-wide-band (32 kHz) modes.
* ``gsm``: GSM 06.10 full rate through libgsm, 8 kHz, 20 ms frames of 33 bytes (260 bits plus
  the 4-bit 0xD signature of the libgsm frame format), i.e. 13.2 kbit/s of packet payload.

Neither FFmpeg decoder has packet-loss concealment, so a lost packet repeats the last good one,
6 dB quieter for each further consecutive loss (`codec2.conceal_by_repetition`).
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import threading
from typing import Any

import numpy as np

from ..errors import CodecError, ConfigError
from .base import Codec, CodecInfo, check_packet_sizes, register_backend
from .codec2 import conceal_by_repetition
from .debian_packages import debian_version

__all__ = ["Speex", "Gsm", "SPEEX_FRAME_BYTES"]

FFMPEG_HINT = "apt-get install ffmpeg"
PYAV_HINT = "pip install av"
_TIMEOUT = 120  # seconds for one ffmpeg run

# Speex mode by sample rate: (mode id, samples per 20 ms frame, decoded delay in samples).
# The delay is the encoder look-ahead plus the QMF bands of the wider modes, measured as the
# harness does (cross-correlation above 250 Hz) on the 22 demo clips: 79-80, 221-223 and
# 505-508 samples; these are the medians. Below 250 Hz Speex's IIR high-pass filters (encoder
# input, decoder output) shift the phase, so an unfiltered correlation can peak 8-12 late.
SPEEX_MODES = {8000: (0, 160, 79), 16000: (1, 320, 222), 32000: (2, 640, 507)}
# Bytes per 20 ms CBR packet (one frame) by sample rate and quality 0-10, as libspeex writes them.
SPEEX_FRAME_BYTES = {
    8000: (6, 10, 15, 20, 20, 28, 28, 38, 38, 46, 62),
    16000: (10, 15, 20, 25, 32, 42, 52, 60, 70, 86, 106),
    32000: (11, 19, 24, 29, 37, 47, 56, 64, 74, 90, 110),
}
_SPEEX_HEADER = struct.Struct("<8s20s11i")  # speex_header.h: 80 bytes, little-endian
GSM_FRAME_BYTES = 33


# -- shared helpers -------------------------------------------------------------------------


def _ffmpeg_encode(backend: str, rate: int, pcm: np.ndarray, output: list[str]) -> bytes:
    """Encode mono 16-bit PCM with ffmpeg; any failure or a timeout is a CodecError."""
    command = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-threads",
        "1",
        "-fflags",
        "+bitexact",
        "-f",
        "s16le",
        "-ar",
        str(rate),
        "-ac",
        "1",
        "-i",
        "pipe:0",
        "-flags",
        "+bitexact",
        *output,
        "pipe:1",
    ]
    try:
        done = subprocess.run(command, input=pcm.tobytes(), capture_output=True, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CodecError(f"{backend}: ffmpeg timed out after {_TIMEOUT} s") from None
    except OSError as err:
        raise CodecError(f"{backend}: cannot run ffmpeg ({err}); {FFMPEG_HINT}") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise CodecError(f"{backend}: ffmpeg failed (exit status {done.returncode}): {message[0]}")
    return done.stdout


class _EncoderProbe:
    """ffmpeg's list of encoders, asked for once per process. Starting ffmpeg takes about 80 ms,
    so `evalkit codecs` starts the probe first and builds its cards while ffmpeg answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._text = ""

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._ask, daemon=True, name="evalkit-ffmpeg-probe")
                self._thread.start()

    def text(self) -> str:
        self.start()
        assert self._thread is not None
        self._thread.join()
        return self._text

    def _ask(self) -> None:
        try:
            done = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return
        self._text = done.stdout


ENCODER_PROBE = _EncoderProbe()


def _ffmpeg_encoders() -> str:
    return ENCODER_PROBE.text()


def _missing(encoder: str, decoder: str) -> str | None:
    """None when ffmpeg has `encoder` and PyAV has `decoder`, else why not and the fix."""
    if shutil.which("ffmpeg") is None:
        return f"the ffmpeg command is not on PATH; {FFMPEG_HINT}"
    if f" {encoder} " not in _ffmpeg_encoders():
        return f"this ffmpeg has no {encoder} encoder; {FFMPEG_HINT} (Debian's build has it)"
    try:
        import av

        av.codec.Codec(decoder, "r")
    except ImportError:
        return f"PyAV is not installed; {PYAV_HINT}"
    except Exception:
        return f"PyAV has no {decoder} decoder; {PYAV_HINT}"
    return None


def _decoder(name: str, rate: int, extradata: bytes | None = None):
    import av  # lazy: evalkit imports without PyAV

    context: Any = av.CodecContext.create(name, "r")  # an audio context: the stubs type the base class
    context.sample_rate, context.layout = rate, "mono"
    if extradata:
        context.extradata = extradata
    return context


def _decode_packets(context, packets: list[bytes | None], frame: int, filler: bytes, backend: str) -> np.ndarray:
    """Decode packet by packet; each must give exactly one frame of samples."""
    import av

    out = []
    for i, (packet, gain) in enumerate(conceal_by_repetition(packets, filler)):
        chunks = [f.to_ndarray().reshape(-1) for f in context.decode(av.Packet(packet))]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        if len(samples) != frame:
            raise CodecError(f"{backend}: packet {i} decoded to {len(samples)} samples, expected {frame}")
        out.append(samples.astype(np.float32) * gain)
    return np.concatenate(out)


def _pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")


# -- Speex --------------------------------------------------------------------------------


@register_backend("speex")
class Speex(Codec):
    """Speex CBR at a quality 0-10, narrow-, wide- or ultra-wide-band, one frame per packet."""

    install_hint = FFMPEG_HINT

    def __init__(self, sample_rate: int = 8000, quality: int = 4):
        if sample_rate not in SPEEX_MODES:
            raise ConfigError(
                f"speex: sample_rate {sample_rate!r} is not a Speex mode; choose one of {sorted(SPEEX_MODES)}"
            )
        if not isinstance(quality, int) or isinstance(quality, bool) or not 0 <= quality <= 10:
            raise ConfigError(f"speex: quality {quality!r} must be an integer from 0 to 10")
        self.sample_rate, self.quality = int(sample_rate), quality
        self.mode, self.frame, self.delay = SPEEX_MODES[self.sample_rate]

    @classmethod
    def unavailable(cls) -> str | None:
        return _missing("libspeex", "speex")

    @property
    def info(self) -> CodecInfo:
        nbytes = SPEEX_FRAME_BYTES[self.sample_rate][self.quality]
        return CodecInfo(
            name=self.backend,
            version=f"libspeex {debian_version('libspeex1')} (ffmpeg {debian_version('ffmpeg')})",
            family="speex",
            sample_rate=self.sample_rate,
            frame_samples=self.frame,
            lookahead_samples=self.delay,
            nominal_bitrate=8.0 * nbytes * self.sample_rate / self.frame,
            bitrate_tolerance=0.03,
            needs=("ffmpeg (libspeex)", "av"),
        )

    def _encode(self, samples):
        options = ["-c:a", "libspeex", "-cbr_quality", str(self.quality), "-frames_per_packet", "1", "-f", "ogg"]
        ogg = _ffmpeg_encode(self.backend, self.sample_rate, _pcm16(samples[0]), options)
        extradata, packets = _demux_ogg(ogg, self.backend)
        header = _speex_header_fields(extradata, self.backend)
        if header["rate"] != self.sample_rate or header["frames_per_packet"] != 1:
            raise CodecError(
                f"speex: ffmpeg wrote rate {header['rate']}, {header['frames_per_packet']} frames per packet"
            )
        return header, packets

    def _decode(self, header, packets):
        extradata = _speex_header_bytes(header, self.backend)
        expected = self._header_fields()
        wrong = [key for key, value in expected.items() if header[key] != value]
        if wrong:
            found = ", ".join(f"{key}={str(header[key])[:12]}" for key in wrong)
            raise CodecError(
                f"speex: stream header has {found}; this {self.sample_rate} Hz decoder takes "
                + ", ".join(f"{key}={expected[key]}" for key in wrong)
            )
        size = SPEEX_FRAME_BYTES[self.sample_rate][self.quality]
        check_packet_sizes(packets, size, size, self.backend)
        context = _decoder("speex", self.sample_rate, extradata)
        filler = bytes(size)
        return _decode_packets(context, packets, self.frame, filler, self.backend)

    def _header_fields(self) -> dict:
        """The Speex header fields this decoder takes: one mono CBR frame per packet of its mode."""
        return {
            "version_id": 1,
            "header_size": 80,
            "rate": self.sample_rate,
            "mode": self.mode,
            "bitstream_version": 4,
            "channels": 1,
            "frame_size": self.frame,
            "vbr": 0,
            "frames_per_packet": 1,
            "extra_headers": 0,
        }


def _demux_ogg(data: bytes, backend: str) -> tuple[bytes, list[bytes]]:
    """The Speex header (stream extradata) and the audio packets of an Ogg Speex file."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r", format="ogg") as container:
            stream = container.streams.audio[0]
            extradata = bytes(stream.codec_context.extradata or b"")
            packets = [bytes(p) for p in container.demux(stream) if p.size]
    except (av.FFmpegError, IndexError) as err:
        raise CodecError(f"{backend}: cannot demux the Ogg stream ffmpeg wrote ({err})") from None
    return extradata, packets


_HEADER_KEYS = (
    "version_id",
    "header_size",
    "rate",
    "mode",
    "bitstream_version",
    "channels",
    "bitrate",
    "frame_size",
    "vbr",
    "frames_per_packet",
    "extra_headers",
)


def _speex_header_fields(extradata: bytes, backend: str) -> dict:
    """Parse the 80-byte Speex header into plain JSON fields."""
    if len(extradata) < _SPEEX_HEADER.size or not extradata.startswith(b"Speex   "):
        raise CodecError(f"{backend}: the Ogg stream has no Speex header")
    _, version, *numbers = _SPEEX_HEADER.unpack(extradata[: _SPEEX_HEADER.size])
    fields = dict(zip(_HEADER_KEYS, numbers))
    fields["speex_version"] = version.rstrip(b"\0").decode("ascii", "replace")
    return fields


def _speex_header_bytes(header: dict, backend: str) -> bytes:
    """The 80-byte Speex header rebuilt from our header dict, for the decoder."""
    try:
        numbers = [int(header[key]) for key in _HEADER_KEYS]
        version = str(header["speex_version"]).encode("ascii")[:20]
        return _SPEEX_HEADER.pack(b"Speex   ", version, *numbers)
    except (KeyError, TypeError, ValueError, struct.error) as err:
        raise CodecError(f"{backend}: bitstream header lacks valid Speex fields ({err})") from None


# -- GSM 06.10 ----------------------------------------------------------------------------


@register_backend("gsm")
class Gsm(Codec):
    """GSM 06.10 full rate: 8 kHz, 20 ms, 33-byte frames (13.2 kbit/s of payload)."""

    install_hint = FFMPEG_HINT

    @classmethod
    def unavailable(cls) -> str | None:
        return _missing("libgsm", "gsm")

    @property
    def info(self) -> CodecInfo:
        return CodecInfo(
            name=self.backend,
            version=f"libgsm {debian_version('libgsm1')} (ffmpeg {debian_version('ffmpeg')})",
            family="gsm",
            sample_rate=8000,
            frame_samples=160,
            lookahead_samples=0,
            nominal_bitrate=8.0 * GSM_FRAME_BYTES * 50,
            bitrate_tolerance=0.03,
            needs=("ffmpeg (libgsm)", "av"),
        )

    def _encode(self, samples):
        data = _ffmpeg_encode(self.backend, 8000, _pcm16(samples[0]), ["-c:a", "libgsm", "-f", "gsm"])
        if len(data) % GSM_FRAME_BYTES:
            raise CodecError(f"gsm: ffmpeg wrote {len(data)} bytes, not whole {GSM_FRAME_BYTES}-byte frames")
        return {}, [data[i : i + GSM_FRAME_BYTES] for i in range(0, len(data), GSM_FRAME_BYTES)]

    def _decode(self, header, packets):
        for i, packet in enumerate(packets):
            if packet is not None and (len(packet) != GSM_FRAME_BYTES or packet[0] >> 4 != 0xD):
                raise CodecError(f"gsm: packet {i} is not a GSM 06.10 frame ({len(packet)} bytes)")
        filler = bytes([0xD0]) + bytes(GSM_FRAME_BYTES - 1)
        return _decode_packets(_decoder("gsm", 8000), packets, 160, filler, self.backend)
