"""Store checked imported ratings as an external MUSHRA test, in one transaction.

The rows are those of a test evalkit ran, so ratings_frame, screening, statistics and reports read
it unchanged: conditions (with their declared kind and the codec name their objective results
carry), items (duration unknown), one participant and one completed session per listener (their
questionnaire answers kept; no access token exists, so nobody can enter it), one trial per listener
and item in file order (time on the trial and comments in `client`) and one rating per score. The
test is `closed` and records its origin, the files' sha256 and the declared screening.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

from sqlalchemy import delete, insert, select

from ...errors import ConfigError
from ...listening.tokens import new_secret, new_token, token_hash
from ...store.db import write_transaction
from ...store.models import utcnow
from ...store.models_mushra import (
    MushraCondition,
    MushraItem,
    MushraParticipant,
    MushraResponse,
    MushraSession,
    MushraTest,
    MushraTrial,
)
from ..screening import ScreeningConfig
from .mapping import ImportMap
from .readers import Rating

__all__ = ["write_external_test"]


def write_external_test(
    engine,
    name: str,
    fmt: str,
    mapping: ImportMap,
    ratings: list[Rating],
    kinds: dict[str, str],
    config: ScreeningConfig,
    answers: dict[str, dict],
    paths: list[Path],
    replace: bool,
    card_hashes: dict[str, str],
) -> None:
    files = [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in paths]
    spec = {"import": {"format": fmt, "files": files, "map": mapping.source}, "title": mapping.title or name}
    now = utcnow()
    with write_transaction(engine) as connection:
        _make_room(connection, name, replace)
        test_id = connection.execute(
            insert(MushraTest).values(
                name=name,
                title=(mapping.title or name)[:500],
                status="closed",
                spec=spec,
                spec_sha256=hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest(),
                seed=0,
                sample_rate=0,
                stimulus_dir="",
                created_at=now,
                closed_at=now,
                origin=fmt,
                screening=config.as_dict(),
            )
        ).inserted_primary_key[0]
        items = _insert_keys(
            connection,
            MushraItem,
            test_id,
            sorted({r.item for r in ratings}),
            lambda key: {"training": False, "source": key, "duration": None},
        )
        conditions = _insert_keys(
            connection,
            MushraCondition,
            test_id,
            _condition_order(ratings, kinds, config),
            lambda key: _condition_row(key, kinds, mapping, card_hashes),
        )
        by_listener = defaultdict(list)
        for rating in ratings:
            by_listener[rating.listener].append(rating)
        for ordinal, (listener, mine) in enumerate(by_listener.items()):
            _insert_listener(
                connection, test_id, name, ordinal, listener, mine, items, conditions, answers.get(listener), now
            )


def _make_room(connection, name: str, replace: bool) -> None:
    existing = connection.execute(select(MushraTest.id, MushraTest.origin).where(MushraTest.name == name)).first()
    if existing is None:
        return
    if existing.origin == "evalkit":
        raise ConfigError(f"MUSHRA test {name!r} exists and was run in evalkit; import under another name (--test)")
    if not replace:
        raise ConfigError(
            f"MUSHRA test {name!r} exists (imported from {existing.origin}); pass --replace to import it again"
        )
    connection.execute(delete(MushraTest).where(MushraTest.id == existing.id))


def _condition_order(ratings: list[Rating], kinds: dict[str, str], config: ScreeningConfig) -> list[str]:
    """The hidden reference, the anchors as declared, then the systems under test by name."""
    present = {r.condition for r in ratings}
    anchors = [a for a in config.anchors if a in present]
    first = ([config.reference] if config.reference in present else []) + anchors
    return first + sorted(present - set(first))


def _insert_keys(connection, model, test_id: int, keys: list[str], extra) -> dict[str, int]:
    return {
        key: connection.execute(
            insert(model).values(test_id=test_id, key=key, position=position, **extra(key))
        ).inserted_primary_key[0]
        for position, key in enumerate(keys)
    }


def _condition_row(key: str, kinds: dict[str, str], mapping: ImportMap, card_hashes: dict[str, str]) -> dict:
    linked = next((m for m in mapping.conditions.values() if m is not None and m.name == key and m.scored_as), None)
    card = linked.scored_as if linked else None
    return {"kind": kinds[key], "card": card, "card_hash": card_hashes.get(card or ""), "codec_version": None}


def _insert_listener(
    connection,
    test_id: int,
    name: str,
    ordinal: int,
    listener: str,
    ratings: list[Rating],
    items: dict[str, int],
    conditions: dict[str, int],
    answers: dict | None,
    now,
) -> None:
    code = "imp-" + hashlib.sha256(f"{name}\0{listener}".encode()).hexdigest()[:24]
    participant = connection.execute(
        insert(MushraParticipant).values(
            test_id=test_id,
            code=code,
            token_hash=token_hash(new_token()),
            source="import",
            label=listener,
            created_at=now,
        )
    ).inserted_primary_key[0]
    trials = defaultdict(list)
    for rating in ratings:
        trials[rating.item].append(rating)
    plan = {
        "imported": True,
        "seed": 0,
        "training": [],
        "test": [
            {"item": items[item], "conditions": [conditions[r.condition] for r in rows]}
            for item, rows in trials.items()
        ],
    }
    session = connection.execute(
        insert(MushraSession).values(
            test_id=test_id,
            participant_id=participant,
            ordinal=ordinal,
            seed=0,
            secret=new_secret(),
            plan=plan,
            phase="done",
            position=len(trials),
            answers=answers or None,
            started_at=now,
            step_started_at=now,
            updated_at=now,
            completed_at=now,
        )
    ).inserted_primary_key[0]
    rows = []
    for position, (item, mine) in enumerate(trials.items()):
        comments = {str(slot): r.comment for slot, r in enumerate(mine) if r.comment}  # by slider, for exports
        client = {"imported": True, "time_s": mine[0].time, "comments": comments}
        trial = connection.execute(
            insert(MushraTrial).values(
                session_id=session,
                phase="test",
                position=position,
                item_id=items[item],
                layout={"conditions": [conditions[r.condition] for r in mine]},
                play_log={"plays": []},
                client=client,
                started_at=now,
                submitted_at=now,
            )
        ).inserted_primary_key[0]
        rows += [
            {
                "trial_id": trial,
                "session_id": session,
                "item_id": items[item],
                "condition_id": conditions[r.condition],
                "slot": slider,
                "kind": "score",
                "scale": "mushra",
                "score": r.score,
            }
            for slider, r in enumerate(mine)
        ]
    connection.execute(insert(MushraResponse), rows)
