"""evalkit: listening tests and objective evaluation for speech and audio codecs."""

from importlib import import_module

from .errors import AudioError, CodecError, ConfigError, EvalkitError, MetricError

__version__ = "0.1.0"

# Imported on first use, so `import evalkit` (and the command line's start) stays light.
_LAZY = {
    "Audio": "audio",
    "load": "audio",
    "save": "audio",
    "Card": "cards",
    "load_cards": "cards",
    "RoundTrip": "harness",
    "roundtrip": "harness",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def run(
    experiment,
    scheduler: str | None = None,
    workers: int | None = None,
    retry_failed: bool = False,
    progress: bool = False,
):
    """Score an experiment (a YAML path, a dict like the YAML, or an Experiment); returns a DataFrame
    with every result row of the run, exactly what `evalkit run` stores."""
    from pathlib import Path

    from .experiment import Experiment, experiment_from_dict, load_experiment
    from .runner import run_experiment

    if isinstance(experiment, (str, Path)):
        experiment = load_experiment(experiment)
    elif isinstance(experiment, dict):
        experiment = experiment_from_dict(experiment)
    if not isinstance(experiment, Experiment):
        raise ConfigError("evalkit.run takes a YAML path, a dict or an Experiment")
    return run_experiment(
        experiment, scheduler=scheduler, workers=workers, retry_failed=retry_failed, progress=progress
    )


__all__ = [
    "run",
    "Audio",
    "load",
    "save",
    "Card",
    "load_cards",
    "RoundTrip",
    "roundtrip",
    "EvalkitError",
    "AudioError",
    "CodecError",
    "ConfigError",
    "MetricError",
    "__version__",
]
