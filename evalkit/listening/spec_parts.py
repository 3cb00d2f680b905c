"""The parts of a test definition: items (excerpts), conditions, questionnaire and qualification questions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cards import Card
from ..config import Checker
from ..datasets import load_dataset
from ..errors import ConfigError

__all__ = [
    "ItemSpec",
    "ConditionSpec",
    "Question",
    "read_items",
    "read_conditions",
    "read_questions",
    "read_qualification",
    "qualifies",
    "REFERENCE",
    "LOW_ANCHOR",
    "MID_ANCHOR",
    "AUTOMATIC",
    "MAX_SIGNALS",
    "QUESTION_TYPES",
    "MIN_EXCERPT_S",
    "LONG_EXCERPT_S",
]

REFERENCE, LOW_ANCHOR, MID_ANCHOR = "reference", "anchor-lp35", "anchor-lp70"
AUTOMATIC = (REFERENCE, LOW_ANCHOR, MID_ANCHOR)
MAX_SIGNALS = 12  # per trial, hidden reference and both anchors included (BS.1534-3)
MIN_EXCERPT_S = 0.5  # the shortest loop region the trial page allows
LONG_EXCERPT_S = 12.0  # BS.1534-3 asks for about 10 s
QUESTION_TYPES = ("text", "number", "choice")
MAX_TEXT_ANSWER = 5000  # characters kept of a text answer


@dataclass(frozen=True)
class ItemSpec:
    """One excerpt: a reference file cut to [start, end) seconds (end None: to the end)."""

    id: str
    path: Path
    start: float
    end: float | None
    duration: float  # of the excerpt
    source_rate: int
    source_channels: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "source_rate": self.source_rate,
            "source_channels": self.source_channels,
        }


@dataclass(frozen=True)
class ConditionSpec:
    """A rated signal: `kind` reference | anchor | codec (a card) | file (pre-rendered per item)."""

    name: str
    kind: str
    card: str | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "card": self.card,
            "files": {item: str(path) for item, path in self.files.items()},
        }


@dataclass(frozen=True)
class Question:
    """One questionnaire question; `answer` checks and normalises what a listener typed."""

    id: str
    text: str
    type: str = "text"
    choices: tuple[str, ...] = ()
    required: bool = True
    min: float | None = None
    max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "type": self.type,
            "choices": list(self.choices),
            "required": self.required,
            "min": self.min,
            "max": self.max,
        }

    def answer(self, value: Any) -> Any:
        """The stored form of `value`; ValueError with a message for the listener otherwise."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.required:
                raise ValueError(f"please answer: {self.text}")
            return None
        if self.type == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.text}: choose one of {', '.join(self.choices)}")
            return value
        if self.type == "number":
            return self._number(value)
        if not isinstance(value, str):
            raise ValueError(f"{self.text}: enter text")
        return value.strip()[:MAX_TEXT_ANSWER]

    def _number(self, value: Any) -> float:
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.text}: enter a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{self.text}: enter a number")
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise ValueError(f"{self.text}: enter a number {self.bounds()}")
        return number

    def bounds(self) -> str:
        """The allowed range in words: "from 16 to 110", "of at least 0", "of at most 10", or ""."""
        if self.min is not None and self.max is not None:
            return f"from {self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"of at least {self.min:g}"
        return "" if self.max is None else f"of at most {self.max:g}"


# -- items -------------------------------------------------------------------------------


def read_items(check: Checker, data: dict, base: Path) -> tuple[ItemSpec, ...]:
    entries = data["items"]
    if not isinstance(entries, list) or not entries:
        check.fail("items", "must be a non-empty list of item ids or {id, path, start, end} mappings")
    defaults = check.mapping(data.get("excerpt", {}), "excerpt", {"start", "end", "fade_ms"})
    manifest = _manifest(check, data.get("manifest"), base)
    items = [_item(check, entry, f"items[{i}]", base, manifest, defaults) for i, entry in enumerate(entries)]
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.id in seen:
            check.fail(f"items[{index}]", f"item {item.id!r} is listed twice")
        seen.add(item.id)
    return tuple(items)


def _manifest(check: Checker, value: Any, base: Path) -> dict[str, Path] | None:
    if value is None:
        return None
    path = check.confine(base / check.text(value, "manifest", required=True), "manifest")
    try:
        return {item.id: item.path for item in load_dataset(path)}
    except ConfigError as err:
        check.fail("manifest", str(err))


