"""The reference LPCNet vocoder (Valin & Skoglund, 2019): a sample-rate network predicting the excitation.

Per sample t the network sees mu-law embeddings of the previous sample s[t-1], the LPC
prediction p[t] and the previous excitation e[t-1], plus the frame-rate network's conditioning
(framewise.FrameRateNet: pitch embedding, 2 causal convolutions, 2 fully connected layers);
GRU_A (size `gru_a`, the card parameter) and GRU_B (16) feed a dual fully connected layer and a
softmax over 256 mu-law levels of e[t]; s[t] = p[t] + e[t]. Training is teacher-forced on the
pre-emphasised signal with noise injected into the excitation (so the network learns to
recover from its own errors), with a cross-entropy loss. Sampling lowers the temperature in
voiced frames (by the pitch correlation) and drops levels below probability 0.002, as LPCNet does.

Decoding runs the per-sample loop compiled with numba (`SampleRateDecoder`), with the GRU_A input
products of the embeddings and the conditioning precomputed as LPCNet's C code does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numba
import numpy as np
import torch
from torch import nn

from ..config import dataclass_from_dict
from .features import FRAME, LPC_ORDER, NB_BANDS, PREEMPHASIS, SCALE, preemphasis
from .filters import deemphasis
from .framewise import FrameRateNet, VocoderConfig

__all__ = [
    "SampleRateConfig",
    "SampleRateLPCNet",
    "SampleRateDecoder",
    "ulaw",
    "ulaw_to_linear",
    "teacher_signals",
    "reference_decode",
    "sharpening",
]

LEVELS = 256
PROB_FLOOR = 0.002


def ulaw(x):
    """16-bit linear values to mu-law indices 0..255."""
    u = np.sign(x) * 128 * np.log1p(255 * np.minimum(np.abs(x) / 32768.0, 1.0)) / np.log(256)
    return np.clip(np.round(u + 128), 0, 255).astype(np.int64)


def ulaw_to_linear(u):
    u = np.asarray(u, np.float64) - 128
    return np.sign(u) * 32768.0 * (np.exp(np.abs(u) / 128 * np.log(256)) - 1) / 255


@dataclass(frozen=True)
class SampleRateConfig:
    cond: int = 128
    embed: int = 64  # pitch embedding (frame network)
    sample_embed: int = 64  # mu-law embeddings of s, p and e
    gru_a: int = 128
    gru_b: int = 16

    @classmethod
    def from_dict(cls, data: dict) -> SampleRateConfig:
        return dataclass_from_dict(cls, data, "sample-rate LPCNet", int)

    def to_dict(self) -> dict:
        return asdict(self)


class SampleRateLPCNet(nn.Module):
    """Teacher-forced training model: logits (B, T, 256) of the excitation."""

    def __init__(self, config: SampleRateConfig | None = None):
        super().__init__()
        self.config = config = config or SampleRateConfig()
        self.frame_net = FrameRateNet(VocoderConfig(cond=config.cond, embed=config.embed))
        self.embed_sig = nn.Embedding(LEVELS, config.sample_embed)
        self.embed_pred = nn.Embedding(LEVELS, config.sample_embed)
        self.embed_exc = nn.Embedding(LEVELS, config.sample_embed)
        self.gru_a = nn.GRU(3 * config.sample_embed + config.cond, config.gru_a, batch_first=True)
        self.gru_b = nn.GRU(config.gru_a + config.cond, config.gru_b, batch_first=True)
        self.fc1 = nn.Linear(config.gru_b, LEVELS)
        self.fc2 = nn.Linear(config.gru_b, LEVELS)
        self.mix = nn.Parameter(torch.ones(2, LEVELS))

    def forward(self, feats, sig, pred, exc):
        """feats (B, F, 20); sig, pred, exc (B, F * 160) mu-law indices of s[t-1], p[t], e[t-1]."""
        cond = self.frame_net(feats).repeat_interleave(FRAME, dim=1)
        x = torch.cat([self.embed_sig(sig), self.embed_pred(pred), self.embed_exc(exc), cond], dim=-1)
        a, _ = self.gru_a(x)
        b, _ = self.gru_b(torch.cat([a, cond], dim=-1))
        return self.mix[0] * torch.tanh(self.fc1(b)) + self.mix[1] * torch.tanh(self.fc2(b))


@numba.njit(cache=True)
def _teacher(clean, lpc, noise_levels, out_sig, out_pred, out_exc_prev, out_target):
    """Noise-injected teacher forcing over one pre-emphasised 16-bit signal (see teacher_signals)."""
    order = lpc.shape[1]
    noisy = np.zeros(len(clean) + order)
    prev_exc = 0.0
    for t in range(len(clean)):
        p = 0.0
        for k in range(order):
            p -= lpc[t // 160, k] * noisy[order + t - 1 - k]
        exc = clean[t] - p
        out_sig[t] = noisy[order + t - 1]
        out_pred[t] = p
        out_exc_prev[t] = prev_exc
        out_target[t] = exc
        u = 128.0 * np.sign(exc) * np.log1p(255.0 * min(abs(exc) / 32768.0, 1.0)) / np.log(256.0) + 128.0
        u = min(255.0, max(0.0, np.round(u) + noise_levels[t]))
        noisy_exc = np.sign(u - 128.0) * 32768.0 * (np.exp(abs(u - 128.0) / 128.0 * np.log(256.0)) - 1.0) / 255.0
        noisy[order + t] = p + noisy_exc
        prev_exc = noisy_exc


def teacher_signals(x: np.ndarray, lpc: np.ndarray, rng: np.random.Generator, noise: float = 1.0):
    """(s[t-1], p[t], e[t-1], target e[t]) as mu-law indices for a crop x in [-1, 1]: the history is
    the signal rebuilt from excitations with mu-law noise of about `noise` levels added, the target is
    the clean signal's excitation against that noisy history (LPCNet's noise injection)."""
    clean = preemphasis(np.asarray(x, np.float64) * SCALE)[: len(lpc) * FRAME]
    levels = np.round(rng.laplace(0.0, noise, len(clean)))
    arrays = [np.zeros(len(clean)) for _ in range(4)]
    _teacher(clean, np.ascontiguousarray(lpc, np.float64), levels, *arrays)
    return tuple(ulaw(a) for a in arrays)


class SampleRateDecoder:
    """Numba inference of the reference LPCNet from its state dict's arrays."""

    def __init__(self, arrays: dict[str, np.ndarray], config: SampleRateConfig, dtype=np.float32):
        from .inference import FrameConditioning

        self.config, self.dtype = config, dtype
        self.frame_net = FrameConditioning(arrays, dtype)
        f = lambda name: np.ascontiguousarray(arrays[name], dtype)  # noqa: E731
        w_ia, e = f("gru_a.weight_ih_l0"), config.sample_embed
        self.tables = np.stack(
            [f(f"embed_{n}.weight") @ w_ia[:, i * e : (i + 1) * e].T for i, n in enumerate(("sig", "pred", "exc"))]
        )  # (3, 256, 3 gru_a)
        self.w_ia_cond, self.b_ia = w_ia[:, 3 * e :], f("gru_a.bias_ih_l0")
        self.w_ha, self.b_ha = f("gru_a.weight_hh_l0"), f("gru_a.bias_hh_l0")
        w_ib = f("gru_b.weight_ih_l0")
        self.w_ib_a, self.w_ib_cond, self.b_ib = (
            np.ascontiguousarray(w_ib[:, : config.gru_a]),
            w_ib[:, config.gru_a :],
            f("gru_b.bias_ih_l0"),
        )
        self.w_hb, self.b_hb = f("gru_b.weight_hh_l0"), f("gru_b.bias_hh_l0")
        self.fc = (f("fc1.weight"), f("fc1.bias"), f("fc2.weight"), f("fc2.bias"), f("mix"))
        self.tables = self.tables.astype(dtype)

    def decode(self, feats: np.ndarray, uniforms: np.ndarray | None = None) -> np.ndarray:
        from .features import lpc_from_cepstrum

        feats = np.asarray(feats, np.float64)
        lpc, _ = lpc_from_cepstrum(feats[:, :NB_BANDS])
        cond = self.frame_net(feats)
        dtype = self.dtype
        cond_a = (cond @ self.w_ia_cond.T + self.b_ia).astype(dtype)
        cond_b = (cond @ self.w_ib_cond.T + self.b_ib).astype(dtype)
        if uniforms is None:
            uniforms = np.random.default_rng(0).random(len(feats) * FRAME)
        s = _sample_loop(
            self.tables,
            cond_a,
            cond_b,
            sharpening(feats).astype(dtype),
            lpc.astype(dtype),
            uniforms.astype(dtype),
            self.w_ha,
            self.b_ha,
            self.w_ib_a,
            self.w_hb,
            self.b_hb,
            *self.fc,
            ulaw_to_linear(np.arange(LEVELS)).astype(dtype),
        )
        return (deemphasis(s, PREEMPHASIS) / SCALE).astype(np.float32)


