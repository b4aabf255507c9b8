"""``cargobot worker`` as real processes against the fake Bot API: faults, kill -9, two workers.

The worker runs in webhook mode (PUBLIC_BASE_URL and TELEGRAM_WEBHOOK_SECRET set), so it only
dispatches and does not long-poll the fake: these tests are about the outbox. Each test enqueues a
broadcast, polls the database (bounded) until every row is settled, then compares what the fake
received with what was enqueued.

The in-flight bound: a worker commits each send before its sending task takes the next row, so a
kill -9 leaves at most ``CARGOBOT_DISPATCH_CONCURRENCY`` sends whose outcome was never recorded;
those rows are claimed again when their lease ends and are the only ones that may arrive twice.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import Engine, func, inspect, select

from handlers.alerts import outbox_row
from storage import repo
from storage.db import dispose, make_engine, read_session, write_session
from storage.models import Outbox
from tests.conftest import PG_ADMIN_URL, require_postgres
from tests.e2e import postgres_schema
from tests.fakes import FakeTelegram, Fault

pytestmark = pytest.mark.e2e

TOKEN = "777001:e2e-worker-token"
FIRST_CHAT = 5_000_000
LEASE_SECONDS = 5
CONCURRENCY = 4


class Worker:
    """One ``cargobot worker`` process, its output in a log file."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str) -> None:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TWILIO_", "TELEGRAM_", "CARGOBOT_", "ALERT_", "DATABASE_URL", "PUBLIC_"))
        }
        self.env = {**inherited, **env}
        self.cwd = cwd
        self.log_path = cwd / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self) -> Worker:
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker"],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
        )
        return self

    def running(self) -> bool:
        return "running: channels" in self.log()

    def kill(self) -> None:
        """kill -9: no shutdown of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._close()

    def _close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers with ``workers(env, name)``; all are stopped at the end, whatever happened."""
    started: list[Worker] = []

    def start(env: dict[str, str], name: str = "worker") -> Worker:
        worker = Worker(env, tmp_path, f"{name}-{len(started)}").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def worker_env(database_url: str, fake: FakeTelegram, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "PUBLIC_BASE_URL": "https://cargobot.example",  # webhook mode: no long polling
        "TELEGRAM_WEBHOOK_SECRET": "e2e-webhook-secret",
        "TELEGRAM_MAX_PER_SECOND": "1000",
        "CARGOBOT_DISPATCH_INTERVAL_SECONDS": "0.3",
        "CARGOBOT_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
        "CARGOBOT_DISPATCH_CONCURRENCY": str(CONCURRENCY),
        "LOG_LEVEL": "INFO",
        **extra,
    }


def broadcast(engine: Engine, count: int, *, event: str = "release:MSKU9070323") -> list[int]:
    """One release alert to ``count`` Telegram subscribers, as the outbox holds it; the chat ids."""
    now = datetime.now(UTC)
    chats = [FIRST_CHAT + n for n in range(count)]
    rows = [
        outbox_row(
            event_key=event,
            recipient=f"telegram:{chat}",
            kind="release",
            text=f"Released: MSKU9070323 ({chat})",
            now=now,
            due_at=now,
        )
        for chat in chats
    ]
    with write_session(engine) as session:
        assert repo.enqueue(session=session, rows=rows) == count
    return chats


def statuses(engine: Engine) -> collections.Counter[str]:
    with read_session(engine) as session:
        rows = session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all()
    return collections.Counter({status: n for status, n in rows})


