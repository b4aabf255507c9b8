"""Channel adapters through the real SDKs against the local fakes in ``tests.fakes``.

Telegram goes through python-telegram-bot's ``Bot`` and httpx, WhatsApp through twilio's
``Client`` and requests; every request is asserted to land on the fake (nothing reaches out).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import Settings
from bot.console_channel import ConsoleChannel
from bot.delivery import (
    Outgoing,
    OutsideWindowError,
    PermanentSendError,
    RetryableSendError,
    Template,
    split_text,
)
from bot.telegram_channel import TelegramChannel, quiet_http_loggers
from bot.whatsapp_channel import RedirectingHttpClient, WhatsAppChannel, whatsapp_address
from handlers.types import Button
from tests.fakes import FakeProcess, FakeTelegram, FakeTwilio, Fault

TOKEN = "123456:TEST-token-never-logged"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token"
CUSTOMER = "whatsapp:+254712345678"


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def telegram_fake() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=TOKEN) as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
def twilio_fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as fake:
        yield fake
        assert fake.errors == []


def telegram_settings(fake: FakeTelegram, **overrides: object) -> Settings:
    values: dict[str, object] = {"telegram_bot_token": TOKEN, "telegram_api_base_url": fake.base_url}
    values.update(overrides)
    return Settings(_env_file=None, **values)


def twilio_settings(fake: FakeTwilio, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_whatsapp_from": "+44 7700 900123",
        "twilio_api_base_url": fake.base_url,
        "public_base_url": "https://bot.example.co.uk/",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def telegram_send(fake: FakeTelegram, *messages: Outgoing, **channel_options: object) -> list[str]:
    async with TelegramChannel(telegram_settings(fake), **channel_options) as channel:  # type: ignore[arg-type]
        return [await channel.send(m) for m in messages]


async def whatsapp_send(
    target: FakeTwilio | Settings, *messages: Outgoing, **channel_options: object
) -> list[str]:
    """Send through a WhatsAppChannel configured for the fake (or with the given settings)."""
    settings = target if isinstance(target, Settings) else twilio_settings(target)
    async with WhatsAppChannel(settings, **channel_options) as channel:  # type: ignore[arg-type]
        return [await channel.send(m) for m in messages]


# --------------------------------------------------------------------------------------------
# split_text (shared by both channels)
# --------------------------------------------------------------------------------------------


class TestSplitText:
    def test_short_text_is_one_piece_unchanged(self) -> None:
        assert split_text("Release message issued.", 4096) == ["Release message issued."]

    def test_prefers_paragraph_breaks(self) -> None:
        first, second = "A" * 30 + " tail.", "B" * 20
        assert split_text(f"{first}\n\n{second}", 40) == [first, second]

    def test_falls_back_to_words_then_hard_cuts(self) -> None:
        assert split_text("alpha beta gamma", 11) == ["alpha beta", "gamma"]
        assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]

    def test_counts_astral_characters_as_two_units(self) -> None:
        pieces = split_text("📦" * 5, 4)
        assert pieces == ["📦📦", "📦📦", "📦"]

    @given(st.text(alphabet=st.sampled_from(list("ab c\n.📦é")), max_size=400), st.integers(2, 60))
    def test_pieces_fit_are_not_blank_and_lose_only_whitespace(self, text: str, limit: int) -> None:
        pieces = split_text(text, limit)
        assert all(utf16_len(p) <= limit for p in pieces)
        if utf16_len(text) > limit:
            assert all(p.strip() for p in pieces)
        squeeze = re.compile(r"\s+")
        assert squeeze.sub("", "".join(pieces)) == squeeze.sub("", text)


# --------------------------------------------------------------------------------------------
# Telegram
# --------------------------------------------------------------------------------------------


class TestTelegramChannel:
    def test_send_lands_on_the_fake_and_returns_the_message_id(self, telegram_fake: FakeTelegram) -> None:
        [message_id] = asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:4242", "Cleared ✅")))
        [sent] = telegram_fake.sent
        assert (sent.chat_id, sent.text, sent.reply_markup) == (4242, "Cleared ✅", None)
        assert message_id == str(sent.message_id)
        assert [m for m, _ in telegram_fake.calls] == ["getMe", "sendMessage"]

    def test_buttons_become_an_inline_keyboard_with_callback_data(self, telegram_fake: FakeTelegram) -> None:
        buttons = (Button("Alert me", "ALERT CSQU3054383"), Button("Stop", "STOP"))
        asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:7", "Subscribe?", buttons=buttons)))
        [sent] = telegram_fake.sent
        assert sent.button_data == ["ALERT CSQU3054383", "STOP"]
        assert sent.reply_markup is not None
        assert [row[0]["text"] for row in sent.reply_markup["inline_keyboard"]] == ["Alert me", "Stop"]

    def test_long_text_is_split_at_4096_with_buttons_on_the_last(self, telegram_fake: FakeTelegram) -> None:
        paragraphs = [f"Paragraph {i}: " + "shipment status words " * 140 for i in range(4)]
        text = "\n\n".join(paragraphs)
        assert len(text) > 4096 * 2
        [message_id] = asyncio.run(
            telegram_send(telegram_fake, Outgoing("telegram:9", text, buttons=(Button("Stop", "STOP"),)))
        )
        sent = telegram_fake.sent
        assert len(sent) >= 3
        assert all(utf16_len(s.text) <= 4096 for s in sent)
        assert [s.reply_markup is not None for s in sent] == [False] * (len(sent) - 1) + [True]
        assert " ".join(s.text for s in sent).split() == text.split()
        assert message_id == str(sent[-1].message_id)

    def test_429_is_retryable_with_retry_after(self, telegram_fake: FakeTelegram) -> None:
        telegram_fake.next_429(retry_after=7)
        with pytest.raises(RetryableSendError) as caught:
            asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:1", "hello")))
        assert caught.value.retry_after == 7
        assert telegram_fake.http_429 == 1 and telegram_fake.sent == []

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_server_errors_are_retryable(self, telegram_fake: FakeTelegram, status: int) -> None:
        telegram_fake.next_500(status=status)
        with pytest.raises(RetryableSendError) as caught:
            asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:1", "hello")))
        assert caught.value.retry_after is None
        assert telegram_fake.http_5xx == 1

    def test_blocked_bot_is_permanent(self, telegram_fake: FakeTelegram) -> None:
        telegram_fake.block_chat(55)
        with pytest.raises(PermanentSendError, match="blocked by the user"):
            asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:55", "hello")))

    def test_chat_not_found_is_permanent(self, telegram_fake: FakeTelegram) -> None:
        telegram_fake.next_chat_not_found()
        with pytest.raises(PermanentSendError, match="(?i)chat not found"):
            asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:56", "hello")))

    def test_other_bad_requests_are_permanent(self, telegram_fake: FakeTelegram) -> None:
        telegram_fake.next_bad_request("can't parse entities")
        with pytest.raises(PermanentSendError):
            asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:57", "hello")))

    def test_a_slow_answer_times_out_as_retryable(self, telegram_fake: FakeTelegram) -> None:
        telegram_fake.next_delay(seconds=4.0)
        started = time.monotonic()
        with pytest.raises(RetryableSendError, match="TimedOut"):  # the timeout covers getMe too: not tighter
            asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:1", "hello"), timeout=0.5))
        assert time.monotonic() - started < 3.0
        # the fake took the message: a retry after a timeout can duplicate, as with Telegram
        assert [s.text for s in telegram_fake.sent] == ["hello"]

    def test_a_dropped_connection_is_retryable(self, telegram_fake: FakeTelegram) -> None:
        telegram_fake.next_drop()
        with pytest.raises(RetryableSendError):
            asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:1", "hello")))

    def test_a_rejected_token_never_appears_in_the_error(self) -> None:
        with FakeTelegram(token="999:the-right-one") as fake:
            with pytest.raises(RetryableSendError) as caught:
                asyncio.run(telegram_send(fake, Outgoing("telegram:1", "hello")))
        assert TOKEN not in str(caught.value)
        assert "InvalidToken" in str(caught.value)

    def test_not_a_telegram_address_is_permanent_and_sends_nothing(self, telegram_fake: FakeTelegram) -> None:
        with pytest.raises(PermanentSendError):
            asyncio.run(telegram_send(telegram_fake, Outgoing(CUSTOMER, "hello")))
        assert telegram_fake.calls_to("sendMessage") == []

    def test_concurrent_sends_use_several_pooled_connections(self, telegram_fake: FakeTelegram) -> None:
        telegram_fake.latency = 0.2

        async def fan_out() -> list[str]:
            channel = TelegramChannel(telegram_settings(telegram_fake), connection_pool_size=16)
            try:  # not initialised: the first sends all initialise lazily, at once
                return await asyncio.gather(
                    *(channel.send(Outgoing(f"telegram:{100 + i}", f"alert {i}")) for i in range(16))
                )
            finally:
                await channel.shutdown()

        started = time.monotonic()
        ids = asyncio.run(fan_out())
        elapsed = time.monotonic() - started
        assert len(set(ids)) == 16
        assert elapsed < 16 * 0.2 / 2  # in parallel, not one connection in turn
        assert telegram_fake.counts["connections"] > 1
        assert len(telegram_fake.calls_to("getMe")) == 1

    def test_setup_helpers_set_webhook_commands_and_delete(self, telegram_fake: FakeTelegram) -> None:
        async def setup() -> None:
            async with TelegramChannel(telegram_settings(telegram_fake)) as channel:
                assert await channel.set_webhook(
                    "https://bot.example.co.uk/webhooks/telegram", "s3cret", ["message", "callback_query"]
                )
                assert telegram_fake.webhook == {
                    "url": "https://bot.example.co.uk/webhooks/telegram",
                    "secret_token": "s3cret",
                    "allowed_updates": ["message", "callback_query"],
                    "drop_pending_updates": "false",
                }
                assert await channel.set_commands([("/status", "Status of a shipment"), ("help", "Help")])
                assert await channel.delete_webhook()

        asyncio.run(setup())
        assert telegram_fake.commands == [
            {"command": "status", "description": "Status of a shipment"},
            {"command": "help", "description": "Help"},
        ]
        assert telegram_fake.webhook is None

    def test_quiet_http_loggers_keeps_the_token_out_of_logs(
        self, telegram_fake: FakeTelegram, caplog: pytest.LogCaptureFixture
    ) -> None:
        names = ("httpx", "httpcore", "twilio.http_client", "telegram.Bot")
        before = {name: logging.getLogger(name).level for name in names}
        try:
            quiet_http_loggers()
            assert [logging.getLogger(name).level for name in names] == [logging.WARNING] * 3 + [logging.INFO]
            caplog.set_level(logging.DEBUG)  # the root at DEBUG: the quietened loggers still hold
            asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:1", "hello")))
        finally:
            for name, level in before.items():
                logging.getLogger(name).setLevel(level)
        assert not [r for r in caplog.records if TOKEN in r.getMessage()]
        assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]


# --------------------------------------------------------------------------------------------
# WhatsApp
# --------------------------------------------------------------------------------------------


class TestWhatsAppChannel:
    def test_send_lands_on_the_fake_with_normalised_from_and_returns_the_sid(
        self, twilio_fake: FakeTwilio
    ) -> None:
        [sid] = asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "Your cargo is released.")))
        [sent] = twilio_fake.sent
        assert re.fullmatch(r"SM[0-9a-f]{32}", sid) and sid == sent.sid
        assert (sent.to, sent.from_) == (CUSTOMER, "whatsapp:+447700900123")
        assert sent.body == "Your cargo is released."
        assert sent.account_sid == sent.path_account_sid == ACCOUNT_SID

    def test_template_sends_content_sid_and_json_variables(self, twilio_fake: FakeTwilio) -> None:
        template = Template("HX0123456789abcdef0123456789abcdef", {"1": "CSQU3054383", "2": "Mombasa"})
        asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "fallback text", template=template)))
        [sent] = twilio_fake.sent
        assert sent.content_sid == template.content_sid
        assert sent.content_variables == {"1": "CSQU3054383", "2": "Mombasa"}
        assert sent.body is None
        assert json.loads(sent.params["ContentVariables"]) == template.variables

    def test_body_over_1600_is_split_and_the_last_sid_returned(self, twilio_fake: FakeTwilio) -> None:
        text = "\n".join(f"Line {i}: container CSQU3054383 is at Mombasa." for i in range(100))
        assert len(text) > 3200
        [sid] = asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, text)))
        sent = twilio_fake.sent
        assert len(sent) == 3
        assert all(s.body is not None and len(s.body) <= 1600 for s in sent)
        assert "\n".join(s.body or "" for s in sent) == text
        assert sid == sent[-1].sid

    def test_buttons_become_a_reply_hint(self, twilio_fake: FakeTwilio) -> None:
        buttons = (Button("Stop", "STOP"), Button("Alert me", "ALERT CSQU3054383"))
        asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "Released.", buttons=buttons)))
        assert twilio_fake.sent[0].body == "Released.\n\nReply with:\nSTOP\nALERT CSQU3054383 (Alert me)"

    def test_status_callback_points_at_the_public_url(self, twilio_fake: FakeTwilio) -> None:
        asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))
        assert twilio_fake.sent[0].status_callback == "https://bot.example.co.uk/webhooks/whatsapp/status"

    def test_no_status_callback_without_a_public_url(self, twilio_fake: FakeTwilio) -> None:
        settings = twilio_settings(twilio_fake, public_base_url="")
        asyncio.run(whatsapp_send(settings, Outgoing(CUSTOMER, "hi")))
        assert "StatusCallback" not in twilio_fake.sent[0].params

    def test_429_is_retryable_with_the_retry_after_header(self, twilio_fake: FakeTwilio) -> None:
        twilio_fake.next_429(retry_after=7)
        with pytest.raises(RetryableSendError) as caught:
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))
        assert caught.value.retry_after == 7
        twilio_fake.next_429()
        with pytest.raises(RetryableSendError) as caught:
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))
        assert caught.value.retry_after is None
        assert twilio_fake.http_429 == 2 and twilio_fake.sent == []

    def test_code_20429_is_retryable_whatever_the_status(self, twilio_fake: FakeTwilio) -> None:
        twilio_fake.next_error(400, 20429, "Too Many Requests")
        with pytest.raises(RetryableSendError):
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))

    @pytest.mark.parametrize("status", [500, 503])
    def test_server_errors_are_retryable(self, twilio_fake: FakeTwilio, status: int) -> None:
        twilio_fake.next_500(status=status)
        with pytest.raises(RetryableSendError):
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))

    def test_63016_is_outside_window_but_a_template_still_goes(self, twilio_fake: FakeTwilio) -> None:
        twilio_fake.close_window(CUSTOMER)
        with pytest.raises(OutsideWindowError):
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "free text")))
        template = Template("HX" + "0" * 32, {"1": "CSQU3054383"})
        asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "", template=template)))
        assert [s.content_sid for s in twilio_fake.sent] == [template.content_sid]

    def test_21211_invalid_number_is_permanent(self, twilio_fake: FakeTwilio) -> None:
        twilio_fake.next_invalid_number()
        with pytest.raises(PermanentSendError, match="21211"):
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))

    def test_other_client_errors_are_permanent(self, twilio_fake: FakeTwilio) -> None:
        twilio_fake.next_error(400, 21610, "Attempt to send to unsubscribed recipient")
        with pytest.raises(PermanentSendError, match="21610"):
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))

    def test_rejected_credentials_hold_alerts_back(self, twilio_fake: FakeTwilio) -> None:
        settings = twilio_settings(twilio_fake, twilio_auth_token="wrong")
        with pytest.raises(RetryableSendError, match="20003") as caught:
            asyncio.run(whatsapp_send(settings, Outgoing(CUSTOMER, "hi")))
        assert caught.value.retry_after == 60
        assert "wrong" not in str(caught.value)

    def test_timeouts_and_dropped_connections_are_retryable(self, twilio_fake: FakeTwilio) -> None:
        twilio_fake.next_delay(seconds=1.5)
        started = time.monotonic()
        with pytest.raises(RetryableSendError, match="Timeout"):
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi"), timeout=0.2))
        assert time.monotonic() - started < 1.2
        twilio_fake.next_drop()
        with pytest.raises(RetryableSendError):
            asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))

    def test_not_a_whatsapp_address_is_permanent_and_sends_nothing(self, twilio_fake: FakeTwilio) -> None:
        with pytest.raises(PermanentSendError):
            asyncio.run(whatsapp_send(twilio_fake, Outgoing("telegram:1", "hi")))
        assert twilio_fake.attempts == []

    def test_twilio_edge_in_the_environment_does_not_redirect(
        self, twilio_fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TWILIO_EDGE", "sydney")
        monkeypatch.setenv("TWILIO_REGION", "au1")
        asyncio.run(whatsapp_send(twilio_fake, Outgoing(CUSTOMER, "hi")))
        assert len(twilio_fake.sent) == 1

    def test_concurrent_sends_run_in_parallel_threads(self, twilio_fake: FakeTwilio) -> None:
        twilio_fake.latency = 0.5

        async def fan_out() -> list[str]:
            async with WhatsAppChannel(twilio_settings(twilio_fake), pool_size=8) as channel:
                return await asyncio.gather(
                    *(channel.send(Outgoing(f"whatsapp:+2547000000{i:02d}", "hi")) for i in range(8))
                )

        started = time.monotonic()
        assert len(set(asyncio.run(fan_out()))) == 8
        assert time.monotonic() - started < 8 * 0.5 / 2  # one after another: 4 s


class TestTwilioRedirect:
    def test_twilio_hosts_are_rewritten_to_the_base_url(self) -> None:
        client = RedirectingHttpClient("http://127.0.0.1:8080/proxy/")
        try:
            url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
            assert client.redirect(url) == "http://127.0.0.1:8080/proxy/2010-04-01/Accounts/AC1/Messages.json"
            assert client.redirect("https://example.com/x") == "https://example.com/x"
            assert (
                client.redirect("https://content.twilio.com/v1/Content")
                == "https://content.twilio.com/v1/Content"
            )
        finally:
            client.close()

    def test_the_default_base_url_changes_nothing(self) -> None:
        client = RedirectingHttpClient("https://api.twilio.com")
        try:
            url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1"
            assert client.redirect(url) == url
        finally:
            client.close()

    def test_a_base_url_without_scheme_is_refused(self) -> None:
        with pytest.raises(ValueError):
            RedirectingHttpClient("127.0.0.1:8080")

    @pytest.mark.parametrize("raw", ["+44 7700 900123", "447700900123", "whatsapp:+447700900123"])
    def test_from_numbers_are_normalised(self, raw: str) -> None:
        assert whatsapp_address(raw) == "whatsapp:+447700900123"


# --------------------------------------------------------------------------------------------
# console
# --------------------------------------------------------------------------------------------


class TestConsoleChannel:
    def test_writes_an_alert_line_and_returns_an_id(self) -> None:
        out = io.StringIO()
        channel = ConsoleChannel(out)
        first = asyncio.run(channel.send(Outgoing("console:amina", "Released.")))
        buttons = (Button("Stop", "STOP"),)
        second = asyncio.run(channel.send(Outgoing("console:amina", "Held.", buttons=buttons)))
        assert out.getvalue().splitlines() == [
            "[alert to console:amina] Released.",
            "[alert to console:amina] Held.",
            "[Stop → STOP]",
        ]
        assert first != second and first.startswith("console-")

    def test_other_addresses_are_refused(self) -> None:
        with pytest.raises(PermanentSendError):
            asyncio.run(ConsoleChannel(io.StringIO()).send(Outgoing("telegram:1", "x")))


# --------------------------------------------------------------------------------------------
# the fakes themselves
# --------------------------------------------------------------------------------------------


class TestFakes:
    def test_telegram_get_updates_honours_offset(self, telegram_fake: FakeTelegram) -> None:
        first = telegram_fake.push_message(42, "CSQU3054383")
        second = telegram_fake.push_callback_query(42, "STOP")

        async def poll() -> tuple[list[int], list[int]]:
            async with TelegramChannel(telegram_settings(telegram_fake)) as channel:
                both = await channel.bot.get_updates(timeout=0)
                rest = await channel.bot.get_updates(offset=second, timeout=0)
                return [u.update_id for u in both], [u.update_id for u in rest]

        assert asyncio.run(poll()) == ([first, second], [second])
        assert [u["update_id"] for u in telegram_fake.pending_updates()] == [second]

    def test_random_faults_are_reproducible(self) -> None:
        def run_once() -> list[int]:
            with FakeTelegram() as fake:
                fake.random_faults(11, p_429=0.3, p_500=0.2)

                async def many() -> list[int]:
                    outcomes = []
                    async with TelegramChannel(telegram_settings(fake)) as channel:
                        for i in range(20):
                            try:
                                await channel.send(Outgoing(f"telegram:{i + 1}", "x"))
                                outcomes.append(200)
                            except RetryableSendError as exc:
                                outcomes.append(429 if exc.retry_after else 500)
                    return outcomes

                return asyncio.run(many())

        first = run_once()
        assert first == run_once()
        assert {200, 429, 500} <= set(first)

    def test_one_shot_faults_only_match_their_method(self, telegram_fake: FakeTelegram) -> None:
        telegram_fake.inject(Fault(status=500), method="setMyCommands")
        asyncio.run(telegram_send(telegram_fake, Outgoing("telegram:1", "x")))
        assert telegram_fake.pending_faults() == 1

    def test_a_fake_in_its_own_process_is_driven_through_its_control_api(self) -> None:
        with FakeProcess("twilio", account_sid=ACCOUNT_SID) as remote:
            settings = Settings(
                _env_file=None,
                twilio_account_sid=ACCOUNT_SID,
                twilio_auth_token=AUTH_TOKEN,
                twilio_whatsapp_from="+447700900123",
                twilio_api_base_url=remote.base_url,
            )
            remote.inject(FakeTwilio.error_fault(429, 20429, "Too Many Requests", retry_after=2))
            with pytest.raises(RetryableSendError) as caught:
                asyncio.run(whatsapp_send(settings, Outgoing(CUSTOMER, "hi")))
            assert caught.value.retry_after == 2
            asyncio.run(whatsapp_send(settings, Outgoing(CUSTOMER, "hi")))
            stats = remote.stats()
            assert (stats["sent"], stats["counts"]["http_429"], stats["errors"]) == (1, 1, [])
            assert [s["to"] for s in remote.sent()] == [CUSTOMER]
