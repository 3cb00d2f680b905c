"""Decoding features to speech without torch: the framewise vocoder's arithmetic in numpy and numba.

`Vocoder(weights).decode(features)` is the interface other codecs reuse: features (frames, 20)
as `features.features` computes them (or as the quantizer reconstructs them) in, 16 kHz speech
in [-1, 1] out, 160 samples per frame, causal. The frame-rate network runs in numpy over all
frames at once (it is causal, so this equals running it frame by frame); the subframe network
runs in one compiled loop (numba) over 40-sample subframes; then the LPC synthesis and
de-emphasis filters. The noise the network takes is drawn from a generator seeded per stream,
so decoding is deterministic. The arithmetic is the torch model's (framewise.py): a test checks
that both give the same samples.
"""

from __future__ import annotations

import numba
import numpy as np

from .features import FRAME, NB_BANDS, PREEMPHASIS, SCALE, lpc_from_cepstrum
from .filters import allpole, deemphasis
from .pitch import MAX_PERIOD, MIN_PERIOD

__all__ = ["Vocoder", "FrameConditioning", "NOISE_SEED"]

NOISE_SEED = 0x4C50  # fixed: the decoder is deterministic
LIMIT = 32.0  # framewise.LIMIT: the excitation's soft bound in units of its expected RMS


class FrameConditioning:
    """The frame-rate network (framewise.FrameRateNet) in numpy, from arrays named as torch names them."""

    def __init__(self, weights: dict[str, np.ndarray], dtype=np.float32):
        def w(name):
            return np.ascontiguousarray(weights[f"frame_net.{name}"], dtype=dtype)

        self.dtype = dtype
        self.mean, self.std = w("feature_mean"), w("feature_std")
        self.embedding = w("embedding.weight")
        self.conv = [(w(f"conv{i}.weight"), w(f"conv{i}.bias")) for i in (1, 2)]
        self.fc = [(w(f"fc{i}.weight"), w(f"fc{i}.bias")) for i in (1, 2)]

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """(frames, cond) from features (frames, 20); causal over frames."""
        feats = np.asarray(feats, self.dtype)
        ceps = (feats[:, :NB_BANDS] - self.mean) / self.std
        period = feats[:, NB_BANDS]
        logp = np.log2(np.clip(period, MIN_PERIOD, MAX_PERIOD) / MIN_PERIOD)[:, None] / 3 - 0.5
        corr = feats[:, NB_BANDS + 1 : NB_BANDS + 2] - 0.5
        x = np.concatenate([ceps, logp, corr, self.embedding[_pitch_index(period)]], axis=1)
        for weight, bias in self.conv:
            x = np.tanh(_causal_conv(x, weight, bias))
        for weight, bias in self.fc:
            x = np.tanh(x @ weight.T + bias)
        return x.astype(self.dtype)

    def macs(self) -> int:
        """Multiply-accumulates per frame."""
        return sum(w.size for w, _ in self.conv + self.fc)


