"""Codec 2 (David Rowe's low-rate sinusoidal vocoder) at 8 kHz.

Two backends produce the same kind of packets, one Codec 2 frame each
(``codec2_bytes_per_frame``: the mode's bits padded to whole bytes):

* ``codec2``: pycodec2 (libcodec2 1.2 bundled in its wheel) for modes 3200, 2400, 1600, 1400,
  1300, 1200 and 700C. It encodes through pycodec2. libcodec2 draws unvoiced phases from one
  process-wide generator (``codec2_rand``) that no API resets, so output decoded through
  pycodec2 would depend on what the process decoded before. Each stream is therefore decoded
  by a private instance of the library (loaded from an in-memory copy, so the dynamic loader
  cannot hand back the instance pycodec2 uses) that starts with the generator's initial
  state and is unloaded afterwards: the output equals a fresh process's, without the cost
  of one.
* ``codec2-cli``: the Debian ``c2enc``/``c2dec`` tools (libcodec2 1.0.5), which also have the
  450 and 450PWB modes that pycodec2 does not expose. 450PWB decodes to 16 kHz
  ("pseudo-wideband"), so that mode's native rate is 16 kHz: the input is taken to 8 kHz for
  the encoder (soxr, delay-compensated) and the 16 kHz output is returned as is.

Codec 2 is parametric (no waveform match): ``waveform_matching`` is False and the declared
delay is the lag of the decoded *envelope*, measured with a 40 Hz energy envelope on 35 clips
(the 22 demo clips, CMU ARCTIC, codec2-examples, Asterisk prompts): about 21 ms for modes
3200-1200 (the 20 ms analysis-window centre plus the synthesis phase dispersion), 30 ms for
700C (its decoder interpolates the once-per-40 ms parameters), 25 ms for 450 and 26 ms for
450PWB. Per clip the estimate scatters by a few ms (most for 450/450PWB), since a vocoder
keeps no waveform to pin the delay down.

``nominal_bitrate`` is what the packets cost: 8 * bytes_per_frame per frame, so 700C costs
800 bit/s (28 bits padded to 4 bytes), 1300 costs 1400 and 450 costs 600; the mode names
keep Codec 2's own bit counts (see `MODE_BITS`).

Lost packets (None): the last good packet is decoded again (the decoder's parameter
interpolation keeps that smooth), 6 dB quieter for each further consecutive loss; a loss
before any good packet is silence.
"""

from __future__ import annotations

import _ctypes
import ctypes
import glob
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from functools import cache
from importlib import metadata

import numpy as np

from ..errors import CodecError, ConfigError
from .base import Codec, CodecInfo, register_backend
from .debian_packages import debian_version

__all__ = ["Codec2", "Codec2Cli", "MODE_BITS", "conceal_by_repetition"]

# Mode -> (bits per frame, samples per frame at 8 kHz), from codec2.h / codec2.c.
MODE_BITS = {
    "3200": (64, 160),
    "2400": (48, 160),
    "1600": (64, 320),
    "1400": (56, 320),
    "1300": (52, 320),
    "1200": (48, 320),
    "700C": (28, 320),
    "450": (18, 320),
    "450PWB": (18, 320),
}
LIBRARY_MODES = ("3200", "2400", "1600", "1400", "1300", "1200", "700C")
# Envelope delay of the decoded output at 8 kHz (see the module docstring).
_DELAY = {"700C": 240, "450": 200, "450PWB": 208}
_DEFAULT_DELAY = 168
_TIMEOUT = 120  # seconds for one encoder or decoder process of codec2-cli
_FADE = 0.5  # gain per further consecutive lost packet (-6 dB)


def normalise_mode(mode, allowed: tuple[str, ...], backend: str) -> str:
    """'700c', 700 or '700C' -> '700C'; anything else is a ConfigError naming the choices."""
    name = str(mode).upper()
    name = "700C" if name == "700" else name
    if name not in allowed:
        elsewhere = " (the 450 modes need backend codec2-cli)" if name in MODE_BITS else ""
        raise ConfigError(f"{backend}: mode {mode!r} is not supported{elsewhere}; choose one of {', '.join(allowed)}")
    return name


def conceal_by_repetition(packets: list[bytes | None], filler: bytes) -> list[tuple[bytes, float]]:
    """(packet to decode, output gain) per packet: a lost one repeats the last good one, fading.

    Before any good packet, `filler` is decoded at gain 0 (silence that keeps the decoder fed).
    """
    plan, last, lost = [], None, 0
    for packet in packets:
        if packet is not None:
            last, lost = packet, 0
            plan.append((packet, 1.0))
        else:
            lost += 1
            plan.append((filler, 0.0) if last is None else (last, _FADE ** (lost - 1)))
    return plan


