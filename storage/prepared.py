"""Core statements compiled once and run on the driver's cursor: the statements every inbound
message runs.

SQLAlchemy's ``Connection.execute`` computes the statement's cache key (a walk of the whole
statement), builds an execution context and a cursor result for every execution; for the short
indexed statements of a customer's question that cost three to four times what SQLite took to
answer them, and more once the process's caches were cold. A ``Prepared`` statement is compiled
by SQLAlchemy, once per dialect, and runs with SQLAlchemy's own type processors for each
parameter and column, so it reads and writes exactly what ``Connection.execute`` would.

What it leaves out: engine events around the statement (``before_cursor_execute``,
``handle_error`` …: a connection that needs to see its driver errors puts an ``ERROR_HOOK`` in its
pool ``info`` instead), echo logging, parameters that need the execution context (expanding ``IN``
lists, Python-side column defaults), and columns whose conversion needs the driver's column type
(``Numeric``, ``Float``). Statements that need those, or whose columns are not distinct names, are
refused when first compiled; a driver error is wrapped as SQLAlchemy wraps it (``IntegrityError``,
``OperationalError`` …), and a lost connection is invalidated.
"""

from __future__ import annotations

import logging
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement, sqltypes

log = logging.getLogger(__name__)

Processor = Callable[[Any], Any] | None

ERROR_HOOK = "prepared_error_hook"
"""A key of a pooled connection's ``info``: ``hook(info, exc)`` is called with each driver error a
``Prepared`` statement meets on that connection, before it is wrapped, and may raise in its place:
what an engine's ``handle_error`` listener is to ``Connection.execute``."""


@dataclass(frozen=True)
class DriverConnection:
    """A pooled connection in a transaction run without SQLAlchemy's ``Connection``
    (``storage.db.driver_write``): only ``Prepared`` statements run on it."""

    dialect: Dialect
    connection: PoolProxiedConnection

    def invalidate(self, exception: BaseException | None = None) -> None:
        self.connection.invalidate(exception)


OnConnection = Connection | DriverConnection
"""What a ``Prepared`` statement runs on: SQLAlchemy's connection (a session's, a Core
transaction's) or a ``DriverConnection``."""


def driver_error(on: OnConnection, exc: Exception, statement: str, params: Any) -> Exception:
    """``exc``, raised by the driver, as SQLAlchemy would raise it (``IntegrityError``,
    ``OperationalError`` …); a lost connection is invalidated first. Anything else as it is."""
    dialect = on.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    if not isinstance(exc, dbapi_error):
        return exc
    hook = on.connection.info.get(ERROR_HOOK)
    if hook is not None:
        hook(on.connection.info, exc)
    lost = dialect.is_disconnect(exc, on.connection.dbapi_connection, None)
    if lost:
        on.invalidate(exc)
    return DBAPIError.instance(
        statement, params, exc, dbapi_error, connection_invalidated=lost, dialect=dialect
    )


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # a positional dialect's parameters in order, or a named one's names
    positional: bool
    literals: Mapping[str, Any]  # values fixed in the statement ("held", LIMIT 1 …)
    bind_processors: Mapping[str, Processor]
    row: Callable[..., Any] | None  # None: the statement returns no rows
    result_processors: tuple[Processor, ...]


