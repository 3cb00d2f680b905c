"""Residual coding with dynamic bit allocation: how much a frame's prediction residual matters decides its bits.

Per 10 ms frame, the residual r = c - prediction of the 18 cepstra is coded in two parts, each
with a one-bit decision (a flag, range-coded like everything else):

* c0 (energy): an 8-bit scalar quantizer (256 trained levels) when |r0| > `c0_threshold`,
  else a 4-bit one (16 levels trained on small residuals);
* c1..c17 (spectral shape): a two-stage 1024 x 1024 VQ (20 bits) when the L1 norm of the residual
  exceeds `vq_threshold`, else a one-stage 512 VQ (9 bits) trained on small residuals.

The two thresholds are the codec's rate knob (`Allocation`). Codebooks are trained by k-means
(scipy) on closed-loop residuals of the training set (train.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .predictor import NB_CEPSTRA

__all__ = ["Allocation", "Codebooks", "FrameCode", "ResidualQuantizer", "CODEBOOK_SHAPES"]

CODEBOOK_SHAPES = {
    "c0_fine": (256,),
    "c0_coarse": (16,),
    "vq1": (1024, NB_CEPSTRA - 1),
    "vq2": (1024, NB_CEPSTRA - 1),
    "vq_small": (512, NB_CEPSTRA - 1),
}


@dataclass(frozen=True)
class Allocation:
    """The rate knob: residuals above a threshold get the fine quantizer (a negative threshold sends
    every frame fine); `frame_step` 2 codes every other frame and interpolates the ones between."""

    c0_threshold: float
    vq_threshold: float
    frame_step: int = 1


@dataclass(frozen=True)
class FrameCode:
    """One frame's symbols: the two flags and the quantizer indices (`vq2` is -1 for the small VQ)."""

    c0_fine: int
    c0: int
    vq_fine: int
    vq1: int
    vq2: int = -1


@dataclass(frozen=True)
class Codebooks:
    c0_fine: np.ndarray  # (256,) sorted levels
    c0_coarse: np.ndarray  # (16,) sorted levels
    vq1: np.ndarray  # (1024, 17)
    vq2: np.ndarray  # (1024, 17)
    vq_small: np.ndarray  # (512, 17)

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str = "residual.") -> Codebooks:
        books = {name: np.asarray(arrays[prefix + name], np.float64) for name in CODEBOOK_SHAPES}
        for name, shape in CODEBOOK_SHAPES.items():
            if books[name].shape != shape:
                raise ValueError(f"codebook {name} has shape {books[name].shape}, expected {shape}")
        return cls(**books)

    def arrays(self, prefix: str = "residual.") -> dict[str, np.ndarray]:
        return {prefix + name: np.asarray(getattr(self, name), np.float32) for name in CODEBOOK_SHAPES}


def _nearest(vectors: np.ndarray, target: np.ndarray, norms: np.ndarray) -> int:
    return int(np.argmin(norms - 2.0 * (vectors @ target)))


class ResidualQuantizer:
    """Quantizes one frame's residual under an allocation; the decoder's `reconstruct` inverts it."""

    def __init__(self, books: Codebooks, allocation: Allocation):
        self.books, self.allocation = books, allocation
        self._norms = {
            name: np.einsum("kd,kd->k", getattr(books, name), getattr(books, name))
            for name in ("vq1", "vq2", "vq_small")
        }

    def quantize(self, residual: np.ndarray) -> tuple[FrameCode, np.ndarray]:
        """(symbols, quantized residual) of one frame's residual (18,)."""
        r0, shape = float(residual[0]), residual[1:]
        c0_fine = int(abs(r0) > self.allocation.c0_threshold)
        levels = self.books.c0_fine if c0_fine else self.books.c0_coarse
        c0 = int(np.argmin(np.abs(levels - r0)))
        if float(np.sum(np.abs(shape))) > self.allocation.vq_threshold:
            first = _nearest(self.books.vq1, shape, self._norms["vq1"])
            second = _nearest(self.books.vq2, shape - self.books.vq1[first], self._norms["vq2"])
            code = FrameCode(c0_fine, c0, 1, first, second)
        else:
            code = FrameCode(c0_fine, c0, 0, _nearest(self.books.vq_small, shape, self._norms["vq_small"]))
        return code, self.reconstruct(code)

    def reconstruct(self, code: FrameCode) -> np.ndarray:
        books = self.books
        c0 = (books.c0_fine if code.c0_fine else books.c0_coarse)[code.c0]
        shape = books.vq1[code.vq1] + books.vq2[code.vq2] if code.vq_fine else books.vq_small[code.vq1]
        return np.concatenate([[c0], shape])
