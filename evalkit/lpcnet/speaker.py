"""Speaker encoder and speaker groups for personalised vocoders (after Jang et al., ICASSP 2024).

The encoder: 40 log-mel bands (25 ms window, 10 ms hop) -> 2 x GRU(128) -> mean over time ->
linear to 64 dimensions -> unit length. It is trained with the GE2E softmax loss (Wan et al.,
2018) on batches of N speakers x M segments of 1.6 s; half the segments are band-limited to
4 kHz so that the 8 kHz recordings in the training set do not teach it to recognise the channel
instead of the voice. Speakers are then grouped by k-means over their mean embeddings, and an
utterance is assigned to the group whose centroid is nearest (cosine).

Inference (`SpeakerEncoder`) is numpy and numba (the vocoder's GRU kernel), without torch;
training (`train_speaker_encoder`) uses torch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..melbank import mel_filterbank
from .inference import _gru
from .kmeans import kmeans

__all__ = ["log_mels", "SpeakerEncoder", "group_of", "speaker_groups", "N_MELS", "SEGMENT_FRAMES"]

RATE, N_FFT, HOP, N_MELS = 16000, 400, 160, 40
SEGMENT_FRAMES = 160  # 1.6 s training segments
BAND_LIMIT_HZ = 4000.0
FLOOR = 1e-6


@lru_cache(maxsize=2)
def _mel_bank(band_limited: bool = False) -> np.ndarray:
    """(n_fft // 2 + 1, 40) triangles equally spaced on the HTK mel scale from 0 to 8 kHz."""
    bank = mel_filterbank(RATE, N_FFT, N_MELS).T.copy()
    if band_limited:
        bank[np.fft.rfftfreq(N_FFT, 1.0 / RATE) > BAND_LIMIT_HZ] = 0.0
    return bank


def log_mels(x: np.ndarray, band_limited: bool = False) -> np.ndarray:
    """(frames, 40) log mel energies of 16 kHz samples, normalised by the utterance's mean (gain-free)."""
    x = np.asarray(x, np.float64)
    frames = max(1, 1 + (len(x) - N_FFT) // HOP)
    padded = np.pad(x, (0, max(0, N_FFT - len(x))))
    index = HOP * np.arange(frames)[:, None] + np.arange(N_FFT)[None, :]
    spectrum = np.abs(np.fft.rfft(padded[index] * np.hanning(N_FFT), axis=1)) ** 2
    logs = np.log(spectrum @ _mel_bank(band_limited) + FLOOR)
    return (logs - logs.mean()).astype(np.float32)


class SpeakerEncoder:
    """The trained encoder (numpy inference) and its group centroids, from arrays named as torch names them."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        def w(name):
            return np.ascontiguousarray(arrays[name], np.float32)

        self.layers = [
            tuple(w(f"gru.{kind}_l{i}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) for i in range(2)
        ]
        self.proj = (w("proj.weight"), w("proj.bias"))
        self.centroids = w("centroids") if "centroids" in arrays else None

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Unit-length embedding of 16 kHz speech."""
        h = log_mels(x)
        for layer in self.layers:
            h = _gru_sequence(h, *layer)
        e = h.mean(axis=0) @ self.proj[0].T + self.proj[1]
        return e / max(float(np.linalg.norm(e)), 1e-9)

    def group(self, x: np.ndarray) -> int:
        if self.centroids is None:
            raise ValueError("this speaker encoder has no group centroids")
        return group_of(self.embed(x), self.centroids)


def _gru_sequence(x: np.ndarray, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    h = np.zeros(w_hh.shape[1], np.float32)
    out = np.empty((len(x), len(h)), np.float32)
    for t in range(len(x)):
        h = _gru(np.ascontiguousarray(x[t]), h, w_ih, w_hh, b_ih, b_hh)
        out[t] = h
    return out


def group_of(embedding: np.ndarray, centroids: np.ndarray) -> int:
    """The group whose (unit-length) centroid is nearest in cosine."""
    return int(np.argmax(centroids @ embedding))


def speaker_groups(embeddings: dict[str, np.ndarray], count: int, seed: int = 0, restarts: int = 20):
    """(centroids (count, dims), speaker -> group): spherical k-means over per-speaker mean embeddings,
    the best of `restarts` seeded runs by total cosine similarity."""
    names = sorted(embeddings)
    data = np.stack([embeddings[name] / np.linalg.norm(embeddings[name]) for name in names])
    best = None
    for run in range(restarts):
        centroids = kmeans(data, count, iterations=50, seed=seed + run, init_sample=len(data))
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        labels = np.argmax(data @ centroids.T, axis=1)
        score = float(np.sum(np.max(data @ centroids.T, axis=1)))
        if len(set(labels.tolist())) == count and (best is None or score > best[0]):
            best = (score, centroids, labels)
    if best is None:
        raise ValueError(f"cannot split {len(names)} speakers into {count} non-empty groups")
    return best[1], {name: int(label) for name, label in zip(names, best[2])}
