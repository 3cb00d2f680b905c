"""Metric functions with their specs; `evaluate` turns any item into one result row per output.

The metric modules register their metrics on import; the registry imports those that pyproject.toml
declares (entry-point group "evalkit.metrics") on first use."""

from .base import METRICS, Metric, MetricSpec, metric
from .wrapper import MetricResult, choose_rate, evaluate

__all__ = ["METRICS", "Metric", "MetricSpec", "MetricResult", "metric", "evaluate", "choose_rate"]
