"""What the browser-facing API returns: pages built from opaque ids, texts and counts only.

Nothing in a Page names a condition, a codec, an item or a file; tests/test_mushra_store.py
checks that against every name of a test. Audio grants (signed, expiring URL parts) and the
seconds heard so far ride along but do not take part in comparing pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import environment
from .flow import PLAN_KEYS, State
from .playlog import DEFAULT_MIN_PLAY_S
from .spec import min_play_for
from .stimuli import DELIVERY_MIME
from .tokens import audio_grant, level_id, trial_ids
from .types import get_type
from .types.mushra import SCALE as MUSHRA_SCALE

__all__ = ["Page", "TrialPage", "SCALE", "build_page", "page_ids"]

SCALE = MUSHRA_SCALE.bands  # BS.1534-3's five labelled intervals: (label, low, high)


@dataclass(frozen=True)
class TrialPage:
    """One page of stimuli: the labelled reference button (if the type has one), then the stimuli in slot order."""

    phase: str  # "environment" | "training" | "test"
    position: int  # 0-based within the phase
    count: int  # pages in the phase
    reference: str | None  # opaque id of the reference button; None: the page has none
    stimuli: tuple[str, ...]  # opaque ids, slot order
    duration: float  # seconds of every stimulus on the page
    loop: bool
    requires_ratings: bool  # False in training: its answers are discarded
    mime: str
    min_play: float = DEFAULT_MIN_PLAY_S  # seconds a stimulus must be heard (or its loop region, if shorter)
    sample_rate: int = 48000  # of every stimulus (the browser plays them at this rate)
    view: str = "sliders"  # the player view that shows the page
    prompt: dict[str, Any] = field(default_factory=dict)  # labels, question, scale or choices
    audio: tuple[str, ...] = field(default=(), compare=False)  # grants of the reference (if any), *stimuli
    heard: tuple[tuple[str, float, float], ...] = field(default=(), compare=False)  # (id, heard s, needed s)


@dataclass(frozen=True)
class Page:
    """Where the listener stands and what to show there."""

    phase: str  # a session phase (flow.PHASES), or "expired" past the session's time limit
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
    redirect: str | None = None  # the way back to the listener's panel, when the test has one


def page_ids(session: Any, key: str, position: int, labelled: bool) -> tuple[dict, str | None, list[str]]:
    """(trial, reference button id or None, slot ids) of a page of the plan."""
    trial = session.plan[key][position]
    reference, ids = trial_ids(session.secret, key, position, trial["conditions"])
    has_reference = labelled and session.plan.get("reference") is not None and not trial.get("file")
    return trial, reference if has_reference else None, ids


def build_page(
    spec: dict[str, Any],
    session: Any,
    participant: str,
    durations: dict[int, float],
    expires: int,
    heard: dict[str, tuple[float, float]] | None = None,
    test_type: str = "mushra",
    finish: tuple[str, str | None] | None = None,
    expired: bool = False,
) -> Page:
    """The page for a session row (phase, position, plan, secret) of a test with definition `spec`;
    audio grants expire at `expires` (Unix time), `heard` is the page's play record so far, `finish`
    the (code, link back) of a finished session's panel."""
    state, plan = State(session.phase, session.position), session.plan
    total = len(plan["test"])
    done = total if state.phase in ("questionnaire", "done") else state.position if state.phase == "trials" else 0
    common = {"participant": participant, "title": spec["title"], "done": done, "total": total}
    if expired:
        return Page(phase="expired", text="The time for this test has run out; thank you for your time.", **common)
    if state.phase in ("consent", "instructions"):
        return Page(phase=state.phase, text=spec[state.phase], **common)
    if state.phase == "level_check":
        stimulus = level_id(session.secret)
        return Page(
            phase=state.phase,
            level_stimulus=stimulus,
            mime=DELIVERY_MIME,
            sample_rate=spec["sample_rate"],
            level_audio=audio_grant(session.secret, participant, stimulus, expires),
            **common,
        )
    if state.phase in PLAN_KEYS:
        trial = _trial(spec, session, state, durations, participant, expires, heard or {}, test_type)
        return Page(phase=state.phase, trial=trial, **common)
    if state.phase in ("qualification", "questionnaire"):
        return Page(phase=state.phase, questions=tuple(spec.get(state.phase) or ()), **common)
    code, link = finish or (session.completion_code, None)
    return Page(phase=state.phase, completion_code=code, redirect=link, **common)


def _trial(
    spec: dict[str, Any],
    session: Any,
    state: State,
    durations: dict[int, float],
    participant: str,
    expires: int,
    heard: dict[str, tuple[float, float]],
    test_type: str,
) -> TrialPage:
    key = PLAN_KEYS[state.phase]
    kind = get_type(test_type)
    trial, reference, stimuli = page_ids(session, key, state.position, kind.labelled_reference)
    duration = trial.get("duration") or durations[trial["item"]]
    shown = ([reference] if reference else []) + list(stimuli)
    grants = tuple(audio_grant(session.secret, participant, s, expires) for s in shown)
    if key == "environment":  # a check page: one stimulus, heard to the end, one answer
        view, prompt, loop, min_play = (
            "pick",
            environment.prompt(trial),
            False,
            min_play_for({"min_play_seconds": "all"}, duration),
        )
    else:
        view, prompt = kind.view, kind.prompt(trial, stimuli, spec.get("options") or {})
        loop, min_play = spec["looping"], min_play_for(spec, duration, DEFAULT_MIN_PLAY_S)
    return TrialPage(
        key,
        state.position,
        len(session.plan[key]),
        reference,
        tuple(stimuli),
        duration,
        loop,
        key != "training",
        DELIVERY_MIME,
        min_play,
        spec["sample_rate"],
        view,
        prompt,
        grants,
        tuple((s, *heard[s]) for s in shown if s in heard),
    )
