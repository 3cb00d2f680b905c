"""The evaluate wrapper: one result row per metric output, whatever happens to the item."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..alignment import AlignedPair, Alignment, AlignPolicy, align_pair
from ..audio import Audio, resample, to_mono, too_long_to_score
from ..audio import downmix as downmix_audio
from ..errors import AudioError, ConfigError, MetricError
from .base import METRICS, Metric, MetricSpec, Value, Withheld

__all__ = ["MetricResult", "evaluate", "choose_rate", "SILENCE_DBFS", "LENGTH_TOLERANCE", "DEFAULT_ALIGNMENT"]

SILENCE_DBFS = -70.0  # RMS below this counts as silent
LENGTH_TOLERANCE = 0.01  # unaligned (align=None) ref and deg may differ by 1% of the longer
DEFAULT_ALIGNMENT = AlignPolicy()


@dataclass(frozen=True)
class MetricResult:
    """One row: a value when status is "ok", else None and a reason a person can act on."""

    metric: str
    value: float | None
    status: str  # "ok" | "failed" | "skipped"
    reason: str
    metric_version: str
    package: str
    package_version: str | None
    native_rate: int
    metric_rate: int
    seconds: float
    lag: int | None = None  # samples at native_rate deg lags ref (estimated; applied where the metric needs it)
    length_change: int | None = None  # degraded minus reference frames at native_rate, before alignment


def choose_rate(rate: int, accepted: tuple[int, ...] | None) -> int:
    """The input's rate if accepted, else the nearest higher accepted rate, else the highest."""
    if not accepted or rate in accepted:
        return rate
    higher = [r for r in accepted if r > rate]
    return min(higher) if higher else max(accepted)


def evaluate(
    name: str,
    ref: Audio | None,
    deg: Audio,
    text: str | None = None,
    downmix: bool = False,
    align: AlignPolicy | AlignedPair | None = DEFAULT_ALIGNMENT,
) -> list[MetricResult]:
    """Run metric `name` on one item; never raises for a problem with the item itself.

    Multichannel input fails, as on the command line, unless `downmix` (average the channels).
    Metrics with a reference get the pair aligned (lag estimated and applied, both trimmed to
    their common length) under the policy `align`, or as in `align` when the caller aligned it
    already (an AlignedPair of this ref and deg); `align=None` scores the pair as given.
    A pair whose alignment cannot be trusted fails, unless the metric's spec says it needs no
    alignment. Non-intrusive metrics ignore `ref`; metrics whose spec says uses_text get `text`
    (the item's transcript, if known). An unknown metric name is a configuration error and
    does raise (ConfigError).
    """
    for role, audio in (("ref", ref), ("deg", deg)):
        if not isinstance(audio, Audio) and not (role == "ref" and audio is None):  # a caller's mistake, not the item's
            raise AudioError(f"evaluate: {role} is {type(audio).__name__}; pass evalkit.Audio(samples, sample_rate)")
    entry = METRICS.get(name)
    if not isinstance(entry, Metric):
        raise ConfigError(f"metric {name!r} is registered as {type(entry).__name__}, not a Metric")
    spec = entry.spec
    ref = ref if spec.needs_reference else None
    native = (ref or deg).sample_rate
    rate = choose_rate(native, spec.sample_rates)
    start = time.perf_counter()
    status, outcome, alignment = _run(entry, ref, deg, rate, text, downmix, align)
    return _rows(spec, status, outcome, native, rate, time.perf_counter() - start, alignment)


