"""The frame predictor: the next frame's 18 cepstra from the frames reconstructed so far.

Architecture (after Yang, Lim & Kim, ICASSP 2023, smaller): the previous reconstructed frame,
normalised by the training set's mean and deviation, goes through GRU(18 -> 128) -> GRU(128 -> 64)
-> Linear(64 -> 64) + tanh -> Linear(64 -> 18); the output, scaled by the deviation, is added to
the previous frame (the network predicts the change). At the first frame the previous frame is
the training mean.

`network.FramePredictor` is the torch model (training); `Predictor` here runs the same arithmetic
in numpy in float64, one frame at a time, for the encoder and decoder (no torch needed). Both ends of the codec run this
same code on the same reconstructed frames, so their predictions agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NB_CEPSTRA", "PredictorConfig", "Predictor"]

NB_CEPSTRA = 18  # the LPCNet-style features' Bark cepstra c0..c17


@dataclass(frozen=True)
class PredictorConfig:
    hidden1: int = 128
    hidden2: int = 64
    dense: int = 64

    def to_dict(self) -> dict:
        return {"hidden1": self.hidden1, "hidden2": self.hidden2, "dense": self.dense}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class _GRUCell:
    """torch.nn.GRU's single-layer arithmetic (gates r, z, n) on one input vector."""

    def __init__(self, arrays: dict[str, np.ndarray], prefix: str):
        get = lambda name: np.asarray(arrays[f"{prefix}.{name}"], np.float64)  # noqa: E731
        self.w_ih, self.w_hh = get("weight_ih_l0"), get("weight_hh_l0")
        self.b_ih, self.b_hh = get("bias_ih_l0"), get("bias_hh_l0")
        self.size = self.w_hh.shape[1]

    def __call__(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        gi = self.w_ih @ x + self.b_ih
        gh = self.w_hh @ h + self.b_hh
        n = self.size
        r = _sigmoid(gi[:n] + gh[:n])
        z = _sigmoid(gi[n : 2 * n] + gh[n : 2 * n])
        candidate = np.tanh(gi[2 * n :] + r * gh[2 * n :])
        return (1.0 - z) * candidate + z * h

    def macs(self) -> int:
        return self.w_ih.size + self.w_hh.size


class Predictor:
    """The exported predictor in numpy (float64): `predict()` then `update(reconstructed frame)`."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        get = lambda name: np.asarray(arrays[name], np.float64)  # noqa: E731
        self.mean, self.std = get("mean"), get("std")
        self.gru1, self.gru2 = _GRUCell(arrays, "gru1"), _GRUCell(arrays, "gru2")
        self.dense_w, self.dense_b = get("dense.weight"), get("dense.bias")
        self.out_w, self.out_b = get("out.weight"), get("out.bias")
        self.reset()

    def reset(self) -> None:
        self.h1, self.h2 = np.zeros(self.gru1.size), np.zeros(self.gru2.size)
        self.previous = self.mean.copy()
        self._prediction = None

    def predict(self) -> np.ndarray:
        """The prediction of the next frame from the frames given to `update` so far."""
        if self._prediction is None:
            x = (self.previous - self.mean) / self.std
            h1 = self.gru1(x, self.h1)
            h2 = self.gru2(h1, self.h2)
            change = self.out_w @ np.tanh(self.dense_w @ h2 + self.dense_b) + self.out_b
            self._next_state = (h1, h2)
            self._prediction = self.previous + change * self.std
        return self._prediction

    def update(self, reconstructed: np.ndarray) -> None:
        """Advance by one frame: the network has now seen the previous frame; `reconstructed` is next."""
        self.predict()
        self.h1, self.h2 = self._next_state
        self.previous = np.asarray(reconstructed, np.float64)
        self._prediction = None

    def snapshot(self) -> tuple:
        """The state, to return to after a tentative look further ahead."""
        return self.h1, self.h2, self.previous, self._prediction, getattr(self, "_next_state", None)

    def restore(self, snapshot: tuple) -> None:
        self.h1, self.h2, self.previous, self._prediction, self._next_state = snapshot

    def macs_per_frame(self) -> int:
        return self.gru1.macs() + self.gru2.macs() + self.dense_w.size + self.out_w.size
