"""Answering on a SQLite file: read first, outside the write turn, then a short write transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, func, insert, select

from bot.demo import seed_demo
from handlers.context import Context
from handlers.router import answer, receive
from handlers.types import Inbound
from storage import repo
from storage.db import (
    DeferredWrite,
    NeedsWriteTurn,
    _readers,
    apply_writes,
    deferred_writes,
    dispose,
    driver_write,
    make_engine,
    read_first_session,
    reads_first,
    write,
    write_connection,
    write_session,
)
from storage.models import Contact, Hold, InboundMessage, RuntimeState, Subscription
from storage.prepared import Prepared
from tests.conftest import ADMIN, CUSTOMER, Chat, Clock

STATE = RuntimeState.__table__  # type: ignore[attr-defined]


@pytest.fixture
def demo(sqlite_file: tuple[str, Engine], ctx: Context, clock: Clock) -> Iterator[Chat]:
    _, engine = sqlite_file
    seed_demo(engine, now=clock.now)
    with write_session(engine) as session:
        repo.ensure_admins(session=session, addresses=[ADMIN], now=clock.now)
    yield Chat(engine=engine, ctx=ctx, clock=clock)


def rows(engine: Engine, model: type) -> int:
    with write_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def ask(chat: Chat, text: str, provider_id: str, now: Callable[[], datetime]) -> list[str] | None:
    inbound = Inbound(address=CUSTOMER, text=text, received_at=chat.clock.now, provider_id=provider_id)
    replies, _ = answer(engine=chat.engine, inbound=inbound, ctx=chat.ctx, now=now)
    return None if replies is None else [r.text for r in replies]


def test_only_sqlite_files_read_first(tmp_path: Path) -> None:
    file_engine = make_engine(f"sqlite:///{tmp_path / 'cargo.db'}")
    memory_engine = make_engine("sqlite://")
    try:
        assert reads_first(file_engine)
        assert not reads_first(memory_engine)  # a second connection would see another database
    finally:
        dispose(file_engine)
        dispose(memory_engine)


def test_a_status_question_is_worked_out_while_another_writer_holds_the_turn(demo: Chat) -> None:
    demo.text(CUSTOMER, "hello")  # a known sender: a new one needs the write turn for its contact
    working = threading.Event()
    release = threading.Event()
    result: list[list[str] | None] = []

    def now() -> datetime:
        working.set()
        return demo.clock.now

    holding = threading.Event()

    def hold_the_turn() -> None:
        with write_session(demo.engine):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_turn)
    holder.start()
    assert holding.wait(10)
    asker = threading.Thread(target=lambda: result.append(ask(demo, "where is TGHU7345017?", "SMq1", now)))
    try:
        asker.start()
        assert working.wait(5), "the answer waited for the other writer before reading"
        asker.join(0.3)
        assert asker.is_alive(), "the answer was recorded without its write turn"
    finally:
        release.set()
        holder.join(10)
        asker.join(10)
    assert result and result[0] is not None and result[0][0].startswith("Container TGHU7345017")
    with write_session(demo.engine) as session:
        stored = session.execute(
            select(InboundMessage.answered_at).where(InboundMessage.provider_key == "whatsapp:SMq1")
        ).scalar_one()
    assert stored is not None


def test_two_deliveries_worked_out_at_once_are_answered_once(demo: Chat) -> None:
    demo.text(CUSTOMER, "hello")
    both_reading = threading.Barrier(2, timeout=5)
    results: list[list[str] | None] = []

    def deliver() -> None:
        met = False

        def now() -> datetime:
            nonlocal met
            if not met:  # both have read that the message is new before either records it
                met = True
                both_reading.wait()
            return demo.clock.now

        results.append(ask(demo, "TGHU7345017", "SMtwice", now))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r is None for r in results) == [False, True]
    with write_session(demo.engine) as session:
        count = session.execute(
            select(func.count()).where(InboundMessage.provider_key == "whatsapp:SMtwice")
        ).scalar_one()
    assert count == 1


@pytest.mark.parametrize(
    ("sender", "text", "model"),
    [
        ("whatsapp:+254700000199", "TGHU7345017", Contact),  # a new sender's contact
        (CUSTOMER, "ALERT TGHU7345017", Subscription),
        (ADMIN, "/hold TGHU7345017 kebs", Hold),  # a staff command
    ],
)
def test_messages_that_change_more_are_answered_in_the_write_turn(
    demo: Chat, sender: str, text: str, model: type
) -> None:
    demo.text(CUSTOMER, "hello")
    before = rows(demo.engine, model)
    assert demo.text(sender, text)
    assert rows(demo.engine, model) == before + 1


@pytest.mark.parametrize("run", ["execute", "prepared"])
def test_a_write_in_a_read_first_session_is_refused_even_when_swallowed(demo: Chat, run: str) -> None:
    """Refused however it runs: through SQLAlchemy (its handle_error event) or as a Prepared
    statement on the session's connection (the connection's ERROR_HOOK), not through ``write``."""
    add = insert(STATE).values(key="k", value="v", updated_at=bindparam("at"))
    with pytest.raises(NeedsWriteTurn), read_first_session(demo.engine) as session:
        try:
            if run == "execute":
                session.connection().execute(add, {"at": demo.clock.now})
            else:
                Prepared(add).rowcount(session.connection(), {"at": demo.clock.now})
        except Exception:  # noqa: BLE001 - a handler that hides errors must not hide this one
            pass
    assert rows(demo.engine, RuntimeState) == 0


def test_unflushed_orm_changes_need_the_write_turn(demo: Chat) -> None:
    demo.text(CUSTOMER, "hello")
    with pytest.raises(NeedsWriteTurn), read_first_session(demo.engine) as session:
        contact = session.execute(select(Contact).where(Contact.address == CUSTOMER)).scalar_one()
        contact.display_name = "Changed"


def test_a_change_to_the_contact_arrival_read_needs_the_write_turn(demo: Chat) -> None:
    """The contact is built from the arrival row and watched, not attached: changing it is a write."""
    demo.text(CUSTOMER, "hello")
    with pytest.raises(NeedsWriteTurn), read_first_session(demo.engine) as session:
        known = repo.arrival(session=session, address=CUSTOMER, provider_key=None, now=demo.clock.now)
        assert known.contact is not None and known.contact not in session
        known.contact.language = "sw"


def test_what_a_customer_changes_about_themselves_is_kept(demo: Chat) -> None:
    demo.text(CUSTOMER, "hello")
    inbound = Inbound(
        address=CUSTOMER,
        text="LANG SW",
        received_at=demo.clock.now,
        provider_id="SMname",
        display_name="Wanjiku",
    )
    answer(engine=demo.engine, inbound=inbound, ctx=demo.ctx, now=lambda: demo.clock.now)
    with write_session(demo.engine) as session:
        contact = repo.get_contact(session=session, address=CUSTOMER)
    assert contact is not None
    assert (contact.language, contact.language_chosen, contact.display_name) == ("sw", True, "Wanjiku")


def test_deferred_writes_wait_for_the_write_turn(demo: Chat) -> None:
    statement = Prepared(
        insert(STATE).values(key=bindparam("key"), value=bindparam("value"), updated_at=bindparam("at"))
    )
    with read_first_session(demo.engine) as session:
        write(session, statement, {"key": "a", "value": "1", "at": demo.clock.now})
        write(session, statement, {"key": "b", "value": "2", "at": demo.clock.now})
        writes = deferred_writes(session)
    assert rows(demo.engine, RuntimeState) == 0
    with driver_write(demo.engine) as connection:
        apply_writes(connection, writes)
    assert rows(demo.engine, RuntimeState) == 2


def test_a_status_question_costs_two_reads_and_one_insert(demo: Chat) -> None:
    """What answering costs, pinned: the arrival read, the shipments (with the asker's link, their
    subscription and whether any hold is active), and the message's record with its lookup count.
    Holds are read only for a shipment on hold."""
    demo.text(CUSTOMER, "hello")
    statements: list[str] = []

    def trace(dbapi_connection: Any, *_args: object) -> None:  # SQLite's own record: prepared ones too
        dbapi_connection.set_trace_callback(
            lambda sql: statements.append(sql) if sql.split()[0] in ("SELECT", "INSERT", "UPDATE") else None
        )

    def untrace(dbapi_connection: Any, *_args: object) -> None:
        dbapi_connection.set_trace_callback(None)

    engines = (demo.engine, _readers[demo.engine])  # not the Engine class: that would stay on
    for engine in engines:
        event.listen(engine, "checkout", trace)
        event.listen(engine, "checkin", untrace)
    try:
        demo.text(CUSTOMER, "CMAU1639120")  # no holds
        quiet = list(statements)
        statements.clear()
        demo.text(CUSTOMER, "TGHU7345017")  # on hold
    finally:
        for engine in engines:
            event.remove(engine, "checkout", trace)
            event.remove(engine, "checkin", untrace)
    assert [s.split()[0] for s in quiet] == ["SELECT", "SELECT", "INSERT"]
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT", "SELECT", "INSERT"]
    assert statements[2].split("FROM")[1].split()[0] == "hold"


def _worked_out_first(chat: Chat, text: str, provider_id: str) -> list[DeferredWrite]:
    """A message's answer worked out read-first, its writes kept for later."""
    inbound = Inbound(address=CUSTOMER, text=text, received_at=chat.clock.now, provider_id=provider_id)
    with read_first_session(chat.engine) as session:
        assert receive(session=session, inbound=inbound, ctx=chat.ctx, now=chat.clock.now) is not None
        return deferred_writes(session)


