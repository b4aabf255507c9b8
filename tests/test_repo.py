"""Repository functions whose behaviour under concurrency matters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from storage import repo
from storage.db import read_session, write_session
from tests.e2e import wait_for


def test_runtime_state_is_upserted(engine: Engine) -> None:
    """Two workers beating for the first time at once must not collide on the key."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    for value in ("1", "2"):
        with write_session(engine) as session:
            repo.set_state(session=session, key="worker_heartbeat", value=value, now=now)
    with read_session(engine) as session:
        state = repo.get_state(session=session, key="worker_heartbeat")
    assert state is not None and state.value == "2" and state.updated_at == now


def _stored_contact(engine: Engine, address: str) -> tuple[datetime | None, str]:
    with read_session(engine) as session:
        contact = repo.get_contact(session=session, address=address)
        assert contact is not None
        return contact.last_inbound_at, contact.language


def test_a_contacts_last_message_time_is_written_once_a_minute_and_language_at_once(engine: Engine) -> None:
    """The 24-hour window's clock may lag by less than TOUCH_GRANULARITY, never run ahead."""
    address, start = "whatsapp:+254700000777", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def touch(seconds: int, language: str | None = None) -> None:
        at = start + timedelta(seconds=seconds)
        with write_session(engine) as session:
            contact = repo.get_or_create_contact(session=session, address=address, now=at)
            repo.touch_contact(session=session, contact=contact, at=at, language=language)

    touch(0)
    assert _stored_contact(engine, address)[0] == start
    touch(30)
    assert _stored_contact(engine, address)[0] == start  # within the granularity: no write
    touch(45, language="sw")
    assert _stored_contact(engine, address) == (start + timedelta(seconds=45), "sw")  # a change: written
    touch(45 + 61)
    assert _stored_contact(engine, address)[0] == start + timedelta(seconds=106)


def test_admins_from_the_settings_are_made_admins_once_and_keep_their_record(engine: Engine) -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    with write_session(engine) as session:
        repo.set_staff(
            session=session, address="telegram:4242", role="agent", added_by="whatsapp:+4", now=now
        )
    for days in (1, 2):  # the second time changes nothing, not even the time added
        with write_session(engine) as session:
            addresses = ["telegram:4242", "whatsapp:+447700900001"]
            repo.ensure_admins(session=session, addresses=addresses, now=now + timedelta(days))
    with read_session(engine) as session:
        staff = {s.address: (s.role, s.added_by, s.added_at) for s in repo.list_staff(session=session)}
    assert staff == {
        "telegram:4242": ("admin", "whatsapp:+4", now),  # promoted, who added them kept
        "whatsapp:+447700900001": ("admin", "CARGOBOT_ADMINS", now + timedelta(1)),
    }


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_processes_starting_at_once_bootstrap_the_same_admin_without_colliding(engine: Engine) -> None:
    """Each cargobot process adds CARGOBOT_ADMINS as it starts. Here one adds the admin and has not
    committed when a second tries: the second must wait and then find the row, not fail on the
    unique address (a worker once died at start that way)."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with write_session(engine) as session:
                repo.ensure_admins(session=session, addresses=["whatsapp:+447700900001"], now=now)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with write_session(engine) as first:
        repo.ensure_admins(session=first, addresses=["whatsapp:+447700900001"], now=now)
        thread = threading.Thread(target=second)
        thread.start()
        # Commit only once the second process is waiting on the first's uncommitted row.
        assert wait_for(lambda: _waiting_on_a_lock(engine), timeout=10)
    thread.join(10)
    assert not thread.is_alive() and errors == []
    with read_session(engine) as session:
        assert [(s.address, s.role) for s in repo.list_staff(session=session)] == [
            ("whatsapp:+447700900001", "admin")
        ]


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    " AND query LIKE 'INSERT INTO staff%'"
                )
            ).scalar()
        )
