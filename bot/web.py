"""``cargobot web``: the WhatsApp (Twilio) and Telegram webhooks and ``/healthz``, served by gunicorn.

Nothing is built at import: ``create_app`` is the Flask app factory and ``run_web`` the command.

What the webhooks promise:

* Every inbound message is stored, deduplicated on the provider's id, before it is answered
  (``handlers.router.answer``; its record, its answer and what the answer queues commit together).
* WhatsApp is answered with TwiML in the HTTP response: at most 10 messages of 1600 characters,
  anything longer goes to the outbox in the same transaction. Telegram replies are written to the
  outbox in that same transaction, claimed by this process, then sent through the Bot API; a reply
  whose send cannot be confirmed is released to the worker's dispatcher, and one left behind by a
  process that died mid-send is taken over when its claim lapses. So an acknowledged update never
  loses its answer (DESIGN §2: whatever cannot be confirmed goes through the outbox).
* Bad input (forged signatures, wrong secrets, malformed or oversized bodies, wrong content types,
  unknown paths or methods) gets a short 4xx; only an unreachable database gives 503.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import logging
import os
import re
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import Flask, Response, abort, current_app, jsonify, request
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.http.errors import ParseException
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from bot.app import App, build_app, utcnow
from bot.config import Settings
from bot.delivery import split_text
from bot.replies import claim_replies, send_claimed
from bot.telegram_channel import TelegramChannel
from bot.telegram_inbound import MalformedUpdate, callback_query_id, parse_update, to_inbound
from bot.whatsapp_channel import STATUS_CALLBACK_PATH, WHATSAPP_TEXT_LIMIT, button_hint
from handlers.router import answer
from handlers.types import Inbound, Reply
from storage import outbox, repo
from storage.db import dispose, read_session
from storage.prepared import OnConnection

log = logging.getLogger(__name__)

WHATSAPP_PATH = "/webhooks/whatsapp"
WHATSAPP_STATUS_PATH = STATUS_CALLBACK_PATH
TELEGRAM_PATH = "/webhooks/telegram"
HEARTBEAT_KEY = "worker_heartbeat"

FORM = "application/x-www-form-urlencoded"
TWIML = "application/xml"
#: Twilio sends at most 10 media items per message, and takes at most 10 <Message> in an answer.
MAX_MEDIA = 10
MAX_TWIML_MESSAGES = 10
#: Characters XML 1.0 cannot carry at all (TwiML is XML): dropped from replies.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_WHATSAPP_SENDER = re.compile(r"whatsapp:\+[1-9]\d{6,14}")
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

T = TypeVar("T")


# --- which webhooks this process serves ------------------------------------------------------


@dataclass(frozen=True)
class WebChannels:
    whatsapp: bool
    telegram: bool


def web_channels(settings: Settings) -> WebChannels:
    """The webhooks to serve; ValueError naming the setting when a channel is configured without
    the secret its webhook is checked with."""
    whatsapp = bool(settings.twilio_account_sid)
    if whatsapp:
        for name, value in (
            ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token.get_secret_value()),
            ("PUBLIC_BASE_URL", settings.public_base_url),
        ):
            if not value:
                raise ValueError(f"WhatsApp is configured (TWILIO_ACCOUNT_SID) but {name} is not set")
    token = bool(settings.telegram_bot_token.get_secret_value())
    secret = bool(settings.telegram_webhook_secret.get_secret_value())
    if secret and not token:
        raise ValueError("TELEGRAM_WEBHOOK_SECRET is set but TELEGRAM_BOT_TOKEN is not")
    # Webhook mode is both settings, as the worker decides it: otherwise the worker long-polls.
    return WebChannels(whatsapp=whatsapp, telegram=token and settings.telegram_webhook_mode)


def check_web_settings(settings: Settings, *, log_off: bool = True) -> WebChannels:
    """``web_channels`` for the command: SystemExit on error, and one log line per webhook that is
    off (``log_off=False`` under ``serve``, whose worker logs each channel that is off)."""
    try:
        channels = web_channels(settings)
    except ValueError as exc:
        raise SystemExit(f"cargobot web: {exc}") from None
    if log_off:
        if not channels.whatsapp:
            log.info("WhatsApp webhooks are off: TWILIO_ACCOUNT_SID is not set")
        if not channels.telegram:
            log.info(_telegram_off(settings))
    return channels


def _telegram_off(settings: Settings) -> str:
    if not settings.telegram_bot_token.get_secret_value():
        return "Telegram is off: TELEGRAM_BOT_TOKEN is not set"
    missing = "TELEGRAM_WEBHOOK_SECRET" if settings.public_base_url else "PUBLIC_BASE_URL"
    return f"Telegram webhook is off: {missing} is not set (the worker long-polls)"


# --- the async Telegram client, driven from synchronous Flask --------------------------------


class TelegramReplier:
    """One event loop on a daemon thread per process, owning the (async) TelegramChannel.

    Started on first use, so under gunicorn it starts in each worker after the fork: a loop or a
    connection pool made before the fork would be shared, broken, by every child.
    """

    def __init__(self, make_channel: Callable[[], TelegramChannel]) -> None:
        self._make_channel = make_channel
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._channel: TelegramChannel | None = None

    def _started(self) -> tuple[asyncio.AbstractEventLoop, TelegramChannel]:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="telegram-replies", daemon=True)
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
                self._channel = self._make_channel()
            assert self._channel is not None
            return self._loop, self._channel

    def call(self, func: Callable[[TelegramChannel], Awaitable[T]], timeout: float) -> T:
        """Run ``func(channel)`` on the loop and wait for it; TimeoutError (after cancelling it)."""
        loop, channel = self._started()

        async def run() -> T:
            return await func(channel)

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"no answer from Telegram within {timeout:.1f}s") from None

    def close(self) -> None:
        with self._lock:
            loop, thread, channel = self._loop, self._thread, self._channel
            if loop is None or self._pid != os.getpid():
                return
            self._loop = self._thread = self._channel = None
        if channel is not None:
            try:
                asyncio.run_coroutine_threadsafe(channel.shutdown(), loop).result(5)
            except Exception:  # closing on the way out: nothing left to protect
                log.debug("closing the Telegram client failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        loop.close()


# --- the Flask app ---------------------------------------------------------------------------


class _Web:
    """What the request handlers share, kept in ``flask_app.extensions["cargobot"]``."""

    def __init__(
        self, app: App, channels: WebChannels, replier: TelegramReplier | None, reply_budget: float
    ) -> None:
        self.app = app
        self.reply_budget = reply_budget
        self.settings = app.settings
        self.channels = channels
        self.replier = replier
        self.validator = RequestValidator(app.settings.twilio_auth_token.get_secret_value())
        self.public_base_url = app.settings.public_base_url.rstrip("/")
        self.worker = f"web:{socket.gethostname()}:{os.getpid()}"
        self.has_template = app.settings.has_template


def create_app(
    app: App, *, telegram_sender: TelegramChannel | None = None, reply_budget: float | None = None
) -> Flask:
    """The Flask app for ``app``; ``telegram_sender`` replaces the Telegram client (tests), and
    ``reply_budget`` how long a Telegram webhook waits for its replies to be confirmed (default
    ``CARGOBOT_TELEGRAM_REPLY_SECONDS``)."""
    channels = web_channels(app.settings)
    replier = None
    if channels.telegram:
        make = (
            (lambda: telegram_sender)
            if telegram_sender is not None
            else (lambda: TelegramChannel(app.settings, connection_pool_size=8))
        )
        replier = TelegramReplier(make)
    budget = app.settings.telegram_reply_seconds if reply_budget is None else reply_budget
    web = _Web(app, channels, replier, budget)
    flask_app = Flask(__name__)
    flask_app.config["MAX_CONTENT_LENGTH"] = app.settings.max_request_bytes
    flask_app.extensions["cargobot"] = web

    flask_app.register_error_handler(Exception, _error_response)
    flask_app.before_request(_bounded_unsized_body)
    flask_app.add_url_rule(WHATSAPP_PATH, "whatsapp", lambda: _whatsapp_message(web), methods=["POST"])
    flask_app.add_url_rule(
        WHATSAPP_STATUS_PATH, "whatsapp_status", lambda: _whatsapp_status(web), methods=["POST"]
    )
    flask_app.add_url_rule(TELEGRAM_PATH, "telegram", lambda: _telegram_update(web), methods=["POST"])
    flask_app.add_url_rule("/healthz", "healthz", lambda: _healthz(web), methods=["GET"])
    return flask_app


def close_app(flask_app: Flask) -> None:
    """Stop the Telegram loop thread and close the engine (gunicorn ``worker_exit``, tests)."""
    web = flask_app.extensions.get("cargobot")
    if isinstance(web, _Web):
        if web.replier is not None:
            web.replier.close()
        dispose(web.app.engine)


def _bounded_unsized_body() -> None:
    """A body sent without Content-Length (chunked) is read here, up to ``MAX_CONTENT_LENGTH``:
    413 past it. Werkzeug stops reading such a body at the limit without a word, and a cut form or
    JSON document would then be judged as if it had been sent so."""
    environ = request.environ
    if request.content_length is not None or not environ.get("wsgi.input_terminated"):
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    stream, body = environ["wsgi.input"], bytearray()
    while len(body) <= limit:  # a server's input may hand a body over in short reads
        try:
            piece = stream.read(limit + 1 - len(body))
        except (ParseException, OSError):  # a malformed chunk, or the client gone mid-body
            abort(400, "malformed or incomplete chunked body")
        if not piece:
            break
        body += piece
    if len(body) > limit:
        abort(413)
    environ["wsgi.input"] = io.BytesIO(bytes(body))  # before Flask's request stream is made from it


def _error_response(exc: Exception) -> Response | tuple[Response, int]:
    """Short bodies for every error; 503 when the database is unreachable; never a 500 for bad input."""
    if isinstance(exc, HTTPException):
        response = exc.get_response()  # keeps headers such as Allow on 405
        custom = exc.description != type(exc).description
        detail = f"{exc.name}: {exc.description}" if custom else exc.name
        response.set_data(f"{exc.code} {detail}\n")
        response.mimetype = "text/plain"
        return response
    if isinstance(exc, SQLAlchemyError):
        log.error("database error on %s %s: %s", request.method, request.path, type(exc).__name__)
        return jsonify(error="database unavailable"), 503
    log.exception("unexpected error on %s %s", request.method, request.path)
    return jsonify(error="internal error"), 500


def _whatsapp_pieces(replies: list[Reply]) -> list[str]:
    """Each reply cut into WhatsApp messages (1600 characters each), buttons written out as text."""
    pieces = []
    for reply in replies:
        body = _NOT_XML.sub("", reply.text + button_hint(reply.buttons))
        if body.strip():
            pieces.extend(split_text(body, WHATSAPP_TEXT_LIMIT))
    return pieces


def _queue_overflow(
    connection: OnConnection, *, sid: str, address: str, pieces: list[str], now: datetime
) -> list[str]:
    """The pieces that fit in one TwiML answer; the rest go to the outbox for the worker."""
    outbox.add_replies(
        connection,
        event_prefix=f"reply:whatsapp:{sid}",
        address=address,
        texts=pieces[MAX_TWIML_MESSAGES:],
        first_index=MAX_TWIML_MESSAGES,
        now=now,
    )
    return pieces[:MAX_TWIML_MESSAGES]


def _twiml(pieces: list[str] | None) -> Response:
    response = MessagingResponse()
    for piece in pieces or []:
        response.message(piece)
    return Response(response.to_xml(), mimetype=TWIML)


def _valid_signature(
    validator: RequestValidator, url: str, form: MultiDict[str, str], signature: str
) -> bool:
    """``RequestValidator.validate``, which signs the URL both with and without its port (a proxy
    may add or drop it), and a genuine request matches the URL as we have it: that is checked
    first, one HMAC instead of two per webhook."""
    expected = validator.compute_signature(url, form).encode()
    return hmac.compare_digest(expected, signature.encode()) or validator.validate(url, form, signature)


def _signed_form(web: _Web) -> MultiDict[str, str]:
    """The form of a Twilio webhook whose ``X-Twilio-Signature`` is valid for the public URL."""
    if not web.channels.whatsapp:
        abort(404, "channel not configured")
    if request.mimetype != FORM:
        abort(415, f"expected {FORM}")
    form = request.form  # 413 past MAX_CONTENT_LENGTH
    signature = request.headers.get("X-Twilio-Signature", "")
    query = request.query_string.decode("latin-1")
    url = web.public_base_url + request.path + (f"?{query}" if query else "")
    if not signature or not _valid_signature(web.validator, url, form, signature):
        log.warning(
            "refused a Twilio webhook on %s: %s signature", request.path, "wrong" if signature else "missing"
        )
        abort(403, "invalid signature")
    # NUL cannot be stored in PostgreSQL text; drop it rather than refuse a genuine, signed message.
    return MultiDict([(key, value.replace("\x00", "")) for key, value in form.items(multi=True)])


def _whatsapp_message(web: _Web) -> Response:
    form = _signed_form(web)
    sender, sid = form.get("From", ""), form.get("MessageSid", "")
    if not _WHATSAPP_SENDER.fullmatch(sender):
        abort(400, "From is not a WhatsApp sender")
    if not _PROVIDER_ID.fullmatch(sid):
        abort(400, "MessageSid is missing or malformed")
    try:
        count = min(max(int(form.get("NumMedia") or 0), 0), MAX_MEDIA)
    except ValueError:
        abort(400, "NumMedia is not a number")
    media = tuple(url for i in range(count) if (url := form.get(f"MediaUrl{i}", "")))
    inbound = Inbound(
        address=sender,
        text=form.get("Body", ""),
        received_at=utcnow(),
        provider_id=sid,
        display_name=form.get("ProfileName") or None,
        media_urls=media,
    )

    def twiml_pieces(
        connection: OnConnection, replies: list[Reply], now: datetime, recipient: str
    ) -> list[str]:
        pieces = _whatsapp_pieces(replies)
        return _queue_overflow(connection, sid=sid, address=recipient, pieces=pieces, now=now)

    _, pieces = answer(engine=web.app.engine, inbound=inbound, ctx=web.app.ctx, now=utcnow, then=twiml_pieces)
    return _twiml(pieces)


def _whatsapp_status(web: _Web) -> Response:
    form = _signed_form(web)
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "").lower()
    if not _PROVIDER_ID.fullmatch(sid) or not status:
        abort(400, "MessageSid and MessageStatus are required")
    error_code = form.get("ErrorCode") or None
    engine = web.app.engine
    now = utcnow()
    applied = outbox.apply_delivery_report(
        engine=engine,
        provider_id=sid,
        status=status,
        error_code=error_code,
        now=now,
        has_template=web.has_template,
    )
    if not applied:
        # The dispatcher may not have committed this message id yet: keep the report for it.
        log.info("status %r for message %s not on record yet; kept", status, sid)
        outbox.keep_delivery_report(
            engine=engine, provider_id=sid, status=status, error_code=error_code, now=now
        )
    return _twiml(None)


def _telegram_update(web: _Web) -> Response | tuple[str, int]:
    if not web.channels.telegram or web.replier is None:
        abort(404, "channel not configured")
    expected = web.settings.telegram_webhook_secret.get_secret_value().encode()
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
    if not hmac.compare_digest(given, expected):
        log.warning("refused a Telegram webhook: wrong secret token")
        abort(403, "wrong secret token")
    if request.mimetype != "application/json":
        abort(415, "expected application/json")
    try:
        update = parse_update(request.get_json(silent=True))  # 413 past MAX_CONTENT_LENGTH
    except MalformedUpdate as exc:
        abort(400, str(exc))
    except RecursionError:  # arrays or objects nested deeper than the parser goes: no update is
        abort(400, "JSON nested too deeply")
    inbound = to_inbound(update, received_at=utcnow())
    if inbound is None:
        log.debug("ignored Telegram update %s (not a message)", update.update_id)
        return "", 200
    lease = timedelta(seconds=max(web.settings.claim_lease_seconds, 3 * web.reply_budget))
    _, claimed = answer(
        engine=web.app.engine,
        inbound=inbound,
        ctx=web.app.ctx,
        now=utcnow,
        then=claim_replies(update_id=update.update_id, worker=web.worker, lease=lease),
    )
    if claimed:
        _send_replies(web, inbound.address, claimed)
    query_id = callback_query_id(update)
    if query_id is not None:
        _answer_callback(web.replier, query_id)
    return "", 200


def _send_replies(web: _Web, address: str, claimed: list[tuple[int, Reply]]) -> None:
    """Send the claimed replies on the replier's loop within the reply budget (``bot.replies``)."""
    assert web.replier is not None

    def send(channel: TelegramChannel) -> Awaitable[None]:
        return send_claimed(
            engine=web.app.engine,
            channel=channel,
            address=address,
            claimed=claimed,
            worker=web.worker,
            budget=web.reply_budget,
        )

    try:
        # The sends stop at the budget; the margin covers settling the last of them.
        web.replier.call(send, timeout=web.reply_budget + 5)
    except Exception:  # unsettled rows stay claimed: the dispatcher takes them when the lease ends
        log.exception("telegram replies for %s were not all settled", address)