class Vocoder:
    """The framewise vocoder from its exported weights (parameter name -> array, as torch names them)."""

    def __init__(self, weights: dict[str, np.ndarray], subframe: int = 40, dtype=np.float32):
        def w(name):
            return np.ascontiguousarray(weights[name], dtype=dtype)

        self.dtype, self.subframe = dtype, subframe
        self.frame_net = FrameConditioning(weights, dtype)
        self.gain = (w("subframe_net.gain.weight"), w("subframe_net.gain.bias"))
        names = [
            "inp.weight",
            "inp.bias",
            "gru1.weight_ih",
            "gru1.weight_hh",
            "gru1.bias_ih",
            "gru1.bias_hh",
            "gru2.weight_ih",
            "gru2.weight_hh",
            "gru2.bias_ih",
            "gru2.bias_hh",
            "out1.weight",
            "out1.bias",
            "out2.weight",
            "out2.bias",
            "pitch_gain.weight",
            "pitch_gain.bias",
        ]
        self.layers = tuple(w(f"subframe_net.{name}") for name in names)

    def excitation(self, feats: np.ndarray, exc_rms: np.ndarray, noise: np.ndarray) -> np.ndarray:
        cond = self.frame_net(feats)
        gains = (np.asarray(exc_rms, self.dtype)[:, None] * np.exp(cond @ self.gain[0].T + self.gain[1])).astype(
            self.dtype
        )
        lags = np.clip(np.round(np.asarray(feats)[:, NB_BANDS]), MIN_PERIOD, MAX_PERIOD).astype(np.int64)
        return _excitation_loop(cond, gains, lags, np.ascontiguousarray(noise, self.dtype), self.subframe, *self.layers)

    def decode(self, feats: np.ndarray, noise: np.ndarray | None = None, postfilter=None) -> np.ndarray:
        """16 kHz speech in [-1, 1] (frames x 160 samples) from features (frames, 20); `postfilter`
        (postfilter.Postfilter) reshapes the synthesis before de-emphasis."""
        feats = np.asarray(feats, np.float64)
        if feats.ndim != 2 or feats.shape[1] < NB_BANDS + 2:
            raise ValueError(f"features must be (frames, {NB_BANDS + 2}), got {feats.shape}")
        lpc, exc_rms = lpc_from_cepstrum(feats[:, :NB_BANDS])
        if noise is None:
            noise = np.random.default_rng(NOISE_SEED).standard_normal(len(feats) * FRAME)
        speech = allpole(self.excitation(feats, exc_rms, noise), lpc, FRAME)
        if postfilter is not None:
            speech = postfilter(speech, lpc, FRAME)
        return (deemphasis(speech, PREEMPHASIS) / SCALE).astype(np.float32)

    def macs_per_second(self) -> float:
        """Multiply-accumulates per second of speech (matrix products only)."""
        sub = sum(a.size for a in self.layers if a.ndim == 2)
        frame = self.frame_net.macs() + self.gain[0].size
        return 100.0 * (frame + FRAME // self.subframe * sub) + FRAME * 100.0 * 17  # + LPC and de-emphasis filters


def _pitch_index(period: np.ndarray) -> np.ndarray:
    return np.clip(np.round(period).astype(np.int64) - MIN_PERIOD, 0, MAX_PERIOD - MIN_PERIOD)


def _causal_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Conv1d over frames (rows of x) with kernel k and k - 1 zero frames on the left: torch's layout."""
    k = weight.shape[2]
    padded = np.concatenate([np.zeros((k - 1, x.shape[1]), x.dtype), x])
    out = np.broadcast_to(bias, (len(x), len(bias))).copy()
    for tap in range(k):
        out += padded[tap : tap + len(x)] @ weight[:, :, tap].T
    return out


@numba.njit(cache=True)
def _sigmoid(x):
    one = np.ones_like(x)  # not the literal 1.0, which would promote float32 to float64
    return one / (one + np.exp(-x))


@numba.njit(cache=True)
def _gru(x, h, w_ih, w_hh, b_ih, b_hh):
    size = h.shape[0]
    gi = np.dot(w_ih, x) + b_ih
    gh = np.dot(w_hh, h) + b_hh
    r = _sigmoid(gi[:size] + gh[:size])
    z = _sigmoid(gi[size : 2 * size] + gh[size : 2 * size])
    n = np.tanh(gi[2 * size :] + r * gh[2 * size :])
    return (np.ones_like(z) - z) * n + z * h


@numba.njit(cache=True)
def _excitation_loop(
    cond,
    gains,
    lags,
    noise,
    size,
    inp_w,
    inp_b,
    g1_wih,
    g1_whh,
    g1_bih,
    g1_bhh,
    g2_wih,
    g2_whh,
    g2_bih,
    g2_bhh,
    o1_w,
    o1_b,
    o2_w,
    o2_b,
    pg_w,
    pg_b,
):
    frames, width = cond.shape
    dtype = cond.dtype
    count, taps = FRAME // size, size + 4
    history = MAX_PERIOD + taps
    exc = np.zeros(history + frames * FRAME, dtype)  # `history` leading zeros, then the output
    h1 = np.zeros(g1_whh.shape[1], dtype)
    h2 = np.zeros(g2_whh.shape[1], dtype)
    inputs = np.zeros(inp_w.shape[1], dtype)
    pred = np.zeros(taps, dtype)
    for k in range(frames):
        lag = lags[k]
        for j in range(count):
            start = history + (k * count + j) * size
            gain = gains[k, j]
            for i in range(taps):
                offset = i - lag - 2
                while offset >= 0:  # not generated yet: one period further back
                    offset -= lag
                pred[i] = exc[start + offset] / gain
            noise_now = noise[start - history : start - history + size]
            inputs[:width] = cond[k]
            inputs[width : width + count] = 0.0
            inputs[width + j] = 1.0
            base = width + count
            inputs[base : base + taps] = pred
            inputs[base + taps : base + taps + size] = exc[start - size : start] / gain
            inputs[base + taps + size :] = noise_now
            x = np.tanh(np.dot(inp_w, inputs) + inp_b)
            h1 = _gru(x, h1, g1_wih, g1_whh, g1_bih, g1_bhh)
            h2 = _gru(np.concatenate((h1, pred)), h2, g2_wih, g2_whh, g2_bih, g2_bhh)
            states = np.concatenate((h1, h2))
            hidden = np.tanh(np.dot(o1_w, np.concatenate((states, pred, noise_now))) + o1_b)
            pitch_gain = _sigmoid(np.dot(pg_w, states) + pg_b)[0]
            out = np.dot(o2_w, hidden) + o2_b + pitch_gain * pred[2 : 2 + size]
            exc[start : start + size] = LIMIT * np.tanh(out / LIMIT) * gain
    return exc[history:]
