"""The listener's path through a test as a pure state machine, and the trial page's "Next" rule.

consent -> instructions -> level_check -> training (one page per training item) -> trials (one
page per item) -> questionnaire (skipped when there are no questions) -> done. The database layer
(listener.py) stores the state and calls these functions; nothing here touches storage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import EvalkitError
from ..store.models_mushra import PHASES

__all__ = ["State", "FlowError", "PHASES", "PLAN_KEYS", "advance", "require", "Play", "as_play",
           "blockers", "next_allowed", "played_seconds"]

PLAN_KEYS = {"training": "training", "trials": "test"}  # session phase -> its trials in the plan


class FlowError(EvalkitError):
    """A step that does not fit where the listener stands (a stale tab, a double click, a closed test)."""


@dataclass(frozen=True)
class State:
    phase: str = "consent"
    position: int = 0  # index of the trial within its phase


def advance(state: State, plan: Mapping[str, Any], has_questionnaire: bool) -> State:
    """The state after the listener completes the current step."""
    key = PLAN_KEYS.get(state.phase)
    if key is not None and state.position + 1 < len(plan[key]):
        return State(state.phase, state.position + 1)
    index = PHASES.index(state.phase)
    for phase in PHASES[index + 1:]:
        if phase in PLAN_KEYS and not plan[PLAN_KEYS[phase]]:
            continue
        if phase == "questionnaire" and not has_questionnaire:
            continue
        return State(phase, 0)
    raise FlowError("the test is already complete")


def require(state: State, phase: str, position: int | None = None) -> None:
    """Refuse a step submitted for another page than the one the listener stands on."""
    if state.phase != phase or (position is not None and state.position != position):
        where = f"{state.phase}" + (f" {state.position + 1}" if state.phase in PLAN_KEYS else "")
        asked = f"{phase}" + (f" {position + 1}" if position is not None else "")
        raise FlowError(f"this page ({asked}) is out of date: the listener is at {where}; reload the page")


@dataclass(frozen=True)
class Play:
    """One playback as the page reports it: which stimulus, from and to (seconds in the file)."""

    stimulus: str
    start: float | None = None
    end: float | None = None
    at: float | None = None  # client clock, ms since the page loaded


def as_play(value: Play | Mapping[str, Any]) -> Play:
    if isinstance(value, Play):
        return value
    if not isinstance(value, Mapping) or not isinstance(value.get("stimulus"), str):
        raise FlowError(f"a play event is a mapping with a 'stimulus' id, got {value!r}")
    numbers = {key: _number_or_none(value.get(key), key) for key in ("start", "end", "at")}
    return Play(value["stimulus"], **numbers)


def _number_or_none(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FlowError(f"play event: {key} must be a number, got {value!r}")
    return float(value)


def played_seconds(plays: Iterable[Play | Mapping[str, Any]]) -> dict[str, float]:
    """Seconds heard per stimulus; a play with no end yet counts as 0 s but as played."""
    heard: dict[str, float] = {}
    for play in map(as_play, plays):
        span = (play.end - play.start) if play.start is not None and play.end is not None else 0.0
        heard[play.stimulus] = heard.get(play.stimulus, 0.0) + max(span, 0.0)
    return heard


def blockers(stimuli: Sequence[str], plays: Iterable[Play | Mapping[str, Any]], ratings: Mapping[str, Any],
             require_ratings: bool = True, min_seconds: float = 0.0) -> list[tuple[int, str]]:
    """What stands in the way of "Next", as (slider index, reason); empty when it is allowed."""
    heard = played_seconds(plays)
    found = []
    for index, stimulus in enumerate(stimuli):
        if stimulus not in heard or heard[stimulus] < min_seconds:
            found.append((index, "not played"))
        if require_ratings and not _valid_score(ratings.get(stimulus)):
            found.append((index, "not rated"))
    return found


def next_allowed(stimuli: Sequence[str], plays: Iterable[Play | Mapping[str, Any]], ratings: Mapping[str, Any],
                 require_ratings: bool = True, min_seconds: float = 0.0) -> bool:
    """True when every stimulus of the page was played and (unless training) rated 0-100."""
    return not blockers(stimuli, plays, ratings, require_ratings, min_seconds)


def _valid_score(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and 0 <= value <= 100)
