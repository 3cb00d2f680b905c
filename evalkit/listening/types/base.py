"""What a listening-test type declares, and the parts most types share.

A type is one object (a TestType subclass instance) registered under its name. It declares:

- its definition keys (`keys`, read by `read_options`) and the conditions every test of the type
  gets (`automatic_conditions`: MUSHRA's hidden reference and anchors, the reference of DCR);
- its trial layout: `design` lists every trial of a test (the item and the conditions on the page,
  in slot order), `arrange` randomises one for a session (which is A, which is X);
- its response model: `scale` (a number on a named scale) or a choice, what the page shows
  (`prompt`), and which typed rows a page's answer becomes (`responses`);
- its completeness rule (`missing`, beside the shared rule that every stimulus is heard);
- its screening, statistics and report section (`screen`, `analyse`, `report_section`).

Stimuli, blinding, tokens, roles, resume, play-log rules, the questionnaire, qualification,
environment checks and crowdsourcing are shared (evalkit.listening) and need nothing from a type.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ..randomize import session_seed, trial_order

__all__ = ["TestType", "Scale", "Condition", "Item", "number", "sample_trials", "score_row", "choice_row"]


@dataclass(frozen=True)
class Scale:
    """A response scale: categories (`points`, each with its words) or a continuous range with labelled bands."""

    name: str
    low: float
    high: float
    points: tuple[tuple[float, str], ...] = ()  # category scales: (value, label), best first
    bands: tuple[tuple[str, float, float], ...] = ()  # continuous scales: (label, low, high)
    step: float = 1.0  # the resolution of a continuous scale on the page

    @property
    def categorical(self) -> bool:
        return bool(self.points)

    def valid(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.points:
            return any(value == point for point, _ in self.points)
        return self.low <= value <= self.high

    def label(self, value: float) -> str:
        return dict(self.points).get(value, f"{value:g}")

    def to_page(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "points": [[v, text] for v, text in self.points],
            "bands": [list(b) for b in self.bands],
        }


@dataclass(frozen=True)
class Item:
    """An item as stored: database id and the definition's item id."""

    id: int
    key: str


@dataclass(frozen=True)
class Condition:
    """A condition as stored: database id, name and kind (reference, anchor, codec, file)."""

    id: int
    key: str
    kind: str


