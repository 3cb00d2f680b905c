"""Per listener: questionnaire answers, time and plays per trial, the screening outcome; evalkit's CSV exports.

`answers_frame` has one row per participant and one column per question; `trials_frame` one row
per committed trial page (seconds on the page, plays and seconds heard per stimulus, from the
server's play log); `listener_report` one row per participant with their totals and the
screening outcome and reason (the test type's rule, and the rejections recorded for the session). `export_results` writes these and the ratings into
one ZIP file.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from ..errors import ConfigError
from ..store.models_mushra import MushraCondition, MushraItem, MushraParticipant, MushraSession, MushraTest, MushraTrial
from .responses import ratings_frame
from .safetext import spreadsheet_safe

__all__ = ["answers_frame", "trials_frame", "listener_report", "export_results", "to_csv", "PEOPLE"]

PEOPLE = ["participant", "label", "source"]  # how a listener is named in every frame here


def _test(connection, name: str):
    test = connection.execute(select(MushraTest.id, MushraTest.spec).where(MushraTest.name == name)).first()
    if test is None:
        raise ConfigError(f"no listening test named {name!r}")
    return test


def _people(connection, test_id: int) -> pd.DataFrame:
    p, s = MushraParticipant, MushraSession
    rows = connection.execute(
        select(p.code.label("participant"), p.label, p.source, s.phase, s.answers, s.started_at, s.completed_at)
        .select_from(p)
        .outerjoin(s, s.participant_id == p.id)
        .where(p.test_id == test_id)
        .order_by(p.id)
    ).all()
    frame = pd.DataFrame(
        [dict(row._mapping) for row in rows], columns=[*PEOPLE, "phase", "answers", "started_at", "completed_at"]
    )
    frame["phase"] = frame["phase"].fillna("invited")
    frame["completed"] = frame["completed_at"].notna()
    return frame


def answers_frame(engine: Engine, name: str) -> pd.DataFrame:
    """One row per participant who started: who, whether they finished, and one column per question."""
    with engine.connect() as connection:
        test = _test(connection, name)
        people = _people(connection, test.id)
    questions = [q["id"] for q in test.spec.get("questionnaire", [])]
    people = people[people["phase"] != "invited"].reset_index(drop=True)
    answers = pd.DataFrame([dict(a or {}) for a in people["answers"]], columns=questions, index=people.index)
    return pd.concat([people[[*PEOPLE, "completed"]], answers], axis=1)


def trials_frame(engine: Engine, name: str) -> pd.DataFrame:
    """One row per committed trial page: seconds on it, plays and seconds heard (sliders and reference)."""
    t, s, p, i = MushraTrial, MushraSession, MushraParticipant, MushraItem
    with engine.connect() as connection:
        test = _test(connection, name)
        keys = dict(
            connection.execute(
                select(MushraCondition.id, MushraCondition.key).where(MushraCondition.test_id == test.id)
            ).all()
        )
        rows = connection.execute(
            select(
                p.code.label("participant"),
                p.label,
                p.source,
                t.phase,
                t.position.label("trial"),
                i.key.label("item"),
                t.started_at,
                t.submitted_at,
                t.play_log,
                t.layout,
            )
            .select_from(t)
            .join(s, s.id == t.session_id)
            .join(p, p.id == s.participant_id)
            .outerjoin(i, i.id == t.item_id)
            .where(s.test_id == test.id)
        ).all()
    records = [_trial_record(row, keys) for row in rows]
    columns = [
        *PEOPLE,
        "phase",
        "trial",
        "item",
        "seconds",
        "plays",
        "plays_per_sample",
        "least_plays",
        "least_heard_s",
        "reference_plays",
    ]
    frame = pd.DataFrame(records, columns=columns)
    return frame.sort_values(["participant", "phase", "trial"], ignore_index=True)


def _trial_record(row, keys: dict[int, str]) -> dict:
    """Plays of the sliders' stimuli (the reference button apart), from a play log of server time."""
    sliders = [keys.get(c, str(c)) for c in row.layout["conditions"]]
    plays = {name: 0 for name in sliders}
    heard = {name: 0.0 for name in sliders}
    reference = 0
    for play in row.play_log.get("plays", []):
        if play.get("condition") is None:
            continue  # a stop
        if play.get("reference_button"):
            reference += 1
            continue
        plays[play["condition"]] = plays.get(play["condition"], 0) + 1
        heard[play["condition"]] = heard.get(play["condition"], 0.0) + _seconds(play)
    return {
        "participant": row.participant,
        "label": row.label,
        "source": row.source,
        "phase": row.phase,
        "trial": row.trial,
        "item": row.item,
        "seconds": (row.submitted_at - row.started_at).total_seconds(),
        "plays": sum(plays.values()),
        "plays_per_sample": sum(plays.values()) / max(len(plays), 1),
        "least_plays": min(plays.values(), default=0),
        "least_heard_s": min(heard.values(), default=0.0),
        "reference_plays": reference,
    }


