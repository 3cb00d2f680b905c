"""A ctypes binding of libopus's decoder (the library PyAV bundles, else the system's): packets, in-band
FEC and PLC in, float samples out; FFmpeg's own Opus wrapper never passes decode_fec."""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from functools import cache

import numpy as np

from ..errors import CodecError
from .pyav import PYAV_HINT, import_av

__all__ = ["load_libopus", "OpusDecoder"]


@cache
def load_libopus():
    """The libopus PyAV bundles (the one that encodes), else the system's; None if neither loads."""
    package = os.path.dirname(import_av().__file__)
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
    lib.opus_decode_float.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int32,
        c_float_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.opus_decoder_destroy.restype = None
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_strerror.argtypes = [ctypes.c_int]
    lib.opus_get_version_string.restype = ctypes.c_char_p
    return lib


class OpusDecoder:
    """One libopus decoder state at `rate`: packets, FEC and PLC in, float samples out."""

    def __init__(self, rate: int, backend: str):
        self.lib, self.backend = load_libopus(), backend
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
