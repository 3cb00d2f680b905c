"""Metric functions with their specs; `evaluate` turns any item into one result row per output."""

from .base import METRICS, Metric, MetricSpec, metric
from .wrapper import MetricResult, choose_rate, evaluate
from . import content, distortion, intelligibility, local_models, nonintrusive, perceptual, pitch, speaker, warp  # noqa: F401  (registration)

__all__ = ["METRICS", "Metric", "MetricSpec", "MetricResult", "metric", "evaluate", "choose_rate"]
