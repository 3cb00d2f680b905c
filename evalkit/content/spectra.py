"""Spectral envelopes for the content checks: what a phone sounds like, with what a codec does taken out.

Log-mel spectra of ref and deg (magnitudes only, so a generative decoder with its own phase is
not punished) on the recognizer's 10 ms frame grid, reduced to what carries phone identity:
energy under either signal's noise floor, bands far below a frame's loudest, bands the codec
does not transmit and each band's fixed colouring are taken out (`envelopes`); the frame's
level and the fine structure across bands (harmonics, spectral holes) are dropped
(`level_free_cepstra`); and energy the other signal has within 20 ms in the same band is
forgiven (`envelope_change`), because a codec that smears a transient by one frame (MP3's
36 ms granules) has not changed a phone.
"""

from __future__ import annotations

import numpy as np

from ..melbank import mel_filterbank

__all__ = [
    "RATE",
    "HOP_SECONDS",
    "log_mel",
    "frame_power",
    "mel_db",
    "envelopes",
    "level_free_cepstra",
    "envelope_change",
    "active_frames",
    "frames_between",
]

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
CEPSTRA = 20  # cepstral coefficients kept: the envelope across bands, not harmonics or holes
SMEAR_FRAMES = 2  # energy the other signal has this many frames away is not a change
SMEAR_BANDS = 1  # nor energy it has this many bands away


def log_mel(x: np.ndarray) -> np.ndarray:
    """(frames, BANDS) log-mel power in dB of a 16 kHz signal; frame i is centred on i * HOP."""
    return mel_db(frame_power(x))


def frame_power(x: np.ndarray) -> np.ndarray:
    """(frames, FFT // 2 + 1) power spectra of a 16 kHz signal's Hann-windowed frames, centred on i * HOP."""
    padded = np.pad(np.asarray(x, dtype=np.float64), (FRAME // 2, FRAME // 2))
    if padded.size < FRAME:
        padded = np.pad(padded, (0, FRAME - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::HOP] * np.hanning(FRAME)
    return np.abs(np.fft.rfft(frames, FFT)) ** 2


def mel_db(power: np.ndarray) -> np.ndarray:
    """`log_mel` of the power spectra from `frame_power` (computed once, read by several checks)."""
    return 10 * np.log10(np.maximum(power @ _mel_bank().T, 10 ** (SILENCE_DB / 10)))


def envelopes(ref_db: np.ndarray, deg_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both log-mel spectra floored, deg's fixed colouring removed, on the transmitted bands only.

    Lengths may differ: nothing here pairs frames. A narrowband codec loses every /s/ above
    4 kHz (a bandwidth, not a content, problem), so bands it does not transmit are left out.
    """
    noise = np.maximum(np.percentile(ref_db, NOISE_PERCENTILE, axis=0), np.percentile(deg_db, NOISE_PERCENTILE, axis=0))
    band_floor = np.maximum(ref_db.max() - RANGE_DB, noise + NOISE_MARGIN_DB)
    ref_env, deg_env = _floored(ref_db, band_floor), _floored(deg_db, band_floor)
    ref_on, deg_on = active_frames(ref_db, ref_db), active_frames(deg_db, ref_db)
    if ref_on.any() and deg_on.any():
        deg_env = deg_env + np.median(ref_env[ref_on], axis=0) - np.median(deg_env[deg_on], axis=0)
    bands = _transmitted(ref_db, deg_db)
    return ref_env[:, bands], deg_env[:, bands]


def level_free_cepstra(env: np.ndarray) -> np.ndarray:
    """The envelope's shape across bands: cepstral coefficients 1 to CEPSTRA - 1 (the level, c0,
    dropped; a second take is louder or softer), scaled so distances read as dB RMS over bands."""
    from scipy.fft import dct  # lazy, as below: every worker imports this module through the metrics

    kept = dct(env, norm="ortho", axis=1)[:, 1:CEPSTRA]
    return kept / np.sqrt(max(env.shape[1], 1))


def envelope_change(
    ref_env: np.ndarray, deg_env: np.ndarray, ref_frames: np.ndarray, deg_frames: np.ndarray
) -> np.ndarray:
    """dB RMS over bands of the level-free, smoothed envelope difference at each pair of frames,
    counting only energy the other signal lacks within SMEAR_FRAMES in the same band."""
    from scipy.ndimage import maximum_filter

    size = (2 * SMEAR_FRAMES + 1, 2 * SMEAR_BANDS + 1)
    ref_near, deg_near = maximum_filter(ref_env, size, mode="nearest"), maximum_filter(deg_env, size, mode="nearest")
    ref, deg = ref_env[ref_frames], deg_env[deg_frames]
    delta = np.maximum(0.0, deg - ref_near[ref_frames]) - np.maximum(0.0, ref - deg_near[deg_frames])
    return np.sqrt(np.sum(level_free_cepstra(delta) ** 2, axis=1))


def _floored(x_db: np.ndarray, band_floor: np.ndarray) -> np.ndarray:
    return np.maximum(x_db, np.maximum(band_floor[None, :], x_db.max(axis=1, keepdims=True) - FRAME_RANGE_DB))


def _transmitted(ref_db: np.ndarray, deg_db: np.ndarray) -> np.ndarray:
    """Bands whose loud frames (95th percentile) survive within BAND_LOSS_DB; never none."""
    kept = np.percentile(deg_db, 95, axis=0) >= np.percentile(ref_db, 95, axis=0) - BAND_LOSS_DB
    return kept if kept.any() else np.ones_like(kept)


def active_frames(x_db: np.ndarray, ref_db: np.ndarray) -> np.ndarray:
    """Frames of `x_db` within ACTIVE_DB of the reference's peak: speech."""
    return x_db.max(axis=1) > ref_db.max() - ACTIVE_DB


def frames_between(start: float, end: float, n_frames: int) -> slice:
    """The frames whose centres fall in [start, end] seconds (at least one)."""
    first = min(max(0, int(np.ceil(start / HOP_SECONDS))), n_frames - 1)
    last = min(n_frames, max(first + 1, int(np.floor(end / HOP_SECONDS)) + 1))
    return slice(first, last)


def _mel_bank() -> np.ndarray:
    """Triangular mel filters (HTK mel scale), LOW_HZ to HIGH_HZ, shape (BANDS, FFT // 2 + 1)."""
    return mel_filterbank(RATE, FFT, BANDS, LOW_HZ, HIGH_HZ)
