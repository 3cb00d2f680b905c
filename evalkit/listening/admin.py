"""The experimenter's side: create a test from YAML, launch it, invite listeners, watch, close."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import ConfigError
from ..store.db import write_transaction
from ..store.models import utcnow
from ..store.models_mushra import (
    MushraCondition,
    MushraEvent,
    MushraItem,
    MushraParticipant,
    MushraSession,
    MushraStimulus,
    MushraTest,
)
from .crowd import panel_from_params, refuse_repeat
from .environment import prepare_environment
from .spec import TestSpec, load_spec
from .stimuli import condition_cards, prepare_stimuli
from .tokens import new_token, participant_code, token_hash
from .types import get_type

__all__ = [
    "TestInfo",
    "Invite",
    "create_test",
    "launch_test",
    "close_test",
    "delete_test",
    "invite",
    "join_open_link",
    "list_tests",
    "test_info",
    "DEFAULT_STIMULUS_ROOT",
    "DEFAULT_CACHE_ROOT",
]

DEFAULT_STIMULUS_ROOT = Path("results/mushra")
DEFAULT_CACHE_ROOT = Path("results/cache")


@dataclass(frozen=True)
class TestInfo:
    """A test as the admin pages show it (warnings only right after creation)."""

    __test__ = False

    name: str
    title: str
    status: str
    items: int
    conditions: tuple[str, ...]
    open_token: str | None
    stimulus_dir: str
    warnings: tuple[str, ...] = ()
    test_type: str = "mushra"


@dataclass(frozen=True)
class Invite:
    """A personal link: give `token` (or `url`) to one listener; `code` (and `label`) identify them in exports."""

    code: str
    token: str
    url: str | None = None
    label: str | None = None


def create_test(
    engine: Engine,
    spec: TestSpec | str | Path,
    stimulus_root: str | Path = DEFAULT_STIMULUS_ROOT,
    cache_root: str | Path | None = DEFAULT_CACHE_ROOT,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
    cards_dir: str | Path | None = None,
) -> TestInfo:
    """Validate, prepare every stimulus (slow: runs the codecs) and store the test as a draft."""
    spec = spec if isinstance(spec, TestSpec) else load_spec(spec, cards_dir)
    _refuse_existing(engine, spec.name, replace)
    out_dir = (Path(stimulus_root) / f"{spec.name}-{spec.sha256[:12]}").resolve()
    fresh = not out_dir.exists()
    try:
        stimuli = list(prepare_stimuli(spec, out_dir, cache_root, progress, cards_dir))
        prepare_environment(list(spec.environment), out_dir, spec.sample_rate)
        get_type(spec.type).prepare(spec, out_dir)
        seed = spec.seed if spec.seed is not None else secrets.randbelow(2**62)
        with write_transaction(engine) as connection:
            if replace:
                connection.execute(delete(MushraTest).where(MushraTest.name == spec.name))
            test_id = connection.execute(
                insert(MushraTest).values(
                    name=spec.name,
                    title=spec.title,
                    status="draft",
                    spec=spec.to_dict(),
                    spec_sha256=spec.sha256,
                    seed=seed,
                    sample_rate=spec.sample_rate,
                    stimulus_dir=str(out_dir),
                    created_at=utcnow(),
                    test_type=spec.type,
                )
            ).inserted_primary_key[0]
            items = _insert_items(connection, test_id, spec)
            conditions = _insert_conditions(connection, test_id, spec, cards_dir)
            _insert_stimuli(connection, test_id, stimuli, items, conditions, spec.sample_rate)
            _admin_event(connection, test_id, "created", {"warnings": list(spec.warnings)})
    except BaseException:
        if fresh:  # a failed creation leaves no partial stimuli (an existing folder may serve another test)
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return test_info(engine, spec.name, spec.warnings)


def _refuse_existing(engine: Engine, name: str, replace: bool) -> None:
    with engine.connect() as connection:
        test_id = connection.execute(select(MushraTest.id).where(MushraTest.name == name)).scalar()
        if test_id is None:
            return
        sessions = connection.execute(select(func.count()).where(MushraSession.test_id == test_id)).scalar_one()
    if not replace:
        raise ConfigError(f"test {name!r} exists; pass replace=True to rebuild it, or rename the new one")
    if sessions:
        raise ConfigError(
            f"test {name!r} has {sessions} listener session(s); it cannot be replaced, rename the new one"
        )


def _insert_items(connection: Connection, test_id: int, spec: TestSpec) -> dict[str, int]:
    ids = {}
    for position, item in enumerate(spec.items):
        ids[item.id] = connection.execute(
            insert(MushraItem).values(
                test_id=test_id,
                key=item.id,
                position=position,
                training=item.id in spec.training,
                source=str(item.path),
                start_s=item.start,
                end_s=item.end,
                duration=item.duration,
            )
        ).inserted_primary_key[0]
    return ids


def _insert_conditions(connection: Connection, test_id: int, spec: TestSpec, cards_dir) -> dict[str, int]:
    ids, cards = {}, condition_cards(spec, cards_dir)
    for position, condition in enumerate(spec.conditions):
        card = cards[condition.name]
        ids[condition.name] = connection.execute(
            insert(MushraCondition).values(
                test_id=test_id,
                key=condition.name,
                kind=condition.kind,
                position=position,
                card=None if card is None else card.name,
                card_hash=None if card is None else card.config_hash,
                codec_version=None if card is None else card.build().info.version,
            )
        ).inserted_primary_key[0]
    return ids


def _insert_stimuli(connection, test_id, stimuli, items, conditions, sample_rate) -> None:
    rows = [
        {
            "test_id": test_id,
            "item_id": items[s.item],
            "condition_id": conditions[s.condition],
            "path": path,
            "sha256": sha,
            "sample_rate": sample_rate,
            "channels": s.audio.channels,
            "frames": s.audio.frames,
            "loudness": s.loudness,
            "gain_db": s.gain_db,
            "peak_dbfs": s.peak_dbfs,
            "bitrate": s.bitrate,
        }
        for s, path, sha in stimuli
    ]
    connection.execute(insert(MushraStimulus), rows)


def launch_test(engine: Engine, name: str) -> TestInfo:
    """Open a draft to listeners, or reopen a closed test (a test closed too early: its listeners resume where they
    stood, invite links work again); makes a fresh open-link token when the definition allows open links."""
    with write_transaction(engine) as connection:
        test = _test(connection, name, lock=True)
        if test.status == "open":
            raise ConfigError(f"test {name!r} is open already; close it first to stop it")
        token = new_token() if test.spec["open_link"] else None
        when = {"launched_at": utcnow()} if test.status == "draft" else {"closed_at": None}
        connection.execute(
            update(MushraTest).where(MushraTest.id == test.id).values(status="open", open_token=token, **when)
        )
        _admin_event(connection, test.id, "launched" if test.status == "draft" else "reopened", None)
    return test_info(engine, name)


def close_test(engine: Engine, name: str) -> TestInfo:
    """Stop accepting listeners and steps; stored ratings stay."""
    with write_transaction(engine) as connection:
        test = _test(connection, name, lock=True)
        connection.execute(
            update(MushraTest)
            .where(MushraTest.id == test.id)
            .values(status="closed", closed_at=utcnow(), open_token=None)
        )
        _admin_event(connection, test.id, "closed", None)
    return test_info(engine, name)


def delete_test(engine: Engine, name: str) -> None:
    """Remove a test and everything stored under it (its prepared files stay on disk)."""
    with write_transaction(engine) as connection:
        connection.execute(delete(MushraTest).where(MushraTest.id == _test(connection, name).id))


def invite(
    engine: Engine, name: str, count: int = 1, labels: Sequence[str] | None = None, base_url: str | None = None
) -> list[Invite]:
    """Make personal invite links; the tokens are shown once (the database keeps only their hash)."""
    labels = list(labels) if labels is not None else [None] * count
    invites = []
    with write_transaction(engine) as connection:
        test = _test(connection, name, lock=True)
        if test.status == "closed":
            raise ConfigError(f"test {name!r} is closed")
        for label in labels:
            if label is not None and (not isinstance(label, str) or len(label) > 200):
                raise ConfigError(f"an invite label is text of at most 200 characters, got {str(label)[:40]!r}")
            invites.append(_new_participant(connection, test.id, "invite", label, base_url))
    return invites


def join_open_link(
    engine: Engine, open_token: str, known: str | None = None, params: dict[str, str] | None = None
) -> str:
    """A participant from the open link; the app redirects to the returned personal token.

    `known` is a personal token this browser got from the same open link before: when it is still a
    participant of that test it is returned instead, so going back to the open link adds nobody.
    `params` are the link's other query parameters: a panel's worker id there (crowd.panels) makes or
    finds that worker's participant (a new token each time: another browser resumes the same session);
    a worker the test's `exclusive_with` names is refused (ConfigError).
    """
    for _ in range(3):
        try:
            with write_transaction(engine) as connection:
                test = connection.execute(select(MushraTest).where(MushraTest.open_token == str(open_token))).first()
                if test is None or test.status != "open":
                    raise ConfigError("this link is not open (or no longer); ask the experimenter for a new one")
                panel = panel_from_params(test.spec.get("crowd") or {}, params or {})
                if (
                    known
                    and connection.execute(
                        select(MushraParticipant.id).where(
                            MushraParticipant.test_id == test.id,
                            MushraParticipant.token_hash == token_hash(str(known)),
                            *([MushraParticipant.panel_id == panel[1]] if panel else []),
                        )
                    ).first()
                    is not None
                ):
                    return known
                if panel is None:
                    return _new_participant(connection, test.id, "open", None, None).token
                return _panel_participant(connection, test, *panel)
        except IntegrityError:  # a participant code collided, or the same worker arrived twice at once: again
            continue
    raise ConfigError("could not create a participant; try again")


def _panel_participant(connection: Connection, test: Any, panel: str, worker: str, info: dict) -> str:
    """The token of this panel worker's participant: the one they have (a fresh token for it), or a new one."""
    existing = connection.execute(
        select(MushraParticipant.id).where(
            MushraParticipant.test_id == test.id, MushraParticipant.panel == panel, MushraParticipant.panel_id == worker
        )
    ).scalar()
    if existing is not None:
        token = new_token()
        connection.execute(
            update(MushraParticipant).where(MushraParticipant.id == existing).values(token_hash=token_hash(token))
        )
        return token
    refuse_repeat(connection, test, panel, worker)
    return _new_participant(connection, test.id, "open", None, None, (panel, worker, info)).token


