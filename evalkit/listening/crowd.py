"""Crowdsourcing: listeners from panels (Prolific, MTurk, any other), their way back, time limits,
repeat workers, and rejections recorded with their reasons.

A test's `crowd` key names its panels. A visitor of the open link who brings a panel's worker id
in the URL (`?open=...&PROLIFIC_PID=...`) becomes a participant with that panel and id; the same id
again (another browser) resumes the same participant; an id already seen in a test named in
`exclusive_with` (`*`: any other test) is refused. The done page gives the panel's completion code
(or the session's own) and a link back to the panel. Rejections (failed qualification or
environment check, P.808 session rules, time limit, post-screening) are recorded per session
with rule and reason, whether or not the panel pays, and exported with the panel ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from sqlalchemy import Connection, Engine, func, insert, select

from ..errors import ConfigError
from ..store.models import utcnow
from ..store.models_mushra import MushraParticipant, MushraRejection, MushraSession, MushraTest
from ._check import Checker

__all__ = [
    "PANELS",
    "read_crowd",
    "panel_from_params",
    "completion_link",
    "refuse_repeat",
    "record_rejection",
    "record_rejections",
    "rejections_frame",
    "duplicate_workers",
    "export_rejections",
    "REJECTION_COLUMNS",
]

# Known panels: the URL parameter with the worker id, the others worth keeping, and the way back.
PANELS = {
    "prolific": {
        "id_param": "PROLIFIC_PID",
        "info": ("STUDY_ID", "SESSION_ID"),
        "redirect": "https://app.prolific.com/submissions/complete?cc={code}",
    },
    "mturk": {
        "id_param": "workerId",
        "info": ("assignmentId", "hitId", "turkSubmitTo"),
        "redirect": "{turkSubmitTo}/mturk/externalSubmit?assignmentId={assignmentId}&completion_code={code}",
    },
}
MTURK_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")  # where MTurk's way back may lead
_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TEMPLATE_FIELDS = re.compile(r"{(\w+)}")
REJECTION_COLUMNS = [
    "test",
    "panel",
    "panel_id",
    "participant",
    "label",
    "status",
    "completion_code",
    "rule",
    "reason",
    "recorded_at",
]


def read_crowd(check: Checker, value: Any) -> dict[str, Any]:
    """`crowd`: {panels: {name: {id_param, completion_code, screened_out_code, redirect}}, require_panel,
    time_limit_minutes, exclusive_with}."""
    if value is None:
        return {}
    value = check.mapping(value, "crowd", {"panels", "require_panel", "time_limit_minutes", "exclusive_with"})
    panels = check.mapping(value.get("panels", {}), "crowd.panels", set(map(str, value.get("panels", {}))))
    found = {
        check.name(name, f"crowd.panels.{name}")[:32]: _panel(check, name, entry or {})
        for name, entry in panels.items()
    }
    exclusive = value.get("exclusive_with", [])
    if not isinstance(exclusive, list) or not all(isinstance(name, str) and name for name in exclusive):
        check.fail("crowd.exclusive_with", "a list of test names ('*': any other test)")
    limit = value.get("time_limit_minutes")
    return {
        "panels": found,
        "require_panel": check.boolean(value.get("require_panel", bool(found)), "crowd.require_panel"),
        "time_limit_minutes": None
        if limit is None
        else check.number(limit, "crowd.time_limit_minutes", 1, 7 * 24 * 60),
        "exclusive_with": exclusive,
    }


def _panel(check: Checker, name: str, entry: Any) -> dict[str, Any]:
    key = f"crowd.panels.{name}"
    entry = check.mapping(entry, key, {"id_param", "completion_code", "screened_out_code", "redirect"})
    preset = PANELS.get(name, {})
    id_param = entry.get("id_param", preset.get("id_param"))
    if id_param is None:
        check.fail(f"{key}.id_param", "name the URL parameter that carries the worker id (e.g. pid)")
    redirect = entry.get("redirect", preset.get("redirect"))
    if redirect is not None:
        check.text(redirect, f"{key}.redirect", required=True)
        if not redirect.startswith(("https://", "http://", "{turkSubmitTo}")):
            check.fail(f"{key}.redirect", "must be an http(s) URL; {code} and {panel_id} are filled in")
    codes = {
        k: check.text(entry[k], f"{key}.{k}", required=True)[:32]
        for k in ("completion_code", "screened_out_code")
        if k in entry
    }
    return {
        "id_param": check.text(id_param, f"{key}.id_param", required=True),
        "info": list(preset.get("info", ())),
        "redirect": redirect,
        **codes,
    }


def panel_from_params(crowd: Mapping[str, Any], params: Mapping[str, str]) -> tuple[str, str, dict] | None:
    """(panel, worker id, other panel parameters) from the open link's query; None without a panel id.
    ConfigError for a value that is not a plain id (letters, digits, . _ : -, at most 64)."""
    for panel, config in (crowd.get("panels") or {}).items():
        worker = params.get(config["id_param"])
        if worker is None:
            continue
        info = {name: params[name] for name in config["info"] if name in params}
        for name, value in {config["id_param"]: worker, **info}.items():
            if not (value in MTURK_HOSTS if name == "turkSubmitTo" else _VALUE.match(value)):
                raise ConfigError(f"the link's {name} is not valid; open the test from your panel again")
        return panel, worker, info
    if crowd.get("require_panel"):
        raise ConfigError("this test is open to panel members only: open it from your panel's link")
    return None


def completion_link(
    crowd: Mapping[str, Any],
    panel: str | None,
    panel_id: str | None,
    info: Mapping[str, str] | None,
    code: str,
    screened_out: bool = False,
) -> tuple[str, str | None]:
    """(the code to show, the link back to the panel or None) for a finished or screened-out session."""
    config = (crowd.get("panels") or {}).get(panel or "")
    if config is None:
        return code, None
    shown = config.get("screened_out_code" if screened_out else "completion_code", code)
    if config.get("redirect") is None or (screened_out and "screened_out_code" not in config):
        return shown, None
    values = {**(info or {}), "code": shown, "panel_id": panel_id or ""}
    if any(field not in values for field in _TEMPLATE_FIELDS.findall(config["redirect"])):
        return shown, None  # e.g. MTurk's way back without its assignment id: the code is shown instead
    link = _TEMPLATE_FIELDS.sub(
        lambda m: (
            quote(str(values[m.group(1)]), safe=":/")
            if m.group(1) == "turkSubmitTo"
            else quote(str(values[m.group(1)]), safe="")
        ),
        config["redirect"],
    )
    return shown, link


def refuse_repeat(connection: Connection, test: Any, panel: str, panel_id: str) -> None:
    """ConfigError when this worker took part in a test the definition declares exclusive with this one."""
    exclusive = (test.spec.get("crowd") or {}).get("exclusive_with") or []
    if not exclusive:
        return
    query = (
        select(MushraTest.name)
        .join(MushraParticipant, MushraParticipant.test_id == MushraTest.id)
        .where(MushraParticipant.panel == panel, MushraParticipant.panel_id == panel_id, MushraTest.id != test.id)
    )
    if "*" not in exclusive:
        query = query.where(MushraTest.name.in_(exclusive))
    if connection.execute(query.limit(1)).first() is not None:
        raise ConfigError(
            "you have already taken part in a related listening test, so you cannot take this one; thank you"
        )


def record_rejection(connection: Connection, test_id: int, session_id: int, rule: str, reason: str) -> bool:
    """Record that `rule` rejects a session (once per rule); True when it was new."""
    exists = connection.execute(
        select(MushraRejection.id).where(MushraRejection.session_id == session_id, MushraRejection.rule == rule)
    ).first()
    if exists is not None:
        return False
    connection.execute(
        insert(MushraRejection).values(
            test_id=test_id, session_id=session_id, rule=rule, reason=reason[:2000], created_at=utcnow()
        )
    )
    return True


def record_rejections(engine: Engine, name: str, now=None) -> int:
    """Record what the rules decide now about every session of test `name`: sessions past their time limit,
    and listeners the type's screening excludes. Returns how many rejections are new."""
    from ..store.db import write_transaction
    from .analysis import load_test

    now = now or utcnow()
    loaded = load_test(engine, name)
    excluded = loaded.screening.excluded if loaded.screening is not None else {}
    new = 0
    with write_transaction(engine) as connection:
        rows = connection.execute(
            select(
                MushraSession.id,
                MushraSession.phase,
                MushraSession.deadline,
                MushraParticipant.code,
                MushraParticipant.label,
                MushraParticipant.source,
            )
            .join(MushraParticipant, MushraParticipant.id == MushraSession.participant_id)
            .where(MushraSession.test_id == loaded.test_id)
        ).all()
        for row in rows:
            if row.deadline is not None and row.deadline < now and row.phase not in ("done", "screened_out"):
                new += record_rejection(
                    connection,
                    loaded.test_id,
                    row.id,
                    "time_limit",
                    f"not finished within the time limit (stopped at {row.phase})",
                )
            who = row.label if row.source == "import" else row.code
            if who in excluded:
                new += record_rejection(connection, loaded.test_id, row.id, "screening", excluded[who])
    return new


