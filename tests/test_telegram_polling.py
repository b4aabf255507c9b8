"""Telegram long polling through the real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from bot.app import App, build_context
from bot.config import Settings
from bot.demo import seed_demo
from bot.telegram_channel import TelegramChannel
from bot.telegram_polling import load_offset, poll_forever, store_and_answer
from storage.db import read_session
from storage.models import InboundMessage, Outbox
from tests.conftest import Clock
from tests.fakes import FakeTelegram

TOKEN = "654321:POLLING-test-token"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN, poll_cap=0.2) as fake:
        yield fake


def make_app(engine: Engine, telegram: FakeTelegram) -> App:
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN, telegram_api_base_url=telegram.base_url)
    return App(settings=settings, engine=engine, ctx=build_context(settings))


def poll_until(app: App, telegram: FakeTelegram, done) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        stop = asyncio.Event()
        channel = TelegramChannel(app.settings)
        await channel.initialize()
        task = asyncio.create_task(poll_forever(app, channel, stop))
        for _ in range(200):
            if done():
                break
            await asyncio.sleep(0.05)
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await channel.shutdown()

    asyncio.run(go())


def inbound_count(engine: Engine) -> int:
    with read_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(InboundMessage)).scalar_one())


def replies(engine: Engine) -> list[Outbox]:
    with read_session(engine) as session:
        return list(session.execute(select(Outbox).where(Outbox.kind == "reply")).scalars().all())


def test_polled_message_is_answered_with_alert_button(
    engine: Engine, clock: Clock, telegram: FakeTelegram
) -> None:
    seed_demo(engine, now=clock.now)
    app = make_app(engine, telegram)
    update_id = telegram.push_message(777, "where is TGHU7345017?")
    # Until the reply's row is settled: the fake records a send before the client reads its answer.
    poll_until(
        app,
        telegram,
        lambda: load_offset(app) == update_id + 1 and any(row.status == "sent" for row in replies(engine)),
    )
    [sent] = telegram.sent
    assert sent.chat_id == 777 and sent.text.startswith("Container TGHU7345017")
    assert "ALERT TGHU7345017" in sent.button_data
    labels = [button["text"] for row in (sent.reply_markup or {})["inline_keyboard"] for button in row]
    assert "Alert me when released" in labels
    assert load_offset(app) == update_id + 1
    [row] = replies(engine)
    assert row.status == "sent" and row.provider_id


def test_restart_neither_loses_nor_repeats(engine: Engine, clock: Clock, telegram: FakeTelegram) -> None:
    seed_demo(engine, now=clock.now)
    app = make_app(engine, telegram)
    telegram.push_message(778, "HELP")
    poll_until(app, telegram, lambda: len(telegram.sent) >= 1)
    telegram.push_message(778, "TGHU7345017")
    poll_until(app, telegram, lambda: len(telegram.sent) >= 2)
    poll_until(app, telegram, lambda: False if inbound_count(engine) < 2 else len(telegram.sent) >= 3)
    assert len(telegram.sent) == 2
    assert inbound_count(engine) == 2


def test_button_press_subscribes(engine: Engine, clock: Clock, telegram: FakeTelegram) -> None:
    seed_demo(engine, now=clock.now)
    app = make_app(engine, telegram)
    telegram.push_callback_query(779, "ALERT TGHU7345017")
    poll_until(app, telegram, lambda: len(telegram.sent) >= 1)
    assert "We will message you" in telegram.sent[0].text


def test_failed_reply_is_left_to_the_dispatcher(engine: Engine, clock: Clock, telegram: FakeTelegram) -> None:
    seed_demo(engine, now=clock.now)
    app = make_app(engine, telegram)
    telegram.next_500(5, method="sendMessage")
    telegram.push_message(780, "HELP")

    # Until the row is settled, not until the fake has answered 500: the client reads the answer
    # after the fake counts it, and stopping the poller in between would leave the row "sending".
    poll_until(app, telegram, lambda: any(row.status == "retry" for row in replies(engine)))
    assert telegram.http_5xx >= 1
    [row] = replies(engine)
    assert row.status == "retry" and row.recipient == "telegram:780"


def test_a_database_error_pauses_polling_and_the_update_is_answered_after(
    engine: Engine, clock: Clock, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database busy past its timeout (or gone a moment): the poller waits and fetches the same
    update again, rather than stopping for good."""
    seed_demo(engine, now=clock.now)
    app = make_app(engine, telegram)
    failures = []

    def busy_once(app: App, update, worker: str):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append(update.update_id)
            raise OperationalError(
                "waiting for the database's write turn", None, Exception("database is locked")
            )
        return store_and_answer(app, update, worker)

    monkeypatch.setattr("bot.telegram_polling.store_and_answer", busy_once)
    monkeypatch.setattr("bot.telegram_polling._ERROR_PAUSE_SECONDS", 0.05)
    update_id = telegram.push_message(782, "HELP")
    poll_until(app, telegram, lambda: len(telegram.sent) >= 1 and load_offset(app) == update_id + 1)
    assert failures == [update_id]
    assert [s.chat_id for s in telegram.sent] == [782]


def test_delete_my_data_on_telegram_leaves_no_row_naming_the_chat(
    engine: Engine, clock: Clock, telegram: FakeTelegram
) -> None:
    """The confirmation still reaches the chat, but the outbox row it was sent from, like the
    message that asked for it, carries the anonymous address."""
    seed_demo(engine, now=clock.now)
    app = make_app(engine, telegram)
    for text in ("ALERT TGHU7345017", "DELETE MY DATA", "YES"):
        telegram.push_message(783, text)
    poll_until(app, telegram, lambda: len(telegram.sent) >= 3)
    assert [s.chat_id for s in telegram.sent] == [783] * 3 and "erased" in telegram.sent[2].text
    with read_session(engine) as session:
        recipients = session.execute(select(Outbox.recipient)).scalars().all()
        senders = session.execute(select(InboundMessage.address)).scalars().all()
    assert recipients and senders
    assert not any("783" in address for address in [*recipients, *senders])


def test_polling_starts_once_telegram_answers_after_failing_at_first(
    engine: Engine, clock: Clock, telegram: FakeTelegram
) -> None:
    """A deleteWebhook that fails (Telegram down as the worker starts) is tried again."""
    app = make_app(engine, telegram)
    telegram.next_500(method="deleteWebhook")
    telegram.push_message(781, "HELP")
    poll_until(app, telegram, lambda: len(telegram.sent) >= 1)
    assert [s.chat_id for s in telegram.sent] == [781]
    assert telegram.pending_faults() == 0
