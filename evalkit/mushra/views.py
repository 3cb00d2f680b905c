"""What the browser-facing API returns: pages built from opaque ids, texts and counts only.

Nothing in a Page names a condition, a codec, an item or a file; tests/test_mushra_listener.py
checks that against every name of the demo test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .flow import PLAN_KEYS, State
from .stimuli import MIME
from .tokens import level_id, trial_ids

__all__ = ["Page", "TrialPage", "SCALE", "build_page"]

# The continuous quality scale of BS.1534-3: five equal intervals, labelled.
SCALE = (("Excellent", 80, 100), ("Good", 60, 80), ("Fair", 40, 60), ("Poor", 20, 40), ("Bad", 0, 20))


@dataclass(frozen=True)
class TrialPage:
    """One trial page: the reference button first, then the sliders left to right."""

    phase: str  # "training" | "test"
    position: int  # 0-based within the phase
    count: int  # trials in the phase
    reference: str  # opaque id of the reference button
    stimuli: tuple[str, ...]  # opaque ids, slider order
    duration: float  # seconds of every stimulus on the page
    loop: bool
    requires_ratings: bool  # False in training: its ratings are discarded
    mime: str


@dataclass(frozen=True)
class Page:
    """Where the listener stands and what to show there."""

    phase: str  # consent | instructions | level_check | training | trials | questionnaire | done
    participant: str  # public participant code
    title: str
    text: str | None = None  # consent or instructions text
    trial: TrialPage | None = None
    level_stimulus: str | None = None  # opaque id of the level-check signal
    mime: str | None = None
    questions: tuple[dict[str, Any], ...] = ()
    completion_code: str | None = None
    done: int = 0  # test trials committed
    total: int = 0  # test trials in all


def build_page(spec: dict[str, Any], session: Any, participant: str, durations: dict[int, float]) -> Page:
    """The page for a session row (phase, position, plan, secret) of a test with definition `spec`."""
    state, plan = State(session.phase, session.position), session.plan
    total = len(plan["test"])
    done = total if state.phase in ("questionnaire", "done") else state.position if state.phase == "trials" else 0
    common = {"phase": state.phase, "participant": participant, "title": spec["title"], "done": done, "total": total}
    mime = MIME[spec["format"]]
    if state.phase in ("consent", "instructions"):
        return Page(text=spec[state.phase], **common)
    if state.phase == "level_check":
        return Page(level_stimulus=level_id(session.secret), mime=mime, **common)
    if state.phase in PLAN_KEYS:
        return Page(trial=_trial(spec, session, state, durations, mime), **common)
    if state.phase == "questionnaire":
        return Page(questions=tuple(spec["questionnaire"]), **common)
    return Page(completion_code=session.completion_code, **common)


def _trial(spec: dict[str, Any], session: Any, state: State, durations: dict[int, float], mime: str) -> TrialPage:
    key = PLAN_KEYS[state.phase]
    trial = session.plan[key][state.position]
    reference, stimuli = trial_ids(session.secret, key, state.position, trial["sliders"])
    return TrialPage(key, state.position, len(session.plan[key]), reference, tuple(stimuli),
                     durations[trial["item"]], spec["looping"], key == "test", mime)
