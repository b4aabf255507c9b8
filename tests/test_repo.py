"""Repository functions whose behaviour under concurrency matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from storage import repo
from storage.db import read_session, write_session


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
