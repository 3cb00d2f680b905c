"""Registers the predictive coding backend `predictive` (evalkit.predictive)."""

from ..predictive.codec import PredictiveCodec
from .base import register_backend

__all__ = ["PredictiveCodec"]

register_backend("predictive")(PredictiveCodec)