def test_a_late_record_neither_replaces_a_chosen_language_nor_moves_the_last_message_back(demo: Chat) -> None:
    demo.text(CUSTOMER, "hello")
    demo.clock.advance(minutes=5)
    writes = _worked_out_first(demo, "Habari, mzigo TGHU7345017?", "SMslow")  # detected: Kiswahili
    demo.clock.advance(minutes=1)
    demo.text(CUSTOMER, "LANG EN")  # answered meanwhile, in the write turn
    with write_connection(demo.engine) as connection:
        apply_writes(connection, writes)
    with write_session(demo.engine) as session:
        contact = session.execute(select(Contact).where(Contact.address == CUSTOMER)).scalar_one()
    assert (contact.language, contact.language_chosen) == ("en", True)
    assert contact.last_inbound_at == demo.clock.now


def test_a_record_worked_out_before_an_erasure_is_not_written_after_it(demo: Chat) -> None:
    demo.text(CUSTOMER, "hello")
    writes = _worked_out_first(demo, "TGHU7345017", "SMlate")
    with write_session(demo.engine) as session:  # DELETE MY DATA confirmed meanwhile
        contact = session.execute(select(Contact).where(Contact.address == CUSTOMER)).scalar_one()
        repo.erase_contact_data(session=session, contact=contact, anonymous="erased:test")
    with pytest.raises(NeedsWriteTurn), write_connection(demo.engine) as connection:
        apply_writes(connection, writes)
    with write_session(demo.engine) as session:
        kept = session.execute(select(func.count()).where(InboundMessage.address == CUSTOMER)).scalar_one()
    assert kept == 0
