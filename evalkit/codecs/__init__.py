"""Codec backends. Each module registers its backends on import; the registry imports the modules that
pyproject.toml declares (entry-point group "evalkit.codecs") on first use; libraries load lazily."""

from .base import BACKENDS, Codec, CodecInfo, StreamConfigError, register_backend
from .bitstream import Bitstream

__all__ = ["BACKENDS", "Codec", "CodecInfo", "Bitstream", "StreamConfigError", "register_backend"]
