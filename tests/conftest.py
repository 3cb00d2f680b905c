"""Shared fixtures: generated signals (seeded) and a short real speech clip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from evalkit.audio import Audio, load, resample
from evalkit.datasets import load_dataset
from evalkit.signals import add_noise, sinusoid, white_noise  # noqa: F401  (re-exported for tests)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"


def _speech_path() -> Path:
    return load_dataset(DEMO / "manifest.jsonl")[0].path


@pytest.fixture(scope="session")
def speech() -> Audio:
    """About 3 s of real speech at 16 kHz."""
    audio = resample(load(_speech_path()), 16000)
    return audio.with_samples(audio.samples[:, : 3 * 16000])


PG_URL = os.environ.get("EVALKIT_TEST_PG_URL")
NO_PG = "PostgreSQL variants need EVALKIT_TEST_PG_URL, e.g. export EVALKIT_TEST_PG_URL=$(scripts/start_postgres.sh)"


@contextmanager
def dask_cluster(**options) -> Iterator:
    """A Dask LocalCluster (no dashboard). Its event-loop thread must start within Dask's fixed 10 s, which a
    loaded 2-core machine can miss, so a failed start is tried again (twice) before the test fails."""
    distributed = pytest.importorskip("distributed")
    for attempt in range(3):
        try:
            cluster = distributed.LocalCluster(dashboard_address=None, **options)
            break
        except (AssertionError, TimeoutError, OSError):
            if attempt == 2:
                raise
    with cluster:
        yield cluster


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """The test server's URL scoped to a fresh schema, dropped afterwards: no test sees another's tables,
    nor those a previous run (of an older evalkit, say) left on a reused server."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema, admin = f"test_{uuid.uuid4().hex[:12]}", create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=NO_PG))])
def engine(request, tmp_path):
    """A fresh migrated database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    from evalkit.store import connect

    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'evalkit.db'}")
        yield engine
        engine.dispose()
        return
    with pg_schema_url() as url:
        engine = connect(url)
        yield engine
        engine.dispose()


def take_mushra_test(engine, open_token: str, score) -> None:
    """One listener through an open-link MUSHRA test: every stimulus played (1.1 s each by the server's clock,
    passed in), slider k rated score(k)."""
    from datetime import timedelta

    from evalkit import mushra
    from evalkit.store.models import utcnow

    token = mushra.join_open_link(engine, open_token)
    for step in (mushra.enter, mushra.accept_consent, mushra.finish_instructions):
        step(engine, token)
    page = mushra.confirm_level(engine, token, {"volume": 0.7})
    while page.trial:
        trial, at = page.trial, utcnow()
        for stimulus in [*trial.stimuli, trial.reference]:
            mushra.record_play(engine, token, trial.phase, trial.position, stimulus, 0.0, None, at)
            at += timedelta(seconds=1.1)
        scores = {s: float(score(k)) for k, s in enumerate(trial.stimuli)}
        page = mushra.submit_trial(engine, token, trial.phase, trial.position, scores, {"seconds": 5}, now=at)
