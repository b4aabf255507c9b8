"""Hostile input on the webhooks: random forms, JSON, headers, encodings and content types, signed
and unsigned, through Flask's test client. Whatever arrives, the answer is never a 5xx and no
exception escapes into the log.

The app runs on a SQLite file, and again on PostgreSQL (where column lengths and the ban on NUL
characters hold), with the demo shipments so that status lookups find data; Telegram replies go to
a ``FakeTelegram`` on localhost. Well-formed message ids are replaced by fresh ones at send time,
so that a replayed example is never a redelivery (which would answer before the code that failed).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from twilio.request_validator import RequestValidator

from bot.app import App, build_app, utcnow
from bot.config import Settings
from bot.demo import seed_demo
from bot.telegram_channel import TelegramChannel
from bot.web import close_app, create_app
from storage.db import write_session
from storage.models import Outbox
from tests.fakes import FakeTelegram, telegram_callback_update, telegram_message_update

PUBLIC = "https://bot.example.com"
AUTH_TOKEN = "fuzz-twilio-auth-token-0123"
ACCOUNT_SID = "AC" + "f" * 32
BOT_TOKEN = "424242:fuzz-bot-token-xyz"
SECRET = "fuzz-webhook-secret-4567"
FORM = "application/x-www-form-urlencoded"
STATUS_SID = "SM" + "5" * 32

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Errors(logging.Handler):
    """Every ERROR record, from any logger: an exception the app caught is still a failure here."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Web:
    flask_app: Flask
    errors: _Errors
    engine: Engine


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """The app on SQLite, and on the shared PostgreSQL test schema (where column lengths hold)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz-web') / 'cargobot.db'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    with FakeTelegram(token=BOT_TOKEN) as telegram:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            admins="whatsapp:+447700900001",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_whatsapp_from="whatsapp:+447700900000",
            twilio_template_release="HX" + "1" * 32,
            public_base_url=PUBLIC,
            telegram_bot_token=BOT_TOKEN,
            telegram_webhook_secret=SECRET,
            telegram_api_base_url=telegram.base_url,
            max_request_bytes=16 * 1024,
            lookup_limit_per_hour=100_000,
        )
        app: App = build_app(settings)
        seed_demo(app.engine, now=utcnow())
        sender = TelegramChannel(settings, connection_pool_size=2, timeout=2.0)
        flask_app = create_app(app, telegram_sender=sender, reply_budget=2.0)
        errors = _Errors()
        logging.getLogger().addHandler(errors)
        try:
            yield Web(flask_app, errors, app.engine)
        finally:
            logging.getLogger().removeHandler(errors)
            close_app(flask_app)


def reset_status_row(engine: Engine) -> None:
    """An alert sent as ``STATUS_SID`` and not yet reported on, before each status-callback example."""
    now = utcnow()
    with write_session(engine) as session:
        row = session.execute(select(Outbox).where(Outbox.event_key == "fuzz:status")).scalar_one_or_none()
        if row is None:
            row = Outbox(
                event_key="fuzz:status",
                recipient="whatsapp:+254700000101",
                kind="release",
                text="Released",
                template="release",
                status="sent",
                due_at=now,
                created_at=now,
            )
            session.add(row)
        row.status, row.provider_id, row.delivery_status = "sent", STATUS_SID, None
        row.force_template, row.last_error, row.sent_at = False, None, now


_fresh = itertools.count(1)


def fresh_sid(form: dict[str, str]) -> dict[str, str]:
    """A new MessageSid in place of a well-formed one: a replayed example must not be a redelivery
    (answered with empty TwiML before it reaches the code that failed), or shrinking goes astray."""
    sid = form.get("MessageSid", "")
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", sid) and sid != STATUS_SID:
        return form | {"MessageSid": f"SMfuzz{uuid.uuid4().hex}"}
    return form


def check(response: Any, errors: _Errors, what: str) -> None:
    event(f"HTTP {response.status_code}")
    logged = [f"{r.name}: {r.getMessage()}" for r in errors.records]
    errors.records.clear()
    assert response.status_code < 500, f"{what}: HTTP {response.status_code} {response.data[:300]!r} {logged}"
    assert not logged, f"{what}: logged {logged}"


# --- strategies ------------------------------------------------------------------------------

INTERESTING = [
    "",
    " ",
    "0",
    "-1",
    "1e400",
    "99999999999999999999999999",
    "whatsapp:+254700000101",
    "whatsapp:+",
    "whatsapp:+447700900001",  # the admin
    "+254700000101",
    "SM" + "a" * 32,
    "MSKU9070323",
    "ALERT MSKU9070323 ALL",
    "/release MSKU9070323",
    "/broadcast hello",
    "STOP",
    "DELETE MY DATA",
    "AGENT",
    "'; DROP TABLE contact; --",
    "<Message>injected</Message>",
    "]]><![CDATA[",
    "&amp;&#0;&#xD800;",
    "%00%ff%zz",
    "\x00\x01\x1b[31m",
    "\u202e\u200b\ufeff",
    "\U0001f4a5" * 40,
    "é" * 300,
    "x" * 2000,
    "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME",
]
TWILIO_FIELDS = [
    "From",
    "To",
    "Body",
    "MessageSid",
    "SmsSid",
    "AccountSid",
    "ProfileName",
    "WaId",
    "NumMedia",
    "MediaUrl0",
    "MediaUrl9",
    "MediaUrl10",
    "MediaContentType0",
    "MessageStatus",
    "ErrorCode",
    "ButtonPayload",
]

texts = st.text(max_size=120)
values = st.one_of(texts, st.sampled_from(INTERESTING), st.integers().map(str))
valid_senders = st.one_of(
    st.sampled_from(["whatsapp:+254700000101", "whatsapp:+447700900001", "whatsapp:+254711222333"]),
    st.integers(min_value=10**6, max_value=10**15 - 1).map(lambda n: f"whatsapp:+{n}"),
)
valid_sids = st.one_of(
    st.just(STATUS_SID),
    st.uuids().map(lambda u: "SM" + u.hex),
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
)
# Fields stored as they come (a contact's name, media links, error codes): lengths and NULs matter.
names = st.one_of(st.sampled_from(["", "Amani W", "a\x00b", "n" * 201, "é" * 300, "\u202eevil"]), values)
media_urls = st.one_of(
    st.sampled_from(["https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME", "http://x/\x00"]),
    values,
)
error_codes = st.one_of(st.sampled_from(["63016", "30008", "1\x00", ""]), values)


@st.composite
def twilio_forms(draw: st.DrawFn) -> dict[str, str]:
    """Mostly a message or status that passes the checks, so the router and the status update run
    on hostile values; sometimes anything at all."""
    shape = draw(st.sampled_from(["valid", "valid", "plausible", "random"]))
    form: dict[str, str] = {}
    if shape != "random":
        valid = shape == "valid"
        form |= {
            "From": draw(valid_senders if valid else st.one_of(valid_senders, values)),
            "To": "whatsapp:+447700900000",
            "MessageSid": draw(valid_sids if valid else st.one_of(valid_sids, values)),
            "AccountSid": ACCOUNT_SID,
            "Body": draw(values),
            "NumMedia": draw(st.sampled_from(["0", "0", "1", "2", "10", "11", "-3", "x", ""])),
            "MediaUrl0": draw(media_urls),
            "ProfileName": draw(names),
            "MessageStatus": draw(
                st.sampled_from(["sent", "delivered", "read", "failed", "undelivered", "queued", "", "READ"])
            ),
            "ErrorCode": draw(error_codes),
        }
    keys = st.one_of(st.sampled_from(TWILIO_FIELDS), st.text(min_size=1, max_size=20))
    form |= draw(st.dictionaries(keys, values, max_size=2 if shape == "valid" else 6))
    return form


header_names = st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
extra_headers = st.dictionaries(header_names, header_values, max_size=3)
queries = st.one_of(
    st.just(""),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3).map(urllib.parse.urlencode),
)
content_types = st.sampled_from(
    [
        FORM,
        FORM + "; charset=utf-8",
        FORM + "; charset=latin-1",
        FORM + "; charset=no-such-charset",
        "application/json",
        "text/plain",
        "multipart/form-data",
        "application/xml",
        "",
        "*/*",
    ]
)


def encode_form(form: dict[str, str], encoding: str) -> bytes:
    return urllib.parse.urlencode(form, encoding=encoding, errors="replace").encode("ascii")


@st.composite
def twilio_requests(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["form"] * 8 + ["latin-1", "json", "raw", "empty", "multipart"]))
    query = draw(queries)
    return {
        "form": draw(twilio_forms()),
        "query": query,
        "url": PUBLIC + "{path}" + (f"?{query}" if query else ""),
        "signed": draw(st.sampled_from(["good"] * 8 + ["forged", "none", "other-url"])),
        "headers": draw(extra_headers),
        "mode": mode,
        "raw": draw(st.binary(max_size=300)) if mode == "raw" else b"",
        "content_type": draw(content_types) if mode in ("json", "raw", "empty") else None,
        "method": draw(st.sampled_from(["POST"] * 9 + ["GET", "PUT"])),
    }


def send_twilio(client: FlaskClient, path: str, request: dict[str, Any]) -> Any:
    form = fresh_sid(request["form"])
    url = request["url"].format(path=path)
    validator = RequestValidator(AUTH_TOKEN)
    headers = dict(request["headers"])
    if request["signed"] == "good":
        headers["X-Twilio-Signature"] = validator.compute_signature(url, form)
    elif request["signed"] == "forged":
        headers["X-Twilio-Signature"] = "Zm9yZ2VkIHNpZ25hdHVyZQ=="
    elif request["signed"] == "other-url":
        headers["X-Twilio-Signature"] = validator.compute_signature("http://localhost" + path, form)
    mode, ctype = request["mode"], request["content_type"]
    body: bytes | dict[str, str]
    if mode == "form":
        body, ctype = encode_form(form, "utf-8"), FORM
    elif mode == "latin-1":
        body, ctype = encode_form(form, "latin-1"), FORM + "; charset=latin-1"
    elif mode == "multipart":
        body, ctype = form, "multipart/form-data"
    elif mode == "json":
        body = json.dumps(form).encode()
    else:
        body = request["raw"]
    target = path + (f"?{request['query']}" if request["query"] else "")
    return client.open(
        target, method=request["method"], data=body, content_type=ctype or None, headers=headers
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
UPDATE_PATHS = [
    ("update_id",),
    ("message",),
    ("message", "text"),
    ("message", "caption"),
    ("message", "date"),
    ("message", "message_id"),
    ("message", "chat"),
    ("message", "chat", "id"),
    ("message", "chat", "type"),
    ("message", "from"),
    ("message", "from", "id"),
    ("message", "from", "first_name"),
    ("message", "entities"),
    ("message", "photo"),
    ("message", "document"),
    ("message", "voice"),
    ("edited_message",),
    ("callback_query",),
    ("callback_query", "data"),
    ("callback_query", "message"),
    ("callback_query", "from"),
    ("my_chat_member",),
]
chat_ids = st.one_of(
    st.integers(min_value=1, max_value=10**10),
    st.integers(min_value=-(10**13), max_value=-1),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**64),
    st.integers(min_value=10**120, max_value=10**130),
)
update_ids = st.one_of(
    st.integers(min_value=1, max_value=2**31),
    st.integers(),
    st.just(0),
    st.integers(min_value=10**120, max_value=10**130),
)


@st.composite
def telegram_updates(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["message", "message", "callback", "junk"]))
    if kind == "junk":
        return draw(json_values)
    text = draw(values)
    if kind == "message":
        update = telegram_message_update(draw(update_ids), draw(chat_ids), text or "HELP")
    else:
        update = telegram_callback_update(draw(update_ids), draw(chat_ids), text or "ALERT MSKU9070323")
    sender = update.get("message", update.get("callback_query", {})).get("from", {})
    sender["first_name"] = draw(st.one_of(st.just("Test"), names))
    for path, value in draw(st.lists(st.tuples(st.sampled_from(UPDATE_PATHS), json_values), max_size=3)):
        node: Any = update
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            if value is None and draw(st.booleans()):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
    return update


@st.composite
def telegram_requests(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["json"] * 6 + ["raw", "latin-1", "empty", "form"]))
    secret = draw(st.sampled_from([SECRET] * 6 + ["", "wrong", SECRET + " ", None]))
    headers = draw(extra_headers)
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return {
        "update": draw(telegram_updates()),
        "mode": mode,
        "raw": draw(st.binary(max_size=300)) if mode == "raw" else b"",
        "content_type": draw(content_types) if mode in ("raw", "empty") else None,
        "headers": headers,
    }


def telegram_body(request: dict[str, Any]) -> tuple[bytes, str | None]:
    """The body and content type; a well-formed update_id is replaced by a new one (see fresh_sid)."""
    update, mode = request["update"], request["mode"]
    if isinstance(update, dict) and type(update.get("update_id")) is int and 0 < update["update_id"] < 2**31:
        update = update | {"update_id": 2**31 + next(_fresh)}
    if mode == "json":
        return json.dumps(update).encode(), "application/json"
    if mode == "latin-1":
        return json.dumps(update, ensure_ascii=False).encode(
            "latin-1", "replace"
        ), "application/json; charset=latin-1"
    if mode == "form":
        return encode_form({"update_id": str(update)[:100]}, "utf-8"), FORM
    return request["raw"], request["content_type"]


def whatsapp_request(**form: str) -> dict[str, Any]:
    """A signed, well-formed message form (for the explicit examples)."""
    base = {"From": "whatsapp:+254700000101", "MessageSid": "SM" + "e" * 32, "Body": "HELP", "NumMedia": "0"}
    return {
        "form": base | form,
        "query": "",
        "url": PUBLIC + "{path}",
        "signed": "good",
        "headers": {},
        "mode": "form",
        "raw": b"",
        "content_type": None,
        "method": "POST",
    }


def telegram_request(update: dict[str, Any]) -> dict[str, Any]:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    return {"update": update, "mode": "json", "raw": b"", "content_type": None, "headers": headers}


def with_path(update: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = update
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return update


# --- the properties --------------------------------------------------------------------------
#
# The explicit examples are inputs that once failed (see each one's comment).


@FUZZ
@given(request=twilio_requests())
@example(request=whatsapp_request(ProfileName="n" * 201))  # longer than contact.display_name
@example(request=whatsapp_request(ProfileName="a\x00b"))  # PostgreSQL text cannot hold NUL
@example(request=whatsapp_request(NumMedia="1", MediaUrl0="http://x/\x00"))  # into the agent request
def test_whatsapp_webhook_never_fails_whatever_arrives(web: Web, request: dict[str, Any]) -> None:
    response = send_twilio(web.flask_app.test_client(), "/webhooks/whatsapp", request)
    check(response, web.errors, "whatsapp")


@FUZZ
@given(request=twilio_requests())
@example(request=whatsapp_request(MessageSid=STATUS_SID, MessageStatus="failed", ErrorCode="1\x00"))
@example(request=whatsapp_request(MessageSid=STATUS_SID, MessageStatus="undelivered", ErrorCode="63016"))
def test_status_callback_never_fails_whatever_arrives(web: Web, request: dict[str, Any]) -> None:
    reset_status_row(web.engine)
    response = send_twilio(web.flask_app.test_client(), "/webhooks/whatsapp/status", request)
    check(response, web.errors, "status")


@FUZZ
@given(request=telegram_requests())
@example(request=telegram_request(with_path(telegram_message_update(7, 5, "x"), ("message", "text"), 5)))
@example(request=telegram_request(with_path(telegram_message_update(8, 5, "x"), ("message", "text"), True)))
@example(
    request=telegram_request(with_path(telegram_callback_update(9, 5, "x"), ("callback_query", "data"), 5))
)
@example(request=telegram_request(telegram_message_update(10**130, 5, "HELP")))  # provider_key too long
@example(request=telegram_request(telegram_message_update(11, 10**130, "HELP")))  # address too long
@example(
    request=telegram_request(
        with_path(telegram_message_update(12, 5, "HELP"), ("message", "from", "first_name"), "y" * 300)
    )
)
def test_telegram_webhook_never_fails_whatever_arrives(web: Web, request: dict[str, Any]) -> None:
    body, content_type = telegram_body(request)
    response = web.flask_app.test_client().post(
        "/webhooks/telegram", data=body, content_type=content_type, headers=request["headers"]
    )
    check(response, web.errors, "telegram")
