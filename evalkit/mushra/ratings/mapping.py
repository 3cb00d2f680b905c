"""The map file of an import (`--map conditions.yaml`): names, roles and objective links of conditions and items.

test: codec-study                 # the evalkit test name (else --test, else the file's own)
title: Codec study, spring        # optional
reference: ref                    # the hidden reference (file name or new name); `none`: there is none
anchors: [lp35, lp70]             # the anchors
mid_anchor: lp70                  # the anchor BS.1534-3's second screening rule looks at
screening: bs1534-3               # bs1534-3 (both rules) | reference (hidden reference only) | none
conditions:                       # rename, link to objective results, or leave out
  C1: opus-12k                    # a codec card (or card@param=value sweep variant): scores join
  C2: {card: opus-16k-wb@bitrate=24000, name: opus-24k}
  C3: {decoded: my-model-v2}      # a condition scored from pre-decoded files under that name
  C4: {name: mine}                # renamed only
  C5: null                        # left out
items:                            # file item -> dataset item id (so objective scores join); null: left out
  trial1: null
  page2: asterisk-allison-en-vm-newuser
beaqlejs: {item: test_id, condition: file}   # or reference / folder
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...config import Checker, read_document
from ..screening import RULES

__all__ = ["ConditionMap", "ImportMap", "load_map", "NONE"]

NONE = "none"  # `reference: none` declares that the test had no hidden reference
_KEYS = {"test", "title", "reference", "anchors", "mid_anchor", "screening", "conditions", "items", "beaqlejs"}


@dataclass(frozen=True)
class ConditionMap:
    name: str  # the condition's name in evalkit
    card: str | None = None  # codec card (or sweep variant) whose objective results it joins
    decoded: str | None = None  # pre-decoded condition name whose objective results it joins

    @property
    def scored_as(self) -> str | None:
        return self.card or self.decoded


@dataclass(frozen=True)
class ImportMap:
    test: str | None = None
    title: str | None = None
    reference: str | None = None
    anchors: tuple[str, ...] | None = None
    mid_anchor: str | None = None
    screening: str | None = None
    conditions: dict[str, ConditionMap | None] = field(default_factory=dict)
    items: dict[str, str | None] = field(default_factory=dict)
    beaqlejs_item: str = "test_id"
    beaqlejs_condition: str = "file"
    source: str | None = None  # the map file's name

    def condition(self, name: str) -> ConditionMap | None:
        """The condition as evalkit stores it; None when the map leaves it out."""
        if name in self.conditions:
            return self.conditions[name]
        return ConditionMap(name)

    def item(self, name: str) -> str | None:
        return self.items[name] if name in self.items else name


def load_map(path: str | Path | None, card_names: set[str] | None = None) -> ImportMap:
    """Read and check a map file; `card_names` (the known codec cards) checks every `card:`."""
    if path is None:
        return ImportMap()
    path = Path(path)
    document = read_document(path, "import map")
    check = Checker(path.name, document.lines)
    data = check.mapping(document.data or {}, "", _KEYS)
    roles = {key: _optional_name(check, data.get(key), key) for key in ("test", "reference", "mid_anchor")}
    if roles["test"] is not None:
        check.name(roles["test"], "test")
    anchors = data.get("anchors")
    if anchors is not None and (not isinstance(anchors, list) or not all(isinstance(a, str) for a in anchors)):
        check.fail("anchors", "must be a list of condition names")
    beaqle = check.mapping(data.get("beaqlejs") or {}, "beaqlejs", {"item", "condition"})
    return ImportMap(
        test=roles["test"],
        title=_optional_name(check, data.get("title"), "title"),
        reference=roles["reference"],
        anchors=tuple(anchors) if anchors is not None else None,
        mid_anchor=roles["mid_anchor"],
        screening=check.choice(data["screening"], "screening", RULES) if "screening" in data else None,
        conditions=_conditions(check, data.get("conditions") or {}, card_names),
        items=_items(check, data.get("items") or {}),
        beaqlejs_item=check.choice(beaqle.get("item", "test_id"), "beaqlejs.item", ("test_id", "reference")),
        beaqlejs_condition=check.choice(beaqle.get("condition", "file"), "beaqlejs.condition", ("file", "folder")),
        source=path.name,
    )


def _conditions(check: Checker, data: Any, card_names: set[str] | None) -> dict[str, ConditionMap | None]:
    check.mapping(data, "conditions", set(map(str, data)) if isinstance(data, dict) else set())
    out: dict[str, ConditionMap | None] = {}
    for raw, value in data.items():
        key, where = str(raw), f"conditions.{raw}"
        if value is None:
            out[key] = None
            continue
        entry = {"card": value} if isinstance(value, str) else check.mapping(value, where, {"card", "decoded", "name"})
        if "card" in entry and "decoded" in entry:
            check.fail(where, "a condition joins either a codec card or a pre-decoded condition, not both")
        card, decoded = (_optional_name(check, entry.get(k), f"{where}.{k}") for k in ("card", "decoded"))
        if card is not None and card_names is not None and card.partition("@")[0] not in card_names:
            check.fail(f"{where}.card", f"unknown codec card {card.partition('@')[0]!r}; run 'evalkit codecs'")
        name = _optional_name(check, entry.get("name"), f"{where}.name") or card or decoded or key
        out[key] = ConditionMap(name, card, decoded)
    return out


def _items(check: Checker, data: Any) -> dict[str, str | None]:
    check.mapping(data, "items", set(map(str, data)) if isinstance(data, dict) else set())
    return {
        str(key): None if value is None else check.text(value, f"items.{key}", required=True)
        for key, value in data.items()
    }


def _optional_name(check: Checker, value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
        check.fail(key, f"must be a name, got {value!r}")
    return str(value).strip()
