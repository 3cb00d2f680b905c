"""Seeded k-means (k-means++ start, Lloyd iterations) for codebooks and speaker groups, in numpy."""

from __future__ import annotations

import numpy as np

__all__ = ["kmeans", "nearest"]

_CHUNK = 8192  # rows per distance block: bounds memory at chunk x k floats


def nearest(data: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest centroid, squared distance to it) for every row of data."""
    data = np.asarray(data, np.float64)
    centroids = np.asarray(centroids, np.float64)
    norms = np.einsum("kd,kd->k", centroids, centroids)
    index = np.empty(len(data), dtype=np.int64)
    dist = np.empty(len(data))
    for start in range(0, len(data), _CHUNK):
        block = data[start : start + _CHUNK]
        d = norms[None, :] - 2.0 * block @ centroids.T
        index[start : start + len(block)] = np.argmin(d, axis=1)
        dist[start : start + len(block)] = d[np.arange(len(block)), index[start : start + len(block)]] + np.einsum(
            "nd,nd->n", block, block
        )
    return index, np.maximum(dist, 0.0)


def kmeans(data: np.ndarray, k: int, iterations: int = 25, seed: int = 0, init_sample: int = 20000) -> np.ndarray:
    """(k, dims) centroids of data (n, dims), n >= k. Empty clusters are re-seeded with the rows
    worst served by the current codebook, so every centroid ends up in use."""
    data = np.asarray(data, np.float64)
    if len(data) < k:
        raise ValueError(f"k-means needs at least {k} rows, got {len(data)}")
    rng = np.random.default_rng(seed)
    centroids = _plus_plus(data[rng.permutation(len(data))[: max(init_sample, k)]], k, rng)
    for _ in range(iterations):
        index, dist = nearest(data, centroids)
        counts = np.bincount(index, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, index, data)
        used = counts > 0
        centroids[used] = sums[used] / counts[used, None]
        empty = np.flatnonzero(~used)
        if len(empty):
            centroids[empty] = data[np.argsort(dist)[::-1][: len(empty)]]
    return centroids


def _plus_plus(data: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++: each new centre drawn with probability proportional to its squared distance."""
    centroids = np.empty((k, data.shape[1]))
    centroids[0] = data[rng.integers(len(data))]
    dist = np.sum((data - centroids[0]) ** 2, axis=1)
    for i in range(1, k):
        total = dist.sum()
        pick = rng.choice(len(data), p=dist / total) if total > 0 else rng.integers(len(data))
        centroids[i] = data[pick]
        dist = np.minimum(dist, np.sum((data - centroids[i]) ** 2, axis=1))
    return centroids
