"""Secrets a browser sees: access tokens, participant codes, completion codes and opaque stimulus ids.

Stimulus ids are HMAC-SHA256(session secret, "phase|position|condition id") cut to 128 bits:
unguessable, different in every session and on every trial (so a listener cannot follow one
condition across trials by its id), and resolvable on the server without a lookup table,
by recomputing the ids of the session's plan. Audio URLs carry a grant: the id, an expiry and
a MAC under the session secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

__all__ = [
    "new_token",
    "token_hash",
    "new_secret",
    "participant_code",
    "completion_code",
    "stimulus_id",
    "dither_seed",
    "audio_grant",
    "read_grant",
    "grant_valid",
    "trial_ids",
    "level_id",
    "resolve_stimulus",
    "slot_keys",
    "PLAN_PHASES",
]

_OPEN_REFERENCE = "ref"  # the labelled reference button; the hidden reference has its own id


def new_token() -> str:
    """An unguessable URL-safe token (256 bits) for invite and open links."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of an access token: a leaked table does not open sessions."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_hex(32)


def participant_code() -> str:
    """A public participant id, shown in exports and to the admin: P- and 10 hex digits."""
    return f"P-{secrets.token_hex(5).upper()}"


def completion_code() -> str:
    return f"{secrets.token_hex(3).upper()}-{secrets.token_hex(3).upper()}"


def stimulus_id(secret: str, *parts: Any) -> str:
    message = "|".join(map(str, parts)).encode()
    digest = hmac.new(bytes.fromhex(secret), message, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def dither_seed(secret: str, opaque: str) -> bytes:
    """16 bytes that seed the dither of one served stimulus (see stimuli.deliver): fresh per
    session and per id, the same on every fetch of that id."""
    return hmac.new(bytes.fromhex(secret), f"dither|{opaque}".encode(), hashlib.sha256).digest()[:16]


def audio_grant(secret: str, code: str, opaque: str, expires: int) -> str:
    """The last part of a stimulus's audio URL: who (participant code), what (opaque id), until
    when (Unix time) and a MAC under the session secret, so the URL alone opens that one stimulus
    of that one session until it expires, and nothing can be changed in it."""
    mac = hmac.new(bytes.fromhex(secret), f"audio|{code}|{opaque}|{expires}".encode(), hashlib.sha256).digest()[:16]
    return f"{code}.{opaque}.{expires}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def read_grant(grant: str) -> tuple[str, str, int] | None:
    """(participant code, opaque id, expiry) of a grant, unchecked; None when it is malformed."""
    parts = str(grant).split(".")
    # isdigit() alone takes "²", which int() refuses: only ASCII digits are an expiry.
    if len(parts) != 4 or not (parts[2].isascii() and parts[2].isdigit()) or len(grant) > 200:
        return None
    return parts[0], parts[1], int(parts[2])


def grant_valid(secret: str, grant: str, now: float) -> bool:
    """The grant's MAC is the session's and it has not expired."""
    parsed = read_grant(grant)
    return (
        parsed is not None
        and parsed[2] >= now
        and hmac.compare_digest(grant, audio_grant(secret, parsed[0], parsed[1], parsed[2]))
    )


def slot_keys(conditions: list[Any]) -> list[str]:
    """What each slot's id is derived from: its condition, or (a condition shown twice on a page, as X
    of ABX) the condition and the slot, so that every stimulus of a page has an id and a dither of its own."""
    seen: set = set()
    keys = []
    for slot, condition in enumerate(conditions):
        keys.append(f"{condition}" if condition not in seen else f"{condition}.{slot}")
        seen.add(condition)
    return keys


def trial_ids(secret: str, phase: str, position: int, conditions: list[Any]) -> tuple[str, list[str]]:
    """(reference button id, slot ids in page order) of one trial page."""
    return (
        stimulus_id(secret, phase, position, _OPEN_REFERENCE),
        [stimulus_id(secret, phase, position, key) for key in slot_keys(conditions)],
    )


def level_id(secret: str) -> str:
    return stimulus_id(secret, "level")


PLAN_PHASES = ("environment", "training", "test")  # the plan's lists of pages with stimuli


def resolve_stimulus(
    secret: str, plan: Mapping[str, Any], opaque: str, only: tuple[str, int] | None = None
) -> tuple[int | None, Any] | None:
    """What an opaque id stands for: (item id, condition id), or (None, file name) for a clip that is no
    stimulus of the test (a trapping clip, an environment check); None when it is nothing of this
    session. `only` limits it to one page; the reference button exists only where the plan has a reference."""
    if only is None or only[0] == "level":
        if hmac.compare_digest(opaque, level_id(secret)):
            return plan["level_item"], plan.get("level_condition", plan.get("reference"))
    for phase in PLAN_PHASES:
        for position, trial in enumerate(plan.get(phase, [])):
            if only is None or only == (phase, position):
                found = _in_trial(secret, plan, phase, position, trial, opaque)
                if found is not None:
                    return found
    return None


def _in_trial(
    secret: str, plan: Mapping[str, Any], phase: str, position: int, trial: Mapping[str, Any], opaque: str
) -> tuple[int | None, Any] | None:
    reference, ids = trial_ids(secret, phase, position, trial["conditions"])
    if plan.get("reference") is not None and trial.get("file") is None and hmac.compare_digest(opaque, reference):
        return trial["item"], plan["reference"]
    for condition, candidate in zip(trial["conditions"], ids):
        if hmac.compare_digest(opaque, candidate):
            return (None, trial["file"]) if trial.get("file") else (trial["item"], condition)
    return None
