"""A simulated listener for the listening-test tests: through every page of a test by the library's calls."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from evalkit import listening
from evalkit.store.models import utcnow
from evalkit.store.models_mushra import MushraParticipant, MushraSession


def hear_all(engine, token, trial, at, seconds: float):
    """Every stimulus of the page (the labelled reference too) heard for `seconds` of server time; the time after."""
    for stimulus in [s for s in [trial.reference, *trial.stimuli] if s]:
        listening.record_play(engine, token, trial.phase, trial.position, stimulus, 0.0, None, at)
        at += timedelta(seconds=seconds)
    listening.record_play(engine, token, trial.phase, trial.position, None, 0.0, None, at)
    return at


def take_all(engine, name: str, answer, seconds: float = 7.0) -> str:
    """One invited listener through training (ungraded) and every test page; `answer(plan entry, page)` answers
    each test page. Returns the participant."""
    (invite,) = listening.invite(engine, name)
    token = invite.token
    for step in (listening.enter, listening.accept_consent, listening.finish_instructions):
        step(engine, token)
    page = listening.confirm_level(engine, token)
    while page.phase in ("training", "trials"):
        trial = page.trial
        at = hear_all(engine, token, trial, utcnow(), seconds)
        response = {}
        if page.phase == "trials":
            with engine.connect() as connection:
                plan = connection.execute(
                    select(MushraSession.plan).join(MushraParticipant).where(MushraParticipant.code == page.participant)
                ).scalar_one()
            response = answer(plan["test"][trial.position], trial)
        page = listening.submit_trial(engine, token, trial.phase, trial.position, response, now=at)
    assert page.phase == "done" and page.completion_code, page.phase
    return page.participant
