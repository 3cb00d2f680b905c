"""The MUSHRA player: a Streamlit components-v2 element (Web Audio) for trial pages and the level check.

The browser gets opaque stimulus ids and the audio bytes behind them (base64 inside the
component's data), nothing else: no condition, codec, item or file name, and no audio URL.
The JavaScript and CSS live in app/assets/ and are passed inline (no build step, no CDN).
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any

import soundfile as sf
import streamlit as st
from sqlalchemy import Engine

from evalkit import mushra

__all__ = ["trial_player", "level_player", "ERROR_EVENT"]

ASSETS = Path(__file__).resolve().parent / "assets"
ERROR_EVENT = "error"

_player = st.components.v2.component(
    "evalkit_mushra_player",
    html='<div class="mu"></div>',
    css=(ASSETS / "mushra_player.css").read_text(),
    js=(ASSETS / "mushra_player.js").read_text(),
)


def _ignore() -> None:
    """Triggers are read from the component's return value; registering a callback declares them."""


def _clip(engine: Engine, token: str, stimulus: str) -> tuple[dict[str, str], int]:
    audio = mushra.stimulus_audio(engine, token, stimulus)
    return {"id": stimulus, "audio": base64.b64encode(audio).decode("ascii")}, sf.info(io.BytesIO(audio)).samplerate


def trial_player(engine: Engine, token: str, trial: mushra.TrialPage) -> dict[str, Any]:
    """Show one trial page; returns what the listener reported: {"submit": ...} or {"error": ...} or {}."""
    reference, rate = _clip(engine, token, trial.reference)
    data = {"mode": "trial", "sampleRate": rate, "mime": trial.mime, "ref": reference,
            "stimuli": [_clip(engine, token, stimulus)[0] for stimulus in trial.stimuli],
            "duration": trial.duration, "loop": trial.loop, "rate": trial.requires_ratings,
            "scale": [list(band) for band in mushra.SCALE]}
    # Keyed by the page's reference id: every trial (and every listener) mounts a fresh player.
    result = _player(key=_key("trial", trial.reference), data=data, on_submit_change=_ignore,
                     on_error_change=_ignore)
    return _reported(result, "submit")


def level_player(engine: Engine, token: str, page: mushra.Page) -> dict[str, Any]:
    """The level-check signal, looping; returns {"confirm": settings} once the listener confirms."""
    clip, rate = _clip(engine, token, page.level_stimulus)
    data = {"mode": "level", "sampleRate": rate, "mime": page.mime, "ref": clip}
    result = _player(key=_key("level", page.level_stimulus), data=data, on_confirm_change=_ignore,
                     on_error_change=_ignore)
    return _reported(result, "confirm")


def _key(mode: str, stimulus: str) -> str:
    # Hex, not the id itself: a base64url id may hold "__", which Streamlit reserves in component keys.
    return f"mushra-{mode}-{hashlib.sha256(stimulus.encode()).hexdigest()[:20]}"


def _reported(result: Any, event: str) -> dict[str, Any]:
    return {name: result[name] for name in (event, ERROR_EVENT) if result.get(name) is not None}
