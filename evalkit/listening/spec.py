"""Listening-test definitions (tests_mushra/*.yaml): load, validate, and describe as plain data.

`type` picks the test type (default mushra); the shared keys (items, conditions, stimulus
preparation, randomisation, texts, questionnaire, qualification, environment check, crowd) are
read here, the type's own keys by the type. Every error is a ConfigError that names the file and
the key (``demo.yaml: conditions[2]: ...``); advice that does not stop a test (too few items, long
excerpts) comes back as `warnings`. docs/listening.md and docs/mushra.md document every key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cards import load_cards
from ..config import Checker, read_document
from ._check import DefinitionChecker
from .spec_parts import (
    AUTOMATIC,
    LOW_ANCHOR,
    MAX_SIGNALS,
    MID_ANCHOR,
    QUESTION_TYPES,
    REFERENCE,
    ConditionSpec,
    ItemSpec,
    Question,
    read_conditions,
    read_items,
    read_qualification,
    read_questions,
)
from .types import get_type, type_names

__all__ = [
    "TestSpec",
    "ItemSpec",
    "ConditionSpec",
    "Question",
    "load_spec",
    "spec_from_dict",
    "min_play_for",
    "REFERENCE",
    "LOW_ANCHOR",
    "MID_ANCHOR",
    "AUTOMATIC",
    "MAX_SIGNALS",
    "QUESTION_TYPES",
    "SHARED_KEYS",
]

SHARED_KEYS = {
    "type",
    "name",
    "title",
    "description",
    "manifest",
    "items",
    "conditions",
    "reference",
    "sample_rate",
    "format",
    "downmix",
    "loudness",
    "excerpt",
    "randomization",
    "training",
    "looping",
    "questionnaire",
    "consent",
    "instructions",
    "open_link",
    "min_play_seconds",
    "qualification",
    "environment",
    "crowd",
}
DEFAULT_CONSENT = (
    "Your ratings and answers are stored under a random participant id, without your name, "
    "and used only to evaluate audio quality. You may stop at any time."
)
ALL = "all"  # min_play_seconds: the whole stimulus must be heard (P.808)
ALL_FRACTION = 0.9  # of a stimulus's duration that "all" needs by the server's clock (network timing varies)


@dataclass(frozen=True)
class TestSpec:
    """A validated test definition; `conditions` lists the type's automatic ones (hidden reference, anchors) first."""

    __test__ = False  # not a pytest class, despite the name

    name: str
    title: str
    description: str
    source: str
    items: tuple[ItemSpec, ...]
    conditions: tuple[ConditionSpec, ...]
    training: tuple[str, ...]
    type: str = "mushra"
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
    min_play_seconds: float | str = 1.0  # seconds a stimulus must be heard (or its loop region), or "all"
    questionnaire: tuple[Question, ...] = ()
    consent: str = DEFAULT_CONSENT
    instructions: str = ""
    open_link: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # the type's own keys, validated
    qualification: tuple[dict[str, Any], ...] = ()  # questions with the answers that qualify
    environment: tuple[dict[str, Any], ...] = ()  # headphone and hearing checks
    crowd: dict[str, Any] = field(default_factory=dict)  # panels, time limit, exclusivity
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
        data["qualification"] = list(self.qualification)
        data["environment"] = list(self.environment)
        return json.loads(json.dumps(data))  # plain lists and dicts, as the database gives them back

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def min_play_for(spec: dict[str, Any], duration: float, default: float = 1.0) -> float:
    """Seconds a stimulus of `duration` must be heard under the stored definition `spec`."""
    value = spec.get("min_play_seconds", default)  # tests made before the option: the default
    return ALL_FRACTION * duration if value == ALL else float(value)


def load_spec(path: str | Path, cards_dir: str | Path | None = None) -> TestSpec:
    """Read and validate a test definition; relative paths are relative to the file."""
    path = Path(path)
    document = read_document(path, "test definition")
    return spec_from_dict(
        document.data, base=path.resolve().parent, source=str(path), cards_dir=cards_dir, lines=document.lines
    )


