"""Block magnitude spectra of 16 kHz audio and their streaming inversion by Griffin–Lim (RTISI).

STFT: periodic Hann window of 512 samples (32 ms), hop 128 (8 ms, 75 % overlap: what
Griffin–Lim needs to find a consistent phase). Frame j covers samples [128 (j - 3), 128 (j + 1)):
it ends where hop j ends, so it needs no sample past its own hop. A block is 4 frames (512
samples, 32 ms); its magnitude is the RMS over its frames of each bin's magnitude (257 bins).

Decoding (`StreamingGriffinLim`): block b's four frames take magnitudes interpolated from the
previous block's towards this block's (frame i of the block: weight (i + 1) / 4 on this block),
so nothing after block b is needed. Their phases start from the partial overlap-add of the
frames already committed and from the previous frame's phase advanced by each bin's centre
frequency, then `iterations` fast Griffin–Lim passes (with momentum) refine them with the committed frames
held fixed (real-time iterative spectrogram inversion, Zhu, Beauregard & Wyse 2007). Hop j's samples are
final once frame j + 3 is committed, so the output lags the input by 384 samples (24 ms).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "RATE",
    "N_FFT",
    "HOP",
    "BLOCK_FRAMES",
    "BLOCK",
    "BINS",
    "LAG",
    "frame_spectra",
    "block_magnitudes",
    "StreamingGriffinLim",
]

RATE = 16000
N_FFT = 512
HOP = 128
BLOCK_FRAMES = 4
BLOCK = HOP * BLOCK_FRAMES  # 512 samples, 32 ms
BINS = N_FFT // 2 + 1
LAG = N_FFT - HOP  # samples of output delay: hop j is final when frame j + 3 is in
MOMENTUM = 0.99  # fast Griffin–Lim (Perraudin, Balazs & Søndergaard 2013): fewer passes for the same fit
SCALE = 32768.0  # spectra of 16-bit sample values, so magnitudes of quiet speech stay well above 1


@lru_cache(maxsize=1)
def window() -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)


def frame_spectra(samples: np.ndarray) -> np.ndarray:
    """(frames, 257) complex STFT; one frame per hop, len(samples) a multiple of the hop."""
    x = np.asarray(samples, np.float64) * SCALE
    frames = len(x) // HOP
    padded = np.concatenate([np.zeros(LAG), x])
    index = HOP * np.arange(frames)[:, None] + np.arange(N_FFT)[None, :]
    return np.fft.rfft(padded[index] * window(), axis=1)


def block_magnitudes(samples: np.ndarray) -> np.ndarray:
    """(blocks, 257) RMS magnitude over each block's 4 frames; len(samples) a multiple of BLOCK."""
    power = np.abs(frame_spectra(samples)) ** 2
    return np.sqrt(power.reshape(-1, BLOCK_FRAMES, BINS).mean(axis=1))


class StreamingGriffinLim:
    """Block magnitudes in, samples out, one block at a time (see the module docstring)."""

    def __init__(self, iterations: int = 16):
        self.iterations = int(iterations)
        self.previous = np.zeros(BINS)  # the last block's magnitude (interpolation start)
        self.phase = np.zeros(BINS)  # the last committed frame's phase
        self.acc = np.zeros(LAG)  # overlap-add of committed frames over the samples not yet final
        self.norm = np.zeros(LAG)  # their summed squared windows
        self.advance = 2 * np.pi * HOP * np.arange(BINS) / N_FFT

    def block(self, magnitude: np.ndarray) -> np.ndarray:
        """The next BLOCK samples of output (those that became final), for one block's magnitude."""
        weights = (np.arange(1, BLOCK_FRAMES + 1) / BLOCK_FRAMES)[:, None]
        targets = (1 - weights) * self.previous + weights * magnitude
        self.previous = np.asarray(magnitude, np.float64)
        acc = np.concatenate([self.acc, np.zeros(BLOCK)])
        norm = np.concatenate([self.norm, np.zeros(BLOCK)])
        w = window()
        for i in range(BLOCK_FRAMES):
            norm[HOP * i : HOP * i + N_FFT] += w * w
        phases = self._initial_phases(acc, norm)
        previous = None
        for _ in range(self.iterations):
            consistent = self._project(acc, norm, targets, phases)
            accelerated = consistent if previous is None else consistent + MOMENTUM * (consistent - previous)
            phases, previous = np.angle(accelerated), consistent
        for i in range(BLOCK_FRAMES):
            acc[HOP * i : HOP * i + N_FFT] += w * np.fft.irfft(targets[i] * np.exp(1j * phases[i]), N_FFT)
        self.phase = phases[-1]
        out = acc[:BLOCK] / np.maximum(norm[:BLOCK], 1e-3)
        self.acc, self.norm = acc[BLOCK:], norm[BLOCK:]
        return (out / SCALE).astype(np.float32)

    def _initial_phases(self, acc: np.ndarray, norm: np.ndarray) -> np.ndarray:
        """Each new frame's phase from the committed overlap-add where it has energy, else from the
        previous frame's phase advanced by the bins' centre frequencies."""
        phases = np.empty((BLOCK_FRAMES, BINS))
        previous = self.phase
        signal = acc / np.maximum(norm, 1e-3)
        for i in range(BLOCK_FRAMES):
            spectrum = np.fft.rfft(signal[HOP * i : HOP * i + N_FFT] * window())
            extrapolated = previous + self.advance
            phases[i] = np.where(np.abs(spectrum) > 1e-6, np.angle(spectrum), extrapolated)
            previous = phases[i]
        return phases

    def _project(self, acc: np.ndarray, norm: np.ndarray, targets: np.ndarray, phases: np.ndarray) -> np.ndarray:
        """One Griffin–Lim pass over the new frames: the spectra of the overlap-add of the target
        magnitudes with these phases (the committed frames held fixed)."""
        w = window()
        signal = acc.copy()
        for i in range(BLOCK_FRAMES):
            signal[HOP * i : HOP * i + N_FFT] += w * np.fft.irfft(targets[i] * np.exp(1j * phases[i]), N_FFT)
        signal /= np.maximum(norm, 1e-3)
        index = HOP * np.arange(BLOCK_FRAMES)[:, None] + np.arange(N_FFT)[None, :]
        return np.fft.rfft(signal[index] * w, axis=1)