def _item(check: Checker, entry: Any, key: str, base: Path, manifest: dict | None, defaults: dict) -> ItemSpec:
    if isinstance(entry, str):
        entry = {"id": entry}
    entry = check.mapping(entry, key, {"id", "path", "start", "end"}, required=("id",))
    item_id = check.text(entry["id"], f"{key}.id", required=True)
    if "path" in entry:
        path = base / check.text(entry["path"], f"{key}.path", required=True)
    elif manifest is None:
        check.fail(key, f"item {item_id!r} has no 'path' and the definition names no 'manifest'")
    elif item_id not in manifest:
        check.fail(f"{key}.id", f"{item_id!r} is not in the manifest")
    else:
        path = manifest[item_id]
    check.confine(path, f"{key}.path" if "path" in entry else key)
    rate, channels, length = _file_info(check, path, f"{key}.path")
    start = check.number(entry.get("start", defaults.get("start", 0.0)), f"{key}.start", 0.0)
    end = entry.get("end", defaults.get("end"))
    end = None if end is None else check.number(end, f"{key}.end", 0.0)
    return ItemSpec(item_id, path.resolve(), start, end, _excerpt(check, key, start, end, length), rate, channels)


def _file_info(check: Checker, path: Path, key: str) -> tuple[int, int, float]:
    import soundfile as sf

    if not path.is_file():
        check.fail(key, f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        check.fail(key, f"{path}: not readable as audio ({err})")
    return int(info.samplerate), int(info.channels), info.frames / info.samplerate


def _excerpt(check: Checker, key: str, start: float, end: float | None, length: float) -> float:
    stop = length if end is None else end
    if stop > length + 1e-3:
        check.fail(f"{key}.end", f"{stop:g} s is past the end of the file ({length:.3f} s)")
    if stop - start < MIN_EXCERPT_S:
        check.fail(key, f"the excerpt from {start:g} s to {stop:g} s is shorter than {MIN_EXCERPT_S} s")
    if stop - start > LONG_EXCERPT_S:
        check.warn(key, f"the excerpt lasts {stop - start:.1f} s; BS.1534-3 asks for about 10 s (set 'end' to cut it)")
    return round(min(stop, length) - start, 6)


# -- conditions --------------------------------------------------------------------------


def read_conditions(
    check: Checker,
    data: dict,
    base: Path,
    items: tuple[ItemSpec, ...],
    cards: dict[str, Card],
    automatic: tuple[ConditionSpec, ...] = (),
    most: int | None = None,
) -> tuple[ConditionSpec, ...]:
    """The `automatic` conditions of the test type (hidden reference, anchors) and the user's, at most `most`."""
    entries = data["conditions"]
    if not isinstance(entries, list) or not entries:
        check.fail("conditions", "must be a non-empty list of codec card names or {name, card | files} mappings")
    taken = {c.name for c in automatic} | {c.card for c in automatic if c.card}
    user = [_condition(check, entry, f"conditions[{i}]", base, items, cards, taken) for i, entry in enumerate(entries)]
    names = [condition.name for condition in user]
    for index, name in enumerate(names):
        if name in names[:index]:
            check.fail(f"conditions[{index}]", f"condition {name!r} is listed twice")
    if most is not None and len(user) + len(automatic) > most:
        added = f" plus the {len(automatic)} added automatically" if automatic else ""
        check.fail(
            "conditions",
            f"{len(user)} conditions{added} make {len(user) + len(automatic)} signals per "
            f"trial; this test type allows at most {most}",
        )
    if len(user) + len(automatic) < 2:
        check.fail("conditions", "a listening test compares at least two conditions")
    return automatic + tuple(user)


def _condition(
    check: Checker,
    entry: Any,
    key: str,
    base: Path,
    items: tuple[ItemSpec, ...],
    cards: dict[str, Card],
    taken: set[str],
) -> ConditionSpec:
    if isinstance(entry, str):
        entry = {"card": entry}
    entry = check.mapping(entry, key, {"name", "card", "files"})
    if ("card" in entry) == ("files" in entry):
        check.fail(key, "give either 'card' (a codec card name) or 'files' (pre-rendered audio per item)")
    name = check.name(entry.get("name", entry.get("card")), f"{key}.name")
    for value in {name, entry.get("card")} & taken:
        check.fail(key, f"{value!r} is added to every test automatically; remove it from 'conditions'")
    if "card" in entry:
        card = check.text(entry["card"], f"{key}.card", required=True)
        if card not in cards:
            check.fail(f"{key}.card", f"unknown codec card {card!r}; run 'evalkit codecs' to list them")
        return ConditionSpec(name, "codec", card)
    return ConditionSpec(name, "file", files=_files(check, entry["files"], f"{key}.files", base, items))


def _files(check: Checker, value: Any, key: str, base: Path, items: tuple[ItemSpec, ...]) -> dict[str, Path]:
    """Pre-rendered audio: a mapping item id -> path, a pattern with {item} (or {id}) in it, or a
    folder matched by item id exactly as an experiment's decoded condition is (relative path or stem)."""
    ids = [item.id for item in items]
    if isinstance(value, str) and "{item}" not in value and "{id}" not in value:
        value = _folder_files(check, value, key, base, ids)
    elif isinstance(value, str):
        value = {item_id: value.replace("{item}", item_id).replace("{id}", item_id) for item_id in ids}
    value = check.mapping(value, key, set(ids))
    files = {}
    for item_id in ids:
        if item_id not in value:
            check.fail(f"{key}.{item_id}", "missing: every item needs a pre-rendered file")
        path = check.confine(base / check.text(value[item_id], f"{key}.{item_id}", required=True), f"{key}.{item_id}")
        _file_info(check, path, f"{key}.{item_id}")
        files[item_id] = path.resolve()
    return files


def _folder_files(check: Checker, folder: str, key: str, base: Path, ids: list[str]) -> dict[str, str]:
    from ..conditions import match_files, suggested_pattern

    if not check.confine(base / folder, key).is_dir():
        check.fail(
            key, "a folder of pre-rendered files, or a pattern that contains {item}, e.g. renders/mycodec/{item}.wav"
        )
    matching = match_files(folder, base, ids)
    for item_id, found in matching.ambiguous.items():
        check.fail(f"{key}.{item_id}", f"matches several files in {folder}: {', '.join(found)}")
    pattern = suggested_pattern(folder, matching)
    if matching.missing and pattern and Path(pattern).suffix:
        check.fail(
            key,
            f"no file in {folder} for item {matching.missing[0]}; the files there are named like "
            f"{pattern.replace('{id}', '{item}')!r}: give that pattern",
        )
    return {item_id: str(path) for item_id, path in matching.files.items()}


# -- questionnaire -----------------------------------------------------------------------


def read_questions(check: Checker, value: Any) -> tuple[Question, ...]:
    if not isinstance(value, list):
        check.fail("questionnaire", "must be a list of {id, text, type, ...} mappings")
    questions = tuple(_question(check, entry, f"questionnaire[{i}]") for i, entry in enumerate(value))
    ids = [question.id for question in questions]
    for index, question_id in enumerate(ids):
        if question_id in ids[:index]:
            check.fail(f"questionnaire[{index}].id", f"{question_id!r} is used twice")
    return questions


def _question(check: Checker, entry: Any, key: str) -> Question:
    keys = {"id", "text", "type", "choices", "required", "min", "max"}
    entry = check.mapping(entry, key, keys, required=("id", "text"))
    kind = check.choice(entry.get("type", "text"), f"{key}.type", QUESTION_TYPES)
    choices = entry.get("choices", [])
    if kind == "choice" and (
        not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices)
    ):
        check.fail(f"{key}.choices", "a choice question needs a list of at least two strings")
    if kind != "choice" and "choices" in entry:
        check.fail(f"{key}.choices", f"only choice questions have choices (this one is {kind!r})")
    bounds = [None if entry.get(b) is None else check.number(entry[b], f"{key}.{b}") for b in ("min", "max")]
    if kind != "number" and any(b is not None for b in bounds):
        check.fail(key, "only number questions take min and max")
    if None not in bounds and bounds[0] > bounds[1]:
        check.fail(f"{key}.max", f"{bounds[1]:g} is below min ({bounds[0]:g})")
    return Question(
        check.name(entry["id"], f"{key}.id"),
        check.text(entry["text"], f"{key}.text", required=True),
        kind,
        tuple(choices),
        check.boolean(entry.get("required", True), f"{key}.required"),
        *bounds,
    )