def rejections_frame(engine: Engine, name: str) -> pd.DataFrame:
    """One row per rejected session and rule: the panel and worker id to act on, the rule and its reason."""
    r, s, p, t = MushraRejection, MushraSession, MushraParticipant, MushraTest
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                t.name.label("test"),
                p.panel,
                p.panel_id,
                p.code.label("participant"),
                p.label,
                s.phase,
                s.completion_code,
                r.rule,
                r.reason,
                r.created_at.label("recorded_at"),
            )
            .join(s, s.id == r.session_id)
            .join(p, p.id == s.participant_id)
            .join(t, t.id == r.test_id)
            .where(t.name == name)
        ).all()
    status = {"done": "completed", "screened_out": "screened out"}
    frame = pd.DataFrame(
        [{**row._mapping, "status": status.get(row.phase, f"stopped at {row.phase}")} for row in rows],
        columns=[*REJECTION_COLUMNS, "phase"],
    )
    return frame[REJECTION_COLUMNS].sort_values(["participant", "rule"], ignore_index=True)


def duplicate_workers(engine: Engine) -> pd.DataFrame:
    """Panel workers who appear in more than one test: panel, panel_id, how many tests, and which."""
    p, t = MushraParticipant, MushraTest
    with engine.connect() as connection:
        rows = connection.execute(
            select(p.panel, p.panel_id, t.name).join(t, t.id == p.test_id).where(p.panel_id.is_not(None))
        ).all()
        repeated = connection.execute(
            select(p.panel, p.panel_id)
            .where(p.panel_id.is_not(None))
            .group_by(p.panel, p.panel_id)
            .having(func.count(func.distinct(p.test_id)) > 1)
        ).all()
    wanted = {(row.panel, row.panel_id) for row in repeated}
    tests: dict[tuple, list[str]] = {}
    for row in rows:
        if (row.panel, row.panel_id) in wanted:
            tests.setdefault((row.panel, row.panel_id), []).append(row.name)
    return pd.DataFrame(
        [
            {"panel": panel, "panel_id": worker, "tests": len(names), "names": ", ".join(sorted(names))}
            for (panel, worker), names in sorted(tests.items())
        ],
        columns=["panel", "panel_id", "tests", "names"],
    )


def export_rejections(engine: Engine, name: str, path: str | Path | None = None) -> str | Path:
    """The rejections as CSV: written to `path` (returned), or returned as text."""
    from .listeners import to_csv

    return to_csv(rejections_frame(engine, name), path)
