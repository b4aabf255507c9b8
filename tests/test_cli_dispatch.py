"""``cargobot dispatch --once [--json]`` as operations scripts run it: a real subprocess on a SQLite
file, Telegram and WhatsApp through the real SDKs against the fake servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from handlers.alerts import outbox_row
from storage import repo
from storage.db import read_session, write_session
from storage.models import Outbox
from tests.fakes import FakeTelegram, FakeTwilio, Fault

TOKEN = "123456:cli-dispatch-token"
SID = "AC" + "7" * 32
AUTH = "cli-dispatch-twilio-auth"
STATUSES = {"sent", "retry", "failed", "held", "skipped"}


def queue(engine: Engine, alerts: dict[str, str], *, key: str = "release:MSKU9070323") -> None:
    now = datetime.now(UTC)
    rows = [
        outbox_row(
            event_key=key,
            recipient=recipient,
            kind="release",
            text=text,
            now=now,
            due_at=now - timedelta(seconds=1),
            template="release",
            template_vars={"1": "MSKU9070323"},
        )
        for recipient, text in alerts.items()
    ]
    with write_session(engine) as session:
        repo.enqueue(session=session, rows=rows)


def opt_out(engine: Engine, address: str) -> None:
    now = datetime.now(UTC)
    with write_session(engine) as session:
        contact = repo.get_or_create_contact(session=session, address=address, now=now)
        repo.stop_contact(session=session, contact=contact, now=now)


def outbox_rows(engine: Engine) -> dict[str, Outbox]:
    with read_session(engine) as session:
        return {row.recipient: row for row in session.execute(select(Outbox)).scalars()}


def dispatch(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``cargobot dispatch --once ARGS`` with only the environment given (no developer's .env)."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_", "CARGOBOT_"))
    }
    inherited.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "dispatch", "--once", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**inherited, "LOG_LEVEL": "DEBUG", **env},
        cwd=cwd,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_json_prints_one_line_per_message_with_its_outcome_and_nothing_else(
    tmp_path: Path, sqlite_file: tuple[str, Engine]
) -> None:
    url, engine = sqlite_file
    alerts = {
        "console:alice": "Released: MSKU9070323 — collect at ICD Nairobi",
        "console:bob": "Released: MSKU9070323 (bob)",
        "telegram:4242": "Released: MSKU9070323 (telegram)",
        "telegram:4243": "Released: MSKU9070323 (blocked the bot)",
        "telegram:4244": "Released: MSKU9070323 (Telegram answers 500)",
        "telegram:4245": "Released: MSKU9070323 (said STOP)",
        "whatsapp:+254700000101": "Released: MSKU9070323 (WhatsApp, never wrote)",
    }
    queue(engine, alerts)
    opt_out(engine, "telegram:4245")
    with FakeTelegram(token=TOKEN) as telegram, FakeTwilio(account_sid=SID, auth_token=AUTH) as twilio:
        telegram.block_chat(4243)
        telegram.set_target_fault(4244, Fault(status=500, description="Internal Server Error"))
        env = {
            "DATABASE_URL": url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": telegram.base_url,
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": AUTH,
            "TWILIO_WHATSAPP_FROM": "whatsapp:+447700900000",
            "TWILIO_API_BASE_URL": twilio.base_url,
        }
        started = datetime.now(UTC)
        result = dispatch(tmp_path, env, "--json")
        delivered = [(s.chat_id, s.text) for s in telegram.sent]
        assert twilio.sent == []

    lines = result.stdout.splitlines()
    handled = [json.loads(line) for line in lines]  # every stdout line is JSON: logs went to stderr
    assert all(set(h) == {"to", "text", "status"} and h["status"] in STATUSES for h in handled)
    assert {h["to"]: (h["text"], h["status"]) for h in handled} == {
        "console:alice": (alerts["console:alice"], "sent"),
        "console:bob": (alerts["console:bob"], "sent"),
        "telegram:4242": (alerts["telegram:4242"], "sent"),
        "telegram:4243": (alerts["telegram:4243"], "failed"),
        "telegram:4244": (alerts["telegram:4244"], "retry"),
        "telegram:4245": (alerts["telegram:4245"], "skipped"),
        "whatsapp:+254700000101": (alerts["whatsapp:+254700000101"], "held"),
    }
    assert len(handled) == len(alerts)
    assert "—" in lines[[h["to"] for h in handled].index("console:alice")]  # UTF-8, not \u2014
    assert "[alert to" not in result.stdout  # console deliveries are reported, not printed
    assert "dispatch pass handled 7 message(s)" in result.stderr

    assert delivered == [(4242, alerts["telegram:4242"])]  # neither the opted-out nor the blocked chat
    rows = outbox_rows(engine)
    assert rows["telegram:4242"].provider_id and rows["telegram:4242"].sent_at is not None
    assert "blocked" in (rows["telegram:4243"].last_error or "")
    retry = rows["telegram:4244"]
    assert retry.status == "retry" and retry.due_at >= started + timedelta(seconds=2.5)  # backoff


def test_without_json_console_alerts_are_printed_as_lines(
    tmp_path: Path, sqlite_file: tuple[str, Engine]
) -> None:
    url, engine = sqlite_file
    alerts = {
        "console:alice": "Hold raised on MSKU9070323",
        "console:bob": "Hold raised on MSKU9070323 (bob)",
    }
    queue(engine, alerts, key="hold:MSKU9070323")

    result = dispatch(tmp_path, {"DATABASE_URL": url})

    assert sorted(result.stdout.splitlines()) == [
        "[alert to console:alice] Hold raised on MSKU9070323",
        "[alert to console:bob] Hold raised on MSKU9070323 (bob)",
    ]
    assert {row.status for row in outbox_rows(engine).values()} == {"sent"}
    assert "dispatch pass handled 2 message(s)" in result.stderr