# -- qualification -------------------------------------------------------------------------


def read_qualification(check: Checker, value: Any) -> tuple[dict[str, Any], ...]:
    """Questions asked before the test, each with the answers that qualify (`accept`): choices for a
    choice question, [low, high] for a number; a question without `accept` qualifies any answer."""
    if not isinstance(value, list):
        check.fail("qualification", "must be a list of questions, each {id, text, type, ..., accept}")
    found = []
    for index, entry in enumerate(value):
        key = f"qualification[{index}]"
        if not isinstance(entry, dict):
            check.fail(key, "must be a mapping")
        question = read_questions(check, [{k: v for k, v in entry.items() if k != "accept"}])[0]
        found.append({**question.to_dict(), "accept": _accept(check, entry.get("accept"), question, f"{key}.accept")})
    ids = [q["id"] for q in found]
    for index, question_id in enumerate(ids):
        if question_id in ids[:index]:
            check.fail(f"qualification[{index}].id", f"{question_id!r} is used twice")
    return tuple(found)


def _accept(check: Checker, value: Any, question: Question, key: str) -> list | None:
    if value is None:
        return None
    if question.type == "choice":
        if not isinstance(value, list) or not value or any(v not in question.choices for v in value):
            check.fail(key, f"a list of the question's choices ({', '.join(question.choices)})")
        return list(value)
    if question.type == "number":
        if not isinstance(value, list) or len(value) != 2:
            check.fail(key, "[low, high]: the numbers that qualify")
        low, high = (check.number(v, key) for v in value)
        if low > high:
            check.fail(key, f"{low:g} is above {high:g}")
        return [low, high]
    check.fail(key, "only choice and number questions can require an answer")


def qualifies(question: dict[str, Any], answer: Any) -> bool:
    """Whether a stored answer meets the question's `accept` rule."""
    accept = question.get("accept")
    if accept is None:
        return True
    if question["type"] == "choice":
        return answer in accept
    return answer is not None and accept[0] <= answer <= accept[1]