def _bytes_per_frame(mode: str) -> int:
    return (MODE_BITS[mode][0] + 7) // 8


def _checked(packet: bytes, size: int, index: int, backend: str) -> bytes:
    if len(packet) != size:
        raise CodecError(f"{backend}: packet {index} has {len(packet)} bytes; a Codec 2 frame of this mode has {size}")
    return packet


def _pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")


class _Codec2Base(Codec):
    """What both backends share: the mode, its framing, bitrate and delay."""

    allowed_modes: tuple[str, ...] = ()

    def __init__(self, mode="3200"):
        self.mode = normalise_mode(mode, self.allowed_modes, self.backend)

    @property
    def _rate_factor(self) -> int:
        return 2 if self.mode == "450PWB" else 1  # 450PWB decodes to 16 kHz

    def _info(self, version: str, needs: tuple[str, ...]) -> CodecInfo:
        frame = MODE_BITS[self.mode][1]
        factor = self._rate_factor
        return CodecInfo(
            name=self.backend,
            version=version,
            family="codec2",
            sample_rate=8000 * factor,
            frame_samples=frame * factor,
            lookahead_samples=_DELAY.get(self.mode, _DEFAULT_DELAY) * factor,
            nominal_bitrate=8.0 * _bytes_per_frame(self.mode) * 8000 / frame,
            bitrate_tolerance=0.05,
            waveform_matching=False,
            needs=needs,
        )

    def _decode_frames(self, stream: bytes) -> bytes:
        """Concatenated frames of the mode -> 16-bit PCM, decoded from a fresh decoder state."""
        raise NotImplementedError

    def _decode(self, header, packets):
        if header.get("mode") != self.mode:
            raise CodecError(
                f"{self.backend}: stream is mode {str(header.get('mode'))[:12]}; this decoder is mode {self.mode}"
            )
        size = _bytes_per_frame(self.mode)
        plan = conceal_by_repetition(packets, bytes(size))
        stream = b"".join(_checked(p, size, i, self.backend) for i, (p, _) in enumerate(plan))
        pcm = np.frombuffer(self._decode_frames(stream), "<i2")
        frame = MODE_BITS[self.mode][1] * self._rate_factor
        if len(pcm) != frame * len(plan):
            raise CodecError(f"{self.backend}: the decoder returned {len(pcm)} samples for {len(plan)} frames")
        gains = np.repeat(np.array([g for _, g in plan], dtype=np.float32), frame)
        return pcm.astype(np.float32) * gains / 32768.0


@register_backend("codec2")
class Codec2(_Codec2Base):
    """Codec 2 through pycodec2, one frame per packet."""

    install_hint = "pip install pycodec2"
    allowed_modes = LIBRARY_MODES

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            import pycodec2  # noqa: F401
        except ImportError as err:
            return f"pycodec2 is not importable ({err}); {cls.install_hint}"
        if _bundled_libcodec2() is None:
            return f"pycodec2's wheel has no bundled libcodec2 to decode with; {cls.install_hint} (a manylinux wheel)"
        return None

    @property
    def info(self) -> CodecInfo:
        return self._info(_pycodec2_version(), ("pycodec2",))

    def _encode(self, samples):
        import pycodec2  # lazy: evalkit imports without it

        coder = pycodec2.Codec2(700 if self.mode == "700C" else int(self.mode))
        frame = MODE_BITS[self.mode][1]
        pcm = _pcm16(samples[0])
        packets = [coder.encode(np.ascontiguousarray(pcm[i : i + frame])) for i in range(0, len(pcm), frame)]
        return {"mode": self.mode}, packets

    def _decode_frames(self, stream: bytes) -> bytes:
        size, frame = _bytes_per_frame(self.mode), MODE_BITS[self.mode][1]
        count = len(stream) // size
        pcm = np.zeros(count * frame, dtype=np.int16)
        with _private_libcodec2() as lib:
            state = lib.codec2_create(_LIBRARY_MODE_IDS[self.mode])
            if not state:
                raise CodecError(f"{self.backend}: libcodec2 could not create a decoder for mode {self.mode}")
            try:
                for i in range(count):
                    lib.codec2_decode(state, pcm[i * frame :].ctypes.data, stream[i * size : (i + 1) * size])
            finally:
                lib.codec2_destroy(state)
        return pcm.tobytes()


# CODEC2_MODE_* from codec2.h.
_LIBRARY_MODE_IDS = {"3200": 0, "2400": 1, "1600": 2, "1400": 3, "1300": 4, "1200": 5, "700C": 8}


