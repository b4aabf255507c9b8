"""Repository functions whose behaviour under concurrency matters."""

from __future__ import annotations

from datetime import UTC, datetime

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
