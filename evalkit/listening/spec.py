"""MUSHRA test definitions (tests_mushra/*.yaml): load, validate, and describe as plain data.

Every error is a ConfigError that names the file and the key (``demo.yaml: conditions[2]: ...``);
advice that does not stop a test (too few items, long excerpts) comes back as `warnings`.
docs/mushra.md documents every key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cards import load_cards
from ..config import read_yaml
from ._check import Checker
from .spec_parts import (
    AUTOMATIC, LOW_ANCHOR, MAX_SIGNALS, MID_ANCHOR, QUESTION_TYPES, REFERENCE, ConditionSpec, ItemSpec, Question,
    read_conditions, read_items, read_questions,
)

__all__ = [
    "TestSpec", "ItemSpec", "ConditionSpec", "Question", "load_spec", "spec_from_dict",
    "REFERENCE", "LOW_ANCHOR", "MID_ANCHOR", "AUTOMATIC", "MAX_SIGNALS", "QUESTION_TYPES",
]

_KEYS = {
    "name", "title", "description", "manifest", "items", "conditions", "sample_rate", "format", "downmix",
    "loudness", "excerpt", "randomization", "training", "looping", "questionnaire", "consent",
    "instructions", "open_link", "min_play_seconds",
}
DEFAULT_CONSENT = ("Your ratings and answers are stored under a random participant id, without your name, "
                   "and used only to evaluate audio quality. You may stop at any time.")
DEFAULT_INSTRUCTIONS = (
    "Use headphones in a quiet room. In each trial, listen to the reference and to every signal, then rate "
    "each signal's quality compared with the reference on the 0-100 scale. One of the signals is the reference "
    "itself: rate it 100. You may replay and switch between signals as often as you like.")


@dataclass(frozen=True)
class TestSpec:
    """A validated test definition; `conditions` lists the hidden reference and both anchors first."""

    __test__ = False  # not a pytest class, despite the name

    name: str
    title: str
    description: str
    source: str
    items: tuple[ItemSpec, ...]
    conditions: tuple[ConditionSpec, ...]
    training: tuple[str, ...]
    sample_rate: int = 48000
    format: str = "wav"  # how prepared stimuli are stored; the browser always gets dithered 24-bit WAV
    downmix: bool = False
    target_lufs: float = -26.0
    anchor_levelling: str = "reference"
    codec_levelling: str = "normalize"
    fade_ms: float = 10.0
    seed: int | None = None  # None: drawn when the test is created, then stored
    trial_order: str = "balanced"
    looping: bool = True
    min_play_seconds: float = 1.0  # a stimulus counts as played after this long (or its loop region)
    questionnaire: tuple[Question, ...] = ()
    consent: str = DEFAULT_CONSENT
    instructions: str = DEFAULT_INSTRUCTIONS
    open_link: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def item(self, item_id: str) -> ItemSpec:
        return next(item for item in self.items if item.id == item_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (paths resolved), stored with the test in the database."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "warnings"}
        data["items"] = [item.to_dict() for item in self.items]
        data["conditions"] = [condition.to_dict() for condition in self.conditions]
        data["questionnaire"] = [question.to_dict() for question in self.questionnaire]
        data["training"] = list(self.training)
        return data

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def load_spec(path: str | Path, cards_dir: str | Path | None = None) -> TestSpec:
    """Read and validate a test definition; relative paths are relative to the file."""
    path = Path(path)
    data = read_yaml(path, "test definition")
    return spec_from_dict(data, base=path.resolve().parent, source=str(path), cards_dir=cards_dir)


def spec_from_dict(data: Any, base: str | Path = ".", source: str = "test", cards_dir: str | Path | None = None) -> TestSpec:
    """Validate a definition given as a mapping (the parsed YAML)."""
    check = Checker(source)
    check.mapping(data, "", _KEYS, required=("name", "items", "conditions"))
    base = Path(base)
    name = check.name(data["name"], "name")
    items = read_items(check, data, base)
    conditions = read_conditions(check, data, base, items, load_cards(cards_dir))
    options = _options(check, data)
    training = _training(check, data.get("training"), items)
    _advise(check, items, options["sample_rate"])
    return TestSpec(
        name=name, title=check.text(data.get("title", name), "title"),
        description=check.text(data.get("description", ""), "description"), source=source,
        items=items, conditions=conditions, training=training,
        questionnaire=read_questions(check, data.get("questionnaire", [])), warnings=tuple(check.warnings),
        **options,
    )


def _options(check: Checker, data: dict) -> dict[str, Any]:
    loudness = check.mapping(data.get("loudness", {}), "loudness", {"target_lufs", "anchors", "codecs"})
    excerpt = check.mapping(data.get("excerpt", {}), "excerpt", {"start", "end", "fade_ms"})
    randomization = check.mapping(data.get("randomization", {}), "randomization", {"seed", "trial_order"})
    seed = randomization.get("seed", "random")
    return {
        "sample_rate": check.integer(data.get("sample_rate", 48000), "sample_rate", 8000, 192000),
        "format": check.choice(data.get("format", "wav"), "format", ("wav", "flac")),
        "downmix": check.boolean(data.get("downmix", False), "downmix"),
        "target_lufs": check.number(loudness.get("target_lufs", -26.0), "loudness.target_lufs", -60.0, -10.0),
        "anchor_levelling": check.choice(loudness.get("anchors", "reference"), "loudness.anchors", ("reference", "normalize")),
        "codec_levelling": check.choice(loudness.get("codecs", "normalize"), "loudness.codecs", ("reference", "normalize")),
        "fade_ms": check.number(excerpt.get("fade_ms", 10.0), "excerpt.fade_ms", 0.0, 500.0),
        "seed": None if seed == "random" else check.integer(seed, "randomization.seed", 0, 2**62),
        "trial_order": check.choice(randomization.get("trial_order", "balanced"), "randomization.trial_order",
                                    ("balanced", "random")),
        "looping": check.boolean(data.get("looping", True), "looping"),
        "min_play_seconds": check.number(data.get("min_play_seconds", 1.0), "min_play_seconds", 0.0, 30.0),
        "consent": check.text(data.get("consent", DEFAULT_CONSENT), "consent", required=True),
        "instructions": check.text(data.get("instructions", DEFAULT_INSTRUCTIONS), "instructions", required=True),
        "open_link": check.boolean(data.get("open_link", False), "open_link"),
    }


def _training(check: Checker, value: Any, items: tuple[ItemSpec, ...]) -> tuple[str, ...]:
    """Training trials show every condition, so any one item covers them all; default: the first."""
    value = check.mapping({} if value is None else value, "training", {"items"})
    ids = value.get("items", [items[0].id])
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        check.fail("training.items", "must be a non-empty list of item ids from 'items'")
    known = {item.id for item in items}
    for index, item_id in enumerate(ids):
        if item_id not in known:
            check.fail(f"training.items[{index}]", f"{item_id!r} is not one of the test's items")
    if len(set(ids)) != len(ids):
        check.fail("training.items", "lists an item twice")
    return tuple(ids)


def _advise(check: Checker, items: tuple[ItemSpec, ...], sample_rate: int) -> None:
    if len(items) < 5:
        check.warn("items", f"{len(items)} items; ITU-R BS.1534-3 recommends at least 5")
    narrow = [item.id for item in items if item.source_rate <= 16000]
    if narrow:
        check.warn("items", f"{len(narrow)} item(s) end at or below 8 kHz ({', '.join(narrow[:3])}"
                   f"{', ...' if len(narrow) > 3 else ''}): the 7 kHz anchor will sound almost like the "
                   "reference, and post-screening will leave such items out of the mid-anchor rule")
    if sample_rate < 16000:
        check.warn("sample_rate", f"{sample_rate} Hz cannot carry the 7 kHz anchor's band")
