"""Engines, sessions and schema upgrades for SQLite (embedded default) and PostgreSQL.

SQLite follows SQLAlchemy's documented pysqlite recipe: the driver's own transaction handling is
switched off and we emit ``BEGIN`` ourselves, so a transaction that reads then writes (outbox
claims, dedup inserts) can take the write lock up front with ``BEGIN IMMEDIATE`` while plain reads
stay deferred and never queue behind the other process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

log = logging.getLogger(__name__)

IMMEDIATE = {"sqlite_immediate": True}
_MIGRATION_LOCK = 0x6361_7267  # "carg": the advisory lock id serialising schema upgrades


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_recipe(engine)
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
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction takes the write lock at its start (SQLite ``BEGIN IMMEDIATE``).

    Use it for read-then-write work; commits on success, rolls back on error.
    """
    with Session(engine, expire_on_commit=False) as session:
        session.connection(execution_options=IMMEDIATE)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


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
    with engine.connect().execution_options(**IMMEDIATE) as connection, connection.begin():
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