def claims(engine: Engine) -> dict[int, str]:
    """Rows being sent now: id → the worker holding the claim."""
    with read_session(engine) as session:
        rows = session.execute(select(Outbox.id, Outbox.claimed_by).where(Outbox.status == "sending")).all()
    return {row_id: worker for row_id, worker in rows if worker}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, *logs: Worker) -> None:
    """Poll the real processes' effects until ``predicate`` holds; fail with the workers' logs."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {w.log_path.name}\n{w.log()[-3000:]}" for w in logs)
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(0.05)


def received(fake: FakeTelegram) -> collections.Counter[int]:
    return collections.Counter(int(send.chat_id) for send in fake.sent)


def test_every_alert_arrives_once_through_429s_500s_drops_and_slow_answers(
    sqlite_file: tuple[str, Engine], workers: Callable[..., Worker]
) -> None:
    sqlite_url, engine = sqlite_file
    chats = broadcast(engine, 40)
    # The first 40 sends meet these answers in a seeded random order; the retries then go through.
    plan = ["429"] * 5 + ["500"] * 5 + ["drop"] * 3 + ["slow"] * 5 + ["ok"] * 22
    random.Random(20261123).shuffle(plan)
    with FakeTelegram(token=TOKEN) as fake:
        for answer in plan:
            if answer == "429":
                fake.next_429(1, retry_after=1)
            elif answer == "500":
                fake.next_500(1)
            elif answer == "drop":
                fake.next_drop(1)
            elif answer == "slow":
                fake.next_delay(1, seconds=1.0)  # slow, but well within the worker's 10 s timeout
            else:
                fake.inject(Fault())  # answers normally
        worker = workers(worker_env(sqlite_url, fake))
        wait_for(lambda: statuses(engine)["sent"] == len(chats), 45, "every alert to be sent", worker)
        got = received(fake)
        assert fake.pending_faults() == 0
        assert (fake.http_429, fake.counts["http_500"], fake.counts["dropped"]) == (5, 5, 3)
        assert fake.errors == []

    assert statuses(engine) == {"sent": len(chats)}
    assert sorted(got) == chats  # none lost
    assert set(got.values()) == {1}  # none twice
    assert "Traceback" not in worker.log()


def test_worker_killed_mid_broadcast_is_replaced_and_only_in_flight_sends_repeat(
    sqlite_file: tuple[str, Engine], workers: Callable[..., Worker]
) -> None:
    sqlite_url, engine = sqlite_file
    chats = broadcast(engine, 60)
    with FakeTelegram(token=TOKEN, latency=0.25) as fake:  # slow: 4 at a time, 16 sends a second
        env = worker_env(sqlite_url, fake)
        first = workers(env, "first")
        wait_for(lambda: len(fake.sent) >= 12, 30, "the broadcast to be under way", first)
        first.kill()
        killed_at = time.monotonic()
        orphaned = claims(engine)  # the dead worker's claims: in flight, or claimed ahead
        orphaned_chats = _chats_of(engine, orphaned)
        reached = len(orphaned_chats & set(received(fake)))  # sent, outcome never recorded

        second = workers(env, "second")
        wait_for(
            lambda: not set(orphaned) & set(claims(engine)) and _all_sent(engine, orphaned),
            60,
            "the dead worker's claims to be taken over",
            second,
        )
        takeover = time.monotonic() - killed_at
        wait_for(lambda: statuses(engine)["sent"] == len(chats), 30, "every alert to be sent", second)
        got = received(fake)
        assert fake.errors == []

    duplicates = {chat: n for chat, n in got.items() if n > 1}
    print(
        f"\nkill -9 mid-broadcast: {len(orphaned)} claims orphaned, {reached} of them had reached the fake, "
        f"{sum(n - 1 for n in duplicates.values())} duplicate(s) {sorted(duplicates)}, "
        f"claims taken over {takeover:.1f} s after the kill (lease {LEASE_SECONDS} s)"
    )
    assert statuses(engine) == {"sent": len(chats)}
    assert sorted(got) == chats  # none lost
    assert set(duplicates) <= orphaned_chats  # only sends whose outcome the dead worker never recorded
    assert sum(n - 1 for n in duplicates.values()) <= CONCURRENCY  # the documented in-flight bound
    assert first.process is not None and first.process.returncode == -signal.SIGKILL
    assert orphaned and len(orphaned) <= 4 * CONCURRENCY  # in flight, waiting, or queued
    assert takeover <= LEASE_SECONDS + 10 <= 60


def test_worker_stopped_mid_broadcast_finishes_its_claims_and_exits_cleanly(
    sqlite_file: tuple[str, Engine], workers: Callable[..., Worker]
) -> None:
    """SIGTERM (a deploy, systemd stop): the pass under way sends what it claimed, claims nothing
    more, and the process exits 0 without a traceback; the next worker sends the rest once."""
    sqlite_url, engine = sqlite_file
    chats = broadcast(engine, 60)
    with FakeTelegram(token=TOKEN, latency=0.25) as fake:
        env = worker_env(sqlite_url, fake)
        first = workers(env, "first")
        wait_for(lambda: len(fake.sent) >= 12, 30, "the broadcast to be under way", first)
        first.stop()
        assert claims(engine) == {}  # nothing left claimed: every claimed row was sent and recorded
        sent_before = statuses(engine)["sent"]
        assert sorted(received(fake).values()) == [1] * sent_before
        second = workers(env, "second")
        wait_for(lambda: statuses(engine)["sent"] == len(chats), 30, "every alert to be sent", second)
        got = received(fake)
        assert fake.errors == []

    assert first.process is not None and first.process.returncode == 0
    assert "Traceback" not in first.log() and "worker stopped" in first.log()
    assert sent_before < len(chats)  # it really was stopped mid-broadcast
    assert sorted(got) == chats and set(got.values()) == {1}  # each exactly once


def _chats_of(engine: Engine, ids: dict[int, str]) -> set[int]:
    with read_session(engine) as session:
        rows = session.execute(select(Outbox.recipient).where(Outbox.id.in_(list(ids)))).scalars()  # type: ignore[union-attr]
        return {int(recipient.removeprefix("telegram:")) for recipient in rows}


def _all_sent(engine: Engine, ids: dict[int, str]) -> bool:
    with read_session(engine) as session:
        found = session.execute(select(Outbox.status).where(Outbox.id.in_(list(ids)))).scalars().all()  # type: ignore[union-attr]
    return set(found) == {"sent"}


@pytest.fixture
def fresh_postgres_schema() -> Iterator[str]:
    """An empty schema of its own (the workers migrate it), dropped at the end."""
    require_postgres()
    with postgres_schema(PG_ADMIN_URL, "cargobot_e2e") as url:
        yield url


@pytest.mark.postgres
def test_two_workers_on_one_postgres_database_send_each_alert_exactly_once(
    fresh_postgres_schema: str, workers: Callable[..., Worker]
) -> None:
    url = fresh_postgres_schema
    with FakeTelegram(token=TOKEN, latency=0.05) as fake:
        env = worker_env(url, fake)
        pair = [workers(env, "a"), workers(env, "b")]  # both migrate the empty schema at once
        wait_for(lambda: all(w.running() for w in pair), 30, "both workers to start", *pair)
        engine = make_engine(url)
        try:
            assert inspect(engine).has_table("outbox")
            chats = broadcast(engine, 200)
            holders: set[str] = set()

            def done() -> bool:
                holders.update(claims(engine).values())
                return statuses(engine)["sent"] == len(chats)

            wait_for(done, 30, "every alert to be sent", *pair)
        finally:
            dispose(engine)
        got = received(fake)
        assert fake.errors == []

    assert sorted(got) == chats and set(got.values()) == {1}  # each exactly once
    assert len(holders) == 2, f"both workers should have claimed rows; saw {holders}"
    assert all(w.process is not None and w.process.poll() is None for w in pair)
    for worker in pair:
        assert "Traceback" not in worker.log()
    print(f"\ntwo workers: {json.dumps({'alerts': len(chats), 'claimers_seen': len(holders)})}")