def _new_participant(
    connection: Connection,
    test_id: int,
    source: str,
    label: str | None,
    base_url: str | None,
    panel: tuple[str, str, dict] | None = None,
) -> Invite:
    token, code = new_token(), participant_code()
    where = {"panel": panel[0], "panel_id": panel[1], "panel_info": panel[2] or None} if panel else {}
    connection.execute(
        insert(MushraParticipant).values(
            test_id=test_id,
            code=code,
            token_hash=token_hash(token),
            source=source,
            label=label,
            created_at=utcnow(),
            **where,
        )
    )
    url = None if base_url is None else f"{base_url}{'&' if '?' in base_url else '?'}t={token}"
    return Invite(code, token, url, label)


def list_tests(engine: Engine) -> list[TestInfo]:
    with engine.connect() as connection:
        names = connection.execute(select(MushraTest.name).order_by(MushraTest.created_at)).scalars().all()
    return [test_info(engine, name) for name in names]


def test_info(engine: Engine, name: str, warnings: tuple[str, ...] = ()) -> TestInfo:
    with engine.connect() as connection:
        test = _test(connection, name)
        items = connection.execute(select(func.count()).where(MushraItem.test_id == test.id)).scalar_one()
        conditions = (
            connection.execute(
                select(MushraCondition.key).where(MushraCondition.test_id == test.id).order_by(MushraCondition.position)
            )
            .scalars()
            .all()
        )
    return TestInfo(
        test.name,
        test.title,
        test.status,
        items,
        tuple(conditions),
        test.open_token,
        test.stimulus_dir,
        tuple(warnings),
        test.test_type,
    )


test_info.__test__ = False  # a library function, not a pytest test


def _test(connection: Connection, name: str, lock: bool = False) -> Any:
    """The test's row; `lock`: held until the transaction ends (PostgreSQL), so two operators changing its status at
    once take turns and the second sees the first's change."""
    query = select(MushraTest).where(MushraTest.name == name)
    test = connection.execute(query.with_for_update() if lock else query).first()
    if test is None:
        raise ConfigError(f"no listening test named {name!r}")
    return test


def _admin_event(connection: Connection, test_id: int, kind: str, payload: Any) -> None:
    connection.execute(
        insert(MushraEvent).values(test_id=test_id, session_id=None, kind=kind, payload=payload, created_at=utcnow())
    )