def spec_from_dict(
    data: Any,
    base: str | Path = ".",
    source: str = "test",
    cards_dir: str | Path | None = None,
    lines: dict[str, int] | None = None,
    roots: tuple[Path, ...] | None = None,
) -> TestSpec:
    """Validate a definition given as a mapping (the parsed YAML; `lines`: where its keys are).

    `roots`: the only folders the audio it names may lie in (an uploaded definition: see
    `upload_roots`); None for a definition the operator keeps on the server's disk, which names
    whatever it likes (the demo's reaches its corpus through ../data)."""
    from .crowd import read_crowd
    from .environment import read_environment

    check = DefinitionChecker(source, lines, roots)
    if not isinstance(data, dict):
        if data is None:  # an empty file (or only comments): say so, not "got NoneType"
            check.fail("", "the file is empty; a test definition is a mapping with name, items and conditions")
        check.fail("", f"must be a mapping, got {type(data).__name__}")
    kind = check.choice(data.get("type", "mushra"), "type", tuple(type_names()))
    test_type = get_type(kind)
    check.mapping(data, "", SHARED_KEYS | set(test_type.keys), required=("name", "items", "conditions"))
    base = Path(base)
    name = check.name(data["name"], "name")
    items = read_items(check, data, base)
    cards = load_cards(cards_dir)
    conditions = read_conditions(
        check, data, base, items, cards, _automatic(check, data, cards, test_type), test_type.max_conditions
    )
    shared = _options(check, data, test_type)
    options = test_type.read_options(check, data, items, conditions, base)
    test_type.advise(check, items, conditions, shared)
    return TestSpec(
        name=name,
        title=check.text(data.get("title", name), "title"),
        description=check.text(data.get("description", ""), "description"),
        source=source,
        items=items,
        conditions=conditions,
        training=_training(check, data.get("training"), items, test_type.needs_training),
        type=kind,
        questionnaire=read_questions(check, data.get("questionnaire", [])),
        options=options,
        qualification=read_qualification(check, data.get("qualification", [])),
        environment=read_environment(check, data.get("environment"), shared["sample_rate"]),
        crowd=read_crowd(check, data.get("crowd")),
        warnings=tuple(check.warnings),
        **shared,
    )


def _automatic(check: Checker, data: dict, cards: dict, test_type) -> tuple[ConditionSpec, ...]:
    if "reference" in data and test_type.reference != "optional":
        always = "always has" if test_type.reference == "required" else "never has"
        check.fail("reference", f"a {test_type.name} test {always} the reference as a condition; remove the key")
    return test_type.automatic_conditions(check, data, cards)


def _options(check: Checker, data: dict, test_type) -> dict[str, Any]:
    defaults = test_type.defaults
    loudness = check.mapping(data.get("loudness", {}), "loudness", {"target_lufs", "anchors", "codecs"})
    excerpt = check.mapping(data.get("excerpt", {}), "excerpt", {"start", "end", "fade_ms"})
    randomization = check.mapping(data.get("randomization", {}), "randomization", {"seed", "trial_order"})
    seed = randomization.get("seed", "random")
    return {
        "sample_rate": check.integer(data.get("sample_rate", 48000), "sample_rate", 8000, 192000),
        "format": check.choice(data.get("format", "wav"), "format", ("wav", "flac")),
        "downmix": check.boolean(data.get("downmix", False), "downmix"),
        "target_lufs": check.number(loudness.get("target_lufs", -26.0), "loudness.target_lufs", -60.0, -10.0),
        "anchor_levelling": check.choice(
            loudness.get("anchors", "reference"), "loudness.anchors", ("reference", "normalize")
        ),
        "codec_levelling": check.choice(
            loudness.get("codecs", "normalize"), "loudness.codecs", ("reference", "normalize")
        ),
        "fade_ms": check.number(excerpt.get("fade_ms", 10.0), "excerpt.fade_ms", 0.0, 500.0),
        "seed": None if seed == "random" else check.integer(seed, "randomization.seed", 0, 2**62),
        "trial_order": check.choice(
            randomization.get("trial_order", defaults.get("trial_order", "balanced")),
            "randomization.trial_order",
            ("balanced", "random"),
        ),
        "looping": check.boolean(data.get("looping", defaults.get("looping", True)), "looping"),
        "min_play_seconds": _min_play(check, data.get("min_play_seconds", defaults.get("min_play_seconds", 1.0))),
        "consent": check.text(data.get("consent", DEFAULT_CONSENT), "consent", required=True),
        "instructions": check.text(
            data.get("instructions", defaults.get("instructions", "")), "instructions", required=True
        ),
        "open_link": check.boolean(data.get("open_link", False), "open_link"),
    }


def _min_play(check: Checker, value: Any) -> float | str:
    if value == ALL:
        return ALL
    return check.number(value, "min_play_seconds", 0.0, 30.0)


def _training(check: Checker, value: Any, items: tuple[ItemSpec, ...], needed: bool) -> tuple[str, ...]:
    """Training pages show the trials of these items (answers discarded); default: the first item; [] for none
    where the type allows it (MUSHRA does not: BS.1534-3 asks for a training phase)."""
    value = check.mapping({} if value is None else value, "training", {"items"})
    ids = value.get("items", [items[0].id])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or (needed and not ids):
        check.fail(
            "training.items",
            "must be a non-empty list of item ids from 'items'"
            if needed
            else "must be a list of item ids from 'items' ([] for no training)",
        )
    known = {item.id for item in items}
    for index, item_id in enumerate(ids):
        if item_id not in known:
            check.fail(f"training.items[{index}]", f"{item_id!r} is not one of the test's items")
    if len(set(ids)) != len(ids):
        check.fail("training.items", "lists an item twice")
    return tuple(ids)
