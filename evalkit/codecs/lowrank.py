"""Registers the low-rank spectrogram codec backend `nmf` (evalkit.nmf)."""

from ..nmf.codec import NMFCodec
from .base import register_backend

__all__ = ["NMFCodec"]

register_backend("nmf")(NMFCodec)
