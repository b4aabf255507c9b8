"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and a way to talk to the bot.

Every test that takes ``engine`` runs twice: on SQLite (always) and on PostgreSQL (127.0.0.1:5432,
database ``test``). PostgreSQL tests skip when the server is unreachable, unless ``CI=true``, where a
missing server fails the run.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text

from handlers.context import Context
from handlers.router import answer
from handlers.types import Inbound, Reply
from storage.db import dispose, init_db, make_engine, write_session
from tests.e2e import postgres_schema

PG_ADMIN_URL = os.environ.get(
    "CARGOBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"

# No per-example deadline: on a shared machine one example stalled by the scheduler is not a
# slow property, and Hypothesis would fail the test as flaky.
hypothesis_settings.register_profile("cargobot", deadline=None)
hypothesis_settings.load_profile("cargobot")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run the soak test (always run when CI=true)")
    parser.addoption("--audit", action="store_true", help="audit the dependencies (needs the internet)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The soak is opt-in on a laptop (about a minute and a half) and always runs in CI. The
    dependency audit asks PyPI's advisory service, and the suite reaches nothing outside this
    machine: it runs only when asked for."""
    opt_in = {"audit": "the dependency audit needs the internet: pytest --audit"}
    if not (IN_CI or config.getoption("--soak")):
        opt_in["soak"] = "the soak is opt-in: pytest --soak (CI runs it)"
    if config.getoption("--audit"):
        del opt_in["audit"]
    for item in items:
        for keyword, reason in opt_in.items():
            if keyword in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def require_postgres() -> None:
    if not postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and CI=true: it must run in CI")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    dispose(engine)
    return path


@pytest.fixture
def sqlite_file(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated SQLite file for processes under test to share, and the test's own engine on it."""
    path = tmp_path / "cargobot.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    yield url, engine
    dispose(engine)


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A private schema in the ``test`` database, migrated once, dropped at the end."""
    require_postgres()
    with postgres_schema(PG_ADMIN_URL) as url:
        engine = make_engine(url)
        init_db(engine)
        dispose(engine)
        yield url


def _truncate_all(engine: Engine) -> None:
    with engine.begin() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT tablename FROM pg_tables"
                    " WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
                )
            )
        ]
        if tables:
            conn.execute(
                text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
            )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "cargobot.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_schema_url")
    engine = make_engine(url)
    _truncate_all(engine)
    dispose(engine)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    dispose(engine)


@pytest.fixture
def ctx() -> Context:
    return Context(
        business_name="Example Freight",
        business_contact="WhatsApp +44 7700 900123",
        kra_contact="KRA contact centre",
        office_hours="Mon-Fri 08:00-17:00 EAT",
        lookup_limit_per_hour=30,
        alert_grace_seconds=60,
    )


@dataclass
class Clock:
    """A controllable 'now' for handlers; tests move it instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


_PROVIDER_IDS = itertools.count(1)  # unique across Chats: two may talk on one database


@dataclass
class Chat:
    """Talk to the bot as someone, through the same entry point every channel uses; each message
    carries a provider id, as on WhatsApp and Telegram, unless ``provider_id=""`` (the console)."""

    engine: Engine
    ctx: Context
    clock: Clock

    def say(
        self, address: str, text: str, *, provider_id: str | None = None, media: tuple[str, ...] = ()
    ) -> list[Reply]:
        inbound = Inbound(
            address=address,
            text=text,
            received_at=self.clock.now,
            provider_id=f"chat-{next(_PROVIDER_IDS)}" if provider_id is None else provider_id or None,
            media_urls=media,
        )
        replies, _ = answer(engine=self.engine, inbound=inbound, ctx=self.ctx, now=lambda: self.clock.now)
        return replies or []

    def text(self, address: str, message: str) -> str:
        return "\n\n".join(r.text for r in self.say(address, message))


ADMIN = "console:admin"
AGENT = "console:agent"
CUSTOMER = "whatsapp:+254700000101"  # invented Kenyan number
UK_CUSTOMER = "whatsapp:+447700900101"  # UK drama range


@pytest.fixture
def chat(engine: Engine, ctx: Context, clock: Clock) -> Chat:
    from storage import repo

    with write_session(engine) as session:
        repo.ensure_admins(session=session, addresses=[ADMIN], now=clock.now)
        repo.set_staff(session=session, address=AGENT, role="agent", added_by=ADMIN, now=clock.now)
    return Chat(engine=engine, ctx=ctx, clock=clock)
