"""Rate awareness: the content's measured bandwidth, and warnings when a codec or a metric mode does not fit it."""

from __future__ import annotations

import numpy as np

from .audio import Audio, to_mono

__all__ = ["audio_bandwidth", "rate_warnings", "BANDWIDTH_FLOOR_DB"]

# The bandwidth ends where the smoothed long-term spectrum falls this far below its peak: deep
# enough for a fullband recording's quiet top octave, shallow enough that the stop band of a
# resampler (100 dB and more) or 16-bit dither (about 90 dB under speech) never counts.
BANDWIDTH_FLOOR_DB = 60.0
_SMOOTH_HZ = 250.0  # spectral smoothing: one bin above the floor does not make a band


def audio_bandwidth(audio: Audio) -> float:
    """Highest frequency (Hz) carrying content, measured from the long-term spectrum, not the rate."""
    from scipy.signal import welch  # lazy: workers import this module, and most runs never measure a band

    x = to_mono(audio).samples[0].astype(np.float64)
    rate = audio.sample_rate
    segment = min(len(x), 1 << int(np.ceil(np.log2(rate / 25))))  # about 40 ms, a power of two
    freqs, power = welch(x, rate, nperseg=max(segment, 8))
    width = max(1, int(round(_SMOOTH_HZ / (freqs[1] - freqs[0])))) if len(freqs) > 1 else 1
    smooth = np.convolve(power, np.ones(width) / width, mode="same")
    if not np.any(smooth > 0):
        return 0.0
    level = 10 * np.log10(np.maximum(smooth, 1e-300))
    above = np.nonzero(level >= level.max() - BANDWIDTH_FLOOR_DB)[0]
    return float(freqs[above[-1]])


def rate_warnings(
    item_id: str, ref: Audio, codec_rate: int | None, codec: str, metric_bandwidths: dict[str, tuple[float, float]]
) -> list[dict]:
    """Warnings for one item: a codec working below the item's rate, metric modes that do not fit
    the item's measured bandwidth. Each is {key, text, item} (the driver groups them by key)."""
    found = []
    if codec_rate is not None and codec_rate < ref.sample_rate:
        found.append(
            {
                "key": f"rate:{codec}:{codec_rate}:{ref.sample_rate}",
                "item": item_id,
                "text": f"{codec} works at {codec_rate} Hz, below the items' {ref.sample_rate} Hz: its "
                f"output cannot carry their band above {codec_rate / 2000:g} kHz",
            }
        )
    if not metric_bandwidths:
        return found
    bandwidth = audio_bandwidth(ref)
    for metric, (low, high) in sorted(metric_bandwidths.items()):
        if not low <= bandwidth <= high:
            side = "narrower" if bandwidth < low else "wider"
            found.append(
                {
                    "key": f"bandwidth:{metric}:{side}",
                    "item": item_id,
                    "text": f"{metric} is meant for content of {low / 1000:g} to {high / 1000:g} kHz "
                    f"bandwidth; the reference measures {side} (e.g. {bandwidth / 1000:.1f} kHz)",
                }
            )
    return found
