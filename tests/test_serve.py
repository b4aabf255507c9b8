"""``cargobot serve``'s in-process worker: started again when it fails, stopped with the process;
and settings it would refuse are refused before the web side starts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from bot.config import Settings
from bot.serve import BackgroundWorker, run_serve
from tests.e2e import wait_for
from tests.fakes import FakeTelegram

TOKEN = "515151:SERVE-unit-token"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN, poll_cap=0.2) as fake:
        yield fake


def test_a_worker_that_fails_to_start_is_started_again_and_then_answers(
    sqlite_file: tuple[str, Engine], telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = sqlite_file
    telegram.next_500(times=2, method="getMe")  # Telegram unreachable as the process starts
    settings = Settings(
        _env_file=None, database_url=url, telegram_bot_token=TOKEN, telegram_api_base_url=telegram.base_url
    )
    background = BackgroundWorker(settings, first_pause=0.1)
    background.start()
    try:
        telegram.push_message(9101, "HELP")
        assert wait_for(lambda: any(s.chat_id == 9101 for s in telegram.sent))
    finally:
        background.shutdown()
    assert background.thread is not None and not background.thread.is_alive()
    assert telegram.pending_faults() == 0
    restarts = [r for r in caplog.records if "starting it again" in r.getMessage()]
    assert [r.getMessage().rsplit(" ", 2)[-2] for r in restarts] == ["0.1", "0.2"]  # pauses double


def test_a_worker_stopped_while_it_waits_to_start_again_is_not_started_again(
    sqlite_file: tuple[str, Engine], telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = sqlite_file
    telegram.next_500(times=50, method="getMe")  # Telegram stays down
    settings = Settings(
        _env_file=None, database_url=url, telegram_bot_token=TOKEN, telegram_api_base_url=telegram.base_url
    )
    background = BackgroundWorker(settings, first_pause=30)
    background.start()
    assert wait_for(lambda: any("starting it again" in r.getMessage() for r in caplog.records))
    started = time.monotonic()
    background.shutdown()  # in the 30 s pause: ends it at once
    assert time.monotonic() - started < 5
    assert background.thread is not None and not background.thread.is_alive()
    assert sum("starting it again" in r.getMessage() for r in caplog.records) == 1
    background.shutdown()  # twice, as gunicorn may: nothing left to stop


def test_serve_refuses_worker_settings_before_it_serves(sqlite_file: tuple[str, Engine]) -> None:
    url, _ = sqlite_file
    settings = Settings(
        _env_file=None,
        database_url=url,
        twilio_account_sid="AC" + "5" * 32,
        twilio_auth_token="serve-unit-auth-token",
        public_base_url="https://bot.example",
    )
    with pytest.raises(SystemExit, match="TWILIO_WHATSAPP_FROM"):
        run_serve(settings, host="127.0.0.1", port=1, threads=1)


def test_polling_that_fails_stops_the_worker_which_is_started_again(
    sqlite_file: tuple[str, Engine], telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    """An update python-telegram-bot cannot read fails every getUpdates: the worker does not go on
    without polling, it stops with the error and is started again (and says so each time)."""
    url, _ = sqlite_file
    no_date = {"message_id": 1, "chat": {"id": 1, "type": "private"}}
    telegram.push_update({"update_id": 9201, "message": no_date})
    settings = Settings(
        _env_file=None, database_url=url, telegram_bot_token=TOKEN, telegram_api_base_url=telegram.base_url
    )
    background = BackgroundWorker(settings, first_pause=0.1)
    background.start()
    try:
        assert wait_for(lambda: sum("starting it again" in r.getMessage() for r in caplog.records) >= 2)
    finally:
        background.shutdown()
    assert any(r.getMessage() == "Telegram long polling failed; the worker stops" for r in caplog.records)
