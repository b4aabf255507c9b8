"""Engines, sessions and schema upgrades for SQLite (embedded default) and PostgreSQL.

SQLite follows SQLAlchemy's documented pysqlite recipe: the driver's own transaction handling is
switched off and our dialect (``SQLiteDialect``) emits ``BEGIN`` itself, so a transaction that
reads then writes (outbox claims, dedup inserts) can take the write lock up front with
``BEGIN IMMEDIATE`` while plain reads stay deferred and never queue behind the other process.

Writers to one SQLite file also queue at a ``WriteGate`` before ``BEGIN IMMEDIATE``: SQLite's own
busy handler sleeps and polls (1, 2, 5, 10 … ms) while another connection writes, and under load
most of a write's wait went to those sleeps. The gate wakes the next writer the moment the lock is
free: a lock for this process's threads, an ``flock`` of a file beside the database for the other
processes (gunicorn workers, the worker, an import). And the writer leaves the gate as soon as it
has committed: SQLite's automatic WAL checkpoint would run inside the commit, with every other
writer queued behind it, so it is switched off and each process runs the same (PASSIVE)
checkpoint itself every ``CHECKPOINT_EVERY`` writes, after leaving the gate; a PASSIVE checkpoint
blocks no reader and no writer.

Work that mostly reads can shorten its turn further: ``read_first_session`` runs it on a
``query_only`` connection outside the gate and keeps the few writes it makes (``write``) for a
short ``driver_write`` afterwards; anything else it tries to write sends it back to a
``write_session`` from the start (``NeedsWriteTurn``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: this process's threads still queue; other processes poll
    fcntl = None  # type: ignore[assignment]

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from storage.prepared import ERROR_HOOK, DriverConnection, OnConnection, Prepared, driver_error

log = logging.getLogger(__name__)

IMMEDIATE = {"sqlite_immediate": True}
MIGRATION_WAIT_SECONDS = 3600.0
CHECKPOINT_EVERY = 100
"""Write transactions per process between WAL checkpoints (SQLite's own default, 1000 pages, is
about 150 to 250 of this bot's writes)."""
_MIGRATION_LOCK = 0x6361_7267  # "carg": the advisory lock id serialising schema upgrades


GATE_TIMEOUT_SECONDS = 30.0
"""How long a writer waits for its turn before failing as SQLite would ("database is locked");
the same as the connections' busy_timeout."""


@dataclass
class WriteTurn:
    """One writer's turn at the gate; ``checkpoint`` tells it to checkpoint once it has left."""

    checkpoint: bool = False


class WriteGate:
    """One SQLite database's queue of write transactions, across threads and processes.

    Reentrant on one thread, though a nested write transaction still waits for SQLite's lock and
    fails after its busy timeout: do not nest them. The lock file is opened per process (after a
    fork, a shared open file would hold one lock for parent and child alike); where it cannot be
    used, threads still queue and other processes fall back to SQLite's busy handler. Threads wake
    as soon as the lock is free; another process's turn is polled for every 0.2 ms at most
    (a blocking ``flock`` cannot time out, and a stuck writer must not hang every other one).
    """

    def __init__(self, database: str | None, timeout: float = GATE_TIMEOUT_SECONDS) -> None:
        self.lock_path = f"{database}-writelock" if database else None
        self.timeout = timeout
        self._threads = threading.RLock()
        self._depth = 0
        self._writes = 0
        self._file: int | None = None
        self._file_pid: int | None = None

    @contextmanager
    def held(self, timeout: float | None = None) -> Iterator[WriteTurn]:
        """The gate for one write transaction; ``timeout`` in seconds (default ``self.timeout``)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            raise _locked("another thread of this process")
        try:
            outer = self._depth == 0
            locked = outer and self._lock_file(deadline)
            self._depth += 1
            turn = WriteTurn()
            try:
                yield turn
                if outer:  # committed: count it towards the next checkpoint
                    self._writes += 1
                    turn.checkpoint = self._writes % CHECKPOINT_EVERY == 0
            finally:
                self._depth -= 1
                if locked:
                    fcntl.flock(self._file, fcntl.LOCK_UN)  # type: ignore[arg-type]
        finally:
            self._threads.release()

    def _lock_file(self, deadline: float) -> bool:
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
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            except OSError as exc:  # no locks on this filesystem: SQLite's own locking still holds
                log.warning("cannot lock %s (%s); writers poll instead", self.lock_path, exc)
                return False
            if time.monotonic() >= deadline:
                raise _locked("another process")
            time.sleep(pause)
            pause = min(pause * 2, 0.0002)


def _locked(holder: str) -> OperationalError:
    """What SQLite raises when its busy timeout runs out, so callers handle it alike."""
    return OperationalError(
        "waiting for the database's write turn",
        None,
        sqlite3.OperationalError(f"database is locked ({holder})"),
    )


_gates: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()
_readers: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.get_driver_name() not in ("pysqlite", "cargobot"):
            raise ValueError(f"SQLite runs on Python's sqlite3 (sqlite:///…), not {parsed.drivername}")
        parsed = parsed.set(drivername=_SQLITE_DRIVER)
        engine = create_engine(parsed, echo=echo, connect_args=_SQLITE_CONNECT_ARGS)
        _sqlite_recipe(engine)
        _gates[engine] = WriteGate(database_file(parsed))
        if database_file(parsed) is not None:  # an in-memory database is one connection's own
            _readers[engine] = _query_only_engine(engine, echo=echo)
        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_recycle=1800
    )


def database_file(url: URL) -> str | None:
    """The SQLite database's file, as an absolute path; None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):  # a URI filename (uri=true)
        database = database.removeprefix("file:").split("?", 1)[0]
    return os.path.abspath(database)


_SQLITE_CONNECT_ARGS = {"check_same_thread": False, "timeout": 30}


def _on_connect(engine: Engine, *pragmas: str) -> None:
    """Every new connection of ``engine``: the driver's own transaction handling off
    (``SQLiteDialect`` emits BEGIN), then ``pragmas``."""

    @event.listens_for(engine, "connect")
    def _connected(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()


def _sqlite_recipe(engine: Engine) -> None:
    _on_connect(
        engine,
        "journal_mode=WAL",
        "busy_timeout=30000",
        "foreign_keys=ON",
        "synchronous=NORMAL",
        "wal_autocheckpoint=0",  # see _checkpoint
    )

    @event.listens_for(engine, "checkin")  # a pool event: no cost per statement
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_BEGIN_IMMEDIATE, None)  # SQLiteDialect: the option ends with the checkout


_BEGIN_IMMEDIATE = "cargobot_begin_immediate"  # in a pooled connection's info, for its checkout
_SQLITE_DRIVER = "sqlite+cargobot"  # every SQLite URL is served by SQLiteDialect


class SQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite with SQLAlchemy's documented SQLite transaction recipe built in: the driver's own
    transaction handling is off (``_on_connect``) and the dialect emits ``BEGIN`` itself, or
    ``BEGIN IMMEDIATE`` on a connection given the ``sqlite_immediate`` execution option.

    The recipe's ``begin`` event listener would do the same, but any connection event makes
    SQLAlchemy dispatch events around every statement of every connection, and on a short read
    that cost more than SQLite took. Here BEGIN is the dialect's ``do_begin``, whose errors
    SQLAlchemy wraps and checks for a lost connection like any statement's.

    ``do_begin`` sees only the pooled connection, so the option is kept in its ``info`` until it
    goes back to the pool (``_sqlite_recipe``): every transaction of that checkout begins
    IMMEDIATE, though not one after a reconnect. Set it on connections, not on engines.
    """

    supports_statement_cache = True

    def set_connection_execution_options(self, connection: Connection, opts: Any) -> None:
        super().set_connection_execution_options(connection, opts)
        if "sqlite_immediate" in opts:
            connection.connection.info[_BEGIN_IMMEDIATE] = bool(opts["sqlite_immediate"])

    def set_engine_execution_options(self, engine: Engine, opts: Any) -> None:
        if "sqlite_immediate" in opts:
            raise ValueError("sqlite_immediate is a connection's option (write_connection, write_session)")
        super().set_engine_execution_options(engine, opts)

    def do_begin(self, dbapi_connection: Any) -> None:
        try:
            immediate = dbapi_connection.info.get(_BEGIN_IMMEDIATE, False)
        except NotImplementedError:  # the ad-hoc connection SQLAlchemy first sets a dialect up on
            immediate = False
        dbapi_connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


registry.register("sqlite.cargobot", __name__, "SQLiteDialect")


def _query_only_engine(engine: Engine, *, echo: bool) -> Engine:
    """Connections to ``engine``'s SQLite file that refuse to write (``PRAGMA query_only``), for
    ``read_first_session``; closed by ``dispose``."""
    reader = create_engine(engine.url, echo=echo, connect_args=_SQLITE_CONNECT_ARGS)

    _on_connect(reader, "busy_timeout=30000", "query_only=ON")

    @event.listens_for(reader, "handle_error")  # a dialect event: it runs only when a statement fails
    def _on_error(context: Any) -> None:
        info = context.connection.info if context.connection is not None else {}
        _refuse_write(info, context.original_exception)

    @event.listens_for(reader, "connect")  # the same for Prepared statements, which skip handle_error
    def _hook_prepared(_dbapi_connection: Any, record: Any) -> None:
        record.info[ERROR_HOOK] = _refuse_write

    return reader


def _refuse_write(info: dict[str, Any], exc: BaseException) -> None:
    """A write SQLite refused on a read-first connection: marked on the connection, so it is seen
    even if a handler swallows what is raised here (``NeedsWriteTurn``)."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_READONLY:
        info[_NEEDS_WRITE_TURN] = True
        raise NeedsWriteTurn("a read-first session tried to write")


def dispose(engine: Engine) -> None:
    """``engine.dispose()``, and the read-only engine beside it (``read_first_session``)."""
    engine.dispose()
    reader = _readers.get(engine)
    if reader is not None:
        reader.dispose()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def _write_turn(engine: Engine, timeout: float | None = None) -> Iterator[None]:
    gate = _gates.get(engine)
    if gate is None:
        yield
        return
    with gate.held(timeout) as turn:
        yield
    if turn.checkpoint:
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


class NeedsWriteTurn(Exception):
    """Work in a ``read_first_session`` that writes more than its deferred writes: do it again in
    a ``write_session``."""


_DEFERRED_WRITES = "cargobot_deferred_writes"
_NEEDS_WRITE_TURN = "cargobot_needs_write_turn"  # in session.info and in a reader connection's info
_WATCHED = "cargobot_watched"  # instances a read-first session holds outside itself (``attach``)


@dataclass(frozen=True)
class DeferredWrite:
    """A statement and its parameters, kept by ``write`` for the write turn; ``must_change``:
    changing no row there means what the session read has changed since (``NeedsWriteTurn``)."""

    statement: Prepared
    params: Any
    must_change: bool = False


def reads_first(engine: Engine) -> bool:
    """Whether work on ``engine`` should read before it takes its write turn (``read_first_session``).

    On a SQLite file every writer of every process queues at one gate, so the time a write
    transaction holds it, not the CPU, bounds how many messages a second are answered. PostgreSQL
    has no such gate; there one transaction (one fewer round trip) is better.
    """
    return engine in _readers


@contextmanager
def read_first_session(engine: Engine) -> Iterator[Session]:
    """A read-only session on a SQLite file, outside the write gate: ``write`` keeps its writes
    (``deferred_writes``) for a short ``driver_write`` afterwards (``apply_writes``).

    Its transaction is never committed. ``NeedsWriteTurn`` is raised, on the write or on leaving,
    when the work tries any other write (SQLite refuses it: the connection is ``query_only``),
    asked for the write turn, or leaves ORM changes unflushed (``attach``'s instances included),
    even if a handler swallowed the exception: run the same work in a ``write_session`` instead.
    The deferred writes are decided on what this session read, so they must hold when it is no
    longer current: unique keys, writes that only move forward, and ``must_change`` guards cover
    the races.
    """
    with Session(_readers[engine], expire_on_commit=False) as session:
        connection = session.connection()
        connection.info.pop(_NEEDS_WRITE_TURN, None)
        session.info[_DEFERRED_WRITES] = []
        watched: list[object] = []
        session.info[_WATCHED] = watched
        yield session
        refused = connection.info.pop(_NEEDS_WRITE_TURN, False)
        changed = session.new or session.dirty or session.deleted or any(inspect(i).modified for i in watched)
        if refused or session.info.get(_NEEDS_WRITE_TURN) or changed:
            raise NeedsWriteTurn("the work changes more than it can defer")


def attach(session: Session, instance: object) -> None:
    """Put ``instance``, built as if loaded (``make_transient_to_detached``), in ``session``.

    A ``read_first_session`` only watches it: it has nothing to flush, attaching cost more than
    reading the row, and a change to the instance is a write it cannot make (``NeedsWriteTurn``).
    There it is not in the session's identity map: an ORM query for the same row returns another
    instance, and ``refresh`` or ``merge`` of it is refused (read-first work does neither).
    """
    watched = session.info.get(_WATCHED)
    if watched is None:
        session.add(instance)
    else:
        watched.append(instance)


def write(session: Session, statement: Prepared, params: Any, *, must_change: bool = False) -> None:
    """Execute a write now, or keep it for the write turn in a ``read_first_session``."""
    deferred = session.info.get(_DEFERRED_WRITES)
    if deferred is None:
        statement.rowcount(session.connection(), params)
    else:
        deferred.append(DeferredWrite(statement, params, must_change))


def require_write_turn(session: Session) -> None:
    """NeedsWriteTurn in a ``read_first_session``: the work ahead must see what it writes."""
    if _DEFERRED_WRITES in session.info:
        session.info[_NEEDS_WRITE_TURN] = True
        raise NeedsWriteTurn("the work needs the write turn from its start")


def deferred_writes(session: Session) -> list[DeferredWrite]:
    return list(session.info.get(_DEFERRED_WRITES, ()))


def apply_writes(connection: OnConnection, writes: list[DeferredWrite]) -> None:
    """Run ``writes`` in the write turn; NeedsWriteTurn when a guarded one changed nothing."""
    for write in writes:
        changed = write.statement.rowcount(connection, write.params)
        if write.must_change and not changed:
            raise NeedsWriteTurn("what the read-first answer relied on has changed")


@contextmanager
def write_connection(engine: Engine, *, gate_timeout: float | None = None) -> Iterator[Connection]:
    """``write_session`` for SQLAlchemy Core: a connection in a write transaction, committed on
    success. ``gate_timeout``: how long to wait for the write turn (default ``GATE_TIMEOUT_SECONDS``)."""
    with (
        _write_turn(engine, gate_timeout),
        engine.connect().execution_options(**IMMEDIATE) as connection,
        connection.begin(),
    ):
        yield connection


@contextmanager
def driver_write(engine: Engine) -> Iterator[DriverConnection]:
    """``write_connection`` for ``Prepared`` statements alone: a transaction on the pooled driver
    connection, begun (SQLite: ``BEGIN IMMEDIATE``), committed and rolled back by the dialect as
    SQLAlchemy would, without its ``Connection``. For the few writes of a read-first answer
    (``apply_writes``): the shorter the write turn, the sooner the next writer has it.
    """
    dialect = engine.dialect
    with _write_turn(engine):
        pooled = engine.raw_connection()
        try:
            if is_sqlite(engine):
                pooled.info[_BEGIN_IMMEDIATE] = True  # SQLiteDialect.do_begin; cleared at checkin
            connection = DriverConnection(dialect, pooled)
            _on_driver(connection, dialect.do_begin, pooled, "BEGIN")
            try:
                yield connection
                _on_driver(connection, dialect.do_commit, pooled, "COMMIT")
            except BaseException:
                if pooled.dbapi_connection is not None:  # not invalidated: nothing to roll back then
                    try:
                        dialect.do_rollback(pooled)
                    except Exception as exc:  # the connection is lost: what failed first is the news
                        log.warning("rollback after a failed write failed too: %s", exc)
                raise
        finally:
            pooled.close()


def _on_driver(connection: DriverConnection, step: Any, pooled: Any, name: str) -> None:
    """``driver_write``'s BEGIN or COMMIT, its driver error raised as SQLAlchemy raises it."""
    try:
        step(pooled)
    except Exception as exc:
        wrapped = driver_error(connection, exc, name, ())
        if wrapped is exc:
            raise
        raise wrapped from exc


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
    # Another process may be upgrading a large database: wait for it as long as it takes.
    with write_connection(engine, gate_timeout=MIGRATION_WAIT_SECONDS) as connection:
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
