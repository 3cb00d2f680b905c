"""evalkit: listening tests and objective evaluation for speech and audio codecs."""

from importlib import import_module

from .errors import AudioError, CodecError, ConfigError, EvalkitError, MetricError

__version__ = "0.1.0"

# Imported on first use, so `import evalkit` (and the command line's start) stays light.
_LAZY = {
    "run": "runner",
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
