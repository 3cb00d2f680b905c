"""Codec profiles: complexity, speed, memory, latency and packet-loss robustness (`evalkit profile`).

Names load lazily from their submodules, so that the fresh process measuring a codec's memory
imports only what it needs, and torch is imported only to count a neural codec's MACs.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "profiler": ["Profile", "ProfileRun", "profile_card", "profile_speech", "default_cards"],
    "complexity": ["TorchPart", "PartComplexity", "measure_complexity", "count_macs", "parameter_count"],
    "resource_use": ["Cost", "measure_cost", "measure_cost_isolated"],
    "latency": ["Latency", "measure_latency"],
    "loss": [
        "Bernoulli",
        "GilbertElliott",
        "loss_model",
        "drop_packets",
        "burst_lengths",
        "LOSS_RATES",
        "LOSS_MODELS",
        "DEFAULT_BURST",
    ],
    "curves": ["CurvePoint", "loss_curve", "default_metric"],
    "concealment": ["CONCEALMENT", "concealment_of", "repeat_last", "zero_fill"],
    "database": ["write_profile", "profiles_frame", "loss_curves_frame", "read_profile"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
