"""Registers the neural codec backends: `rvq` and `ladiff` (evalkit's own) and the pretrained-codec adapters.

The implementations live in evalkit.neural and import torch and their packages lazily, so this
registration works (and the backends report themselves unavailable) without them.
"""

from ..neural.adapters import ADAPTERS
from ..neural.codec import RVQCodec
from ..neural.ladiff_codec import LaDiffCodec
from .base import register_backend

__all__ = ["RVQCodec", "LaDiffCodec", "ADAPTERS"]

register_backend("rvq")(RVQCodec)
register_backend("ladiff")(LaDiffCodec)
for _name, _cls in ADAPTERS.items():
    register_backend(_name)(_cls)
