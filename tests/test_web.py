"""The webhooks in-process: Flask's test client, a real database, Telegram replies to a FakeTelegram.

Twilio requests are signed with twilio's own ``RequestValidator.compute_signature`` against the
public URL; Telegram updates are the Bot API's JSON shapes (``tests.fakes``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from twilio.request_validator import RequestValidator

from bot.app import App, utcnow
from bot.config import Settings
from bot.demo import seed_demo
from bot.dispatcher import Dispatcher
from bot.telegram_channel import TelegramChannel
from bot.telegram_inbound import MalformedUpdate, parse_update, to_inbound
from bot.web import WebChannels, check_web_settings, close_app, create_app, web_channels
from handlers.context import Context
from storage import outbox, repo
from storage.db import make_engine, read_session, write_session
from storage.models import Contact, DeliveryReport, InboundMessage, Outbox
from tests.fakes import FakeTelegram, Fault, telegram_callback_update, telegram_message_update

PUBLIC = "https://bot.example.com"
AUTH_TOKEN = "twilio-auth-token-0123456789"
ACCOUNT_SID = "AC" + "0" * 32
BOT_TOKEN = "123456:TEST-bot-token-abcdef"
SECRET = "webhook-secret-0123456789"
CUSTOMER = "whatsapp:+254700000101"
STAFF = "console:admin"
TEMPLATE_RELEASE = "HX" + "1" * 32


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(token=BOT_TOKEN) as fake:
        yield fake


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        public_base_url=PUBLIC,
        telegram_bot_token=BOT_TOKEN,
        telegram_webhook_secret=SECRET,
        twilio_template_release=TEMPLATE_RELEASE,
        max_request_bytes=16 * 1024,
        heartbeat_stale_seconds=120,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(telegram: FakeTelegram) -> Settings:
    return make_settings(telegram_api_base_url=telegram.base_url)


@pytest.fixture
def flask_app(engine: Engine, ctx: Context, settings: Settings, telegram: FakeTelegram) -> Iterator[Flask]:
    telegram.reset()
    with write_session(engine) as session:
        repo.ensure_admins(session=session, addresses=[STAFF], now=utcnow())
    sender = TelegramChannel(settings, connection_pool_size=2, timeout=2.0)
    flask_app = create_app(App(settings=settings, engine=engine, ctx=ctx), telegram_sender=sender)
    yield flask_app
    close_app(flask_app)


@pytest.fixture
def client(flask_app: Flask) -> FlaskClient:
    return flask_app.test_client()


def post_twilio(
    client: FlaskClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    signed_url: str | None = None,
    signature: str | None = None,
) -> Any:
    url = signed_url or PUBLIC + path
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def whatsapp_params(body: str, sid: str = "SM" + "a" * 32, **extra: str) -> dict[str, str]:
    return {
        "From": CUSTOMER,
        "To": "whatsapp:+447700900123",
        "Body": body,
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "ProfileName": "Amani W",
        "WaId": CUSTOMER[10:],
        "NumMedia": "0",
        **extra,
    }


def post_telegram(client: FlaskClient, update: dict[str, Any], *, secret: str | None = SECRET) -> Any:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return client.post("/webhooks/telegram", json=update, headers=headers)


def post_telegram_body(client: FlaskClient, body: bytes) -> Any:
    """A raw JSON body, with the right secret: for bodies ``json=`` cannot write."""
    return client.post(
        "/webhooks/telegram",
        data=body,
        content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )


def messages(response: Any) -> list[str]:
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return [element.text or "" for element in root.findall("Message")]


def count(engine: Engine, model: Any) -> int:
    with read_session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def outbox_rows(engine: Engine, **where: Any) -> list[Outbox]:
    with read_session(engine) as session:
        stmt = select(Outbox).filter_by(**where).order_by(Outbox.id)
        return list(session.execute(stmt).scalars().all())


def sent_row(engine: Engine, *, provider_id: str, template: str | None = None, text: str = "Released") -> int:
    """An alert the dispatcher sent through Twilio, waiting for its status callbacks."""
    now = utcnow()
    with write_session(engine) as session:
        row = Outbox(
            event_key=f"release:{provider_id}",
            recipient=CUSTOMER,
            kind="release",
            text=text,
            template=template,
            status="sent",
            due_at=now,
            provider_id=provider_id,
            sent_at=now,
            created_at=now,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def get_row(engine: Engine, row_id: int) -> Outbox:
    with read_session(engine) as session:
        row = session.get(Outbox, row_id)
        assert row is not None
        return row


# --- WhatsApp messages -----------------------------------------------------------------------


def test_signed_whatsapp_message_is_stored_then_answered_with_twiml(
    client: FlaskClient, engine: Engine
) -> None:
    response = post_twilio(client, "/webhooks/whatsapp", whatsapp_params("HELP"))
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert messages(response) and all(text.strip() for text in messages(response))
    with read_session(engine) as session:
        stored = session.execute(select(InboundMessage)).scalar_one()
        contact = repo.get_contact(session=session, address=CUSTOMER)
    assert stored.provider_key == "whatsapp:SM" + "a" * 32
    assert stored.answered_at is not None and stored.reply
    assert contact is not None and contact.display_name == "Amani W"
    assert contact.last_inbound_at is not None


def test_signature_is_checked_against_the_public_url_with_its_query_string(client: FlaskClient) -> None:
    params = whatsapp_params("HELP")
    path = "/webhooks/whatsapp?tenant=uk"
    assert post_twilio(client, path, params).status_code == 200
    local = post_twilio(
        client, path, whatsapp_params("HELP", sid="SM" + "b" * 32), signed_url="http://localhost" + path
    )
    assert local.status_code == 403


def test_a_signature_over_the_url_with_its_default_port_is_accepted(client: FlaskClient) -> None:
    """Twilio's validator accepts the public URL signed with or without its port (a proxy may add
    it); the port-less URL is checked first, the other only when that fails."""
    params = whatsapp_params("HELP")
    response = post_twilio(
        client, "/webhooks/whatsapp", params, signed_url="https://bot.example.com:443/webhooks/whatsapp"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "signature", ["", "forged", None, "sïgné"], ids=["empty", "forged", "other-token", "non-ascii"]
)
def test_unsigned_or_forged_whatsapp_message_is_refused_and_not_stored(
    client: FlaskClient, engine: Engine, signature: str | None
) -> None:
    params = whatsapp_params("HELP")
    if signature is None:
        response = post_twilio(client, "/webhooks/whatsapp", params, token="another-accounts-token")
    else:
        response = post_twilio(client, "/webhooks/whatsapp", params, signature=signature)
    assert response.status_code == 403
    assert count(engine, InboundMessage) == 0 and count(engine, Contact) == 0


def test_missing_signature_header_is_refused(client: FlaskClient, engine: Engine) -> None:
    response = client.post("/webhooks/whatsapp", data=whatsapp_params("HELP"))
    assert response.status_code == 403
    assert count(engine, InboundMessage) == 0


def test_tampered_body_breaks_the_signature(client: FlaskClient, engine: Engine) -> None:
    params = whatsapp_params("HELP")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/webhooks/whatsapp", params)
    params["Body"] = "STOP"
    response = client.post("/webhooks/whatsapp", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert count(engine, InboundMessage) == 0


def test_redelivered_message_sid_gets_empty_twiml_and_is_stored_once(
    client: FlaskClient, engine: Engine
) -> None:
    params = whatsapp_params("HELP")
    first = post_twilio(client, "/webhooks/whatsapp", params)
    again = post_twilio(client, "/webhooks/whatsapp", params)
    assert messages(first)
    assert again.status_code == 200 and messages(again) == []
    assert b"<Response" in again.data
    assert count(engine, InboundMessage) == 1


def test_reply_longer_than_1600_characters_becomes_several_messages(
    engine: Engine, settings: Settings, ctx: Context
) -> None:
    # The acknowledgement quotes the business contact: a long one makes a long reply.
    contact = " ".join(f"branch-{i} +44 7700 900{i:03d}." for i in range(90))
    long_ctx = dataclasses.replace(ctx, business_contact=contact)
    flask_app = create_app(App(settings=settings, engine=engine, ctx=long_ctx))
    try:
        response = post_twilio(flask_app.test_client(), "/webhooks/whatsapp", whatsapp_params("AGENT please"))
    finally:
        close_app(flask_app)
    parts = messages(response)
    assert len(parts) >= 2
    assert all(0 < len(part) <= 1600 for part in parts)
    assert "".join(parts).replace(" ", "").count("branch-") == 90  # nothing lost at the cuts


def test_reply_past_ten_messages_sends_the_rest_through_the_outbox(
    engine: Engine, settings: Settings, ctx: Context
) -> None:
    # Twilio takes at most 10 <Message> in one answer (its warning 14109).
    contact = " ".join(f"branch-{i} +44 7700 900{i % 1000:03d}." for i in range(700))
    flask_app = create_app(
        App(settings=settings, engine=engine, ctx=dataclasses.replace(ctx, business_contact=contact))
    )
    try:
        response = post_twilio(flask_app.test_client(), "/webhooks/whatsapp", whatsapp_params("AGENT please"))
    finally:
        close_app(flask_app)
    parts = messages(response)
    rest = outbox_rows(engine, kind="reply")
    assert len(parts) == 10 and rest
    assert [r.event_key for r in rest] == [
        f"reply:whatsapp:SM{'a' * 32}:{i}" for i in range(10, 10 + len(rest))
    ]
    assert all(r.recipient == CUSTOMER and r.status == "pending" for r in rest)
    assert " ".join(parts + [r.text for r in rest]).count("branch-") == 700


def test_media_message_is_acknowledged_and_handed_to_staff_with_its_links(
    client: FlaskClient, engine: Engine
) -> None:
    links = [
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME2",
    ]
    params = whatsapp_params(
        "",
        NumMedia="2",
        MediaUrl0=links[0],
        MediaContentType0="image/jpeg",
        MediaUrl1=links[1],
        MediaContentType1="audio/ogg",
    )
    response = post_twilio(client, "/webhooks/whatsapp", params)
    assert response.status_code == 200
    assert "I can only read text" in " ".join(messages(response))
    [row] = outbox_rows(engine, kind="agent")
    assert row.recipient == STAFF
    assert links[0] in row.text and links[1] in row.text


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"From": "+254700000101"}, "WhatsApp sender"),
        ({"From": ""}, "WhatsApp sender"),
        ({"MessageSid": ""}, "MessageSid"),
        ({"MessageSid": "SM<script>"}, "MessageSid"),
        ({"NumMedia": "two"}, "NumMedia"),
    ],
)
def test_signed_but_malformed_whatsapp_form_gets_400(
    client: FlaskClient, engine: Engine, changes: dict[str, str], reason: str
) -> None:
    response = post_twilio(client, "/webhooks/whatsapp", whatsapp_params("HELP") | changes)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert count(engine, InboundMessage) == 0


# --- WhatsApp status callbacks ---------------------------------------------------------------


def status(client: FlaskClient, sid: str, value: str, error_code: str | None = None) -> Any:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": value,
        "SmsStatus": value,
        "AccountSid": ACCOUNT_SID,
        "To": CUSTOMER,
        "From": "whatsapp:+447700900123",
        "ChannelPrefix": "whatsapp",
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        params["ErrorCode"] = error_code
    return post_twilio(client, "/webhooks/whatsapp/status", params)


def test_status_callbacks_only_move_forward(client: FlaskClient, engine: Engine) -> None:
    row_id = sent_row(engine, provider_id="SM" + "c" * 32)
    seen = []
    for value in ("sent", "delivered", "sent", "read", "delivered"):
        assert status(client, "SM" + "c" * 32, value).status_code == 200
        seen.append(get_row(engine, row_id).delivery_status)
    assert seen == ["sent", "delivered", "delivered", "read", "read"]


@pytest.mark.parametrize("value", ["sending", "accepted", "9" * 26])
def test_a_status_that_moves_nothing_is_acknowledged_and_changes_nothing(
    client: FlaskClient, engine: Engine, value: str
) -> None:
    row_id = sent_row(engine, provider_id="SM" + "5" * 32)
    assert status(client, "SM" + "5" * 32, "delivered").status_code == 200
    assert status(client, "SM" + "5" * 32, value, error_code="63016").status_code == 200
    assert get_row(engine, row_id).delivery_status == "delivered"


def test_status_for_unknown_message_is_acknowledged_logged_and_kept(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, engine: Engine
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.web"):
        response = status(client, "SM" + "9" * 32, "delivered")
    assert response.status_code == 200
    assert "SM" + "9" * 32 + " not on record yet; kept" in caplog.text
    with read_session(engine) as session:
        assert session.execute(select(func.count()).select_from(DeliveryReport)).scalar_one() == 1


def test_report_that_beats_its_send_record_is_applied_later(client: FlaskClient, engine: Engine) -> None:
    """Twilio can call back before the dispatcher has committed the message id."""
    status(client, "SM" + "8" * 32, "undelivered", error_code="30008")
    row_id = sent_row(engine, provider_id="SM" + "8" * 32)
    applied = outbox.apply_kept_reports(engine=engine, now=utcnow(), has_template=lambda kind: False)
    assert applied == 1
    row = get_row(engine, row_id)
    assert row.delivery_status == "undelivered" and "30008" in (row.last_error or "")
    with read_session(engine) as session:
        assert session.execute(select(func.count()).select_from(DeliveryReport)).scalar_one() == 0


def test_forged_status_callback_changes_nothing(client: FlaskClient, engine: Engine) -> None:
    row_id = sent_row(engine, provider_id="SM" + "d" * 32)
    params = {"MessageSid": "SM" + "d" * 32, "MessageStatus": "failed", "ErrorCode": "30008"}
    response = post_twilio(client, "/webhooks/whatsapp/status", params, token="not-our-token")
    assert response.status_code == 403
    assert get_row(engine, row_id).delivery_status is None


def test_undelivered_63016_with_a_template_is_resent_as_the_template(
    client: FlaskClient, engine: Engine
) -> None:
    row_id = sent_row(engine, provider_id="SM" + "e" * 32, template="release")
    assert status(client, "SM" + "e" * 32, "undelivered", "63016").status_code == 200
    row = get_row(engine, row_id)
    assert (row.status, row.force_template, row.provider_id) == ("pending", True, None)


def test_undelivered_63016_without_a_template_is_held_until_the_customer_writes(
    client: FlaskClient, engine: Engine
) -> None:
    row_id = sent_row(engine, provider_id="SM" + "f" * 32, template="hold")  # no hold template configured
    assert status(client, "SM" + "f" * 32, "failed", "63016").status_code == 200
    row = get_row(engine, row_id)
    assert row.status == "held" and "63016" in (row.last_error or "")
    assert row.provider_id is None and row.delivery_status is None
    # the customer writes: the router releases it for the dispatcher
    post_twilio(client, "/webhooks/whatsapp", whatsapp_params("HELP", sid="SM" + "1" * 32))
    assert get_row(engine, row_id).status == "pending"


@pytest.mark.parametrize("reached", ["delivered", "read"])
def test_a_63016_after_the_message_reached_the_customer_sends_nothing_again(
    client: FlaskClient, engine: Engine, reached: str
) -> None:
    """Reports can arrive out of order: a message delivered or read was not outside the window."""
    row_id = sent_row(engine, provider_id="SM" + "6" * 32, template="release")
    assert status(client, "SM" + "6" * 32, reached).status_code == 200
    assert status(client, "SM" + "6" * 32, "failed", "63016").status_code == 200
    row = get_row(engine, row_id)
    assert (row.status, row.provider_id, row.delivery_status) == ("sent", "SM" + "6" * 32, reached)


def test_other_failures_are_recorded_without_requeue(client: FlaskClient, engine: Engine) -> None:
    row_id = sent_row(engine, provider_id="SM" + "7" * 32, template="release")
    assert status(client, "SM" + "7" * 32, "undelivered", "30008").status_code == 200
    row = get_row(engine, row_id)
    assert (row.status, row.delivery_status) == ("sent", "undelivered")
    assert "30008" in (row.last_error or "")


def test_status_callback_without_status_gets_400(client: FlaskClient) -> None:
    response = post_twilio(client, "/webhooks/whatsapp/status", {"MessageSid": "SM" + "8" * 32})
    assert response.status_code == 400


# --- Telegram --------------------------------------------------------------------------------


def test_telegram_update_is_stored_answered_through_the_bot_api_and_recorded(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram
) -> None:
    response = post_telegram(client, telegram_message_update(1001, 4242, "HELP", first_name="Baraka"))
    assert response.status_code == 200
    [sent] = telegram.sent
    assert sent.chat_id == 4242 and sent.text.strip()
    with read_session(engine) as session:
        stored = session.execute(select(InboundMessage)).scalar_one()
        contact = repo.get_contact(session=session, address="telegram:4242")
    assert stored.provider_key == "telegram:1001"
    assert contact is not None and contact.display_name == "Baraka"
    [row] = outbox_rows(engine, kind="reply")
    assert (row.event_key, row.status, row.provider_id) == (
        "reply:telegram:1001:0",
        "sent",
        str(sent.message_id),
    )
    assert row.claimed_by is None


def test_replayed_update_id_is_answered_once(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram
) -> None:
    update = telegram_message_update(1002, 4242, "HELP")
    assert post_telegram(client, update).status_code == 200
    assert post_telegram(client, update).status_code == 200
    assert len(telegram.sent) == 1
    assert count(engine, InboundMessage) == 1


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x"])
def test_telegram_with_wrong_secret_is_refused_and_not_stored(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram, secret: str | None
) -> None:
    response = post_telegram(client, telegram_message_update(1003, 4242, "HELP"), secret=secret)
    assert response.status_code == 403
    assert count(engine, InboundMessage) == 0 and telegram.sent == []


def test_reply_that_cannot_be_sent_is_left_in_the_outbox_for_the_worker(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram
) -> None:
    telegram.next_500(times=3)
    response = post_telegram(client, telegram_message_update(1004, 4242, "HELP"))
    assert response.status_code == 200  # the update is stored: Telegram must not send it again
    assert telegram.sent == []
    [row] = outbox_rows(engine, kind="reply")
    assert row.event_key == "reply:telegram:1004:0" and row.recipient == "telegram:4242"
    assert row.status == "retry" and row.claimed_by is None
    assert row.due_at <= utcnow() and "not confirmed" in (row.last_error or "")


def test_reply_whose_send_failed_is_sent_by_the_dispatcher_with_its_buttons(
    client: FlaskClient, engine: Engine, settings: Settings, telegram: FakeTelegram
) -> None:
    seed_demo(engine, now=utcnow())
    telegram.next_500()
    update = telegram_message_update(1015, 4242, "where is TGHU7345017?")
    assert post_telegram(client, update).status_code == 200
    assert telegram.sent == []
    [row] = outbox_rows(engine, kind="reply")
    assert row.status == "retry"

    async def dispatch() -> list[str]:
        async with TelegramChannel(settings) as channel:
            dispatcher = Dispatcher(
                engine=engine, settings=settings, channels={"telegram": channel}, clock=utcnow
            )
            return [handled.status for handled in await dispatcher.dispatch_pass()]

    assert asyncio.run(dispatch()) == ["sent"]
    [sent] = telegram.sent
    assert (sent.chat_id, sent.text) == (4242, row.text)
    assert "ALERT TGHU7345017" in sent.button_data


def test_rate_limited_reply_waits_for_telegrams_retry_after(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram
) -> None:
    telegram.next_429(retry_after=7)
    before = utcnow()
    assert post_telegram(client, telegram_message_update(1005, 4242, "HELP")).status_code == 200
    [row] = outbox_rows(engine, kind="reply")
    assert row.status == "retry"
    assert row.due_at >= before + timedelta(seconds=6)


def test_after_a_failed_reply_the_later_ones_wait_for_the_worker_in_order(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram
) -> None:
    telegram.inject(Fault())  # the first sendMessage goes through ...
    telegram.next_500()  # ... the second fails
    long_text = "HELP " + "x" * 5000  # over CARGOBOT_MAX_MESSAGE_CHARS: a note, then the answer
    assert post_telegram(client, telegram_message_update(1014, 4242, long_text)).status_code == 200
    rows = outbox_rows(engine, kind="reply")
    assert [r.event_key for r in rows] == ["reply:telegram:1014:0", "reply:telegram:1014:1"]
    assert [r.status for r in rows] == ["sent", "retry"]
    assert [s.text for s in telegram.sent] == [rows[0].text]


def test_slow_bot_api_gives_up_within_the_reply_budget_and_leaves_the_reply_queued(
    engine: Engine, ctx: Context, settings: Settings, telegram: FakeTelegram
) -> None:
    telegram.reset()
    telegram.next_delay(seconds=3.0)
    sender = TelegramChannel(settings, connection_pool_size=2, timeout=5.0)
    flask_app = create_app(
        App(settings=settings, engine=engine, ctx=ctx), telegram_sender=sender, reply_budget=0.3
    )
    try:
        started = time.monotonic()
        response = post_telegram(flask_app.test_client(), telegram_message_update(1013, 4242, "HELP"))
        elapsed = time.monotonic() - started
    finally:
        close_app(flask_app)
    assert response.status_code == 200 and elapsed < 2.0
    [row] = outbox_rows(engine, kind="reply")
    assert row.status == "retry" and "no answer from Telegram" in (row.last_error or "")


def test_button_press_is_routed_as_its_data_and_the_spinner_stopped(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram
) -> None:
    update = telegram_callback_update(1006, 4242, "HELP", query_id="q-1006")
    assert post_telegram(client, update).status_code == 200
    with read_session(engine) as session:
        stored = session.execute(select(InboundMessage)).scalar_one()
    assert stored.text == "HELP" and stored.address == "telegram:4242"
    assert len(telegram.sent) == 1
    assert [a.get("callback_query_id") for a in telegram.calls_to("answerCallbackQuery")] == ["q-1006"]


def test_edited_messages_and_other_updates_are_acknowledged_and_ignored(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram
) -> None:
    edited = telegram_message_update(1007, 4242, "HELP")
    edited["edited_message"] = edited.pop("message")
    sticker = telegram_message_update(1008, 4242, "")
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {
        "file_id": "x",
        "file_unique_id": "y",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
    for update in (edited, sticker, {"update_id": 1009}):
        assert post_telegram(client, update).status_code == 200
    assert count(engine, InboundMessage) == 0 and telegram.sent == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b"null",
        b'{"update_id": "7"}',
        b'{"update_id": true}',
        b'{"update_id": 7, "message": "x"}',
        b'{"update_id": 7, "message": {"message_id": 1}}',
        b'{"update_id": 7, "message": {"message_id": 1, "date": "x", "chat": {"id": 1, "type": "private"}}}',
    ],
)
def test_malformed_telegram_body_gets_400(client: FlaskClient, engine: Engine, body: bytes) -> None:
    response = post_telegram_body(client, body)
    assert response.status_code == 400
    assert count(engine, InboundMessage) == 0


def test_telegram_json_nested_too_deeply_gets_400(client: FlaskClient, engine: Engine) -> None:
    deep_object = b'{"update_id": 1, "message": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2001
    for nested in (b"[" * 5000 + b"]" * 5000, deep_object):
        response = post_telegram_body(client, nested)
        assert response.status_code == 400 and b"nested too deeply" in response.data
    assert count(engine, InboundMessage) == 0


# --- bad requests of every kind --------------------------------------------------------------


def test_wrong_content_types_get_415(client: FlaskClient) -> None:
    whatsapp = client.post(
        "/webhooks/whatsapp", json=whatsapp_params("HELP"), headers={"X-Twilio-Signature": "x"}
    )
    telegram = client.post(
        "/webhooks/telegram", data={"update_id": "1"}, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    status_cb = client.post("/webhooks/whatsapp/status", data=b"MessageSid=SM1", content_type="text/plain")
    assert [whatsapp.status_code, telegram.status_code, status_cb.status_code] == [415, 415, 415]


@pytest.mark.parametrize("path", ["/webhooks/whatsapp", "/webhooks/whatsapp/status", "/webhooks/telegram"])
def test_oversized_bodies_get_413(client: FlaskClient, engine: Engine, path: str) -> None:
    if path.endswith("telegram"):
        body = json.dumps(telegram_message_update(1010, 4242, "x" * 20_000)).encode()
        headers, ctype = {"X-Telegram-Bot-Api-Secret-Token": SECRET}, "application/json"
    else:
        body = b"Body=" + b"x" * 20_000
        headers, ctype = {"X-Twilio-Signature": "x"}, "application/x-www-form-urlencoded"
    response = client.post(path, data=body, content_type=ctype, headers=headers)
    assert response.status_code == 413
    assert count(engine, InboundMessage) == 0


def test_unknown_paths_and_wrong_methods_get_short_4xx(client: FlaskClient) -> None:
    missing = client.get("/wp-login.php")
    wrong_method = client.get("/webhooks/whatsapp")
    assert missing.status_code == 404 and wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["Allow"]
    for response in (missing, wrong_method):
        assert response.mimetype == "text/plain" and len(response.data) < 100


def test_garbage_form_never_gives_a_server_error(client: FlaskClient) -> None:
    for body in (b"%", b"\xff\xfe=\x00", b"a=" + b"%zz" * 50, b"&&&==&", b"From=whatsapp%3A%2B1"):
        response = client.post(
            "/webhooks/whatsapp",
            data=body,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": "abc"},
        )
        assert response.status_code == 403


# --- channels that are not configured --------------------------------------------------------


def test_unconfigured_channels_answer_404(engine: Engine, ctx: Context) -> None:
    flask_app = create_app(App(settings=Settings(_env_file=None), engine=engine, ctx=ctx))
    try:
        client = flask_app.test_client()
        whatsapp = post_twilio(client, "/webhooks/whatsapp", whatsapp_params("HELP"))
        telegram = post_telegram(client, telegram_message_update(1, 1, "HELP"))
        health = client.get("/healthz")
    finally:
        close_app(flask_app)
    assert whatsapp.status_code == telegram.status_code == 404
    assert b"channel not configured" in whatsapp.data
    assert health.status_code == 200
    assert health.get_json()["channels"] == {"whatsapp": False, "telegram": False}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"twilio_auth_token": ""}, "TWILIO_AUTH_TOKEN"),
        ({"public_base_url": ""}, "PUBLIC_BASE_URL"),
        ({"telegram_bot_token": ""}, "TELEGRAM_BOT_TOKEN"),
    ],
)
def test_half_configured_channel_refuses_to_start_naming_the_setting(
    overrides: dict[str, str], named: str
) -> None:
    settings = make_settings(**overrides)
    with pytest.raises(ValueError, match=named):
        web_channels(settings)
    with pytest.raises(SystemExit, match=named):
        check_web_settings(settings)


def test_each_channel_that_is_off_is_logged_once_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.web"):
        check_web_settings(make_settings(twilio_account_sid="", telegram_webhook_secret=""))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert any("TWILIO_ACCOUNT_SID" in line for line in lines)
    assert any("TELEGRAM_WEBHOOK_SECRET" in line for line in lines)
    assert not any(BOT_TOKEN in line or AUTH_TOKEN in line for line in lines)


def test_telegram_webhook_needs_the_public_url_as_the_worker_does(
    engine: Engine, ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(twilio_account_sid="", public_base_url="")
    assert not settings.telegram_webhook_mode  # so the worker long-polls
    with caplog.at_level(logging.INFO, logger="bot.web"):
        assert check_web_settings(settings) == WebChannels(whatsapp=False, telegram=False)
    assert any("PUBLIC_BASE_URL is not set (the worker long-polls)" in r.getMessage() for r in caplog.records)
    flask_app = create_app(App(settings=settings, engine=engine, ctx=ctx))
    try:
        response = flask_app.test_client().post(
            "/webhooks/telegram", json={"update_id": 1}, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        assert response.status_code == 404
    finally:
        close_app(flask_app)


def test_serve_leaves_the_off_channels_to_its_worker_to_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.web"):
        check_web_settings(
            make_settings(twilio_account_sid="", telegram_bot_token="", telegram_webhook_secret=""),
            log_off=False,
        )
    assert caplog.records == []


def test_webhook_log_lines_never_carry_a_secret(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Our own lines; the HTTP client loggers are silenced by bot.logs (checked end to end).
    with caplog.at_level(logging.DEBUG, logger="bot"):
        post_telegram(client, telegram_message_update(1011, 4242, "HELP"), secret="guess")
        post_twilio(client, "/webhooks/whatsapp", whatsapp_params("HELP"), signature="forged")
        post_telegram(client, telegram_message_update(1012, 4242, "HELP"))
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    assert "refused" in ours
    for secret in (AUTH_TOKEN, BOT_TOKEN, SECRET):
        assert secret not in ours


# --- health ----------------------------------------------------------------------------------


def beat(engine: Engine, at: datetime) -> None:
    with write_session(engine) as session:
        repo.set_state(session=session, key="worker_heartbeat", value=at.isoformat(), now=at)


def test_healthz_without_a_worker_heartbeat_is_ok(client: FlaskClient, engine: Engine) -> None:
    sent_row(engine, provider_id="SM" + "2" * 32)
    with write_session(engine) as session:
        now = utcnow()
        session.add(
            Outbox(
                event_key="x:1",
                recipient=CUSTOMER,
                kind="stage",
                text="t",
                status="pending",
                due_at=now - timedelta(minutes=1),
                created_at=now,
            )
        )
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "database": "ok",
        "worker_heartbeat_age_seconds": None,
        "outbox_backlog": 1,
        "channels": {"whatsapp": True, "telegram": True},
    }


def test_healthz_reports_a_fresh_heartbeat(client: FlaskClient, engine: Engine) -> None:
    beat(engine, utcnow() - timedelta(seconds=30))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert 29 <= response.get_json()["worker_heartbeat_age_seconds"] < 60


def test_healthz_is_503_when_the_worker_heartbeat_is_stale(client: FlaskClient, engine: Engine) -> None:
    beat(engine, utcnow() - timedelta(minutes=10))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "stale"


def test_healthz_is_503_when_the_database_is_unreachable(
    tmp_path: Any, settings: Settings, ctx: Context
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/missing-dir/cargobot.db")
    flask_app = create_app(App(settings=settings, engine=engine, ctx=ctx))
    try:
        client = flask_app.test_client()
        health = client.get("/healthz")
        webhook = post_twilio(client, "/webhooks/whatsapp", whatsapp_params("HELP"))
    finally:
        close_app(flask_app)
    assert health.status_code == 503 and health.get_json() == {"status": "error", "database": "unreachable"}
    assert webhook.status_code == 503 and webhook.get_json() == {"error": "database unavailable"}


# --- Telegram update conversion (shared with long polling) -----------------------------------


NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_text_message_becomes_an_inbound_from_the_chat() -> None:
    update = parse_update(telegram_message_update(5, 77, "Status of MSKU9070323?", first_name="Chebet"))
    inbound = to_inbound(update, received_at=NOW)
    assert inbound is not None
    assert (inbound.address, inbound.text, inbound.provider_id, inbound.display_name) == (
        "telegram:77",
        "Status of MSKU9070323?",
        "5",
        "Chebet",
    )


def test_group_command_loses_the_bot_mention() -> None:
    update = parse_update(telegram_message_update(6, -1001234567890, "/status@cargobot_test_bot MSKU9070323"))
    inbound = to_inbound(update, received_at=NOW)
    assert inbound is not None and inbound.text == "/status MSKU9070323"
    assert inbound.address == "telegram:-1001234567890"


def test_photo_with_caption_carries_file_ids_not_token_urls() -> None:
    data = telegram_message_update(7, 77, "")
    del data["message"]["text"]
    data["message"]["caption"] = "my e-slip"
    data["message"]["photo"] = [
        {"file_id": f"small-{i}", "file_unique_id": f"u{i}", "width": 90 * (i + 1), "height": 90 * (i + 1)}
        for i in range(2)
    ]
    inbound = to_inbound(parse_update(data), received_at=NOW)
    assert inbound is not None
    assert inbound.text == "my e-slip" and inbound.media_urls == ("telegram-file:small-1",)


def test_button_press_without_its_message_uses_the_users_chat() -> None:
    data = telegram_callback_update(8, 77, "ALERT MSKU9070323")
    del data["callback_query"]["message"]
    inbound = to_inbound(parse_update(data), received_at=NOW)
    assert inbound is not None and (inbound.address, inbound.text) == ("telegram:77", "ALERT MSKU9070323")


@pytest.mark.parametrize("data", [None, [], "x", {"message": {}}, {"update_id": 1.5}])
def test_parse_update_refuses_what_is_not_an_update(data: Any) -> None:
    with pytest.raises(MalformedUpdate):
        parse_update(data)


def _without_chat(data: dict[str, Any]) -> dict[str, Any]:
    data["message"]["chat"] = None
    return data


def _without_message_chat(data: dict[str, Any]) -> dict[str, Any]:
    del data["message"]["chat"]
    return data


def _press_without_user(data: dict[str, Any]) -> dict[str, Any]:
    del data["callback_query"]["from"]
    return data


def _press_on_a_message_without_chat(data: dict[str, Any]) -> dict[str, Any]:
    data["callback_query"]["message"]["chat"] = None
    return data


@pytest.mark.parametrize(
    "broken",
    [
        _without_chat(telegram_message_update(9, 77, "HELP")),
        _without_message_chat(telegram_message_update(9, 77, "HELP")),
        _press_without_user(telegram_callback_update(9, 77, "HELP")),
        _press_on_a_message_without_chat(telegram_callback_update(9, 77, "HELP")),
    ],
)
def test_an_update_missing_the_chat_or_user_we_answer_is_refused(
    client: FlaskClient, engine: Engine, broken: dict[str, Any]
) -> None:
    with pytest.raises(MalformedUpdate):
        parse_update(broken)
    assert post_telegram(client, broken).status_code == 400
    assert count(engine, InboundMessage) == 0


def test_lone_surrogates_in_an_update_are_replaced_and_the_message_answered(
    client: FlaskClient, engine: Engine, telegram: FakeTelegram
) -> None:
    body = json.dumps(telegram_message_update(1020, 4242, "HELP", first_name="x")).encode()
    body = body.replace(b'"HELP"', b'"HELP \\ud800"').replace(b'"x"', b'"Wanjiru \\udc00"')
    response = post_telegram_body(client, body)
    assert response.status_code == 200
    with read_session(engine) as session:
        stored = session.execute(select(InboundMessage)).scalar_one()
        contact = session.execute(select(Contact).where(Contact.address == "telegram:4242")).scalar_one()
    assert stored.text == "HELP \ufffd" and stored.answered_at is not None
    assert contact.display_name == "Wanjiru \ufffd"
    assert len(telegram.sent) == 1
