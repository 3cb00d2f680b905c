"""evalkit: listening tests and objective evaluation for speech and audio codecs."""

from .audio import Audio, load, save
from .cards import Card, load_cards
from .errors import AudioError, CodecError, ConfigError, EvalkitError, MetricError
from .harness import RoundTrip, roundtrip

__version__ = "0.1.0"

__all__ = [
    "Audio", "load", "save", "Card", "load_cards", "RoundTrip", "roundtrip",
    "EvalkitError", "AudioError", "CodecError", "ConfigError", "MetricError", "__version__",
]