def _answer_callback(replier: TelegramReplier, query_id: str) -> None:
    """Stop the button's spinner; best effort (Telegram gives up on it by itself)."""
    try:
        replier.call(lambda channel: channel.bot.answer_callback_query(query_id), timeout=2.0)
    except Exception as exc:  # cosmetic: the reply itself is already sent or queued
        log.debug("could not answer callback query: %s", type(exc).__name__)


def _heartbeat_age(state: Any, now: datetime) -> float | None:
    if state is None:
        return None
    try:
        beat = datetime.fromisoformat(state.value)
    except ValueError:
        beat = state.updated_at
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - beat).total_seconds())


def _healthz(web: _Web) -> tuple[Response, int]:
    """200 when the database answers and the worker's heartbeat (if it ever beat) is fresh."""
    now = utcnow()
    try:
        with read_session(web.app.engine) as session:
            session.execute(text("SELECT 1"))
            state = repo.get_state(session=session, key=HEARTBEAT_KEY)
            backlog = repo.outbox_backlog(session=session, now=now)
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="error", database="unreachable"), 503
    age = _heartbeat_age(state, now)
    stale = age is not None and age > web.settings.heartbeat_stale_seconds
    body = {
        "status": "stale" if stale else "ok",
        "database": "ok",
        "worker_heartbeat_age_seconds": None if age is None else round(age, 1),
        "outbox_backlog": backlog,
        "channels": {"whatsapp": web.channels.whatsapp, "telegram": web.channels.telegram},
    }
    return jsonify(body), 503 if stale else 200