def number(value: Any) -> float | None:
    """A finite number from a page's answer, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def sample_trials(trials: list[dict], test_seed: int, ordinal: int, per_session: int | None) -> list[dict]:
    """The trials of one session: all of them, or `per_session` of them in a rotation over a seeded
    shuffle, so that consecutive sessions together cover every trial about equally often."""
    if not per_session or per_session >= len(trials):
        return list(trials)
    order = list(range(len(trials)))
    random.Random(f"{test_seed}|sample").shuffle(order)
    start = (ordinal * per_session) % len(trials)
    return [trials[order[(start + k) % len(trials)]] for k in range(per_session)]


class TestType:
    """The base of every test type; the defaults suit a type with one response per trial page."""

    __test__ = False  # not a pytest class, despite the name

    name: str = ""
    title: str = ""
    view: str = "pick"  # the player view the page names: pick (one answer), sliders (MUSHRA), triple (BS.1116)
    keys: frozenset[str] = frozenset()  # definition keys of this type, beside the shared ones
    reference: str = "optional"  # the unprocessed reference as a condition: required | optional | none
    labelled_reference: bool = False  # a reference button on every trial page
    scale: Scale | None = None  # None: the response is a choice
    max_conditions: int | None = None  # per test, automatic ones included
    defaults: Mapping[str, Any] = {}  # shared keys' defaults: looping, min_play_seconds, instructions, ...
    question: str = ""  # what the trial page asks
    needs_training: bool = False  # whether `training: {items: []}` is refused

    # -- the definition ------------------------------------------------------------------------

    def automatic_conditions(self, check, data: dict, cards: dict) -> tuple:
        """Conditions every test of this type gets, before the user's (names the user may not use)."""
        from ..spec_parts import REFERENCE, ConditionSpec

        wanted = self.reference == "required" or (
            self.reference == "optional"
            and check.boolean(data.get("reference", self.defaults.get("reference", True)), "reference")
        )
        return (ConditionSpec(REFERENCE, "reference"),) if wanted else ()

    def read_options(self, check, data: dict, items: tuple, conditions: tuple, base: Path) -> dict[str, Any]:
        """This type's own definition keys, checked, as JSON-able data stored with the test."""
        return {}

    def prepare(self, spec, out_dir: Path) -> None:
        """Write the type's own files beside the stimuli when a test is created (e.g. trapping clips)."""

    def advise(self, check, items: tuple, conditions: tuple, shared: dict) -> None:
        """Warnings that do not stop a test (`shared`: the definition's shared options, e.g. sample_rate)."""

    # -- the trial layout ---------------------------------------------------------------------

    def design(self, items: Sequence[Item], conditions: Sequence[Condition], options: dict) -> list[dict]:
        """Every test trial of a test: {"item": id, "conditions": [condition ids, slot order]}, unordered."""
        raise NotImplementedError

    def arrange(self, trial: dict, rng: random.Random) -> dict:
        """One trial as a session sees it (slots shuffled, X drawn); by default as designed."""
        return dict(trial)

    def plan(
        self,
        test_seed: int,
        ordinal: int,
        items: Sequence[Item],
        training: Sequence[Item],
        conditions: Sequence[Condition],
        spec: dict,
    ) -> dict[str, Any]:
        """A session's training and test trials, in presentation order (a pure function of seed and ordinal)."""
        options = spec.get("options") or {}
        seed = session_seed(test_seed, ordinal)
        chosen = sample_trials(
            self.design(items, conditions, options), test_seed, ordinal, options.get("trials_per_session")
        )
        order = trial_order(test_seed, ordinal, len(chosen), spec.get("trial_order", "random"))
        test = [self.arrange(chosen[k], random.Random(f"{seed}|test|{p}")) for p, k in enumerate(order)]
        practice = [
            self.arrange(t, random.Random(f"{seed}|training|{p}"))
            for p, t in enumerate(self.design(training, conditions, options))
        ]
        return {"seed": seed, "training": practice, "test": self.insert_checks(test, items, conditions, options, seed)}

    def insert_checks(
        self, trials: list[dict], items: Sequence[Item], conditions: Sequence[Condition], options: dict, seed: int
    ) -> list[dict]:
        """Gold and trapping trials mixed in (types that have them); by default none."""
        return trials

    # -- the response model --------------------------------------------------------------------

    def prompt(self, trial: dict, ids: Sequence[str], options: dict) -> dict[str, Any]:
        """What the page shows besides the stimuli: labels, the question and the scale or the choices."""
        return {
            "labels": [str(k + 1) for k in range(len(ids))],
            "question": self.question,
            **({"scale": self.scale.to_page()} if self.scale else {}),
        }

    def missing(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[str]:
        """What the answer still lacks (the completeness rule beside "every stimulus heard")."""
        return [] if self.answer(trial, ids, response) is not None else ["choose an answer"]

    def answer(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> Any:
        """The one answer of a page (a number on the scale, or an id or "none"), or None when missing."""
        value = response.get("choice")
        if self.scale is not None:
            return value if self.scale.valid(value) else None
        return value if value in self.choices(trial, ids) else None

    def choices(self, trial: dict, ids: Sequence[str]) -> list[str]:
        return list(ids)

    def responses(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The typed rows of a complete answer: condition_id, other_condition_id, slot, kind, scale, score,
        choice, chosen_condition_id."""
        raise NotImplementedError

    def check_answer(self, trial: dict, ids: Sequence[str], response: Mapping[str, Any]) -> Any:
        """The answer of a gold or trapping trial, as the session's checks keep it."""
        return self.answer(trial, ids, response)

    # -- analysis -----------------------------------------------------------------------------

    def frame(self, responses):
        """The type's tidy analysis frame from `responses_frame` rows (participant, item, condition, score, ...)."""
        return responses

    def screen(self, frame, setup):
        """Who the statistics keep: a Screening (kept, excluded with reasons, describe())."""
        from ..screening import keep_everyone

        return keep_everyone(frame)

    def analyse(self, frame, setup) -> dict[str, Any]:
        """Tables of the type's statistics, keyed by name."""
        return {}

    def agreement_scores(self, frame, setup):
        """(participant, item, condition, score) to correlate with objective metrics, or None when meaningless."""
        return None

    def report_section(self, report):
        """The report's section for a test of this type."""
        from ...report.display import Section

        section = Section("listening", f"Listening test ({self.title})", "")
        section.missing.append(f"the {self.title} type has no report section")
        return section

    def check_options(self, where: str, options: dict) -> None:
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: a {self.name} test's options are a mapping")


def score_row(condition: int, slot: int, scale: Scale, score: float, other: int | None = None) -> dict[str, Any]:
    """A typed response: `score` on `scale` about `condition` (compared with `other`)."""
    return {
        "condition_id": condition,
        "other_condition_id": other,
        "slot": slot,
        "kind": "score",
        "scale": scale.name,
        "score": float(score),
        "choice": None,
        "chosen_condition_id": None,
    }


def choice_row(condition: int, other: int | None, choice: str, chosen: int | None, slot: int = 0) -> dict[str, Any]:
    """A typed response: the label picked (`choice`) and the condition it names (`chosen`; None: no preference)."""
    return {
        "condition_id": condition,
        "other_condition_id": other,
        "slot": slot,
        "kind": "choice",
        "scale": None,
        "score": None,
        "choice": choice,
        "chosen_condition_id": chosen,
    }
