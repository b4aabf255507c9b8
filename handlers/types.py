"""Neutral message types shared by every channel: the handlers never see a framework object."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

#: A contact's address as every channel writes it: ``whatsapp:+E164``, ``telegram:CHAT_ID`` (at most
#: 52 significant bits: 16 digits, a supergroup's -100 prefix included) or ``console:NAME``.
ADDRESS = re.compile(r"whatsapp:\+[1-9][0-9]{5,14}|telegram:-?[1-9][0-9]{0,15}|console:[\w.@-]{1,60}")


@dataclass(frozen=True)
class Inbound:
    """One message from a person, as any channel adapter hands it in.

    ``address`` is the channel-qualified sender: ``console:NAME``, ``whatsapp:+E164`` or
    ``telegram:CHAT_ID``. ``provider_id`` is the channel's own message id, used to answer a
    redelivered message once.
    """

    address: str
    text: str
    received_at: datetime
    provider_id: str | None = None
    display_name: str | None = None
    media_urls: tuple[str, ...] = ()

    @property
    def channel(self) -> str:
        return self.address.split(":", 1)[0]


@dataclass(frozen=True)
class Button:
    """An inline button (Telegram): ``data`` is sent back to us as if the user typed it."""

    label: str
    data: str


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)
