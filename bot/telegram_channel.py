"""Telegram channel: sends through python-telegram-bot's ``Bot`` and says why a send failed.

The one place (with the inbound Telegram adapter) that imports ``telegram``. Error mapping:

==================================================  =======================================
RetryAfter (429)                                     RetryableSendError(retry_after)
TimedOut, NetworkError (5xx, connection trouble)     RetryableSendError
Conflict, InvalidToken (configuration, not message)  RetryableSendError(60 s): fix and resume
Forbidden (blocked, kicked, deactivated)             PermanentSendError
BadRequest ("chat not found" and every other)        PermanentSendError
ChatMigrated                                         PermanentSendError (names the new chat id)
==================================================  =======================================

A timed-out send may still have reached the chat: neither Telegram nor we have an idempotency key,
so a retry after a timeout can duplicate. That is the accepted cost of at-least-once alerts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import Sequence
from datetime import timedelta

from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.config import Settings
from bot.delivery import Outgoing, PermanentSendError, RetryableSendError, SendError, split_text
from handlers.types import Button

log = logging.getLogger(__name__)

TELEGRAM_TEXT_LIMIT = 4096
#: How long to hold alerts back when the token or the bot's mode is wrong: long enough not to spin,
#: short enough that fixing the configuration resumes delivery soon.
CONFIGURATION_RETRY_SECONDS = 60.0


def quiet_http_loggers() -> None:
    """Keep request URLs (which carry the bot token) out of the logs; call before building channels.

    httpx logs every request URL at INFO, and PTB's URL is ``.../bot<TOKEN>/sendMessage``; PTB's
    ``telegram.Bot`` logs the base URL with the token, and every message text, at DEBUG. twilio's
    client logs each request at INFO (without credentials): noise, so it goes as well.
    """
    for name in ("httpx", "httpcore", "twilio.http_client"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("telegram.Bot").setLevel(logging.INFO)


def file_base_url(api_base_url: str) -> str:
    """Bot API file URL matching the API URL: ``…/bot`` → ``…/file/bot`` (self-hosted servers, fakes)."""
    if api_base_url.endswith("/bot"):
        return api_base_url[: -len("/bot")] + "/file/bot"
    return "https://api.telegram.org/file/bot"


def opt_into_ptb_timedelta() -> None:
    """Take PTB's documented opt-in to ``timedelta`` time periods (``PTB_TIMEDELTA``).

    Without it PTB 22.2+ warns with a PTBDeprecationWarning from inside its own request code every
    time a 429 builds a ``RetryAfter``; under ``filterwarnings = error`` that warning would replace
    the 429. We read ``retry_after`` in either form, so the opt-in costs nothing. ``setdefault``
    leaves an operator's explicit choice alone.
    """
    os.environ.setdefault("PTB_TIMEDELTA", "true")


def chat_id_of(address: str) -> int | str:
    """``telegram:12345`` → 12345; ``telegram:@channel`` → "@channel"."""
    channel, _, chat = address.partition(":")
    if channel != "telegram" or not chat:
        raise PermanentSendError(f"not a Telegram address: {address!r}")
    try:
        return int(chat)
    except ValueError:
        if chat.startswith("@"):
            return chat
        raise PermanentSendError(f"not a Telegram chat id: {address!r}") from None


def inline_keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """One button per row: labels stay readable on a phone and callback data is the button's data."""
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data)] for b in buttons])


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def retry_after_seconds(exc: RetryAfter) -> float:
    """``RetryAfter.retry_after`` in seconds, whether PTB hands back int or timedelta (PTB_TIMEDELTA).

    Reading the attribute as int is deprecated since PTB 22.2 and warns; we accept either form.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        return _seconds(exc.retry_after)


class TelegramChannel:
    """Sends ``Outgoing`` messages to ``telegram:CHAT_ID`` addresses.

    ``connection_pool_size`` should cover the dispatcher's concurrency: a ``Bot`` left to build its
    own request object would serialise everything on a small pool. ``timeout`` bounds connect,
    read and write; a send that needs a pooled connection waits up to ``pool_timeout``.
    """

    name = "telegram"

    def __init__(
        self,
        settings: Settings,
        *,
        connection_pool_size: int | None = None,
        timeout: float = 10.0,
        pool_timeout: float = 30.0,
    ) -> None:
        token = settings.telegram_bot_token.get_secret_value()
        if not token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self._token = token
        opt_into_ptb_timedelta()
        pool = connection_pool_size or max(8, settings.dispatch_concurrency)
        self.connection_pool_size = pool
        request = HTTPXRequest(
            connection_pool_size=pool,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=pool_timeout,
        )
        self.bot = Bot(
            token,
            base_url=settings.telegram_api_base_url,
            base_file_url=file_base_url(settings.telegram_api_base_url),
            request=request,
        )
        self._initialized = False
        self._init_lock = asyncio.Lock()  # the first sends of a burst all arrive here at once

    async def initialize(self) -> None:
        """Open the connection pool and check the token (``getMe``)."""
        if self._initialized:
            return
        async with self._init_lock:
            if self._initialized:
                return
            try:
                await self.bot.initialize()
            except TelegramError as exc:  # PTB's InvalidToken message quotes the token: _classify redacts
                await self.bot.shutdown()  # close the pool PTB opened before getMe failed
                raise self._classify(exc) from None
            self._initialized = True

    async def shutdown(self) -> None:
        await self.bot.shutdown()
        self._initialized = False

    async def __aenter__(self) -> TelegramChannel:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def send(self, message: Outgoing) -> str:
        """Send the text (in several messages past 4096 characters, buttons on the last one);
        return the last message id."""
        chat_id = chat_id_of(message.address)
        if not message.text.strip():
            raise PermanentSendError("refusing to send an empty Telegram message")
        await self.initialize()
        pieces = split_text(message.text, TELEGRAM_TEXT_LIMIT)
        markup = inline_keyboard(message.buttons)
        message_id = ""
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            try:
                sent = await self.bot.send_message(chat_id, piece, reply_markup=markup if last else None)
            except TelegramError as exc:
                error = self._classify(exc)
                if index:
                    log.warning(
                        "telegram: %d of %d parts sent to %s before: %s",
                        index,
                        len(pieces),
                        message.address,
                        error,
                    )
                raise error from None
            message_id = str(sent.message_id)
        return message_id

    # ---- setup helpers for `cargobot setup-telegram` ----------------------------------------

    async def set_webhook(
        self,
        url: str,
        secret: str,
        allowed_updates: Sequence[str] | None = None,
        *,
        drop_pending_updates: bool = False,
    ) -> bool:
        await self.initialize()
        try:
            return await self.bot.set_webhook(
                url,
                secret_token=secret or None,
                allowed_updates=list(allowed_updates) if allowed_updates is not None else None,
                drop_pending_updates=drop_pending_updates,
            )
        except TelegramError as exc:
            raise self._classify(exc) from None

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> bool:
        await self.initialize()
        try:
            return await self.bot.delete_webhook(drop_pending_updates=drop_pending_updates)
        except TelegramError as exc:
            raise self._classify(exc) from None

    async def set_commands(self, commands: Sequence[tuple[str, str]]) -> bool:
        """Publish the command menu: ``[("status", "Status of a shipment"), ...]``."""
        await self.initialize()
        try:
            return await self.bot.set_my_commands([BotCommand(c.lstrip("/"), d) for c, d in commands])
        except TelegramError as exc:
            raise self._classify(exc) from None

    # ---- errors -----------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _classify(self, exc: TelegramError) -> SendError:
        """Map a PTB error to retry-later or give-up (order matters: BadRequest is a NetworkError)."""
        reason = self._redact(f"telegram {type(exc).__name__}: {exc.message}")
        if isinstance(exc, RetryAfter):
            return RetryableSendError(reason, retry_after=retry_after_seconds(exc))
        if isinstance(exc, Forbidden):
            return PermanentSendError(reason)
        if isinstance(exc, BadRequest):
            return PermanentSendError(reason)
        if isinstance(exc, ChatMigrated):
            return PermanentSendError(f"{reason} (the group is now chat {exc.new_chat_id})")
        if isinstance(exc, TimedOut | NetworkError):
            return RetryableSendError(reason)
        if isinstance(exc, InvalidToken | Conflict):
            return RetryableSendError(reason, retry_after=CONFIGURATION_RETRY_SECONDS)
        return PermanentSendError(reason)
