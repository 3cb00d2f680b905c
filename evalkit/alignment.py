"""Aligning decoded audio with its reference: the lag is estimated, checked, applied and reported.

One estimator serves every caller: the codec harness's delay check, the scoring of codec output
and of decoded files made elsewhere, and pre-rendered listening-test stimuli. Waveform coders
are correlated on high-passed waveforms (sample-exact); parametric and generative coders, whose
output keeps the envelope but not the phase, on syllable-rate envelopes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache, partial

import numpy as np

from .audio import Audio, correlation_extremes, correlation_peak, resample, to_mono
from .config import Checker
from .errors import ConfigError

__all__ = ["AlignPolicy", "Alignment", "AlignedPair", "LagEstimate", "align_pair", "estimate_lag", "mode_for", "MODES"]

MODES = ("auto", "waveform", "envelope")
# "auto": a waveform correlation this high settles the lag (waveform coders reach 0.6 to 1.0;
# vocoders and generative codecs, whose phase is their own, stay below about 0.45).
WAVEFORM_TRUST = 0.5
# Below it, the waveform's lag is still taken (it is sample-exact) when the envelopes put the
# lag within this many milliseconds of it (their own precision); otherwise the envelopes' lag.
ENVELOPE_AGREEMENT_MS = 2.5
# A decoded file whose polarity was flipped somewhere in its chain keeps the waveform: its trough
# is sample-exact where a side lobe of the peak (0.57 on real speech) or the envelopes would be
# samples off. Taken in "auto" only when it is this much stronger than the peak, so the side
# lobes of a correctly signed codec's output never win (they stay below its main peak).
INVERTED_MARGIN = 1.5
WAVEFORM_FLOOR = 0.15  # weaker waveform peaks are noise, however close to the envelopes' lag
# Signals quieter than this (RMS, dBFS) carry no lag to measure; the metrics judge silence.
MIN_LEVEL_DBFS = -70.0
HIGHPASS_HZ = 250.0  # waveforms are correlated above this (see _highpass_power)
_MIN_FILTERED = 64  # frames; shorter signals are correlated unfiltered (nothing to gain)


@dataclass(frozen=True)
class AlignPolicy:
    """How far a decoded signal may be from its reference before the pair is refused.

    The defaults are sized for generative codecs, which may shift output by a few hundred
    milliseconds and pad or cut it by a frame or two of a second.
    """

    max_lag_ms: float = 500.0
    max_length_change: float = 0.2  # |decoded - reference| frames as a fraction of the reference's
    min_correlation: float = 0.5  # at the lag; unrelated speech reaches about 0.35 (envelopes)

    KEYS = ("max_lag_ms", "max_length_change", "min_correlation")

    @classmethod
    def from_config(cls, data, check: Checker | str) -> AlignPolicy:
        """The `alignment:` mapping of an experiment; every value checked, unknown keys refused."""
        if data is None:
            return cls()
        check = Checker(check) if isinstance(check, str) else check
        check.mapping(data, "alignment", set(cls.KEYS))
        limits = {"max_lag_ms": (0.0, 10_000.0), "max_length_change": (0.0, 10.0), "min_correlation": (0.0, 1.0)}
        return cls(**{key: check.number(value, f"alignment.{key}", *limits[key]) for key, value in data.items()})

    def to_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.KEYS}


@dataclass(frozen=True)
class LagEstimate:
    lag: int  # samples by which the decoded signal lags the reference (negative: it leads)
    correlation: float  # normalised, at the lag
    method: str  # "waveform" or "envelope"


@dataclass(frozen=True)
class Alignment:
    """What was measured and done to one pair; stored with every result row."""

    lag: int  # samples (at the reference's rate) the decoded signal lags; applied unless `problem`
    length_change: int  # decoded minus reference frames at the reference's rate, before alignment
    correlation: float | None  # None when nothing was measured (a silent signal)
    method: str  # "waveform", "envelope", "declared" (the codec's own delay held) or "none"
    problem: str | None = None  # why the lag cannot be trusted; None when it can
    estimated: int | None = None  # the estimator's lag, whether or not it was applied (None: not measured)

    def describe(self, rate: int) -> str:
        change = f"{self.length_change:+d} samples" if self.length_change else "same length"
        return f"lag {self.lag} samples ({1000 * self.lag / rate:+.1f} ms, {self.method}), {change}"


@dataclass(frozen=True)
class AlignedPair:
    """Reference and decoded audio at the reference's rate and one common length.

    `ref`/`deg` are aligned by the lag; `given` is the same pair unshifted (only trimmed), for
    metrics that align on their own (WARP-Q's DTW) or need no reference (DNSMOS).
    """

    ref: Audio
    deg: Audio
    given: tuple[Audio, Audio]
    alignment: Alignment


def mode_for(waveform_matching: bool | None) -> str:
    """The estimator for a codec that declares whether it keeps the waveform (None: unknown)."""
    return "auto" if waveform_matching is None else "waveform" if waveform_matching else "envelope"


def estimate_lag(ref: Audio, deg: Audio, max_lag: int, mode: str = "auto") -> LagEstimate | None:
    """The decoded signal's lag behind `ref` (same rate); None when either is silent.

    "waveform" correlates high-passed waveforms, "envelope" syllable-rate envelopes, and "auto"
    takes the waveform's lag when it correlates well or the envelopes agree with it, else the
    envelopes' lag. The correlation reported is that of the evidence the lag rests on.
    """
    if mode not in MODES:
        raise ConfigError(f"alignment mode {mode!r} is not one of {', '.join(MODES)}")
    if _silent(ref) or _silent(deg):
        return None
    if ref.frames == deg.frames and np.array_equal(ref.samples, deg.samples):
        return LagEstimate(0, 1.0, "envelope" if mode == "envelope" else "waveform")  # the same samples: no lag
    if mode != "envelope":
        weight = _highpass_power(ref.sample_rate) if min(ref.frames, deg.frames) >= _MIN_FILTERED else None
        peak, trough = correlation_extremes(to_mono(ref), to_mono(deg), max_lag, weight)
        wave = LagEstimate(*peak, "waveform")
        if mode == "auto" and -trough[1] >= max(WAVEFORM_TRUST, INVERTED_MARGIN * wave.correlation):
            return LagEstimate(trough[0], -trough[1], "waveform")  # see INVERTED_MARGIN
        if mode == "waveform" or wave.correlation >= WAVEFORM_TRUST:
            return wave
    env = LagEstimate(*correlation_peak(_envelope(ref), _envelope(deg), max_lag), "envelope")
    if mode == "auto" and _agree(wave, env, max_lag, ref.sample_rate):
        return LagEstimate(wave.lag, max(wave.correlation, env.correlation), "waveform")
    return env


def _agree(wave: LagEstimate, env: LagEstimate, max_lag: int, rate: int) -> bool:
    """Whether a weak waveform peak is confirmed by the envelopes (which must not sit at the
    search limit: then the true lag lies beyond it)."""
    close = abs(wave.lag - env.lag) <= ENVELOPE_AGREEMENT_MS * rate / 1000
    return close and wave.correlation >= WAVEFORM_FLOOR and abs(env.lag) < max_lag


def align_pair(
    ref: Audio,
    deg: Audio,
    policy: AlignPolicy = AlignPolicy(),
    mode: str = "auto",
    expected: int | None = None,
    tolerance: int = 0,
) -> AlignedPair:
    """Estimate the lag of `deg` behind `ref`, shift by it and trim both to their common length.

    `deg` is resampled to the reference's rate first. With `expected` (a codec's declared delay,
    already applied by the harness: usually 0), a measurement within `tolerance` samples, or
    one that cannot be trusted, leaves the declared alignment in place: a codec's claim is
    checked, not replaced by noise. Without it, an untrustworthy lag is a `problem`.
    """
    deg = resample(deg, ref.sample_rate)
    change = deg.frames - ref.frames
    max_lag = max(1, int(round(policy.max_lag_ms * ref.sample_rate / 1000)))
    estimate = estimate_lag(ref, deg, max_lag, mode)
    alignment = _decide(estimate, change, ref, max_lag, policy, expected, tolerance)
    if alignment.problem is None and _overlap(ref, deg, alignment.lag) < 1:
        alignment = _with_problem(alignment, "the aligned signals do not overlap")
    lag = alignment.lag if alignment.problem is None else 0
    return AlignedPair(*_shift_trim(ref, deg, lag), given=_shift_trim(ref, deg, 0), alignment=alignment)


def _decide(
    estimate: LagEstimate | None,
    change: int,
    ref: Audio,
    max_lag: int,
    policy: AlignPolicy,
    expected: int | None,
    tolerance: int,
) -> Alignment:
    if estimate is None:
        return Alignment(expected or 0, change, None, "none")
    measured = Alignment(estimate.lag, change, round(estimate.correlation, 4), estimate.method, None, estimate.lag)
    if expected is not None:
        trusted = estimate.correlation >= policy.min_correlation and abs(estimate.lag) < max_lag
        if not trusted or abs(estimate.lag - expected) <= tolerance:
            return Alignment(expected, change, measured.correlation, "declared", None, estimate.lag)
        return measured
    return _with_problem(measured, _problem(estimate, change, ref, max_lag, policy))


def _problem(estimate: LagEstimate, change: int, ref: Audio, max_lag: int, policy: AlignPolicy) -> str | None:
    if abs(change) > policy.max_length_change * ref.frames:
        return (
            f"decoded audio is {100 * change / ref.frames:+.1f}% the reference's length "
            f"({change:+d} samples), beyond alignment.max_length_change {100 * policy.max_length_change:g}%"
        )
    if estimate.correlation < policy.min_correlation:
        weak = f"alignment unreliable: correlation peak {estimate.correlation:.2f} below alignment.min_correlation {policy.min_correlation:g}"
        if abs(estimate.lag) >= max_lag:  # the best of a search cut short: the true lag may lie beyond it
            return (
                f"{weak}, at the edge of the ±{policy.max_lag_ms:g} ms searched; is the decoded audio later than "
                "that (raise alignment.max_lag_ms) or another item's?"
            )
        return f"{weak}; is this the decoded file of this item?"
    if abs(estimate.lag) >= max_lag:
        return (
            f"alignment unreliable: the lag reaches alignment.max_lag_ms ({policy.max_lag_ms:g} ms); "
            "raise it if the decoded audio really is this late"
        )
    return None


def _with_problem(alignment: Alignment, problem: str | None) -> Alignment:
    return replace(alignment, problem=problem)


def _overlap(ref: Audio, deg: Audio, lag: int) -> int:
    return min(ref.frames - max(0, -lag), deg.frames - max(0, lag))


def _shift_trim(ref: Audio, deg: Audio, lag: int) -> tuple[Audio, Audio]:
    """deg[lag + k] against ref[k]: both cut to the span they share."""
    frames = max(1, _overlap(ref, deg, lag))
    first_ref, first_deg = max(0, -lag), max(0, lag)
    return (
        ref.with_samples(ref.samples[:, first_ref : first_ref + frames]),
        deg.with_samples(deg.samples[:, first_deg : first_deg + frames]),
    )


def _silent(audio: Audio) -> bool:
    """Too quiet to carry a lag; a constant (DC offset) carries none either, however large, and
    neither do channels that cancel in the mix that is correlated (one of them inverted)."""
    power = float(np.var(to_mono(audio).samples, dtype=np.float64))
    return power <= 0 or 10 * math.log10(power) < MIN_LEVEL_DBFS


def _highpass_power(rate: int):
    """The power response of a 4th-order Butterworth high-pass at 250 Hz run forward and backward,
    as a function of the FFT size: the band below it is where narrowband speech coders leave
    large phase errors that would pull the correlation peak several samples late on low voices.
    Applied in the frequency domain: the same zero-phase filter as sosfiltfilt, without its cost."""
    return partial(_butterworth_power, HIGHPASS_HZ / rate, 4)


@lru_cache(maxsize=64)
def _butterworth_power(cutoff: float, order: int, size: int) -> np.ndarray:
    """|H|^2 of a digital Butterworth high-pass (bilinear, prewarped, as scipy's `butter`) at the
    bins of a real FFT of `size` points; `cutoff` is in cycles per sample."""
    omega = 2 * np.pi * np.arange(size // 2 + 1) / size
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.tan(np.pi * cutoff) / np.tan(omega / 2)
        power = 1.0 / (1.0 + ratio ** (2 * order))
    power[0] = 0.0
    return power


def _envelope(audio: Audio) -> Audio:
    """A syllable-rate magnitude envelope: smooth enough to ignore pitch pulses, which a
    vocoder re-synthesises at its own phase."""
    from scipy.signal import sosfiltfilt  # lazy: slow to import, and reading an experiment needs none of it

    mono = to_mono(audio).samples[0]
    env = sosfiltfilt(_design(2, 40.0, "lowpass", audio.sample_rate), np.abs(mono), padlen=min(9, len(mono) - 1))
    return audio.with_samples(env - env.mean())


@lru_cache(maxsize=32)
def _design(order: int, cutoff: float, kind: str, rate: int) -> np.ndarray:
    from scipy.signal import butter

    return butter(order, cutoff, btype=kind, fs=rate, output="sos")
