"""Engines for the results database: URL from the environment, SQLite pragmas, migrations to head."""

from __future__ import annotations

import os
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from ..errors import EvalkitError, first_line

__all__ = [
    "StoreError",
    "database_url",
    "connect",
    "migrate",
    "downgrade",
    "write_transaction",
    "alembic_config",
    "head_revision",
    "current_revision",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000  # how long a SQLite connection waits for another process's write lock
# Any constant works, as long as every evalkit process uses the same one.
_PG_LOCK_KEY = zlib.crc32(b"evalkit.store.migrate")


class StoreError(EvalkitError):
    """The results database cannot be opened, or refused a row (the message names it)."""


def database_url() -> str:
    """$EVALKIT_DB_URL, else SQLite at results/evalkit.db under the current working directory."""
    url = os.environ.get("EVALKIT_DB_URL")
    # Absolute, so that a later chdir cannot point new pooled connections at another file.
    return url or f"sqlite:///{Path.cwd() / 'results' / 'evalkit.db'}"


def connect(url: str | URL | None = None, create: bool = True) -> Engine:
    """An engine for `url` (default: `database_url()`) whose schema is migrated to head; a URL
    that names no usable database, or one that cannot be opened, is a StoreError naming it.
    `create=False` (commands that only read) refuses an SQLite file that does not exist yet."""
    given = url or database_url()
    try:
        parsed = make_url(given)
        if not create:
            _require_file(parsed)
        engine = _create_engine(parsed)
    except (ArgumentError, NoSuchModuleError, ValueError, ImportError) as err:
        shown = given.render_as_string(hide_password=True) if isinstance(given, URL) else _hide_password(str(given))
        raise StoreError(
            f"database {shown!r}: not a database URL evalkit can use ({type(err).__name__}); expected "
            "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB"
        ) from None
    except OSError as err:
        raise StoreError(
            f"database {parsed.render_as_string(hide_password=True)!r}: cannot create its folder "
            f"({err.strerror or err})"
        ) from None
    try:
        migrate(engine)
    except DatabaseError as err:  # also a file that is not an SQLite database at all
        raise StoreError(
            f"database {parsed.render_as_string(hide_password=True)!r}: cannot be opened "
            f"({first_line(err.orig or err) or type(err).__name__}){_read_only_folder(parsed)}{_old_schema(err)}"
        ) from None
    return engine


def _old_schema(err: DatabaseError) -> str:
    """A hint when migrating to the newest schema was refused because the database is read-only."""
    if "readonly database" not in str(err.orig):
        return ""
    return "; its schema is older than this evalkit's and is upgraded in place: make it writable, or copy it"


def _read_only_folder(url: URL) -> str:
    """A hint when an SQLite file lies in a folder evalkit cannot write: its journal must be made beside it."""
    if url.get_backend_name() != "sqlite" or _in_memory(url):
        return ""
    path = _sqlite_path(url)
    if not path.is_file() or os.access(path.parent, os.W_OK):
        return ""
    return f"; its folder {str(path.parent)!r} is read-only and SQLite writes its journal beside the file: copy it elsewhere"


def _hide_password(url: str) -> str:
    """The URL with any password replaced, for messages about a URL that does not parse."""
    head, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{head}{sep}{credentials.partition(':')[0]}:***{at}{host}" if at and ":" in credentials else url


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision; cheap when it is there, safe when racing."""
    scripts = ScriptDirectory.from_config(alembic_config())
    current = current_revision(engine)
    if current == scripts.get_current_head():
        return  # the common case: checked without taking any lock
    if current is not None and not _known(scripts, current):
        raise StoreError(
            f"{engine.url!r}: the database is at schema revision {current!r}, which this evalkit "
            "does not know; a newer evalkit wrote it, so upgrade evalkit"
        )
    with _migration_lock(engine) as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def downgrade(engine: Engine, revision: str) -> None:
    """Step the schema down to `revision` (to go back to an older evalkit), under the same lock
    and with the same care for SQLite's child rows as `migrate`."""
    with _migration_lock(engine) as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration for the packaged migrations, e.g. for `alembic.command.revision`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser escaping
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction meant to write; commits on success, rolls back on error.

    On SQLite it takes the write lock at BEGIN (waiting up to the busy timeout): a deferred
    transaction that read first could fail at once if another writer committed meanwhile.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if _in_memory(url):
        # One shared connection, or every checkout would see a new, empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)  # not None: _in_memory
        engine = create_engine(url)
    _add_sqlite_events(engine)
    return engine


def _require_file(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and not _in_memory(url) and not _sqlite_path(url).is_file():
        raise StoreError(
            f"database {url.render_as_string(hide_password=True)!r}: no such file; give the database "
            "the run was stored in (evalkit run makes it)"
        )


def _sqlite_path(url: URL) -> Path:
    """The file an SQLite URL names, also in URI form (sqlite:///file:PATH?mode=ro&uri=true)."""
    name = str(url.database)
    uri = url.query.get("uri") == "true" and name.startswith("file:")
    return Path(name.removeprefix("file:").removeprefix("//") if uri else name)


def _in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _add_sqlite_events(engine: Engine) -> None:
    # sqlite3 (Python < 3.12) would skip BEGIN before DDL and SELECT; we emit it ourselves so
    # that migrations are transactional and a migrating process can take the write lock first.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # first: WAL switching may wait
        cursor.execute("PRAGMA foreign_keys = ON")
        _enable_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(f"BEGIN {connection.get_execution_options().get('sqlite_begin', '')}")


def _enable_wal(cursor) -> None:
    """WAL journal, so readers (the app) never block the writer. Switching a new database to
    WAL can fail with "database is locked" at once, without the busy handler, while another
    process is switching it: retry for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other migrating process can enter meanwhile."""
    if engine.dialect.name != "postgresql":
        # SQLite: the write lock taken at BEGIN IMMEDIATE makes a second process read
        # alembic_version only after the first has committed.
        with engine.connect() as connection, _foreign_keys_off(connection):
            connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                yield connection
                _cascade_deletes(connection)
        return
    with engine.connect() as connection, _pg_advisory_lock(connection), connection.begin():
        yield connection


@contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by copying it and dropping the original, and with foreign keys on, the
    drop deletes every child row by cascade: migrations run with them off (SQLite's own procedure).
    The pragma is a no-op inside a transaction, so it goes to the driver before BEGIN."""
    raw = connection.connection.dbapi_connection
    if raw is None:  # invalidated, e.g. after a lost connection
        raise StoreError("the database connection was closed before the migration could run")
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys = ON")


def _cascade_deletes(connection: Connection) -> None:
    """With foreign keys off, a migration's DELETE leaves the children that ON DELETE CASCADE (every
    foreign key of evalkit's schema) would have removed: remove them, grandchildren included."""
    while broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all():
        for table, rowid, _parent, _key in broken:
            connection.exec_driver_sql(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,))


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


@contextmanager
def _pg_advisory_lock(connection: Connection) -> Iterator[None]:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
    connection.commit()  # a session lock: it outlives this transaction
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
        connection.commit()