def _seconds(play: dict) -> float:
    if "seconds" in play:
        return float(play["seconds"])
    start, end = play.get("start"), play.get("end")  # play logs kept before the server timed them
    return max(0.0, end - start) if start is not None and end is not None else 0.0


def listener_report(engine: Engine, name: str) -> pd.DataFrame:
    """One row per participant: progress, time per test trial, plays per sample, post-screening outcome."""
    with engine.connect() as connection:
        people = _people(connection, _test(connection, name).id)
    trials = trials_frame(engine, name)
    test = trials[trials["phase"] == "test"].groupby("participant")
    per = pd.DataFrame(
        {
            "trials_done": test.size(),
            "minutes_on_trials": test["seconds"].sum() / 60,
            "median_trial_s": test["seconds"].median(),
            "shortest_trial_s": test["seconds"].min(),
            "plays_per_sample": test["plays_per_sample"].mean(),
            "least_plays": test["least_plays"].min(),
        }
    )
    report = people.drop(columns=["answers"]).join(per, on="participant")
    report["trials_done"] = report["trials_done"].fillna(0).astype(int)
    outcome = _screening(engine, name)
    report["screening"] = [outcome.get(p, ("not rated yet", ""))[0] for p in report["participant"]]
    report["screening_reason"] = [outcome.get(p, ("", ""))[1] for p in report["participant"]]
    return report


def _screening(engine: Engine, name: str) -> dict[str, tuple[str, str]]:
    """participant -> (kept | excluded, reason): the type's screening over every stored response, and the
    rejections recorded for each session."""
    from .analysis import load_test

    loaded = load_test(engine, name, completed_only=False)
    if loaded.screening is None:
        return {p: ("excluded", reason) for p, reason in loaded.rejected.items()}
    found = {p: ("kept", "") for p in loaded.screening.kept}
    found.update({p: ("excluded", reason) for p, reason in {**loaded.screening.excluded, **loaded.rejected}.items()})
    return found


def to_csv(frame: pd.DataFrame, path: str | Path | None = None) -> str | Path:
    """`frame` as CSV: written to `path` (returned), or returned as text when no path is given."""
    frame = spreadsheet_safe(frame)
    if path is None:
        return frame.to_csv(index=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def export_results(
    engine: Engine, name: str, path: str | Path | None = None, completed_only: bool = True
) -> bytes | Path:
    """A ZIP with ratings.csv (completed sessions unless `completed_only` is False), answers.csv,
    listeners.csv and trials.csv: written to `path`, or returned as bytes."""
    parts = {
        "ratings.csv": ratings_frame(engine, name, completed_only=completed_only),
        "answers.csv": answers_frame(engine, name),
        "listeners.csv": listener_report(engine, name),
        "trials.csv": trials_frame(engine, name),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file_name, frame in parts.items():
            archive.writestr(f"{name}/{file_name}", spreadsheet_safe(frame).to_csv(index=False))
    if path is None:
        return buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path
