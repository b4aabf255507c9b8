"""Engines, sessions and schema upgrades for SQLite (embedded default) and PostgreSQL.

SQLite follows SQLAlchemy's documented pysqlite recipe: the driver's own transaction handling is
switched off and we emit ``BEGIN`` ourselves, so a transaction that reads then writes (outbox
claims, dedup inserts) can take the write lock up front with ``BEGIN IMMEDIATE`` while plain reads
stay deferred and never queue behind the other process.

Writers to one SQLite file also queue at a ``WriteGate`` before ``BEGIN IMMEDIATE``: SQLite's own
busy handler sleeps and polls (1, 2, 5, 10 … ms) while another connection writes, and under load
most of a write's wait went to those sleeps. The gate wakes the next writer the moment the lock is
free: a lock for this process's threads, an ``flock`` of a file beside the database for the other
processes (gunicorn workers, the worker, an import). And the writer leaves the gate as soon as it
has committed: SQLite's automatic WAL checkpoint would run inside the commit, with every other
writer queued behind it, so it is switched off and each process runs the same (PASSIVE)
checkpoint itself every ``CHECKPOINT_EVERY`` writes, after leaving the gate; a PASSIVE checkpoint
blocks no reader and no writer.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: this process's threads still queue; other processes poll
    fcntl = None  # type: ignore[assignment]

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

log = logging.getLogger(__name__)

IMMEDIATE = {"sqlite_immediate": True}
CHECKPOINT_EVERY = 100
"""Write transactions per process between WAL checkpoints (SQLite's own default, 1000 pages, is
about 150 to 250 of this bot's writes)."""
_MIGRATION_LOCK = 0x6361_7267  # "carg": the advisory lock id serialising schema upgrades


class WriteGate:
    """One SQLite database's queue of write transactions, across threads and processes.

    Reentrant on one thread. The lock file is opened per process (after a fork, a shared open file
    would hold one lock for parent and child alike); where it cannot be opened, threads still
    queue and other processes fall back to SQLite's busy handler.
    """

    def __init__(self, database: str | None) -> None:
        self.lock_path = f"{database}-writelock" if database else None
        self._threads = threading.RLock()
        self._depth = 0
        self._writes = 0
        self._file: int | None = None
        self._file_pid: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            self._depth += 1
            locked = self._depth == 1 and self._lock_file()
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._writes += 1
                if locked:
                    fcntl.flock(self._file, fcntl.LOCK_UN)  # type: ignore[arg-type]

    def checkpoint_due(self) -> bool:
        """True once every ``CHECKPOINT_EVERY`` write transactions of this process."""
        return self._writes % CHECKPOINT_EVERY == 0

    def _lock_file(self) -> bool:
        if fcntl is None or self.lock_path is None:
            return False
        if self._file_pid != os.getpid():
            self._file, self._file_pid = None, os.getpid()
            try:
                self._file = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                log.warning("no write lock file beside the database (%s); writers poll instead", exc)
        if self._file is None:
            return False
        fcntl.flock(self._file, fcntl.LOCK_EX)
        return True


_gates: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_recipe(engine)
        database = parsed.database
        in_memory = not database or database == ":memory:" or "mode=memory" in str(parsed.query)
        _gates[engine] = WriteGate(None if in_memory else os.path.abspath(database))
        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_recycle=1800
    )


def _sqlite_recipe(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def _write_turn(engine: Engine) -> Iterator[None]:
    gate = _gates.get(engine)
    if gate is None:
        yield
        return
    with gate.held():
        yield
    if gate.checkpoint_due():
        _checkpoint(engine)


def _checkpoint(engine: Engine) -> None:
    """Copy committed pages from the WAL into the database file, outside the write gate."""
    try:
        raw = engine.raw_connection()  # no SQLAlchemy transaction: a checkpoint cannot run in one
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            raw.close()
    except Exception as exc:  # the next one catches up; the write itself has committed
        log.warning("WAL checkpoint failed: %s", exc)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction takes the write lock at its start (SQLite ``BEGIN IMMEDIATE``).

    Use it for read-then-write work; commits on success, rolls back on error.
    """
    with _write_turn(engine), Session(engine, expire_on_commit=False) as session:
        session.connection(execution_options=IMMEDIATE)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """``write_session`` for SQLAlchemy Core: a connection in a write transaction, committed on success."""
    with (
        _write_turn(engine),
        engine.connect().execution_options(**IMMEDIATE) as connection,
        connection.begin(),
    ):
        yield connection


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("storage") / "migrations"))
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def init_db(engine: Engine) -> None:
    """Create the schema or upgrade it to the newest migration (idempotent).

    Several processes may start at once (gunicorn workers, two dispatchers): the upgrade runs under
    the database's write lock (SQLite) or a transaction-scoped advisory lock (PostgreSQL).
    """
    config = alembic_config(engine)
    with write_connection(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.debug("database schema is current (%s)", engine.url.get_backend_name())


def backup_sqlite(engine: Engine, destination: str) -> None:
    """Copy a live SQLite database with SQLite's online backup API (safe while others write)."""
    import sqlite3

    if not is_sqlite(engine):
        raise ValueError("backup works on SQLite; for PostgreSQL use pg_dump (see the README)")
    raw = engine.raw_connection()
    try:
        target = sqlite3.connect(destination)
        try:
            raw.driver_connection.backup(target)  # type: ignore[union-attr]
        finally:
            target.close()
    finally:
        raw.close()
