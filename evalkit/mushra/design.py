"""A test's design: the roles its conditions were declared with, and the layout its ratings really have.

`test_setup` reads what was declared (hidden reference, anchors, the name each condition's
objective results carry, the screening rule); `detect_design` looks at the ratings and says
whether every listener rated every cell (complete), listeners rated different subsets of items
with every condition on each (incomplete trials complete, balanced or not), or cells are missing
inside trials. The statistics pick their tests from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, select

from ..errors import ConfigError
from ..listening.spec_parts import LOW_ANCHOR, MID_ANCHOR, REFERENCE
from ..store.models_mushra import MushraCondition, MushraTest
from .screening import DEFAULT_SCREENING, ScreeningConfig

__all__ = ["Design", "detect_design", "TestSetup", "test_setup", "setup_from_frame"]

_KINDS = {REFERENCE: "reference", LOW_ANCHOR: "anchor", MID_ANCHOR: "anchor"}  # evalkit's generated conditions


@dataclass(frozen=True)
class Design:
    """complete | balanced incomplete | incomplete | unbalanced, with the counts that say so."""

    kind: str
    listeners: int
    items: int
    conditions: int
    items_per_listener: tuple[int, int]  # fewest, most
    missing_cells: int  # (listener, item, condition) cells missing inside rated trials

    @property
    def complete(self) -> bool:
        return self.kind == "complete"

    def describe(self) -> str:
        low, high = self.items_per_listener
        rated = f"{low}" if low == high else f"{low}-{high}"
        if self.kind == "complete":
            return (
                f"complete: {self.listeners} listeners × {self.items} items × {self.conditions} conditions, "
                "every cell rated"
            )
        text = (
            f"{self.kind}: {self.listeners} listeners rated {rated} of {self.items} items each, "
            f"{self.conditions} conditions"
        )
        if self.missing_cells:
            return text + f"; {self.missing_cells} condition ratings missing inside rated trials"
        return text + ", every condition on each rated item"


def detect_design(frame: pd.DataFrame) -> Design:
    """The layout of tidy ratings (participant, item, condition, score); repeats count once."""
    cells = frame.drop_duplicates(["participant", "item", "condition"])
    listeners, items = cells["participant"].nunique(), cells["item"].nunique()
    conditions = cells["condition"].nunique()
    trials = cells.groupby(["participant", "item"]).size()
    per_listener = trials.groupby(level=0).size()
    missing = int((conditions - trials).sum())
    span = (int(per_listener.min()), int(per_listener.max())) if len(per_listener) else (0, 0)
    if missing == 0 and len(cells) == listeners * items * conditions:
        kind = "complete"
    elif missing == 0:
        per_item = trials.groupby(level=1).size()
        kind = "balanced incomplete" if per_listener.nunique() == 1 and per_item.nunique() == 1 else "incomplete"
    else:
        kind = "unbalanced"
    return Design(kind, listeners, items, conditions, span, missing)


@dataclass(frozen=True)
class TestSetup:
    """What a test declares: its conditions (key, kind, card, position), origin and screening."""

    __test__ = False  # not a pytest class, despite the name

    name: str
    origin: str
    conditions: pd.DataFrame
    screening: ScreeningConfig
    imported: dict | None = None  # for an imported test: format, files and their sha256, the map used
    test_type: str = "mushra"
    options: dict | None = None  # the type's own definition keys, as stored

    @property
    def reference_and_anchors(self) -> set[str]:
        """The hidden reference and the anchors: test conditions, not systems under test."""
        kinds = self.conditions.set_index("key")["kind"]
        return set(kinds.index[kinds.isin(["reference", "anchor"])])

    def scored_as(self) -> dict[str, str]:
        """Condition key -> the codec name its objective results carry (its card, else its own key)."""
        table = self.conditions
        return {row.key: row.card if isinstance(row.card, str) and row.card else row.key for row in table.itertuples()}

    def order(self) -> list[str]:
        return list(self.conditions.sort_values("position")["key"])


def test_setup(engine: Engine, name: str) -> TestSetup:
    """The declared setup of test `name`; a native test without a stored rule gets the BS.1534-3 defaults."""
    c = MushraCondition
    with engine.connect() as connection:
        test = connection.execute(
            select(MushraTest.id, MushraTest.origin, MushraTest.screening, MushraTest.spec, MushraTest.test_type).where(
                MushraTest.name == name
            )
        ).first()
        if test is None:
            raise ConfigError(f"no listening test named {name!r}")
        rows = connection.execute(select(c.key, c.kind, c.card, c.position).where(c.test_id == test.id)).all()
    conditions = pd.DataFrame([dict(row._mapping) for row in rows], columns=["key", "kind", "card", "position"])
    conditions = conditions.sort_values("position", ignore_index=True)
    screening = ScreeningConfig.from_dict(test.screening) if test.screening else _native_screening(conditions)
    spec = test.spec or {}
    return TestSetup(name, test.origin, conditions, screening, spec.get("import"), test.test_type, spec.get("options"))


test_setup.__test__ = False  # a library function, not a pytest test


def setup_from_frame(name: str, ratings: pd.DataFrame, screening: ScreeningConfig | None = None) -> TestSetup:
    """A setup for ratings that come without a database row (kinds from a `kind` column when present)."""
    kinds = (
        ratings.drop_duplicates("condition").set_index("condition")["kind"]
        if "kind" in ratings
        else pd.Series(dtype=object)
    )
    keys = sorted(ratings["condition"].unique())
    conditions = pd.DataFrame(
        {
            "key": keys,
            "kind": [kinds.get(k, _KINDS.get(k, "codec")) for k in keys],
            "card": None,
            "position": range(len(keys)),
        }
    )
    return TestSetup(name, "evalkit", conditions, screening or _native_screening(conditions))


def _native_screening(conditions: pd.DataFrame) -> ScreeningConfig:
    """evalkit's own tests: the generated hidden reference and anchors, mid anchor anchor-lp70."""
    reference = list(conditions.loc[conditions["kind"] == "reference", "key"])
    anchors = tuple(conditions.loc[conditions["kind"] == "anchor", "key"])
    if not reference and not anchors:
        return DEFAULT_SCREENING
    mid = MID_ANCHOR if MID_ANCHOR in anchors else (anchors[-1] if anchors else None)
    rule = "bs1534-3" if mid else "reference"
    return ScreeningConfig(rule, reference[0] if reference else DEFAULT_SCREENING.reference, anchors, mid)
