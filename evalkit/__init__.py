"""evalkit: listening tests and objective evaluation for speech and audio codecs."""

from .audio import Audio, load, save
from .cards import Card, load_cards
from .errors import AudioError, CodecError, ConfigError, EvalkitError, MetricError
from .harness import RoundTrip, roundtrip

__version__ = "0.1.0"


def run(experiment, scheduler: str | None = None, workers: int | None = None, retry_failed: bool = False,
        progress: bool = False):
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
    return run_experiment(experiment, scheduler=scheduler, workers=workers, retry_failed=retry_failed,
                          progress=progress)

__all__ = [
    "run", "Audio", "load", "save", "Card", "load_cards", "RoundTrip", "roundtrip",
    "EvalkitError", "AudioError", "CodecError", "ConfigError", "MetricError", "__version__",
]