# --- gunicorn --------------------------------------------------------------------------------


class WebServer(BaseApplication):  # type: ignore[misc]
    """gunicorn driven from Python, so ``cargobot web`` is the one entry point.

    ``factory`` runs in each worker after the fork (gunicorn calls ``load`` there unless
    ``preload_app`` is set, which we never do).
    """

    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self._factory = factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> Any:
        try:
            return self._factory()
        except Exception:
            # gunicorn prints a failed worker's exception to stderr as well as logging it; that
            # raw line would skip the redacting handler (a Telegram error quotes the bot's URL).
            log.exception("a web worker could not start")
            raise RuntimeError("a web worker could not start: the error is logged above") from None


class _ProcessLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's own lines (workers booting, signals, worker timeouts) through the process's
    handler, as every other line: in ``LOG_FORMAT``, at ``LOG_LEVEL``, with secrets redacted.
    gunicorn's ``loglevel``, ``errorlog`` and ``syslog`` settings are therefore not used, and an
    access log, if enabled, goes to stderr at INFO."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)
            log.setLevel(logging.NOTSET)
            log.propagate = True


def _worker_exit(_server: Any, worker: Any) -> None:
    wsgi = getattr(worker, "wsgi", None)
    if isinstance(wsgi, Flask):
        close_app(wsgi)


def gunicorn_options(*, host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """The server settings, shared with ``bench/webhooks.py`` so its baseline runs under the same."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,  # Twilio gives up after 15 s; Telegram replies wait CARGOBOT_TELEGRAM_REPLY_SECONDS
        "graceful_timeout": 10,
        "keepalive": 5,
        "proc_name": "cargobot-web",
        "logger_class": _ProcessLogger,
        # gunicorn 25.1+ opens a control socket in $HOME by default: one path shared by every
        # instance on the machine, and unwritable under systemd's ProtectHome.
        "control_socket_disable": True,
        "worker_exit": _worker_exit,
    }


def run_web(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    """Check the settings, upgrade the database once, then serve with ``workers`` processes."""
    if workers < 1 or threads < 1:
        raise SystemExit("cargobot web: --workers and --threads must be at least 1")
    check_web_settings(settings)
    dispose(build_app(settings).engine)  # migrations and admins once, before forking
    log.info("serving webhooks on http://%s:%d with %d worker(s)", host, port, workers)

    def factory() -> Flask:  # runs in each worker, after the fork
        return create_app(build_app(settings, migrate=False))

    WebServer(factory, gunicorn_options(host=host, port=port, workers=workers, threads=threads)).run()
