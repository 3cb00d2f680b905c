"""Codec cards: YAML files in codecs/ that configure a backend under a user-facing name."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .codecs import BACKENDS, Codec
from .config import check_keys, read_yaml
from .errors import ConfigError

__all__ = ["Card", "load_card", "load_cards", "cards_dir", "find_card"]

_KEYS = {"name", "backend", "params", "description", "weights", "sha256", "training_data", "licence", "notes",
         "display_name"}


def cards_dir() -> Path:
    """The card folder: $EVALKIT_CARDS, else codecs/ beside the evalkit package."""
    env = os.environ.get("EVALKIT_CARDS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "codecs"


@dataclass(frozen=True)
class Card:
    """A named configuration of a codec backend; `name` is what the CLI, DB and app show."""

    name: str
    backend: str
    params: dict = field(default_factory=dict)
    description: str = ""
    weights: str | None = None
    sha256: str | None = None
    training_data: str = ""
    licence: str = ""
    notes: str = ""
    display_name: str = ""  # how reports and plots name it (default: `name`)
    path: Path | None = None

    @property
    def config_hash(self) -> str:
        """Changes exactly when something that changes the bits changes."""
        key = {"backend": self.backend, "params": self.params, "sha256": self.sha256}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def unavailable(self) -> str | None:
        """None when this card can run here, else why not and how to fix it."""
        if self.backend not in BACKENDS:
            return f"unknown backend {self.backend!r}"
        return BACKENDS.get(self.backend).unavailable()

    def build(self) -> Codec:
        """Instantiate the backend with the card's parameters."""
        reason = self.unavailable()
        if reason:
            raise ConfigError(f"codec {self.name}: unavailable: {reason}")
        cls = BACKENDS.get(self.backend)
        try:
            return cls(**self.params)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"codec {self.name}: bad parameters for backend {self.backend}: {err}") from None


def load_card(path: str | Path) -> Card:
    path = Path(path)
    data = read_yaml(path, "codec card")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a codec card is a mapping with at least name and backend")
    check_keys(data, _KEYS, str(path))
    for key in ("name", "backend"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: {key!r} is required and must be a string")
    if not isinstance(data.get("display_name", ""), str):
        raise ConfigError(f"{path}: 'display_name' must be a string")
    if not isinstance(data.get("params", {}), dict):
        raise ConfigError(f"{path}: 'params' must be a mapping")
    return Card(**data, path=path)


def load_cards(directory: str | Path | None = None) -> dict[str, Card]:
    """All cards in a folder, by name; duplicate names are an error."""
    directory = Path(directory) if directory else cards_dir()
    cards: dict[str, Card] = {}
    for path in sorted(directory.glob("*.yaml")):
        card = load_card(path)
        if card.name in cards:
            raise ConfigError(f"{path}: card name {card.name!r} is also used by {cards[card.name].path}")
        cards[card.name] = card
    return cards


def find_card(name: str, directory: str | Path | None = None) -> Card:
    cards = load_cards(directory)
    if name not in cards:
        raise ConfigError(f"unknown codec {name!r}; run 'evalkit codecs' to list them")
    return cards[name]
