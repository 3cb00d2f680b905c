"""The listener's path through a test as a pure state machine, and the trial page's "Next" rule.

consent -> qualification -> instructions -> level_check -> environment (one page per check) ->
training (one page per training trial) -> trials (one page per test trial) -> questionnaire -> done.
Qualification and questionnaire are skipped unless the test has them, and every phase of pages
unless the session's plan has some; a failed qualification or environment check ends the session
in screened_out instead. The database layer (listener.py) stores the state and calls these
functions; nothing here touches storage.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import EvalkitError

__all__ = [
    "State",
    "FlowError",
    "AccessError",
    "PHASES",
    "PLAN_KEYS",
    "OPTIONAL",
    "ENDS",
    "advance",
    "require",
    "blockers",
    "next_allowed",
]

PHASES = (
    "consent",
    "qualification",
    "instructions",
    "level_check",
    "environment",
    "training",
    "trials",
    "questionnaire",
    "done",
    "screened_out",
)  # in the order a listener meets them; screened_out ends early
PLAN_KEYS = {"environment": "environment", "training": "training", "trials": "test"}  # phase -> its pages in the plan
OPTIONAL = ("qualification", "questionnaire")  # phases a test has only when it asks for them
ENDS = ("done", "screened_out")


class FlowError(EvalkitError):
    """A step that does not fit where the listener stands (a stale tab, a double click, a closed test)."""


class AccessError(FlowError):
    """A link, token or audio grant that opens nothing (wrong, incomplete or expired)."""


@dataclass(frozen=True)
class State:
    phase: str = "consent"
    position: int = 0  # index of the trial within its phase


def advance(state: State, plan: Mapping[str, Any], enabled: Collection[str] = ()) -> State:
    """The state after the listener completes the current step; `enabled` names the optional phases the test has."""
    key = PLAN_KEYS.get(state.phase)
    if key is not None and state.position + 1 < len(plan[key]):
        return State(state.phase, state.position + 1)
    if state.phase in ENDS:
        raise FlowError("the test is already complete")
    for phase in PHASES[PHASES.index(state.phase) + 1 :]:
        if (phase in PLAN_KEYS and not plan.get(PLAN_KEYS[phase])) or (phase in OPTIONAL and phase not in enabled):
            continue
        return State(phase, 0)
    raise FlowError("the test is already complete")


def require(state: State, phase: str, position: int | None = None) -> None:
    """Refuse a step submitted for another page than the one the listener stands on."""
    if state.phase != phase or (position is not None and state.position != position):
        where = f"{state.phase}" + (f" {state.position + 1}" if state.phase in PLAN_KEYS else "")
        asked = f"{phase}" + (f" {position + 1}" if position is not None else "")
        raise FlowError(f"this page ({asked}) is out of date: the listener is at {where}; reload the page")


def blockers(
    stimuli: Sequence[str],
    played: Mapping[str, tuple[float, float]],
    ratings: Mapping[str, Any],
    require_ratings: bool = True,
) -> list[tuple[int, str]]:
    """What stands in the way of "Next", as (slider index, reason); empty when it is allowed.

    `played` maps a stimulus id to (seconds heard, seconds needed), as playlog.heard_and_needed
    computes them from the server's play events.
    """
    found = []
    for index, stimulus in enumerate(stimuli):
        heard, needed = played.get(stimulus, (0.0, 0.0))
        if stimulus not in played or heard < needed:
            found.append((index, "not played" if heard == 0 else f"played {heard:.1f} s of {needed:.1f} s"))
        if require_ratings and not _valid_score(ratings.get(stimulus)):
            found.append((index, "not rated"))
    return found


def next_allowed(
    stimuli: Sequence[str],
    played: Mapping[str, tuple[float, float]],
    ratings: Mapping[str, Any],
    require_ratings: bool = True,
) -> bool:
    """True when every stimulus of the page was heard long enough and (unless training) rated 0-100."""
    return not blockers(stimuli, played, ratings, require_ratings)


def _valid_score(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 100
    )
