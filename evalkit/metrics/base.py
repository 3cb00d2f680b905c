"""Metric specs, the metric registry and the `@metric` decorator."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from ..registry import Registry

__all__ = ["MetricSpec", "Metric", "METRICS", "metric", "MetricFn", "Value", "Withheld"]


@dataclass(frozen=True)
class Withheld:
    """An output deliberately left unscored for this item (stored as "skipped" with the reason),
    e.g. a hallucination rate where too little of the audio could be judged: never a made-up 0."""

    reason: str


Value = float | dict[str, float | Withheld]
# A metric function takes mono float64 arrays at the chosen rate; ref is None for non-intrusive
# metrics. A spec with uses_text=True also gets the transcript (or None) as a fourth argument.
# (ref, deg, sample_rate) -> Value; a metric whose spec uses the text also takes the transcript
MetricFn = Callable[..., Value]

# What pure numpy/scipy metrics record as their "package".
NUMPY_SCIPY = "numpy+scipy"


@dataclass(frozen=True)
class MetricSpec:
    """Everything the wrapper needs to know about one metric; the rules travel with the metric.

    sample_rates: rates the algorithm accepts (None: any rate). min_duration: seconds.
    package: the PyPI distribution that implements it (None: evalkit's own numpy/scipy code).
    outputs: output names; a single-output metric returns a float, a multi-output one a dict.
    requires: importable modules checked by `Metric.unavailable` without importing them.
    scores_silence: True when a silent degraded signal gets a meaningful (bad) score rather
    than an undefined or flattering one; otherwise silent input fails.
    uses_text: the function takes a fourth argument, the item's transcript (str or None).
    noise_blind: outputs that by design do not respond to additive noise (a hallucination
    count must stay at zero however noisy the audio), exempt from "worse with noise" checks.
    needs_alignment: the metric compares ref and deg time-locked, so it gets them aligned by the
    estimated lag, and a pair whose lag cannot be trusted fails; False for metrics that align on
    their own (WARP-Q's DTW) and those without a reference (DNSMOS), which get the pair as given.
    bandwidth_hz: (low, high) audio bandwidths of content this metric's mode is meant for; the
    harness measures the reference's bandwidth and warns (stored with the run) outside it.
    higher_is_better_outputs: outputs that are better higher although `higher_is_better` is
    False (a judged fraction beside an error rate).
    weights_env: an environment variable naming a local weights file or folder the metric
    needs; the metric is unavailable, saying so, until it points at something that exists.
    """

    name: str
    version: str
    higher_is_better: bool
    needs_reference: bool
    sample_rates: tuple[int, ...] | None
    min_duration: float
    package: str | None
    outputs: tuple[str, ...]
    description: str
    requires: tuple[str, ...] = ()
    install: str = ""
    scores_silence: bool = False
    uses_text: bool = False
    noise_blind: tuple[str, ...] = ()
    needs_alignment: bool = True
    bandwidth_hz: tuple[float, float] | None = None
    higher_is_better_outputs: tuple[str, ...] = ()
    weights_env: str = ""

    def direction(self, output: str) -> bool:
        """Whether larger values of `output` are better."""
        return self.higher_is_better or output in self.higher_is_better_outputs

    @property
    def package_name(self) -> str:
        return self.package or NUMPY_SCIPY

    @property
    def package_version(self) -> str | None:
        """The installed version, read at first use in this process (not at import); None when missing."""
        names = (self.package,) if self.package else ("numpy", "scipy")
        return _installed_version(names)


@dataclass(frozen=True)
class Metric:
    """A registered metric: its spec and the plain function that computes it."""

    spec: MetricSpec
    fn: MetricFn = field(repr=False)

    def unavailable(self) -> str | None:
        """None when the metric can run here, else which module is missing and how to install it."""
        missing = [name for name in self.spec.requires if not _importable(name)]
        if missing:
            hint = f"; install with: {self.spec.install}" if self.spec.install else ""
            return f"{self.spec.name}: not installed: {', '.join(missing)}{hint}"
        return _weights_problem(self.spec)

    def __call__(self, ref: np.ndarray | None, deg: np.ndarray, sample_rate: int, text: str | None = None) -> Value:
        if self.spec.uses_text:
            return self.fn(ref, deg, sample_rate, text)
        return self.fn(ref, deg, sample_rate)


METRICS: Registry[Metric] = Registry(
    "metric",
    "evalkit.metrics",
    has_builtins=True,
    accepts=lambda target: isinstance(target, Metric),
    expected="a Metric(spec, fn) object or a module that registers metrics",
)


def metric(spec: MetricSpec) -> Callable[[MetricFn], MetricFn]:
    """Register `fn` under `spec.name`; the function itself is returned unchanged.

    Plug-ins point their entry point (group "evalkit.metrics") at a `Metric(spec, fn)` object
    instead, because loading the entry point registers it under the entry point's name.
    """

    def decorator(fn: MetricFn) -> MetricFn:
        METRICS.add(spec.name, Metric(spec, fn))
        return fn

    return decorator


def _weights_problem(spec: MetricSpec) -> str | None:
    """Why the spec's local weights cannot be used (unset or missing path), else None."""
    if not spec.weights_env:
        return None
    path = os.environ.get(spec.weights_env, "")
    if not path:
        return f"{spec.name}: no weights: set {spec.weights_env} to the path of the local weights"
    if not os.path.exists(path):
        return f"{spec.name}: {spec.weights_env}={path} does not exist"
    return None


@cache
def _installed_version(names: tuple[str, ...]) -> str | None:
    try:
        return "+".join(version(name) for name in names)
    except PackageNotFoundError:
        return None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package raises instead of returning None
        return False