class Prepared:
    """``statement``, ready to run on any connection without SQLAlchemy's per-execution work.

    ``rows`` returns named tuples (attribute access and slicing, like ``Row``); ``rowcount`` runs
    a write and says how many rows it changed.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def rows(self, connection: OnConnection, params: Mapping[str, Any]) -> list[Any]:
        compiled = self._for(connection.dialect)
        make = compiled.row
        if make is None:
            raise TypeError("the statement returns no rows: run it with rowcount()")
        fetched = self._execute(connection, compiled, params, lambda cursor: cursor.fetchall())
        processors = compiled.result_processors
        if not any(processors):
            return [make(*values) for values in fetched]
        return [make(*_processed(processors, values)) for values in fetched]

    def rowcount(self, connection: OnConnection, params: Mapping[str, Any]) -> int:
        compiled = self._for(connection.dialect)
        return int(self._execute(connection, compiled, params, lambda cursor: cursor.rowcount))

    def _execute(
        self, connection: OnConnection, compiled: _Compiled, params: Mapping[str, Any], result: Any
    ) -> Any:
        """Run the statement and take ``result(cursor)`` from it, its errors raised as SQLAlchemy
        raises them."""
        if isinstance(connection, Connection) and not connection.in_transaction():
            connection.begin()  # as SQLAlchemy autobegins: the write is the caller's to commit
        bound = _bound(compiled, params)
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is None:
            raise TypeError("the connection is closed")
        try:
            cursor = dbapi_connection.cursor()  # a closed driver connection fails here
            try:
                cursor.execute(compiled.sql, bound)
                return result(cursor)  # SQLite reads rows lazily: a row may fail here
            finally:
                _close(cursor)  # before the connection may be invalidated below
        except Exception as exc:
            wrapped = driver_error(connection, exc, compiled.sql, bound)
            if wrapped is exc:
                raise
            raise wrapped from exc
        except BaseException:  # interrupted mid-statement: the driver's state is unknown
            connection.invalidate()
            raise

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = _compile(self.statement, dialect)
        return compiled


def _close(cursor: Any) -> None:
    """Close ``cursor``; an error doing so is logged, not raised: a lost connection takes its
    cursors with it, and the error the statement met is the one to raise."""
    try:
        cursor.close()
    except Exception:
        log.debug("error closing a cursor", exc_info=True)


def _bound(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    """The driver's parameters: the statement's literals and ``params``, converted by the column
    types as SQLAlchemy converts them (None included), in the dialect's paramstyle."""
    values = dict(compiled.literals)
    values.update(params)
    for name, process in compiled.bind_processors.items():
        if name in values:
            try:
                values[name] = process(values[name])
            except Exception as exc:
                raise StatementError(f"cannot convert {name!r}", compiled.sql, params, exc) from exc
    try:
        if compiled.positional:
            return tuple(values[name] for name in compiled.names)
        return {name: values[name] for name in compiled.names}
    except KeyError as missing:  # as SQLAlchemy says it
        raise StatementError(f"no value for the parameter {missing}", compiled.sql, params, None) from None


def _processed(processors: tuple[Processor, ...], values: tuple[Any, ...]) -> list[Any]:
    return [
        value if process is None else process(value)
        for process, value in zip(processors, values, strict=True)
    ]


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError("a prepared statement cannot fill Python-side column defaults")
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    processors: dict[str, Processor] = {}
    for bind, name in compiled.bind_names.items():  # a name used twice takes its typed use's processor
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    escaped = getattr(compiled, "escaped_bind_names", None) or {}
    if escaped:
        raise ValueError("a prepared statement's parameter names must need no escaping")
    for bind in binds.values():
        if bind.expanding:
            raise ValueError("a prepared statement cannot expand IN lists")
        if bind.callable is not None:
            raise ValueError("a prepared statement's values are fixed when it is compiled: no callables")
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("a prepared statement cannot render parameters at execution")
    literals = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
    row = None
    result_processors: tuple[Processor, ...] = ()
    columns = getattr(statement, "exported_columns", None)  # a SELECT's columns, or what DML RETURNs
    if columns:
        if any(isinstance(column.type, (sqltypes.Numeric, sqltypes.Float)) for column in columns):
            raise ValueError("a prepared statement cannot read Numeric or Float columns")
        try:
            row = namedtuple("PreparedRow", [column.key for column in columns])  # type: ignore[misc]
        except (TypeError, ValueError):  # None, a keyword, or a name used twice
            raise ValueError("a prepared statement's columns must have distinct names: label them") from None
        result_processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
    names = tuple(compiled.positiontup) if compiled.positional else tuple(binds)
    return _Compiled(
        sql=compiled.string,
        names=names,
        positional=bool(compiled.positional),
        literals=literals,
        bind_processors=processors,
        row=row,
        result_processors=result_processors,
    )
