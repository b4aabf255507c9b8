"""The console channel's conversation side: ``cargobot chat`` and the chat inside ``cargobot demo``.

Each stdin line is one inbound message. With ``--json`` each answer is one JSON object per input
line (``{"replies": [...]}``); with ``--jsonl`` each input line is ``{"from": ADDRESS, "text": …}``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import TextIO

from bot.app import App, utcnow
from handlers.router import answer
from handlers.types import Inbound, Reply

log = logging.getLogger(__name__)

ADDRESS_PREFIXES = ("console:", "whatsapp:", "telegram:")


def valid_address(address: str) -> bool:
    prefix, _, rest = address.partition(":")
    return f"{prefix}:" in ADDRESS_PREFIXES and bool(rest.strip())


def ask(app: App, address: str, text: str) -> list[Reply]:
    """One inbound message from ``address``, answered in its own transaction."""
    now = utcnow()
    inbound = Inbound(address=address, text=text, received_at=now, provider_id=f"console-{uuid.uuid4().hex}")
    replies, _ = answer(engine=app.engine, inbound=inbound, ctx=app.ctx, now=lambda: now)
    return replies or []


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def run_scripted(
    app: App, lines: Iterable[bytes], out: TextIO, *, address: str | None, as_json: bool, jsonl: bool
) -> None:
    """Non-interactive chat: stdin lines in, replies (plain or JSON) out, one answer per line."""
    for raw in lines:
        line = _decode(raw)
        sender, text, error = address, line, None
        if jsonl:
            try:
                obj = json.loads(line)
                sender, text = str(obj["from"]), str(obj["text"])
            except (ValueError, KeyError, TypeError):
                error = 'each line must be a JSON object {"from": ADDRESS, "text": "..."}'
            if error is None and not valid_address(sender or ""):
                error = f"unknown address {sender!r}: use console:NAME, whatsapp:+E164 or telegram:CHAT_ID"
        if error is not None:
            out.write(json.dumps({"replies": [], "error": error}, ensure_ascii=False) + "\n")
            out.flush()
            continue
        assert sender is not None
        try:
            replies = [r.text for r in ask(app, sender, text)]
        except Exception:  # a bug must not end a scripted session; the traceback goes to stderr
            log.exception("could not answer a message")
            replies = []
        if as_json or jsonl:
            out.write(json.dumps({"replies": replies}, ensure_ascii=False) + "\n")
        else:
            out.write("\n\n".join(replies) + "\n\n")
        out.flush()


def run_interactive(
    app: App, address: str, inp: TextIO, out: TextIO, *, after_each: Callable[[], None] | None = None
) -> None:
    """A terminal chat. ``:as ADDRESS`` switches who you are; ``:quit`` ends."""
    out.write(
        f"You are {address}. Type a message, ':as ADDRESS' to speak as someone else, ':quit' to leave.\n"
    )
    while True:
        out.write(f"{address}> ")
        out.flush()
        line = inp.readline()
        if not line:
            out.write("\n")
            return
        text = line.rstrip("\n")
        if text.strip() in (":quit", ":q", ":exit"):
            return
        if text.startswith(":as "):
            candidate = text[4:].strip()
            if valid_address(candidate):
                address = candidate
                out.write(f"You are now {address}.\n")
            else:
                out.write("Use console:NAME, whatsapp:+E164 or telegram:CHAT_ID.\n")
            continue
        if not text.strip():
            continue
        for reply in ask(app, address, text):
            out.write("\n" + reply.text + "\n")
            for button in reply.buttons:
                out.write(f"  [{button.label}] -> send: {button.data}\n")
        out.write("\n")
        if after_each:
            after_each()
