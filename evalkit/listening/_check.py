"""The definition checker; it lives in evalkit.config, shared by every file format."""

from ..config import Checker

__all__ = ["Checker"]
