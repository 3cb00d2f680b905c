"""Low-rank models of block magnitude spectra: an NMF basis (beta-divergence) or a PCA basis of log spectra.

NMF: magnitudes V (blocks, 257) ~ H W with W (rank, 257) non-negative, learnt offline by the
multiplicative updates for the beta-divergence (1: generalised KL; 0: Itakura–Saito, which the
shipped bases use), rows of W normalised to unit sum. Per block the activations h >= 0 are
fitted with W fixed (`fit_activations`), so each block is coded on its own: streaming.

PCA: the log magnitudes (dB, floored at FLOOR_DB) centred on their training mean and projected on
the leading principal directions; reconstruction mean + c W back to magnitudes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EPS",
    "FLOOR_DB",
    "learn_nmf",
    "fit_activations",
    "beta_divergence",
    "learn_pca",
    "to_db",
    "from_db",
    "log_spectral_distance",
]

EPS = 1e-9
FLOOR_DB = -20.0  # magnitudes in 16-bit units: -20 dB is far below any audible bin
FIT_ITERATIONS = 60


def learn_nmf(
    v: np.ndarray, rank: int, iterations: int = 200, seed: int = 0, beta: float = 1.0, log=None
) -> np.ndarray:
    """W (rank, bins), rows summing to 1, minimising the beta-divergence D(V | H W) over the training
    blocks V (beta 1: generalised KL; 0: Itakura–Saito)."""
    v = np.asarray(v, np.float64)
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, (rank, v.shape[1])) * v.mean(axis=0)
    w /= w.sum(axis=1, keepdims=True)
    h = np.full((len(v), rank), v.sum(axis=1, keepdims=True) / rank)
    for step in range(iterations):
        h = _update_h(v, h, w, beta)
        approx = h @ w + EPS
        w *= (h.T @ (v * approx ** (beta - 2))) / (h.T @ approx ** (beta - 1) + EPS)
        scale = w.sum(axis=1, keepdims=True) + EPS
        w, h = w / scale, h * scale.T
        if log and (step % 20 == 0 or step == iterations - 1):
            log(
                f"nmf rank {rank}: iteration {step + 1}/{iterations}, "
                f"divergence per block {beta_divergence(v, h @ w, beta) / len(v):.2f}"
            )
    return w


def _update_h(v: np.ndarray, h: np.ndarray, w: np.ndarray, beta: float) -> np.ndarray:
    approx = h @ w + EPS
    return h * ((v * approx ** (beta - 2)) @ w.T) / (approx ** (beta - 1) @ w.T + EPS)


def fit_activations(v: np.ndarray, w: np.ndarray, beta: float = 1.0, iterations: int = FIT_ITERATIONS) -> np.ndarray:
    """H (blocks, rank) >= 0 with W fixed; each row depends on its own block only."""
    v = np.asarray(v, np.float64)
    h = np.full((len(v), len(w)), 1.0) * (v.sum(axis=1, keepdims=True) / len(w) + EPS)
    for _ in range(iterations):
        h = _update_h(v, h, w, beta)
    return h


def beta_divergence(v: np.ndarray, approx: np.ndarray, beta: float) -> float:
    """D_beta(V | approx), summed (beta 1: generalised KL, 0: Itakura–Saito)."""
    v, approx = np.asarray(v, np.float64) + EPS, np.asarray(approx, np.float64) + EPS
    if beta == 1:
        return float(np.sum(v * np.log(v / approx) - v + approx))
    if beta == 0:
        return float(np.sum(v / approx - np.log(v / approx) - 1))
    return float(np.sum((v**beta + (beta - 1) * approx**beta - beta * v * approx ** (beta - 1)) / (beta * (beta - 1))))


def to_db(magnitude: np.ndarray) -> np.ndarray:
    return np.maximum(20 * np.log10(np.asarray(magnitude, np.float64) + EPS), FLOOR_DB)


def from_db(level: np.ndarray) -> np.ndarray:
    return 10.0 ** (np.asarray(level, np.float64) / 20)


def learn_pca(v: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (bins,), W (rank, bins) orthonormal rows) of the training blocks' log magnitudes."""
    x = to_db(v)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:rank]


def log_spectral_distance(v: np.ndarray, approx: np.ndarray) -> float:
    """Root-mean-square difference in dB over bins and blocks (both floored at FLOOR_DB)."""
    return float(np.sqrt(np.mean((to_db(v) - to_db(approx)) ** 2)))
