"""Console channel: alerts for ``console:NAME`` addresses are written as lines to a text stream.

Used by ``cargobot demo`` / ``chat``, where there are no credentials and the "customer" is the
person at the terminal.
"""

from __future__ import annotations

import uuid
from typing import TextIO

from bot.delivery import Outgoing, PermanentSendError


class ConsoleChannel:
    """Writes ``[alert to console:NAME] text`` (and any buttons as ``[label → data]``) to ``out``."""

    name = "console"

    def __init__(self, out: TextIO) -> None:
        self.out = out

    async def send(self, message: Outgoing) -> str:
        channel, _, name = message.address.partition(":")
        if channel != "console" or not name:
            raise PermanentSendError(f"not a console address: {message.address!r}")
        line = f"[alert to {message.address}] {message.text}"
        if message.buttons:
            line += "\n" + "  ".join(f"[{b.label} → {b.data}]" for b in message.buttons)
        self.out.write(line + "\n")
        self.out.flush()
        return f"console-{uuid.uuid4().hex}"  # unique across runs, like a provider id
