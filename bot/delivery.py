"""What a channel adapter promises the dispatcher: send one message, or say why it could not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from handlers.types import Button


@dataclass(frozen=True)
class Template:
    """An approved WhatsApp template: Twilio content SID and its numbered variables."""

    content_sid: str
    variables: dict[str, str]


@dataclass(frozen=True)
class Outgoing:
    address: str
    text: str
    template: Template | None = None
    buttons: tuple[Button, ...] = field(default_factory=tuple)


class SendError(Exception):
    """Base of the delivery failures a channel reports."""


class RetryableSendError(SendError):
    """Try again later: 429, 5xx, timeouts, connection errors. ``retry_after`` in seconds if told."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Will never succeed: bot blocked, chat not found, invalid number."""


class OutsideWindowError(SendError):
    """WhatsApp refused free text because the customer's 24-hour window is closed (Twilio 63016)."""


class Channel(Protocol):
    name: str

    async def send(self, message: Outgoing) -> str:
        """Send one message and return the provider's message id, or raise a SendError."""
        ...


# Cut points in order of preference, with how much of the separator stays on the left piece.
_BREAKS: tuple[tuple[str, int], ...] = (("\n\n", 0), ("\n", 0), (". ", 1), (" ", 0))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fitting_prefix(text: str, limit: int) -> int:
    """How many code points of ``text`` fit in ``limit`` UTF-16 units (astral characters count 2)."""
    if _utf16_len(text[:limit]) == min(len(text), limit):
        return min(len(text), limit)
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-16 units, each non-blank.

    Lengths are counted in UTF-16 units, as Telegram does (Twilio's 1600 counts characters, so this
    is on the safe side for both). Prefers a paragraph break, then a line break, then a sentence end,
    then a space, as long as the piece is at least half full; a single word longer than the limit is
    cut hard. Whitespace at the cuts is dropped; nothing else is lost. (With ``limit`` 1 an astral
    character, two units, cannot fit and goes alone.)
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    pieces: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        fit = _fitting_prefix(rest, limit)
        cut = _best_cut(rest, fit)
        piece = rest[:cut].rstrip()
        if piece:  # only a hard cut through leading blanks can leave nothing
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest.strip() or not pieces:
        pieces.append(rest)
    return pieces


def _best_cut(text: str, fit: int) -> int:
    """Index to cut ``text`` at so that ``text[:index]`` fits (``fit`` code points) and is not blank."""
    fallback = None
    for separator, keep in _BREAKS:
        # a separator starting right at ``fit`` still leaves text[:fit] whole on the left
        at = text.rfind(separator, 0, fit + len(separator) - keep)
        while at > 0 and not text[: at + keep].strip():
            at = text.rfind(separator, 0, at)
        if at <= 0:
            continue
        if at + keep >= fit // 2:
            return at + keep
        fallback = fallback or at + keep
    if fallback:
        return fallback
    return max(fit, 1)