def sharpening(feats: np.ndarray) -> np.ndarray:
    """Per-frame logit scale: lower temperature in voiced frames (1 + max(0, 1.5 corr - 0.5))."""
    return 1.0 + np.maximum(0.0, 1.5 * np.asarray(feats)[:, NB_BANDS + 1] - 0.5)


def reference_decode(model: SampleRateLPCNet, feats: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """The torch model sampled step by step in Python (slow; the test oracle for _sample_loop)."""
    from .features import lpc_from_cepstrum

    feats = np.asarray(feats, np.float64)
    lpc, _ = lpc_from_cepstrum(feats[:, :NB_BANDS])
    scale, levels = sharpening(feats), ulaw_to_linear(np.arange(LEVELS))
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        cond = model.frame_net(torch.from_numpy(feats[None]).to(dtype))[0]
        out, h_a, h_b, exc_index = np.zeros(len(feats) * FRAME + LPC_ORDER), None, None, 128
        for t in range(len(feats) * FRAME):
            k = t // FRAME
            p = 0.0
            for j in range(LPC_ORDER):
                p -= lpc[k, j] * out[LPC_ORDER + t - 1 - j]
            indices = [
                torch.tensor([[_ulaw_index(out[LPC_ORDER + t - 1])]]),
                torch.tensor([[_ulaw_index(p)]]),
                torch.tensor([[exc_index]]),
            ]
            x = torch.cat(
                [
                    model.embed_sig(indices[0]),
                    model.embed_pred(indices[1]),
                    model.embed_exc(indices[2]),
                    cond[k][None, None],
                ],
                dim=-1,
            )
            a, h_a = model.gru_a(x, h_a)
            b, h_b = model.gru_b(torch.cat([a, cond[k][None, None]], dim=-1), h_b)
            logits = model.mix[0] * torch.tanh(model.fc1(b)) + model.mix[1] * torch.tanh(model.fc2(b))
            probs = torch.softmax(logits[0, 0] * scale[k], dim=0).numpy()
            probs = np.where(probs < PROB_FLOOR, 0.0, probs)
            cumulative = np.cumsum(probs)
            exc_index = min(int(np.searchsorted(cumulative, uniforms[t] * cumulative[-1], side="right")), LEVELS - 1)
            out[LPC_ORDER + t] = p + levels[exc_index]
    return (deemphasis(out[LPC_ORDER:], PREEMPHASIS) / SCALE).astype(np.float32)


@numba.njit(cache=True)
def _gru_step(gi, h, w_hh, b_hh):
    size = h.shape[0]
    gh = np.dot(w_hh, h) + b_hh
    one = np.ones(size, h.dtype)
    r = one / (one + np.exp(-(gi[:size] + gh[:size])))
    z = one / (one + np.exp(-(gi[size : 2 * size] + gh[size : 2 * size])))
    n = np.tanh(gi[2 * size :] + r * gh[2 * size :])
    return (one - z) * n + z * h


@numba.njit(cache=True)
def _ulaw_index(x):
    u = 128.0 * np.sign(x) * np.log1p(255.0 * min(abs(x) / 32768.0, 1.0)) / np.log(256.0) + 128.0
    return int(min(255.0, max(0.0, np.round(u))))


@numba.njit(cache=True)
def _sample_loop(
    tables, cond_a, cond_b, sharpen, lpc, uniforms, w_ha, b_ha, w_ib_a, w_hb, b_hb, w1, b1, w2, b2, mix, levels
):
    frames = cond_a.shape[0]
    order = lpc.shape[1]
    out = np.zeros(frames * 160 + order, np.float64)
    h_a = np.zeros(w_ha.shape[1], tables.dtype)
    h_b = np.zeros(w_hb.shape[1], tables.dtype)
    exc_index = 128
    for t in range(frames * 160):
        k = t // 160
        p = 0.0
        for j in range(order):
            p -= lpc[k, j] * out[order + t - 1 - j]
        gi = tables[0, _ulaw_index(out[order + t - 1])] + tables[1, _ulaw_index(p)] + tables[2, exc_index] + cond_a[k]
        h_a = _gru_step(gi, h_a, w_ha, b_ha)
        h_b = _gru_step(np.dot(w_ib_a, h_a) + cond_b[k], h_b, w_hb, b_hb)
        logits = (mix[0] * np.tanh(np.dot(w1, h_b) + b1) + mix[1] * np.tanh(np.dot(w2, h_b) + b2)) * sharpen[k]
        probs = np.exp(logits - np.max(logits))
        probs /= np.sum(probs)
        probs = np.where(probs < PROB_FLOOR, 0.0, probs)
        cumulative = np.cumsum(probs)
        target = uniforms[t] * cumulative[-1]
        exc_index = min(int(np.searchsorted(cumulative, target, side="right")), 255)
        out[order + t] = p + levels[exc_index]
    return out[order:]
