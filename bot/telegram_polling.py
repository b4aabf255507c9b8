"""Telegram long polling for installs without a public URL (``cargobot worker`` / ``serve``).

The offset is kept in the database (RuntimeState ``telegram_offset``) and advanced only after an
update is stored and answered, so a restart neither loses nor repeats updates: an update fetched
twice is recognised by its ``update_id`` and answered once. Replies are written to the outbox,
claimed by this process, in the same transaction as the inbound message; a reply whose send fails
(or whose process dies) is delivered by the dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import RetryAfter, TelegramError

from bot.app import App, utcnow
from bot.replies import claim_replies, send_claimed
from bot.telegram_channel import TelegramChannel, retry_after_seconds
from bot.telegram_inbound import callback_query_id, to_inbound
from handlers.router import answer
from handlers.types import Reply
from storage import repo
from storage.db import write_session

log = logging.getLogger(__name__)

OFFSET_KEY = "telegram_offset"
POLL_TIMEOUT_SECONDS = 25
ALLOWED_UPDATES = ["message", "callback_query"]
_ERROR_PAUSE_SECONDS = 5.0


def load_offset(app: App) -> int | None:
    with write_session(app.engine) as session:
        state = repo.get_state(session=session, key=OFFSET_KEY)
        return int(state.value) if state else None


def save_offset(app: App, offset: int) -> None:
    with write_session(app.engine) as session:
        repo.set_state(session=session, key=OFFSET_KEY, value=str(offset), now=utcnow())


def store_and_answer(app: App, update: Update, worker: str) -> tuple[str, list[tuple[int, Reply]]]:
    """Store the update's message and its replies (claimed outbox rows) in one transaction.

    Returns the sender's address and the claimed replies (none for a repeat or a non-message)."""
    inbound = to_inbound(update, received_at=utcnow())
    if inbound is None:
        return "", []
    lease = timedelta(seconds=app.settings.claim_lease_seconds)
    claim = claim_replies(update_id=update.update_id, worker=worker, lease=lease)
    _, claimed = answer(engine=app.engine, inbound=inbound, ctx=app.ctx, now=utcnow, then=claim)
    return inbound.address, claimed or []


async def _start(app: App, channel: TelegramChannel, stop: asyncio.Event) -> int | None:
    """The saved offset, once any webhook is removed (polling and a webhook exclude each other);
    tried again while Telegram or the database fails, until ``stop``."""
    while not stop.is_set():
        try:
            offset = await asyncio.to_thread(load_offset, app)
            await channel.bot.delete_webhook(drop_pending_updates=False)
            return offset
        except (TelegramError, SQLAlchemyError) as exc:
            log.warning("Telegram long polling cannot start (%s); trying again shortly", type(exc).__name__)
            await _pause(stop)
    return None


async def _pause(stop: asyncio.Event) -> None:
    """``_ERROR_PAUSE_SECONDS``, or less if the worker is stopping."""
    try:
        await asyncio.wait_for(stop.wait(), _ERROR_PAUSE_SECONDS)
    except TimeoutError:
        pass


async def poll_forever(app: App, channel: TelegramChannel, stop: asyncio.Event) -> None:
    worker = f"poller:{socket.gethostname()}"
    offset = await _start(app, channel, stop)
    if stop.is_set():
        return
    log.info("Telegram long polling started (offset %s)", offset)
    while not stop.is_set():
        try:
            updates = await channel.bot.get_updates(
                offset=offset, timeout=POLL_TIMEOUT_SECONDS, allowed_updates=ALLOWED_UPDATES
            )
        except RetryAfter as exc:
            await asyncio.sleep(retry_after_seconds(exc))
            continue
        except TelegramError as exc:
            log.warning("Telegram getUpdates failed (%s); trying again shortly", type(exc).__name__)
            await _pause(stop)
            continue
        for update in updates:
            try:
                address, claimed = await asyncio.to_thread(store_and_answer, app, update, worker)
            except SQLAlchemyError as exc:  # the database is busy or gone: fetch it again later
                log.warning(
                    "could not store Telegram update %s (%s); trying again shortly",
                    update.update_id,
                    type(exc).__name__,
                )
                await asyncio.sleep(_ERROR_PAUSE_SECONDS)
                break
            if claimed:
                await send_claimed(
                    engine=app.engine, channel=channel, address=address, claimed=claimed, worker=worker
                )
            query_id = callback_query_id(update)
            if query_id is not None:
                try:
                    await channel.bot.answer_callback_query(query_id)
                except TelegramError:
                    log.debug("could not answer a callback query")
            offset = update.update_id + 1
            try:
                await asyncio.to_thread(save_offset, app, offset)
            except SQLAlchemyError as exc:
                # Kept in memory: a later save catches up, and a repeated update is deduplicated.
                log.warning("could not save the Telegram offset (%s)", type(exc).__name__)
