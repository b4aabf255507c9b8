"""The SQLite write gate: writers queue across threads and processes instead of polling SQLite."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from storage.db import (
    CHECKPOINT_EVERY,
    WriteGate,
    _readers,
    database_file,
    dispose,
    make_engine,
    read_session,
    write_connection,
    write_session,
)


def test_the_gate_is_reentrant_on_one_thread(tmp_path: Path) -> None:
    gate = WriteGate(str(tmp_path / "cargo.db"))
    with gate.held(), gate.held():
        pass
    with gate.held():  # released by the outer exit: takes it again at once
        pass


def test_threads_take_turns(tmp_path: Path) -> None:
    gate = WriteGate(str(tmp_path / "cargo.db"))
    inside = 0
    most = 0
    lock = threading.Lock()

    def writer() -> None:
        nonlocal inside, most
        for _ in range(200):
            with gate.held():
                with lock:
                    inside += 1
                    most = max(most, inside)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def _hold_in_child(gate: WriteGate, holding: object, release: object, released: str) -> None:
    with gate.held():
        holding.set()  # type: ignore[attr-defined]
        release.wait(10)  # type: ignore[attr-defined]
        Path(released).write_text("released")


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_process_queues_behind_its_parent_and_the_other_way_round(tmp_path: Path) -> None:
    """After a fork each process opens the lock file anew: a shared open file would give both the
    same lock, and no exclusion at all (gunicorn forks its workers from one parent)."""
    gate = WriteGate(str(tmp_path / "cargo.db"))
    with gate.held():  # the parent opens the lock file before the fork
        pass
    context = multiprocessing.get_context("fork")
    holding, release = context.Event(), context.Event()
    released = tmp_path / "child-released"
    child = context.Process(target=_hold_in_child, args=(gate, holding, release, str(released)))
    child.start()
    try:
        assert holding.wait(10)
        threading.Timer(0.2, release.set).start()
        with gate.held():
            assert released.exists()  # the parent got in only after the child let go
    finally:
        release.set()
        child.join(10)
    assert child.exitcode == 0


def test_sqlite_engines_write_through_the_gate(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'cargo.db'}")
    try:
        with write_connection(engine) as connection:
            connection.execute(text("CREATE TABLE t (n INTEGER)"))
        with write_session(engine) as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
        assert (tmp_path / "cargo.db-writelock").exists()
        with write_session(engine) as session:
            assert session.execute(text("SELECT n FROM t")).scalar_one() == 1
    finally:
        dispose(engine)


PAD = 45_000  # 11 pages a row: CHECKPOINT_EVERY rows pass SQLite's automatic checkpoint (1000 pages)


def test_the_wal_is_checkpointed_every_so_many_writes_after_the_gate(tmp_path: Path) -> None:
    """SQLite's own checkpoint (inside a commit, other writers queued behind it) is off; the
    process checkpoints every CHECKPOINT_EVERY writes instead, once it has left the gate."""
    database = tmp_path / "cargo.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with write_session(engine) as session:
            session.execute(text("CREATE TABLE t (pad TEXT)"))
        sizes = []
        for writes in range(2, 2 * CHECKPOINT_EVERY + 1):
            with write_session(engine) as session:
                session.execute(text("INSERT INTO t VALUES (:pad)"), {"pad": "x" * PAD})
            if writes in (CHECKPOINT_EVERY - 1, CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY - 1):
                sizes.append(database.stat().st_size)
    finally:
        dispose(engine)
    before, after, later = sizes
    assert after - before > (CHECKPOINT_EVERY - 2) * PAD  # the rows reached the database file at once
    assert later == after  # and no automatic checkpoint ran in between, past SQLite's 1000 pages


def _try_in_child(gate: WriteGate, result: str) -> None:
    try:
        with gate.held():
            Path(result).write_text("got in")
    except OperationalError as exc:
        Path(result).write_text(str(exc.orig))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_writer_waits_its_turn_for_so_long_then_fails_as_sqlite_would(tmp_path: Path) -> None:
    """A stuck writer elsewhere must not hang every other one: after the timeout the wait fails
    with SQLite's own "database is locked", and the gate works as before afterwards."""
    context = multiprocessing.get_context("fork")
    holder = WriteGate(str(tmp_path / "cargo.db"))
    holding, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(holder, holding, release, str(tmp_path / "x")))
    child.start()
    try:
        assert holding.wait(10)
        impatient = WriteGate(str(tmp_path / "cargo.db"), timeout=0.2)
        with pytest.raises(OperationalError, match="database is locked"), impatient.held():
            pass
    finally:
        release.set()
        child.join(10)
    with impatient.held():  # its turn now; and while it holds it, another process cannot get in
        result = tmp_path / "second-child"
        other = context.Process(
            target=_try_in_child, args=(WriteGate(str(tmp_path / "cargo.db"), timeout=0.2), str(result))
        )
        other.start()
        other.join(10)
    assert "database is locked" in result.read_text()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:shared?mode=memory&cache=shared&uri=true", None),
        ("sqlite:////srv/cargobot/cargo.db", "/srv/cargobot/cargo.db"),
        ("sqlite:///file:/srv/cargobot/cargo.db?uri=true", "/srv/cargobot/cargo.db"),
    ],
)
def test_the_lock_file_sits_beside_the_database_file(url: str, expected: str | None) -> None:
    assert database_file(make_url(url)) == expected


def test_a_begin_refused_by_sqlite_raises_sqlalchemys_error(tmp_path: Path) -> None:
    """The dialect emits BEGIN; its errors still arrive as SQLAlchemy's, like any other."""
    path = tmp_path / "cargo.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:  # the pool's one connection: stop waiting after 50 ms
            connection.exec_driver_sql("PRAGMA busy_timeout=50")
        outsider = sqlite3.connect(path, isolation_level=None)  # not behind the gate
        outsider.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(OperationalError, match="locked"), write_connection(engine):
                pass
        finally:
            outsider.rollback()
            outsider.close()
    finally:
        dispose(engine)


def _write_lock_is_free(path: Path) -> bool:
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def test_writes_begin_immediate_and_reads_begin_deferred(tmp_path: Path) -> None:
    path = tmp_path / "cargo.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with write_session(engine):
            assert not _write_lock_is_free(path)
        with write_connection(engine):
            assert not _write_lock_is_free(path)
        with read_session(engine) as session:
            session.execute(text("SELECT 1"))
            assert session.in_transaction() and _write_lock_is_free(path)
        with engine.connect() as connection:  # the option holds for every transaction of it
            connection.execution_options(sqlite_immediate=True)
            for _ in range(2):
                with connection.begin():
                    assert not _write_lock_is_free(path)
        with engine.connect() as connection:  # and ends when the connection goes back to the pool
            connection.execution_options(sqlite_immediate=True)
        with engine.connect() as connection, connection.begin():
            assert _write_lock_is_free(path)
        with pytest.raises(ValueError, match="connection's option"):
            engine.execution_options(sqlite_immediate=True)
        with pytest.raises(ValueError, match="sqlite3"):
            make_engine(f"sqlite+aiosqlite:///{path}")
        # No connection event on either engine: SQLAlchemy would dispatch events around every
        # statement (see storage.db.SQLiteDialect).
        assert not engine._has_events and not _readers[engine]._has_events
    finally:
        dispose(engine)
