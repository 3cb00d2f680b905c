"""What the browser-facing API returns: pages built from opaque ids, texts and counts only.

Nothing in a Page names a condition, a codec, an item or a file; tests/test_mushra_store.py
checks that against every name of a test. Audio grants (signed, expiring URL parts) and the
seconds heard so far ride along but do not take part in comparing pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .flow import PLAN_KEYS, State
from .playlog import DEFAULT_MIN_PLAY_S
from .stimuli import DELIVERY_MIME
from .tokens import audio_grant, level_id, trial_ids

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
    min_play: float = DEFAULT_MIN_PLAY_S  # seconds a stimulus must be heard (or its loop region, if shorter)
    sample_rate: int = 48000  # of every stimulus (the browser plays them at this rate)
    audio: tuple[str, ...] = field(default=(), compare=False)  # grants of reference, *stimuli
    heard: tuple[tuple[str, float, float], ...] = field(default=(), compare=False)  # (id, heard s, needed s)


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
    sample_rate: int | None = None  # of the level-check signal
    level_audio: str | None = field(default=None, compare=False)  # grant of the level-check signal


def build_page(spec: dict[str, Any], session: Any, participant: str, durations: dict[int, float],
               expires: int, heard: dict[str, tuple[float, float]] | None = None) -> Page:
    """The page for a session row (phase, position, plan, secret) of a test with definition `spec`;
    audio grants expire at `expires` (Unix time), `heard` is the page's play record so far."""
    state, plan = State(session.phase, session.position), session.plan
    total = len(plan["test"])
    done = total if state.phase in ("questionnaire", "done") else state.position if state.phase == "trials" else 0
    common = {"phase": state.phase, "participant": participant, "title": spec["title"], "done": done, "total": total}
    if state.phase in ("consent", "instructions"):
        return Page(text=spec[state.phase], **common)
    if state.phase == "level_check":
        stimulus = level_id(session.secret)
        return Page(level_stimulus=stimulus, mime=DELIVERY_MIME, sample_rate=spec["sample_rate"],
                    level_audio=audio_grant(session.secret, participant, stimulus, expires), **common)
    if state.phase in PLAN_KEYS:
        return Page(trial=_trial(spec, session, state, durations, participant, expires, heard or {}), **common)
    if state.phase == "questionnaire":
        return Page(questions=tuple(spec["questionnaire"]), **common)
    return Page(completion_code=session.completion_code, **common)


def _trial(spec: dict[str, Any], session: Any, state: State, durations: dict[int, float], participant: str,
           expires: int, heard: dict[str, tuple[float, float]]) -> TrialPage:
    key = PLAN_KEYS[state.phase]
    trial = session.plan[key][state.position]
    reference, stimuli = trial_ids(session.secret, key, state.position, trial["sliders"])
    grants = tuple(audio_grant(session.secret, participant, s, expires) for s in (reference, *stimuli))
    return TrialPage(key, state.position, len(session.plan[key]), reference, tuple(stimuli),
                     durations[trial["item"]], spec["looping"], key == "test", DELIVERY_MIME,
                     spec.get("min_play_seconds", DEFAULT_MIN_PLAY_S), spec["sample_rate"], grants,
                     tuple((s, *heard[s]) for s in (reference, *stimuli) if s in heard))
