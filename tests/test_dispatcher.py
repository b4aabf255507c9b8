"""The outbox dispatcher through the real SDKs against the fake Bot API and fake Twilio servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from bot.config import Settings
from bot.console_channel import ConsoleChannel
from bot.delivery import Channel
from bot.dispatcher import Dispatcher, backoff_seconds
from bot.telegram_channel import TelegramChannel
from bot.whatsapp_channel import WhatsAppChannel, button_hint
from handlers.alerts import outbox_row
from handlers.types import Button, Reply
from storage import outbox, repo
from storage.db import read_session, write_session
from storage.models import Outbox
from tests.conftest import Clock
from tests.fakes import FakeTelegram, FakeTwilio

TOKEN = "123456:TEST-token-for-fake-bot-api"
SID = "AC" + "0" * 32
AUTH = "fake-auth-token-0123456789"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=SID, auth_token=AUTH) as fake:
        yield fake


def make_settings(
    telegram: FakeTelegram | None = None, twilio: FakeTwilio | None = None, **extra: object
) -> Settings:
    values: dict[str, object] = {
        "dispatch_concurrency": 4,
        "telegram_max_per_second": 1000,
        "twilio_max_per_second": 1000,
    }
    if telegram is not None:
        values.update(telegram_bot_token=TOKEN, telegram_api_base_url=telegram.base_url)
    if twilio is not None:
        values.update(
            twilio_account_sid=SID,
            twilio_auth_token=AUTH,
            twilio_whatsapp_from="whatsapp:+447700900000",
            twilio_api_base_url=twilio.base_url,
        )
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def queue(
    engine: Engine,
    clock: Clock,
    recipient: str,
    *,
    key: str = "event-1",
    text: str = "Released!",
    template: str | None = None,
    **extra: object,
) -> None:
    row = outbox_row(
        event_key=key,
        recipient=recipient,
        kind="release",
        text=text,
        now=clock.now,
        due_at=clock.now,
        template=template,
        template_vars={"1": "MSKU9070323"},
    )
    row.update(extra)
    with write_session(engine) as session:
        repo.enqueue(session=session, rows=[row])


def rows(engine: Engine) -> list[Outbox]:
    with read_session(engine) as session:
        return list(session.execute(select(Outbox).order_by(Outbox.id)).scalars().all())


def run_pass(
    engine: Engine, settings: Settings, channels: dict[str, Channel], clock: Clock, worker: str = "w1"
) -> list[str]:
    async def go() -> list[str]:
        for channel in channels.values():
            if hasattr(channel, "initialize"):
                await channel.initialize()
        try:
            dispatcher = Dispatcher(
                engine=engine, settings=settings, channels=channels, clock=lambda: clock.now, worker=worker
            )
            return [h.status for h in await dispatcher.dispatch_pass()]
        finally:
            for channel in channels.values():
                if hasattr(channel, "shutdown"):
                    await channel.shutdown()

    return asyncio.run(go())


def contact_wrote(engine: Engine, address: str, when) -> None:  # type: ignore[no-untyped-def]
    with write_session(engine) as session:
        contact = repo.get_or_create_contact(session=session, address=address, now=when)
        contact.last_inbound_at = when


def test_telegram_alert_is_sent_once_with_provider_id(
    engine: Engine, clock: Clock, telegram: FakeTelegram
) -> None:
    settings = make_settings(telegram)
    queue(engine, clock, "telegram:4242")
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock) == ["sent"]
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock) == []
    [row] = rows(engine)
    assert row.status == "sent" and row.provider_id and row.sent_at == clock.now
    assert [(s.chat_id, s.text) for s in telegram.sent] == [(4242, "Released!")]


def test_retry_after_429_is_honoured(engine: Engine, clock: Clock, telegram: FakeTelegram) -> None:
    settings = make_settings(telegram)
    telegram.next_429(1, retry_after=120)
    queue(engine, clock, "telegram:4242")
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock) == ["retry"]
    [row] = rows(engine)
    assert row.status == "retry" and row.due_at >= clock.now + timedelta(seconds=120)
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock) == []
    clock.advance(seconds=1000)
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock) == ["sent"]
    assert len(telegram.sent) == 1


def test_server_error_retries_with_backoff(engine: Engine, clock: Clock, telegram: FakeTelegram) -> None:
    settings = make_settings(telegram)
    telegram.next_500(1)
    queue(engine, clock, "telegram:4242")
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock) == ["retry"]
    assert rows(engine)[0].last_error.startswith("retrying")  # type: ignore[union-attr]


def test_blocked_bot_fails_permanently_with_reason(
    engine: Engine, clock: Clock, telegram: FakeTelegram
) -> None:
    settings = make_settings(telegram)
    telegram.block_chat(4242)
    queue(engine, clock, "telegram:4242")
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock) == ["failed"]
    [row] = rows(engine)
    assert row.status == "failed" and "blocked" in (row.last_error or "")


def test_opted_out_contact_is_skipped_at_send_time(
    engine: Engine, clock: Clock, telegram: FakeTelegram
) -> None:
    settings = make_settings(telegram)
    queue(engine, clock, "telegram:4242")
    with write_session(engine) as session:
        contact = repo.get_or_create_contact(session=session, address="telegram:4242", now=clock.now)
        repo.stop_contact(session=session, contact=contact, now=clock.now)
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock) == ["skipped"]
    assert telegram.sent == []


def test_whatsapp_inside_window_sends_free_text(engine: Engine, clock: Clock, twilio: FakeTwilio) -> None:
    settings = make_settings(twilio=twilio)
    contact_wrote(engine, "whatsapp:+254700000101", clock.now - timedelta(hours=1))
    queue(engine, clock, "whatsapp:+254700000101", template="release")
    assert run_pass(engine, settings, {"whatsapp": WhatsAppChannel(settings)}, clock) == ["sent"]
    [sent] = twilio.sent
    assert sent.body == "Released!" and sent.to == "whatsapp:+254700000101"
    assert rows(engine)[0].provider_id == sent.sid


def test_whatsapp_outside_window_uses_template(engine: Engine, clock: Clock, twilio: FakeTwilio) -> None:
    settings = make_settings(twilio=twilio, twilio_template_release="HX" + "1" * 32)
    contact_wrote(engine, "whatsapp:+254700000101", clock.now - timedelta(hours=30))
    queue(engine, clock, "whatsapp:+254700000101", template="release")
    assert run_pass(engine, settings, {"whatsapp": WhatsAppChannel(settings)}, clock) == ["sent"]
    [sent] = twilio.sent
    assert sent.content_sid == "HX" + "1" * 32 and sent.content_variables == {"1": "MSKU9070323"}


def test_whatsapp_outside_window_without_template_is_held_until_customer_writes(
    engine: Engine, clock: Clock, twilio: FakeTwilio
) -> None:
    settings = make_settings(twilio=twilio)
    contact_wrote(engine, "whatsapp:+254700000101", clock.now - timedelta(hours=30))
    queue(engine, clock, "whatsapp:+254700000101", template="release")
    assert run_pass(engine, settings, {"whatsapp": WhatsAppChannel(settings)}, clock) == ["held"]
    assert "24-hour window" in (rows(engine)[0].last_error or "")
    contact_wrote(engine, "whatsapp:+254700000101", clock.now)  # the customer writes again
    with write_session(engine) as session:
        repo.release_held_for(session=session, recipient="whatsapp:+254700000101", now=clock.now)
    assert run_pass(engine, settings, {"whatsapp": WhatsAppChannel(settings)}, clock) == ["sent"]
    assert twilio.sent[0].body == "Released!"


def test_63016_falls_back_to_template(engine: Engine, clock: Clock, twilio: FakeTwilio) -> None:
    settings = make_settings(twilio=twilio, twilio_template_release="HX" + "2" * 32)
    contact_wrote(engine, "whatsapp:+254700000101", clock.now - timedelta(hours=1))
    twilio.next_outside_window(1)
    queue(engine, clock, "whatsapp:+254700000101", template="release")
    assert run_pass(engine, settings, {"whatsapp": WhatsAppChannel(settings)}, clock) == ["retry"]
    assert run_pass(engine, settings, {"whatsapp": WhatsAppChannel(settings)}, clock) == ["sent"]
    assert twilio.sent[-1].content_sid == "HX" + "2" * 32


def test_buttons_go_inline_on_telegram_and_are_written_out_once_on_whatsapp(
    engine: Engine, clock: Clock, telegram: FakeTelegram, twilio: FakeTwilio
) -> None:
    """Replies claimed by a process that died before sending them keep their buttons."""
    settings = make_settings(telegram, twilio)
    contact_wrote(engine, "whatsapp:+254700000101", clock.now)
    button = Button("Alert me when released", "ALERT TGHU7345017")
    with write_session(engine) as session:
        for address in ("telegram:4242", "whatsapp:+254700000101"):
            outbox.add_claimed_replies(
                session.connection(),
                event_prefix="reply:test",
                address=address,
                replies=[Reply("Not released yet.", buttons=(button,))],
                now=clock.now,
                worker="web:died",
                lease=timedelta(seconds=30),
            )
    clock.advance(seconds=31)
    channels: dict[str, Channel] = {
        "telegram": TelegramChannel(settings),
        "whatsapp": WhatsAppChannel(settings),
    }
    assert run_pass(engine, settings, channels, clock) == ["sent", "sent"]
    [inline] = telegram.sent
    assert (inline.text, inline.button_data) == ("Not released yet.", ["ALERT TGHU7345017"])
    [written] = twilio.sent
    assert written.body == "Not released yet." + button_hint((button,))  # the hint once, not twice


def test_notice_whose_moment_passed_is_dropped(engine: Engine, clock: Clock) -> None:
    settings = make_settings()
    queue(engine, clock, "console:ops", expires_at=clock.now - timedelta(minutes=1))
    out: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    assert run_pass(engine, settings, {"console": ConsoleChannel(Sink())}, clock) == []  # type: ignore[arg-type]
    assert rows(engine)[0].status == "expired" and out == []


def test_old_alerts_are_given_up_with_a_reason(engine: Engine, clock: Clock) -> None:
    settings = make_settings(alert_max_age_hours=1)
    queue(engine, clock, "telegram:1", status="held")
    clock.advance(hours=2)
    outbox.expire_stale(engine=engine, now=clock.now, max_age=timedelta(hours=settings.alert_max_age_hours))
    [row] = rows(engine)
    assert row.status == "expired" and "ALERT_MAX_AGE_HOURS" in (row.last_error or "")


def test_lease_of_a_dead_worker_is_taken_over(engine: Engine, clock: Clock, telegram: FakeTelegram) -> None:
    settings = make_settings(telegram)
    queue(engine, clock, "telegram:4242")
    claimed = outbox.claim_due(
        engine=engine, worker="dead", now=clock.now, lease_seconds=30, limit=10, channels=["telegram"]
    )
    assert len(claimed) == 1
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock, worker="w2") == []
    clock.advance(seconds=31)
    assert run_pass(engine, settings, {"telegram": TelegramChannel(settings)}, clock, worker="w2") == ["sent"]
    assert not outbox.settle(engine=engine, row_id=claimed[0].id, worker="dead", status="sent")  # type: ignore[arg-type]


def test_two_dispatchers_share_the_work_without_duplicates(
    engine: Engine, clock: Clock, telegram: FakeTelegram
) -> None:
    settings = make_settings(telegram, dispatch_concurrency=8)
    with write_session(engine) as session:
        repo.enqueue(
            session=session,
            rows=[
                outbox_row(
                    event_key="bulk",
                    recipient=f"telegram:{1000 + i}",
                    kind="release",
                    text=f"m{i}",
                    now=clock.now,
                    due_at=clock.now,
                )
                for i in range(300)
            ],
        )

    async def both() -> None:
        channels = [TelegramChannel(settings), TelegramChannel(settings)]
        for channel in channels:
            await channel.initialize()
        dispatchers = [
            Dispatcher(
                engine=engine,
                settings=settings,
                channels={"telegram": c},
                clock=lambda: clock.now,
                worker=f"w{i}",
            )
            for i, c in enumerate(channels)
        ]
        await asyncio.gather(*(d.dispatch_pass() for d in dispatchers))
        for channel in channels:
            await channel.shutdown()

    asyncio.run(both())
    chats = [s.chat_id for s in telegram.sent]
    assert len(chats) == 300 and len(set(chats)) == 300
    assert {r.status for r in rows(engine)} == {"sent"}


def test_unique_event_recipient_key_prevents_double_rows(engine: Engine, clock: Clock) -> None:
    queue(engine, clock, "telegram:1", key="same")
    queue(engine, clock, "telegram:1", key="same")
    assert len(rows(engine)) == 1


def test_backoff_grows_and_honours_retry_after() -> None:
    assert 2.5 <= backoff_seconds(1, None) <= 5
    assert backoff_seconds(5, None) > backoff_seconds(1, None)
    assert backoff_seconds(1, 300) >= 300
    assert backoff_seconds(50, None) <= 900


def test_group_settle_keeps_each_compare_and_set(engine: Engine, clock: Clock) -> None:
    """One row whose lease went to another worker does not stop the others being recorded."""
    for n in range(3):
        queue(engine, clock, f"telegram:{n}", key=f"group-{n}")
    claimed = outbox.claim_due(
        engine=engine, worker="w1", now=clock.now, lease_seconds=30, limit=10, channels=["telegram"]
    )
    assert len(claimed) == 3
    stolen = claimed[1].id
    assert stolen is not None
    with write_session(engine) as session:  # another worker took this one over
        row = session.get(Outbox, stolen)
        assert row is not None
        row.claimed_by = "w2"
    outcomes = [(r.id, {"status": "sent", "provider_id": f"m{r.id}", "sent_at": clock.now}) for r in claimed]
    assert outbox.settle_many(engine=engine, worker="w1", outcomes=outcomes) == [True, False, True]  # type: ignore[arg-type]
    statuses = {r.id: (r.status, r.claimed_by) for r in rows(engine)}
    assert statuses[stolen] == ("sending", "w2")
    assert [s for i, s in statuses.items() if i != stolen] == [("sent", None), ("sent", None)]
