"""A simulated listener for the listening-test tests: through every page of a test by the library's calls."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select

from evalkit import listening
from evalkit.store.models import utcnow
from evalkit.store.models_mushra import MushraParticipant, MushraSession

AUDIO_GRANT = re.compile(r"P-[0-9A-F]{10}\.([\w-]{22})\.\d+\.([\w-]{22})")  # opaque id, MAC
LINK_TOKEN = re.compile(r"[?&](?:t|open)=([\w-]{43})")


def without_server_random(texts: Iterable[str]) -> list[str]:
    """The texts with the random strings the server mints blanked: audio grants' opaque ids and MACs (wherever the
    ids appear, bare or in a grant), and link tokens. Base64 spells a short name now and then (a grant's "." and a
    MAC beginning "wav" once read ".wav"), so a check that no name reaches the listener looks at what is left."""
    texts = list(texts)
    minted = {
        piece
        for text in texts
        for rule in (AUDIO_GRANT, LINK_TOKEN)
        for m in rule.finditer(text)
        for piece in m.groups()
    }
    for random_string in minted:
        texts = [text.replace(random_string, "~") for text in texts]
    return texts


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
