"""The results database on SQLite and, when $EVALKIT_TEST_PG_URL is set, on PostgreSQL."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import NO_PG, PG_URL, pg_schema_url
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from evalkit.store import (
    Base,
    Result,
    Roundtrip,
    Run,
    StoreError,
    connect,
    database_url,
    done_keys,
    ensure_run,
    export,
    migrate,
    results_frame,
    roundtrips_frame,
    summary,
    write_results,
    write_roundtrips,
)
from evalkit.store.db import alembic_config, current_revision, head_revision

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"runs", "roundtrips", "results", "alembic_version"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=NO_PG))])
def url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results' / 'evalkit.db'}"
        return
    with pg_schema_url() as url:
        yield url


@pytest.fixture
def open_db(url):
    """connect(url), disposing every engine it made at teardown."""
    engines = []
    yield lambda: engines.append(connect(url)) or engines[-1]
    for engine in engines:
        engine.dispose()


@pytest.fixture
def engine(open_db):
    engine = open_db()
    ensure_run(engine, "exp1", {"codecs": ["opus-6k"], "metrics": ["pesq"]}, "0.1.0")
    return engine


def result(item="a", codec="opus-6k", metric="pesq", status="ok", value=3.0, reason=None, **extra):
    return dict(
        run_id="exp1",
        item_id=item,
        codec=codec,
        codec_hash="h1",
        metric=metric,
        metric_version="1",
        status=status,
        value=value,
        reason=reason,
        **extra,
    )


def count(engine, model) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


# Schema and migrations


def test_fresh_sqlite_file_gets_schema_wal_and_foreign_keys(tmp_path):
    path = tmp_path / "new" / "evalkit.db"
    engine = connect(f"sqlite:///{path}")
    assert path.exists() and TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    engine.dispose()


def test_migrations_are_idempotent_and_keep_data(open_db):
    engine = open_db()
    ensure_run(engine, "exp1", {}, "0.1.0")
    migrate(engine)
    again = open_db()
    assert current_revision(again) == head_revision() is not None
    assert TABLES <= set(inspect(again).get_table_names())
    assert count(again, Run) == 1


def test_migrations_match_models(url, open_db):
    engine = open_db()
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    command.check(alembic_config(url))  # the URL-only path that `alembic revision` uses


def test_database_from_a_newer_evalkit_is_refused(open_db):
    engine = open_db()
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    with pytest.raises(StoreError, match="upgrade evalkit"):
        migrate(engine)


def test_the_newest_migration_steps_down_and_up_keeping_rows(open_db):
    from alembic import command

    engine = open_db()
    ensure_run(engine, "exp1", {}, "0.1.0")
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")  # steps down through 0005 and every later revision
    assert "delay_tolerance" not in {c["name"] for c in inspect(engine).get_columns("roundtrips")}
    assert "lag" not in {c["name"] for c in inspect(engine).get_columns("results")}
    assert "mushra_plays" not in inspect(engine).get_table_names()
    migrate(engine)
    assert "delay_tolerance" in {c["name"] for c in inspect(engine).get_columns("roundtrips")}
    assert "lag" in {c["name"] for c in inspect(engine).get_columns("results")}
    assert "mushra_plays" in inspect(engine).get_table_names()
    assert current_revision(engine) == head_revision() and count(engine, Run) == 1


def test_concurrent_first_connects_migrate_once(url, open_db):
    # Each process imports first and connects on "go", so the migrations really race.
    code = (
        "import sys; from evalkit.store import connect; print(flush=True); sys.stdin.readline(); connect(sys.argv[1])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, url],
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for process in processes:
        process.stdout.readline()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    errors = [process.communicate()[1] for process in processes]
    assert all(process.returncode == 0 for process in processes), errors
    with open_db().connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]


def test_in_memory_sqlite_works():
    engine = connect("sqlite+pysqlite:///:memory:")
    ensure_run(engine, "exp1", {}, "0.1.0")
    assert write_results(engine, [result()]) == 1
    assert len(results_frame(engine)) == 1
    engine.dispose()


def test_default_url_is_sqlite_under_results(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALKIT_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert database_url() == f"sqlite:///{tmp_path / 'results' / 'evalkit.db'}"
    connect().dispose()
    assert (tmp_path / "results" / "evalkit.db").exists()
    monkeypatch.setenv("EVALKIT_DB_URL", "sqlite+pysqlite:///:memory:")
    assert database_url() == "sqlite+pysqlite:///:memory:"


# Writing


def test_upsert_twice_leaves_no_duplicates_and_keeps_latest(engine):
    rows = [result("a", value=3.0), result("b", status="failed", value=None, reason="too short")]
    assert write_results(engine, rows) == 2
    write_results(engine, [result("a", value=3.5), *rows[1:]])
    frame = results_frame(engine, "exp1")
    assert len(frame) == count(engine, Result) == 2
    assert frame.set_index("item_id").loc["a", "value"] == 3.5


def test_duplicates_within_one_batch_collapse_to_the_last(engine):
    assert write_results(engine, [result(value=1.0), result(value=2.0)]) == 1
    assert results_frame(engine)["value"].tolist() == [2.0]


def test_done_keys_for_incremental_runs(engine):
    write_results(engine, [result("a"), result("b", status="failed", value=None, reason="decoder crashed")])
    assert done_keys(engine, "exp1") == {("a", "opus-6k", "h1", "pesq", "1"), ("b", "opus-6k", "h1", "pesq", "1")}
    assert done_keys(engine, "exp1", retry_failed=True) == {("a", "opus-6k", "h1", "pesq", "1")}
    assert done_keys(engine, "other") == set()


@dataclass
class RoundtripRow:
    run_id: str
    item_id: str
    codec: str
    codec_hash: str
    status: str
    bitrate: float | None = None
    measured_delay: int | None = None
    packages: dict | None = None
    reason: str | None = None


def test_roundtrips_upsert_from_dataclasses(engine):
    import numpy as np

    row = RoundtripRow("exp1", "a", "opus-6k", "h1", "ok", np.float32(6000.0), np.int64(312), {"av": "14.0"})
    write_roundtrips(engine, [row, RoundtripRow("exp1", "b", "opus-6k", "h1", "failed", reason="bad bytes")])
    write_roundtrips(engine, [row])
    frame = roundtrips_frame(engine, "exp1")
    assert len(frame) == count(engine, Roundtrip) == 2
    first = frame.iloc[0]
    assert (first["bitrate"], first["measured_delay"], first["packages"]) == (6000.0, 312, {"av": "14.0"})


def test_database_checks_reject_inconsistent_rows(engine):
    bad = [
        result(status="failed", value=2.0, reason="x"),
        result(status="ok", value=None),
        result(status="skipped", value=None, reason=""),
        result(status="maybe"),
    ]
    for row in bad:  # straight to the table, past the Python checks
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(Result.__table__.insert(), [{**row, "created_at": pd.Timestamp.now("UTC")}])
    assert count(engine, Result) == 0


@pytest.mark.parametrize(
    "row, message",
    [
        (result(status="failed", value=2.0, reason="x"), "has no value"),
        (result(status="ok", value=None), "finite value"),
        (result(status="ok", value=math.nan), "finite value"),
        (result(status="skipped", value=None), "needs a reason"),
        (result(status="maybe"), "not one of"),
        (result(colour="red"), "unknown field"),
        (result(item=7), "must be a string"),
        (result(item="x" * 501), "longer than 500"),
        (result(native_rate="fast"), "must be a number"),
        ({**result(), "run_id": "nope"}, "unknown run"),
    ],
)
def test_writer_names_the_bad_row(engine, row, message):
    with pytest.raises(StoreError, match=message):
        write_results(engine, [result("good"), row])
    assert count(engine, Result) == 0  # the whole batch is one transaction


def test_ensure_run_creates_then_refreshes(engine):
    assert ensure_run(engine, "exp2", {"seed": 1}, "0.1.0") is True
    assert ensure_run(engine, "exp2", {"seed": 2}, "0.2.0") is False
    with engine.connect() as connection:
        run = connection.execute(select(Run).where(Run.id == "exp2")).one()
    assert (run.experiment, run.evalkit_version) == ({"seed": 2}, "0.2.0")
    assert run.updated_at >= run.created_at and run.created_at.tzinfo is not None


# Reading


def test_summary_matches_a_hand_computation(engine):
    values = [3.0, 3.5, 4.0, 4.5]
    rows = [result(f"i{k}", value=v) for k, v in enumerate(values)]
    rows += [
        result("f", status="failed", value=None, reason="too short"),
        result("s", status="skipped", value=None, reason="needs 16 kHz"),
        result("x", codec="amr", value=2.0),
    ]
    write_results(engine, rows)
    table = summary(engine, "exp1").set_index("codec")
    opus = table.loc["opus-6k"]
    # mean 3.75; sample std sqrt(1.25 / 3); t(0.975, df=3) = 3.182446305 from a t table.
    half = 3.182446305 * math.sqrt(1.25 / 3) / math.sqrt(4)
    assert (opus.n_ok, opus.n_failed, opus.n_skipped) == (4, 1, 1)
    assert opus["mean"] == pytest.approx(3.75)
    assert opus["std"] == pytest.approx(math.sqrt(1.25 / 3))
    assert (opus.ci_low, opus.ci_high) == (pytest.approx(3.75 - half), pytest.approx(3.75 + half))
    assert table.loc["amr", "mean"] == 2.0 and math.isnan(table.loc["amr", "ci_low"])


def test_frames_sort_by_code_point_on_every_backend(engine):
    write_results(engine, [result(item) for item in ["b", "B", "_c", "a", "é"]])
    assert results_frame(engine)["item_id"].tolist() == ["B", "_c", "a", "b", "é"]


def test_summary_of_an_empty_run_has_the_columns(engine):
    frame = summary(engine, "exp1")
    assert frame.empty and "ci_high" in frame.columns


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_round_trip(engine, tmp_path, suffix):
    write_results(
        engine,
        [
            result("a", value=3.25, native_rate=8000, metric_rate=16000, package="pesq"),
            result("b", status="failed", value=None, reason='a, "quoted"\nreason'),
        ],
    )
    frame = results_frame(engine, "exp1")
    path = export(frame, tmp_path / "out" / f"results{suffix}")
    if suffix == ".csv":  # CSV has no types: say which columns are text, e.g. metric_version "1"
        text_columns = frame.select_dtypes(exclude=["number", "datetime"]).columns
        back = pd.read_csv(path, parse_dates=["created_at"], dtype=dict.fromkeys(text_columns, "str"))
    else:
        back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=suffix != ".csv")


def test_a_csv_export_shows_item_ids_a_spreadsheet_would_run_as_formulas(engine, tmp_path):
    """Item ids come from other people's manifests; Parquet keeps them as they are."""
    ids = ['=HYPERLINK("http://x","y")', "+cmd", "@SUM(A1)", "plain"]
    write_results(engine, [result(item) for item in ids])
    frame = results_frame(engine, "exp1")
    back = pd.read_csv(export(frame, tmp_path / "r.csv"), dtype={"item_id": "str"})
    assert sorted(back["item_id"]) == sorted(["'" + i for i in ids[:3]] + ["plain"])
    assert sorted(pd.read_parquet(export(frame, tmp_path / "r.parquet"))["item_id"]) == sorted(ids)


def test_export_refuses_unknown_suffix(tmp_path):
    with pytest.raises(StoreError, match=r"\.xlsx"):
        export(pd.DataFrame({"a": [1]}), tmp_path / "x.xlsx")


def test_every_foreign_key_cascades():
    """Migrations on SQLite run with foreign keys off and then apply ON DELETE CASCADE themselves
    (store.db._cascade_deletes): exact only while every foreign key cascades."""
    keys = [key for table in Base.metadata.tables.values() for key in table.foreign_keys]
    assert keys and all(key.ondelete == "CASCADE" for key in keys), [str(k) for k in keys if k.ondelete != "CASCADE"]
