"""Frame-wise spectral evidence for an event: how much the content changed, how clean the audio is.

Both compare log-mel spectra of ref and deg (magnitudes only, so a generative decoder with its
own phase is not punished) on the recognizer's 10 ms frame grid.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["RATE", "HOP_SECONDS", "log_mel", "content_change", "shifted_change", "spectral_snr", "active_frames",
           "frames_between"]

RATE = 16000
FRAME = 400  # 25 ms
HOP = 160  # 10 ms, the recognizer's frame rate
HOP_SECONDS = HOP / RATE
FFT = 512
BANDS = 40
# Phone identity lives below 6 kHz; above it wideband codecs differ in bandwidth, not content.
LOW_HZ, HIGH_HZ = 60.0, 6000.0
SILENCE_DB = -100.0  # keeps log(0) out of digital silence
RANGE_DB = 80.0  # nothing further below the reference's loudest band counts at all
FRAME_RANGE_DB = 40.0  # within a frame, bands this far below its loudest are valleys, not content
NOISE_PERCENTILE = 10  # per-band noise floor: this percentile of the band over the item
NOISE_MARGIN_DB = 6.0  # energy within this of either noise floor is treated as noise
ACTIVE_DB = 35.0  # frames within this of the item's peak are speech
BAND_LOSS_DB = 15.0  # a band whose loud frames come out this much quieter is not transmitted at all
QUALITY_RANGE_DB = 50.0  # spectral SNR looks at bands within this of the reference peak
QUALITY_CLIP_DB = (-10.0, 40.0)


def log_mel(x: np.ndarray) -> np.ndarray:
    """(frames, BANDS) log-mel power in dB of a 16 kHz signal; frame i is centred on i * HOP."""
    padded = np.pad(np.asarray(x, dtype=np.float64), (FRAME // 2, FRAME // 2))
    if padded.size < FRAME:
        padded = np.pad(padded, (0, FRAME - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::HOP] * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, FFT)) ** 2
    return 10 * np.log10(np.maximum(power @ _mel_bank().T, 10 ** (SILENCE_DB / 10)))


def content_change(ref_db: np.ndarray, deg_db: np.ndarray) -> np.ndarray:
    """Per-frame RMS over bands of the ref/deg difference in dB, counting only what can be content.

    Four things are taken out first, because none of them changes a phone: energy under either
    signal's noise floor (so added noise does not count), bands far below the frame's loudest
    (codec noise in spectral valleys), bands the codec does not transmit (a narrowband codec
    loses every /s/ above 4 kHz: a bandwidth, not a content, problem), and each band's typical
    difference over the speech frames (a codec's fixed colouring).
    """
    return shifted_change(ref_db, deg_db, 0)[0]


def shifted_change(ref_db: np.ndarray, deg_db: np.ndarray, max_shift: int) -> np.ndarray:
    """`content_change` of ref frame t against deg frame t + k for every k in [-max_shift, max_shift]:
    shape (2 * max_shift + 1, frames). A second take or a decoder with its own timing says the
    same phone a little earlier or later; the smallest change over nearby shifts forgives that."""
    n = min(len(ref_db), len(deg_db))
    ref_db, deg_db = ref_db[:n], deg_db[:n]
    noise = np.maximum(np.percentile(ref_db, NOISE_PERCENTILE, axis=0), np.percentile(deg_db, NOISE_PERCENTILE, axis=0))
    band_floor = np.maximum(ref_db.max() - RANGE_DB, noise + NOISE_MARGIN_DB)
    bands = _transmitted(ref_db, deg_db)
    colouring = _colouring(ref_db, deg_db, band_floor)
    out = np.full((2 * max_shift + 1, n), np.inf)
    for row, k in enumerate(range(-max_shift, max_shift + 1)):
        r, d = ref_db[max(0, -k): n - max(0, k)], deg_db[max(0, k): n - max(0, -k)]
        frame_floor = np.maximum(r.max(axis=1), d.max(axis=1)) - FRAME_RANGE_DB
        floor = np.maximum(band_floor[None, :], frame_floor[:, None])
        diff = np.maximum(r, floor) - np.maximum(d, floor) - colouring
        out[row, max(0, -k): n - max(0, k)] = np.sqrt(np.mean(diff[:, bands] ** 2, axis=1))
    return out


def _colouring(ref_db: np.ndarray, deg_db: np.ndarray, band_floor: np.ndarray) -> np.ndarray:
    """Each band's median difference over the speech frames: the codec's fixed colouring."""
    frame_floor = np.maximum(ref_db.max(axis=1), deg_db.max(axis=1)) - FRAME_RANGE_DB
    floor = np.maximum(band_floor[None, :], frame_floor[:, None])
    diff = np.maximum(ref_db, floor) - np.maximum(deg_db, floor)
    active = active_frames(ref_db, deg_db)
    return np.median(diff[active], axis=0) if active.any() else np.zeros(ref_db.shape[1])


def spectral_snr(ref_db: np.ndarray, deg_db: np.ndarray) -> np.ndarray:
    """Per-frame magnitude-spectral SNR in dB: reference energy over the energy of the difference.

    Unlike `content_change` this keeps noise in: it says how clean the decoded audio is.
    """
    floor = ref_db.max() - QUALITY_RANGE_DB
    ref_mag = 10 ** (np.maximum(ref_db, floor) / 20)
    deg_mag = 10 ** (np.maximum(deg_db, floor) / 20)
    signal = np.sum(ref_mag**2, axis=1)
    error = np.maximum(np.sum((ref_mag - deg_mag) ** 2, axis=1), signal * 10 ** (-QUALITY_CLIP_DB[1] / 10))
    return np.clip(10 * np.log10(signal / error), *QUALITY_CLIP_DB)


def _transmitted(ref_db: np.ndarray, deg_db: np.ndarray) -> np.ndarray:
    """Bands whose loud frames (95th percentile) survive within BAND_LOSS_DB; never none."""
    kept = np.percentile(deg_db, 95, axis=0) >= np.percentile(ref_db, 95, axis=0) - BAND_LOSS_DB
    return kept if kept.any() else np.ones_like(kept)


def active_frames(ref_db: np.ndarray, deg_db: np.ndarray) -> np.ndarray:
    """Frames where either signal is within ACTIVE_DB of the reference's peak."""
    return np.maximum(ref_db.max(axis=1), deg_db.max(axis=1)) > ref_db.max() - ACTIVE_DB


def frames_between(start: float, end: float, n_frames: int) -> slice:
    """The frames whose centres fall in [start, end] seconds (at least one)."""
    first = min(max(0, int(np.ceil(start / HOP_SECONDS))), n_frames - 1)
    last = min(n_frames, max(first + 1, int(np.floor(end / HOP_SECONDS)) + 1))
    return slice(first, last)


@lru_cache(maxsize=1)
def _mel_bank() -> np.ndarray:
    """Triangular mel filters (HTK mel scale), LOW_HZ to HIGH_HZ, shape (BANDS, FFT // 2 + 1)."""
    edges = _hz(np.linspace(_mel(LOW_HZ), _mel(HIGH_HZ), BANDS + 2))
    freqs = np.fft.rfftfreq(FFT, 1 / RATE)
    rising = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    falling = (edges[2:, None] - freqs[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    return np.clip(np.minimum(rising, falling), 0.0, None)


def _mel(hz):
    return 2595 * np.log10(1 + np.asarray(hz) / 700)


def _hz(mel):
    return 700 * (10 ** (np.asarray(mel) / 2595) - 1)
