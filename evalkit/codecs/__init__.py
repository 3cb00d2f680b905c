"""Codec backends. Each module registers its backends on import; libraries load lazily."""

from .base import BACKENDS, Codec, CodecInfo, StreamConfigError, register_backend
from .bitstream import Bitstream
from . import reference, pyav, amrwb, codec2, ffmpeg_cli, lc3, neural  # noqa: F401  (registration)
from . import lpcnet  # noqa: F401  (registration)
from . import lowrank  # noqa: F401  (registration)
from . import predictive  # noqa: F401  (registration)

__all__ = ["BACKENDS", "Codec", "CodecInfo", "Bitstream", "StreamConfigError", "register_backend"]
