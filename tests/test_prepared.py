"""Prepared statements read and write exactly what SQLAlchemy's own execution would, on SQLite and
PostgreSQL, and fail the same way."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    Float,
    Numeric,
    bindparam,
    case,
    cast,
    create_engine,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from storage.db import driver_write, write_connection
from storage.models import Contact, RuntimeState
from storage.prepared import Prepared

CONTACT = Contact.__table__  # type: ignore[attr-defined]
STATE = RuntimeState.__table__  # type: ignore[attr-defined]
AT = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC)

# A typed use and an untyped use of one name, a literal in the statement, booleans and datetimes.
TOUCH = update(CONTACT).values(
    last_inbound_at=case(
        (CONTACT.c.last_inbound_at < bindparam("at"), bindparam("at")), else_=CONTACT.c.last_inbound_at
    ),
    display_name=literal("seen"),
)
CONTACT_ROWS = select(
    CONTACT,
    exists().where(CONTACT.c.opted_out.is_(True)).label("anyone_opted_out"),
    literal(7).label("seven"),
).where(CONTACT.c.address == bindparam("address"))


def _add_contact(engine: Engine, address: str, *, last: datetime) -> None:
    with write_connection(engine) as connection:
        connection.execute(insert(CONTACT), {"address": address, "created_at": AT, "last_inbound_at": last})


def test_rows_are_what_sqlalchemy_returns(engine: Engine) -> None:
    _add_contact(engine, "whatsapp:+254700000101", last=AT - timedelta(hours=2))
    with engine.connect() as connection:
        expected = connection.execute(CONTACT_ROWS, {"address": "whatsapp:+254700000101"}).all()
        got = Prepared(CONTACT_ROWS).rows(connection, {"address": "whatsapp:+254700000101"})
        assert Prepared(CONTACT_ROWS).rows(connection, {"address": "whatsapp:+254700000999"}) == []
    assert [tuple(row) for row in got] == [tuple(row) for row in expected]
    (row,) = got
    assert row.last_inbound_at == AT - timedelta(hours=2) and row.last_inbound_at.tzinfo is not None
    assert row.language_chosen is False and row.anyone_opted_out is False and row.seven == 7
    assert row[:2] == (row.id, "whatsapp:+254700000101")


def test_a_write_stores_what_sqlalchemy_stores_and_counts_its_rows(engine: Engine) -> None:
    for address in ("whatsapp:+254700000102", "whatsapp:+254700000103"):
        _add_contact(engine, address, last=AT - timedelta(days=1))
    prepared = Prepared(TOUCH.where(CONTACT.c.address == bindparam("address")))
    with write_connection(engine) as connection:
        assert prepared.rowcount(connection, {"address": "whatsapp:+254700000102", "at": AT}) == 1
        assert prepared.rowcount(connection, {"address": "whatsapp:+254700000999", "at": AT}) == 0
        connection.execute(TOUCH.where(CONTACT.c.address == "whatsapp:+254700000103"), {"at": AT})
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT address, last_inbound_at, display_name FROM contact ORDER BY address")
        ).all()
    # The driver's own value, not re-read through the column type: the same text (SQLite) or
    # timestamp (PostgreSQL) either way, the untyped use of "at" converted like the typed one.
    assert stored[0][1:] == stored[1][1:]
    assert stored[0][2] == "seen"


def test_a_driver_error_is_wrapped_as_sqlalchemy_wraps_it(engine: Engine) -> None:
    add = Prepared(insert(STATE).values(key=bindparam("key"), value="1", updated_at=bindparam("at")))
    with write_connection(engine) as connection:
        add.rowcount(connection, {"key": "offset", "at": AT})
    with pytest.raises(IntegrityError), write_connection(engine) as connection:
        add.rowcount(connection, {"key": "offset", "at": AT})
    with engine.connect() as connection:
        assert connection.execute(select(STATE.c.key)).scalars().all() == ["offset"]


def test_a_missing_parameter_is_named_and_a_write_is_not_read(engine: Engine) -> None:
    with engine.connect() as connection, pytest.raises(StatementError, match="address"):
        Prepared(CONTACT_ROWS).rows(connection, {})
    with driver_write(engine) as connection, pytest.raises(TypeError, match="rowcount"):
        ADD_STATE.rows(connection, {"key": "never", "at": AT})
    with engine.connect() as connection:
        assert connection.execute(STATE_KEYS).scalars().all() == []


def test_what_needs_the_execution_context_is_refused(engine: Engine) -> None:
    expanding = select(CONTACT.c.id).where(CONTACT.c.id.in_(bindparam("ids", expanding=True)))
    python_default = insert(CONTACT).values(address="whatsapp:+254700000104", created_at=AT)  # language
    with engine.connect() as connection:
        with pytest.raises(ValueError, match="IN lists"):
            Prepared(expanding).rows(connection, {"ids": [1]})
        with pytest.raises(ValueError, match="column defaults"):
            Prepared(python_default).rowcount(connection, {})


@pytest.mark.parametrize(
    ("columns", "refused"),
    [
        ((CONTACT.c.id, STATE.c.key.label("id")), "distinct names"),  # a name twice
        ((func.count(),), "distinct names"),  # no name at all
        ((CONTACT.c.id.label("class"),), "distinct names"),  # a Python keyword
        ((cast(CONTACT.c.id, Numeric(10, 2)),), "Numeric"),  # its processor needs the driver's type
        ((cast(CONTACT.c.id, Float),), "Numeric"),
    ],
)
def test_columns_a_row_cannot_carry_as_sqlalchemy_would_are_refused(
    engine: Engine, columns: tuple[Any, ...], refused: str
) -> None:
    with engine.connect() as connection, pytest.raises(ValueError, match=refused):
        Prepared(select(*columns)).rows(connection, {})


def test_a_lost_connection_is_invalidated_and_the_pool_serves_a_fit_one(engine: Engine) -> None:
    with pytest.raises(DBAPIError) as raised, driver_write(engine) as connection:
        ADD_STATE.rowcount(connection, {"key": "a", "at": AT})
        connection.connection.driver_connection.close()  # the server went away
        ADD_STATE.rowcount(connection, {"key": "b", "at": AT})
    assert raised.value.connection_invalidated
    with driver_write(engine) as connection:
        ADD_STATE.rowcount(connection, {"key": "c", "at": AT})
    with engine.connect() as connection:
        assert connection.execute(STATE_KEYS).scalars().all() == ["c"]


class _LosingCursor(sqlite3.Cursor):
    """A cursor whose connection, once ``losing``, is lost while it runs a statement."""

    def execute(self, *args: Any) -> Any:
        if getattr(self.connection, "losing", False):
            self.connection.close()  # the server went away
        return super().execute(*args)


class _LosingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _LosingCursor) -> Any:
        return super().cursor(factory)


def test_a_connection_lost_mid_statement_is_raised_as_sqlalchemy_raises_it(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'lost.db'}", connect_args={"factory": _LosingConnection})
    try:
        with engine.connect() as connection, pytest.raises(DBAPIError) as raised:
            connection.connection.driver_connection.losing = True  # type: ignore[union-attr]
            Prepared(select(literal(1).label("one"))).rows(connection, {})
        assert raised.value.connection_invalidated  # not the cursor's own error on closing
    finally:
        engine.dispose()


class _Interrupts:
    """A parameter value the driver cannot adapt without being interrupted (Ctrl-C, a timeout)."""

    def __conform__(self, _protocol: object) -> None:
        raise KeyboardInterrupt


def test_a_statement_interrupted_midway_invalidates_its_connection(
    sqlite_file: tuple[str, Engine],
) -> None:
    _, engine = sqlite_file
    echo = Prepared(select(bindparam("value").label("value")))  # untyped: handed to the driver as is
    with engine.connect() as connection:
        pooled = connection.connection
        with pytest.raises(KeyboardInterrupt):
            echo.rows(connection, {"value": _Interrupts()})
        assert pooled.dbapi_connection is None  # the driver's state is unknown: not reused
    with engine.connect() as connection:
        assert [tuple(row) for row in echo.rows(connection, {"value": 5})] == [(5,)]


def test_a_driver_write_ends_with_the_immediate_begin_cleared(sqlite_file: tuple[str, Engine]) -> None:
    """The pooled connection a driver write used begins deferred for its next user."""
    _, engine = sqlite_file
    with driver_write(engine) as connection:
        pooled = connection.connection.dbapi_connection
    other = sqlite3.connect(engine.url.database or "", timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writing
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection is pooled  # the same driver connection
            assert connection.execute(STATE_KEYS).scalars().all() == []  # a read does not wait
        other.execute("ROLLBACK")
    finally:
        other.close()


ADD_STATE = Prepared(insert(STATE).values(key=bindparam("key"), value="1", updated_at=bindparam("at")))
STATE_KEYS = select(STATE.c.key).order_by(STATE.c.key)


def test_a_driver_write_commits_what_it_ran(engine: Engine) -> None:
    with driver_write(engine) as connection:
        ADD_STATE.rowcount(connection, {"key": "a", "at": AT})
        assert [row.key for row in Prepared(STATE_KEYS).rows(connection, {})] == ["a"]  # its own write
    with driver_write(engine) as connection:
        ADD_STATE.rowcount(connection, {"key": "b", "at": AT})
    with engine.connect() as connection:
        assert connection.execute(STATE_KEYS).scalars().all() == ["a", "b"]


def test_a_driver_write_that_fails_leaves_nothing_and_raises_as_sqlalchemy_would(engine: Engine) -> None:
    with driver_write(engine) as connection:
        ADD_STATE.rowcount(connection, {"key": "a", "at": AT})
    with pytest.raises(IntegrityError), driver_write(engine) as connection:
        ADD_STATE.rowcount(connection, {"key": "b", "at": AT})
        ADD_STATE.rowcount(connection, {"key": "a", "at": AT})  # the unique key: the whole write goes
    with pytest.raises(RuntimeError), driver_write(engine) as connection:
        ADD_STATE.rowcount(connection, {"key": "c", "at": AT})
        raise RuntimeError("the caller failed")
    with engine.connect() as connection:
        assert connection.execute(STATE_KEYS).scalars().all() == ["a"]
    with driver_write(engine) as connection:  # the pool's connections are fit for the next write
        ADD_STATE.rowcount(connection, {"key": "d", "at": AT})
    with engine.connect() as connection:
        assert connection.execute(STATE_KEYS).scalars().all() == ["a", "d"]


def test_a_driver_write_on_sqlite_holds_the_lock_from_its_start(
    sqlite_file: tuple[str, Engine],
) -> None:
    _, engine = sqlite_file
    other = sqlite3.connect(engine.url.database or "", timeout=0, isolation_level=None)
    try:
        with driver_write(engine):
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_on_a_fresh_connection_a_write_waits_for_its_commit(engine: Engine) -> None:
    with engine.connect() as connection:
        ADD_STATE.rowcount(connection, {"key": "kept", "at": AT})
        connection.commit()
        ADD_STATE.rowcount(connection, {"key": "dropped", "at": AT})  # never committed
    with engine.connect() as connection:
        assert connection.execute(STATE_KEYS).scalars().all() == ["kept"]


def test_a_value_the_column_type_cannot_convert_raises_a_statement_error(engine: Engine) -> None:
    with driver_write(engine) as connection, pytest.raises(StatementError, match="at"):
        ADD_STATE.rowcount(connection, {"key": "k", "at": "not a datetime"})