def _run(
    entry: Metric,
    ref: Audio | None,
    deg: Audio,
    rate: int,
    text: str | None,
    downmix: bool,
    align: AlignPolicy | AlignedPair | None,
) -> tuple[str, Value | str, Alignment | None]:
    """("ok", value, alignment) or (status, reason, alignment)."""
    spec = entry.spec
    missing = entry.unavailable()
    if missing:
        return "failed", missing, None
    if spec.needs_reference and ref is None:
        return "skipped", f"{spec.name} needs a reference signal and none was given", None
    if problem := (_mix_problem if downmix else _channel_problem)(ref, deg) or _length_problem(ref, deg):
        return "failed", problem, None
    shortest = min(a.duration for a in (ref, deg) if a is not None)
    if shortest < spec.min_duration:
        return "skipped", f"{shortest:.2f} s is shorter than {spec.name}'s minimum {spec.min_duration:g} s", None
    alignment = None
    try:
        pair = _pair(ref, deg, align)
        alignment = None if pair is None else pair.alignment
        ref, deg = _as_scored(spec, ref, deg, pair)
        ref_x, deg_x = _prepare(spec, ref, deg, rate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # libraries warn chattily; real problems raise
            return "ok", entry(ref_x, deg_x, rate, text), alignment
    except MetricError as err:
        return "failed", str(err), alignment
    # SystemExit too: a library calling sys.exit() fails this metric's rows, not the item or the run
    except (Exception, SystemExit) as err:  # noqa: BLE001 - any library failure is data, not a crash
        return "failed", f"{type(err).__name__}: {err}", alignment


def _channel_problem(ref: Audio | None, deg: Audio) -> str | None:
    for role, audio in (("reference", ref), ("degraded", deg)):
        if audio is not None and audio.channels > 1:
            return (
                f"{role} audio has {audio.channels} channels; metrics take mono: downmix first "
                "(downmix=True, --downmix, or downmix: true in the experiment)"
            )
    return None


def _length_problem(ref: Audio | None, deg: Audio) -> str | None:
    """Refused before any copy is made: a signal too long for alignment and metrics to hold in memory."""
    return (ref is not None and too_long_to_score(ref, "reference audio")) or too_long_to_score(deg, "degraded audio")


def _mix_problem(ref: Audio | None, deg: Audio) -> str | None:
    """Why the channels of either signal cannot be averaged (they cancel), else None."""
    try:
        for audio in (ref, deg):
            if audio is not None:
                downmix_audio(audio)
    except AudioError as err:
        return str(err)
    return None


def _pair(ref: Audio | None, deg: Audio, align: AlignPolicy | AlignedPair | None) -> AlignedPair | None:
    if ref is None or align is None:
        return None
    return align if isinstance(align, AlignedPair) else align_pair(to_mono(ref), to_mono(deg), align)


def _as_scored(spec: MetricSpec, ref: Audio | None, deg: Audio, pair: AlignedPair | None) -> tuple[Audio | None, Audio]:
    """The pair as the metric gets it: aligned, or as given (trimmed) when it aligns on its own."""
    if pair is None:
        return ref, deg
    if not spec.needs_alignment:
        return pair.given
    if pair.alignment.problem:
        raise MetricError(pair.alignment.problem)
    return pair.ref, pair.deg


def _prepare(spec: MetricSpec, ref: Audio | None, deg: Audio, rate: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Mono, at `rate`, same length, not silent; raises MetricError otherwise."""
    if ref is not None:
        _check_lengths(ref, deg)
        ref = resample(to_mono(ref), rate)
    deg = resample(to_mono(deg), rate)
    for role, audio in (("reference", ref), ("degraded", None if spec.scores_silence else deg)):
        if audio is not None and (problem := _no_signal(audio, role)):
            raise MetricError(problem)
    deg_x = deg.samples[0].astype(np.float64)
    if ref is None:
        return None, deg_x
    frames = min(ref.frames, deg.frames)
    return ref.samples[0, :frames].astype(np.float64), deg_x[:frames]


def _check_lengths(ref: Audio, deg: Audio) -> None:
    longer = max(ref.duration, deg.duration)
    gap = abs(ref.duration - deg.duration) / longer
    if gap > LENGTH_TOLERANCE:
        raise MetricError(
            f"reference ({ref.duration:.3f} s) and degraded ({deg.duration:.3f} s) lengths differ by "
            f"{100 * gap:.1f}%; align them first (evaluate's align, or evalkit.alignment.align_pair)"
        )


def _no_signal(audio: Audio, role: str) -> str | None:
    """Why `audio` holds nothing a metric can judge: silence, or a constant (a DC offset alone, which
    no metric means to score and which would otherwise pass as loud)."""
    x = audio.samples.astype(np.float64)
    if _dbfs(float(np.mean(np.square(x)))) < SILENCE_DBFS:
        return f"{role} audio is silent"
    if _dbfs(float(np.var(x))) < SILENCE_DBFS:
        return f"{role} audio is constant (DC offset {float(np.mean(x)):.3g}, nothing varies)"
    return None


def _dbfs(power: float) -> float:
    return 10 * math.log10(power) if power > 0 else -math.inf


def _rows(
    spec: MetricSpec,
    status: str,
    outcome: Value | str,
    native: int,
    rate: int,
    seconds: float,
    alignment: Alignment | None = None,
) -> list[MetricResult]:
    common = dict(
        metric_version=spec.version,
        package=spec.package_name,
        package_version=spec.package_version,
        native_rate=native,
        metric_rate=rate,
        seconds=seconds,
        lag=None if alignment is None else alignment.lag,
        length_change=None if alignment is None else alignment.length_change,
    )
    if status != "ok":
        return [MetricResult(out, None, status, str(outcome), **common) for out in spec.outputs]
    values = _by_output(spec, outcome)
    return [MetricResult(out, *_checked(values.get(out)), **common) for out in spec.outputs]


def _by_output(spec: MetricSpec, value: Value) -> dict:
    if isinstance(value, dict):
        unknown = sorted(set(map(str, value)) - set(spec.outputs))
        if unknown:  # a misspelt key must not read as "no value" without saying which keys came back
            hint = f"the metric returned unknown outputs {unknown}, not {list(spec.outputs)}"
            return {out: _Missing(hint) for out in spec.outputs if out not in value} | value
        return value
    return {spec.outputs[0]: value} if len(spec.outputs) == 1 else {}


@dataclass(frozen=True)
class _Missing:
    """An output a dict-returning metric left out, with what it returned instead."""

    reason: str


def _checked(value) -> tuple[float | None, str, str]:
    """(value, status, reason) for one output: a score is a finite real number, or a failure."""
    if isinstance(value, Withheld):
        return None, "skipped", value.reason
    if value is None:
        return None, "failed", "the metric returned no value for this output"
    if isinstance(value, _Missing):
        return None, "failed", value.reason
    if isinstance(value, (str, bytes, bool, np.bool_)):  # "4.5" or True is a bug in the metric, not a score
        return None, "failed", f"the metric returned {type(value).__name__} {value!r}, not a number"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, "failed", f"the metric returned {type(value).__name__}, not a number"
    if not math.isfinite(number):
        return None, "failed", f"the metric returned a non-finite value ({number})"
    return number, "ok", ""
