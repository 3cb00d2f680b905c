"""Registers the neural codec backends: `rvq` (evalkit's own) and the pretrained-codec adapters.

The implementations live in evalkit.neural and import torch and their packages lazily, so this
registration works (and the backends report themselves unavailable) without them.
"""

from ..neural.adapters import ADAPTERS
from ..neural.codec import RVQCodec
from .base import register_backend

__all__ = ["RVQCodec", "ADAPTERS"]

register_backend("rvq")(RVQCodec)
for _name, _cls in ADAPTERS.items():
    register_backend(_name)(_cls)
