"""Telegram updates as neutral ``Inbound`` messages, for the webhook (``bot.web``) and long polling.

Both paths parse with python-telegram-bot's ``Update.de_json`` and dedup on ``update_id`` (the
``provider_id``), so an update seen by the webhook and again by a poller is answered once. A button
press (``callback_query``) arrives as if the user had typed the button's data.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from telegram import Message, Update, User

from handlers.types import Inbound

#: Message attributes that carry a file we cannot read: handed to staff like AGENT.
_MEDIA = ("photo", "document", "voice", "audio", "video", "video_note")
#: "/status@cargobot_bot ABC" in a group: the bot's name is not part of the command.
_COMMAND_MENTION = re.compile(r"^(/\w+)@\w+")
#: Halves of UTF-16 surrogate pairs: JSON can spell them ("\ud800") but no text store takes them.
_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedUpdate(ValueError):
    """The body is not a Telegram ``Update``."""


def parse_update(data: Any) -> Update:
    """``Update.de_json`` for a decoded JSON body; MalformedUpdate when it is not an update."""
    if not isinstance(data, dict):
        raise MalformedUpdate("an update is a JSON object")
    update_id = data.get("update_id")
    if not _is_int64(update_id) or update_id < 0:
        raise MalformedUpdate("update_id is missing or not a 64-bit integer")
    try:
        update = Update.de_json(data, bot=None)
    except Exception as exc:  # de_json raises KeyError, TypeError, AttributeError … on junk
        raise MalformedUpdate(f"not a Telegram update ({type(exc).__name__})") from None
    _check_fields(update)
    return update


def _is_int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _check_fields(update: Update) -> None:
    """de_json trusts the JSON's types; we read these, so they must be what the Bot API sends."""
    message = update.message
    query = update.callback_query
    ids = []
    users = []
    if message is not None:
        if message.chat is None:
            raise MalformedUpdate("a message has no chat")
        ids.append(message.chat.id)
        if message.from_user is not None:
            users.append(message.from_user)
        for field in (message.text, message.caption):
            if field is not None and not isinstance(field, str):
                raise MalformedUpdate("message text is not a string")
    if query is not None:
        if query.from_user is None:
            raise MalformedUpdate("a button press has no user")
        users.append(query.from_user)
        if query.message is not None:
            if query.message.chat is None:
                raise MalformedUpdate("a button press's message has no chat")
            ids.append(query.message.chat.id)
        if query.data is not None and not isinstance(query.data, str):
            raise MalformedUpdate("callback data is not a string")
    ids.extend(user.id for user in users)
    if not all(_is_int64(value) for value in ids):
        raise MalformedUpdate("a chat or user id is not a 64-bit integer")
    for user in users:
        names = (user.first_name, user.last_name, user.username)
        if not isinstance(user.first_name, str) or not all(n is None or isinstance(n, str) for n in names):
            raise MalformedUpdate("a user's name is not a string")


def media_refs(message: Message) -> tuple[str, ...]:
    """``telegram-file:FILE_ID`` for each file in the message.

    Not download URLs: a Bot API file URL contains the bot token, so staff get the file id only.
    """
    refs = []
    for attribute in _MEDIA:
        value = getattr(message, attribute, None)
        if not value:
            continue
        if isinstance(value, tuple):  # photo: several sizes of one picture, the largest last
            value = value[-1]
        refs.append(_text(f"telegram-file:{value.file_id}"))
    return tuple(refs)


def _text(value: str) -> str:
    """``value`` with any lone surrogate replaced (U+FFFD), so it can be stored and sent."""
    return _SURROGATE.sub("\ufffd", value)


def _name(user: User) -> str | None:
    """The sender's name as we store it; None for a blank one."""
    return _text(user.full_name) if user.full_name else None


def to_inbound(update: Update, *, received_at: datetime) -> Inbound | None:
    """The update as a message from a person, or None for updates we do not answer (edits, joins …)."""
    provider_id = str(update.update_id)
    query = update.callback_query
    if query is not None:
        if not query.data:
            return None
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        return Inbound(
            address=f"telegram:{chat_id}",
            text=_text(query.data),
            received_at=received_at,
            provider_id=provider_id,
            display_name=_name(query.from_user),
        )
    message = update.message
    if message is None:
        return None
    media = media_refs(message)
    text = message.text or message.caption or ""
    if not text.strip() and not media:
        return None  # stickers, locations, service messages: nothing to answer
    user = message.from_user
    return Inbound(
        address=f"telegram:{message.chat.id}",
        text=_COMMAND_MENTION.sub(r"\1", _text(text)),
        received_at=received_at,
        provider_id=provider_id,
        display_name=_name(user) if user is not None else None,
        media_urls=media,
    )


def callback_query_id(update: Update) -> str | None:
    """The id to answer (``answerCallbackQuery``) so the user's button stops spinning."""
    return update.callback_query.id if update.callback_query is not None else None