@contextmanager
def _private_libcodec2():
    """A freshly loaded instance of pycodec2's libcodec2, unloaded afterwards.

    It is loaded from an in-memory file: the dynamic loader knows libraries by file, so it
    cannot hand back the instance (and random state) that pycodec2 itself uses. The lock keeps
    threads (a Dask worker runs several) from sharing one instance.
    """
    with _PRIVATE_LOAD:
        lib = ctypes.CDLL(_libcodec2_image())
        try:
            lib.codec2_create.restype = ctypes.c_void_p
            lib.codec2_create.argtypes = [ctypes.c_int]
            lib.codec2_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p]
            lib.codec2_destroy.argtypes = [ctypes.c_void_p]
            yield lib
        finally:
            _ctypes.dlclose(lib._handle)  # the only reference: the next load starts afresh


_PRIVATE_LOAD = threading.Lock()


@cache
def _libcodec2_image() -> str:
    """Path of an in-memory copy of the libcodec2 that pycodec2's wheel bundles (per process)."""
    path = _bundled_libcodec2()
    if path is None:
        raise CodecError(
            "codec2: the libcodec2 bundled with pycodec2 was not found; pip install --force-reinstall pycodec2"
        )
    fd = os.memfd_create("libcodec2")
    with open(path, "rb") as source:
        os.write(fd, source.read())
    return f"/proc/self/fd/{fd}"


def _bundled_libcodec2() -> str | None:
    import pycodec2

    libs = glob.glob(
        os.path.join(os.path.dirname(os.path.dirname(pycodec2.__file__)), "pycodec2.libs", "libcodec2*.so.*")
    )
    return libs[0] if libs else None


@register_backend("codec2-cli")
class Codec2Cli(_Codec2Base):
    """Codec 2 through Debian's c2enc/c2dec, all modes including 450 and 450PWB."""

    install_hint = "apt-get install codec2"
    allowed_modes = tuple(MODE_BITS)

    @classmethod
    def unavailable(cls) -> str | None:
        for tool in ("c2enc", "c2dec"):
            if shutil.which(tool) is None:
                return f"{tool} is not on PATH; {cls.install_hint}"
        missing = [m for m in ("450", "450PWB") if m not in _cli_modes()]
        if missing:
            return f"this c2enc has no mode {', '.join(missing)} (it lists {', '.join(_cli_modes())}); {cls.install_hint} (Debian 12's 1.0.5 has them)"
        return None

    @property
    def info(self) -> CodecInfo:
        return self._info(f"codec2 {debian_version('codec2')} (c2enc/c2dec)", ("codec2 (Debian c2enc/c2dec)",))

    def _encode(self, samples):
        x = samples[0]
        if self._rate_factor == 2:  # the 450PWB encoder takes 8 kHz
            from ..audio import Audio, resample

            x = resample(Audio(x, 16000), 8000).samples[0]
        frame = MODE_BITS[self.mode][1]
        pcm = _pcm16(np.pad(x, (0, -len(x) % frame)))
        bits = _run(["c2enc", self.mode, "-", "-"], pcm.tobytes(), self.backend)
        size = _bytes_per_frame(self.mode)
        if len(bits) != size * (len(pcm) // frame):
            raise CodecError(
                f"{self.backend}: c2enc wrote {len(bits)} bytes for {len(pcm) // frame} frames of {size} bytes"
            )
        return {"mode": self.mode}, [bits[i : i + size] for i in range(0, len(bits), size)]

    def _decode_frames(self, stream: bytes) -> bytes:
        return _run(["c2dec", self.mode, "-", "-"], stream, self.backend)


def _run(command: list[str], data: bytes, backend: str) -> bytes:
    """Run a codec process on stdin/stdout; a failure or timeout is a CodecError naming the backend."""
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CodecError(f"{backend}: {command[0]} timed out after {_TIMEOUT} s") from None
    except OSError as err:
        raise CodecError(f"{backend}: cannot run {command[0]} ({err})") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise CodecError(f"{backend}: {command[0]} failed with exit status {done.returncode}: {tail[0]}")
    return done.stdout


@cache
def _cli_modes() -> tuple[str, ...]:
    """The modes c2enc's usage line lists, e.g. 'c2enc 3200|2400|...|450PWB InputRawspeechFile ...'."""
    try:
        done = subprocess.run(["c2enc"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ()
    for word in (done.stdout + done.stderr).split():
        if "|" in word and "3200" in word:
            return tuple(word.split("|"))
    return ()


@cache
def _pycodec2_version() -> str:
    """pycodec2's version and that of the libcodec2 its wheel bundles (from the file name)."""
    try:
        version = metadata.version("pycodec2")
    except metadata.PackageNotFoundError:
        version = "unknown"
    path = _bundled_libcodec2()
    lib = path.rsplit(".so.", 1)[-1] if path else "not found"
    return f"pycodec2 {version} (libcodec2 {lib})"
