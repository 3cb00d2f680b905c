"""Codec cards: YAML files that configure a backend under a user-facing name.

Cards are found on a search path that only ever adds: the built-in codecs/ folder, then the
folders an experiment (or --cards) names, then $EVALKIT_CARDS (an os.pathsep list), then the
folders that installed packages declare in the "evalkit.cards" entry-point group. A name used
twice is an error naming both files; a folder that does not exist is an error.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from .codecs import BACKENDS, Codec
from .config import describe, did_you_mean, read_document
from .errors import ConfigError, EvalkitError, failure_line, first_line
from .registry import group_entries
from .resources import cards_dir

__all__ = [
    "Card",
    "CardFolder",
    "load_card",
    "load_cards",
    "card_folders",
    "cards_dir",
    "find_card",
    "CARDS_GROUP",
    "ITEM_RATE",
]

_KEYS = {
    "name",
    "backend",
    "params",
    "description",
    "weights",
    "sha256",
    "training_data",
    "licence",
    "notes",
    "display_name",
}
CARDS_GROUP = "evalkit.cards"  # entry points naming a package (or folder) of cards
ITEM_RATE = "item"  # `sample_rate: item`: the card runs at each item's own rate
_DEFAULT_ITEM_RATE = 48000  # what such a card is built at when no item is at hand (tables, contract)
# parameters naming files beside the card (the predictive codec's vocoder, LaDiff's rvq model too)
_PATH_PARAMS = ("weights", "checkpoint", "personal", "vocoder", "rvq_weights")


@dataclass(frozen=True)
class CardFolder:
    path: Path
    source: str  # "built-in", "experiment", "--cards", "EVALKIT_CARDS" or "package NAME"


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
    source: str = "built-in"  # which folder of the search path it came from

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

    @property
    def follows_item_rate(self) -> bool:
        return self.params.get("sample_rate") == ITEM_RATE

    def build(self, sample_rate: int | None = None) -> Codec:
        """Instantiate the backend; a card with `sample_rate: item` runs at `sample_rate`."""
        reason = self.unavailable()
        if reason:
            raise ConfigError(f"codec {self.name}: unavailable: {reason}")
        cls = BACKENDS.get(self.backend)
        try:
            return cls(**self._build_params(sample_rate))
        except (TypeError, ValueError, ConfigError) as err:
            where = f" ({self.path})" if self.path else ""
            raise ConfigError(
                f"codec card {self.name}{where}: bad parameters for backend {self.backend}: {first_line(err)}"
            ) from None
        except EvalkitError:
            raise
        except Exception as err:  # noqa: BLE001 - a plug-in's constructor failing is named, not a traceback
            raise ConfigError(
                f"codec card {self.name}: backend {self.backend} failed to start: {failure_line(err)}"
            ) from None

    def _build_params(self, sample_rate: int | None) -> dict:
        params = dict(self.params)
        if self.follows_item_rate:
            params["sample_rate"] = sample_rate or _DEFAULT_ITEM_RATE
        # A relative weights path is relative to the card's own folder, wherever that is on the
        # search path (made absolute: a relative one would be read against the built-in folder, as
        # a card from `--cards mycards` is); the card's hash keeps the path as written.
        for key in _PATH_PARAMS:
            value = params.get(key)
            if isinstance(value, str) and self.path is not None and not Path(value).expanduser().is_absolute():
                params[key] = str(self.path.absolute().parent / value)
        return params


def load_card(path: str | Path, source: str = "built-in") -> Card:
    """Read and check one card file; a mistake is one line naming the file, line and key."""
    path = Path(path)
    document = read_document(path, "codec card")
    check = document.checker()
    data = check.mapping(document.data, "", _KEYS, required=("name", "backend"))
    check.name(data["name"], "name")
    check.text(data["backend"], "backend", required=True)
    for key in _KEYS - {"name", "backend", "params"}:
        if data.get(key) is not None:
            check.text(data[key], key)
    raw = {} if data.get("params") is None else data["params"]
    params = check.mapping(raw, "params", set(map(str, raw)) if isinstance(raw, dict) else set())
    for key in params:
        if not isinstance(key, str):
            check.fail("params", f"parameter names are strings, got {describe(key)}")
    return Card(**{**data, "params": dict(params)}, path=path, source=source)


def card_folders(extra: str | Path | Sequence | None = None, source: str = "--cards") -> list[CardFolder]:
    """The search path: built-in, `extra` (a folder, a list, or an os.pathsep string), $EVALKIT_CARDS,
    then packages' entry points. Missing folders are errors; a folder listed twice counts once."""
    folders = [CardFolder(cards_dir(), "built-in")]
    folders += [CardFolder(Path(p), source) for p in _folder_list(extra)]
    folders += [CardFolder(Path(p), "EVALKIT_CARDS") for p in _folder_list(os.environ.get("EVALKIT_CARDS"))]
    folders += [_entry_point_folder(ep) for ep in group_entries(CARDS_GROUP)]
    unique: dict[Path, CardFolder] = {}
    for folder in folders:
        if not folder.path.is_dir():
            problem = "is a file, not a folder" if folder.path.exists() else "does not exist"
            raise ConfigError(f"card folder {folder.path} (from {folder.source}) {problem}; fix or remove it")
        unique.setdefault(folder.path.resolve(), folder)
    return list(unique.values())


def load_cards(
    extra: str | Path | Sequence | None = None, source: str = "--cards", broken: list[str] | None = None
) -> dict[str, Card]:
    """Every card on the search path (see `card_folders`), by name; a name used twice is an error.

    A card file that cannot be read is an error, or, when a `broken` list is given, its one-line
    error goes there and the other cards are still listed (`evalkit codecs`)."""
    cards: dict[str, Card] = {}
    for folder in card_folders(extra, source):
        for path in sorted(folder.path.glob("*.yaml")):
            try:
                card = load_card(path, folder.source)
            except ConfigError as err:
                if broken is None:
                    raise
                broken.append(str(err))
                continue
            if card.name in cards:
                raise ConfigError(
                    f"{path}: card name {card.name!r} is also used by {cards[card.name].path}; "
                    "cards add to the built-in ones and cannot replace them: rename one"
                )
            cards[card.name] = card
    return cards


def find_card(name: str, extra: str | Path | Sequence | None = None) -> Card:
    cards = load_cards(extra)
    if name not in cards:
        raise ConfigError(f"unknown codec {name!r}{did_you_mean(name, cards)}; run 'evalkit codecs' to list them")
    return cards[name]


def _folder_list(value: str | Path | Sequence | None) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, Path):
        return [value]
    if isinstance(value, str):
        return [part for part in value.split(os.pathsep) if part]
    return list(value)


def _entry_point_folder(ep) -> CardFolder:
    """A package's cards: its entry point names a package (module) whose folder holds the YAML
    files, a folder path, or a function returning one."""
    where = f"entry point {ep.name!r} ({ep.value}) in group {CARDS_GROUP}"
    try:
        target = ep.load()
        if callable(target) and not isinstance(target, ModuleType):
            target = target()
    except Exception as err:  # noqa: BLE001 - a broken plug-in is named, not a traceback
        raise ConfigError(f"{where} cannot be loaded: {type(err).__name__}: {err}") from None
    if isinstance(target, ModuleType):
        from importlib.resources import files

        target = str(files(target))
    if not isinstance(target, (str, Path)):
        raise ConfigError(f"{where} must name a package or folder of cards, not {type(target).__name__}")
    dist = getattr(ep, "dist", None)
    return CardFolder(Path(target), f"package {dist.name}" if dist else where)
