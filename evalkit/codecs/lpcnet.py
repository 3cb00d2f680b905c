"""Registers the LPCNet-style codec backends, `lpcnet` and `lpcnet-personal` (evalkit.lpcnet)."""

from ..lpcnet.codec import LPCNetCodec, PersonalLPCNetCodec
from .base import register_backend

__all__ = ["LPCNetCodec", "PersonalLPCNetCodec"]

register_backend("lpcnet")(LPCNetCodec)
register_backend("lpcnet-personal")(PersonalLPCNetCodec)
