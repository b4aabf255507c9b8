"""Every inbound message enters here: stored once, routed to the customer or staff side, answered.

``answer`` runs ``receive`` in a write transaction of its own: the inbound row, the contact's
changes, any outbox rows and the answer's record commit together, before the answer is given.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from handlers import catalogue, staff
from handlers.context import Context
from handlers.conversation import Turn, customer_keyword, detect_language, handle_customer
from handlers.status import Reader
from handlers.timefmt import timezone_for_address
from handlers.types import Inbound, Reply
from storage import repo
from storage.db import (
    NeedsWriteTurn,
    apply_writes,
    deferred_writes,
    driver_write,
    read_first_session,
    reads_first,
    require_write_turn,
    write_session,
)
from storage.models import Contact
from storage.prepared import OnConnection

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
T = TypeVar("T")
Then = Callable[[OnConnection, list[Reply], datetime, str], T]
"""A channel's callback in the write transaction: (connection, replies, moment, address to record);
it writes with ``Prepared`` statements (``storage.outbox.add_replies``)."""


def clean_text(text: str, limit: int) -> tuple[str, bool]:
    """Drop control characters and cut the text at ``limit``; the flag says it was cut."""
    text = _CONTROL.sub("", text).replace("\r\n", "\n")
    if len(text) > limit:
        return text[:limit], True
    return text, False


def answer(
    *,
    engine: Engine,
    inbound: Inbound,
    ctx: Context,
    now: Callable[[], datetime],
    then: Then[T] | None = None,
) -> tuple[list[Reply] | None, T | None]:
    """Store and answer ``inbound``; replies None for a redelivery answered before. ``then`` runs
    in the write transaction, with the replies (to queue what the channel cannot send at once) and
    the address to record them under (``Answered.recorded_as``).

    On a SQLite file a message is answered outside the write turn first (``db.reads_first``): its
    record, its lookups and its sender's last-message time are all it writes, and they are written
    in a short write transaction afterwards. A message that would change anything else (staff,
    a new sender, a subscription, an erasure …) is answered again in a write transaction from the
    start. The price of reading first: a sender's messages answered at the same moment may go a
    few over the hourly lookup limit.

    A unique-key clash means a concurrent delivery of the same message (or a new contact's first
    two messages at once): one more attempt sees the other's commit.
    """
    read_first = reads_first(engine)
    clashes = 0
    while True:
        try:
            if read_first:
                return _answer_reading_first(engine=engine, inbound=inbound, ctx=ctx, now=now, then=then)
            return _answer_in_write_turn(engine=engine, inbound=inbound, ctx=ctx, now=now, then=then)
        except NeedsWriteTurn:
            read_first = False
        except IntegrityError:
            clashes += 1
            if clashes == 3:
                raise
            log.info("concurrent delivery of %s:%s; trying again", inbound.channel, inbound.provider_id)


def _answer_in_write_turn(
    *,
    engine: Engine,
    inbound: Inbound,
    ctx: Context,
    now: Callable[[], datetime],
    then: Then[T] | None,
) -> tuple[list[Reply] | None, T | None]:
    with write_session(engine) as session:
        moment = now()
        answered = receive(session=session, inbound=inbound, ctx=ctx, now=moment)
        if answered is None:
            return None, None
        return answered.replies, _then(then, session.connection(), answered, moment)


def _answer_reading_first(
    *,
    engine: Engine,
    inbound: Inbound,
    ctx: Context,
    now: Callable[[], datetime],
    then: Then[T] | None,
) -> tuple[list[Reply] | None, T | None]:
    """``_answer_in_write_turn`` with the answer worked out in a ``read_first_session``."""
    with read_first_session(engine) as session:
        moment = now()
        answered = receive(session=session, inbound=inbound, ctx=ctx, now=moment)
        if answered is None:
            return None, None
        writes = deferred_writes(session)
    with driver_write(engine) as connection:  # a Session, even a Connection, cost more than these writes
        apply_writes(connection, writes)
        extra = _then(then, connection, answered, moment)
    return answered.replies, extra


def _then(
    then: Then[T] | None,
    connection: OnConnection,
    answered: Answered,
    moment: datetime,
) -> T | None:
    """The channel's callback, in the write transaction, when there are replies to hand it."""
    if then is None or not answered.replies:
        return None
    return then(connection, answered.replies, moment, answered.recorded_as)


@dataclass(frozen=True)
class Answered:
    """The replies to a message, and the address their records carry: the sender's, or, when the
    message confirmed DELETE MY DATA, the anonymous one the sender was erased to (the replies are
    still sent to the sender; nothing kept may name them)."""

    replies: list[Reply]
    recorded_as: str


def receive(*, session: Session, inbound: Inbound, ctx: Context, now: datetime) -> Answered | None:
    """Store and answer one inbound message; None when it is a redelivery already answered."""
    text, truncated = clean_text(inbound.text, ctx.max_message_chars)
    provider_key = f"{inbound.channel}:{inbound.provider_id}" if inbound.provider_id else None
    known = repo.arrival(session=session, address=inbound.address, provider_key=provider_key, now=now)
    claim = repo.claim_inbound(
        session=session,
        known=known,
        provider_key=provider_key,
        address=inbound.address,
        text=text,
        received_at=now,
    )
    if claim is None:
        log.info("redelivered message %s answered already", provider_key)
        return None
    if known.role is not None:
        require_write_turn(session)  # staff commands read what they change
    contact = repo.get_or_create_contact(
        session=session, address=inbound.address, now=now, display_name=inbound.display_name, known=known
    )
    replies, lookups = route(
        session=session,
        inbound=Inbound(
            address=inbound.address,
            text=text,
            received_at=inbound.received_at,
            provider_id=inbound.provider_id,
            display_name=inbound.display_name,
            media_urls=inbound.media_urls,
        ),
        ctx=ctx,
        now=now,
        inbound_key=claim.key,
        truncated=truncated,
        contact=contact,
        known=known,
    )
    record = "\n\n".join(r.text for r in replies)
    if contact.address != inbound.address:  # erased while answering: DELETE MY DATA confirmed
        claim = replace(claim, fields={**claim.fields, "address": contact.address, "text": ""})
        record = ""
    repo.record_answer(session=session, claim=claim, reply=record, answered_at=now, lookups=lookups)
    return Answered(replies, contact.address)


def route(
    *,
    session: Session,
    inbound: Inbound,
    ctx: Context,
    now: datetime,
    inbound_key: str,
    contact: Contact,
    known: repo.Arrival,
    truncated: bool = False,
) -> tuple[list[Reply], int]:
    """The replies to one stored message, and how many status lookups they made."""
    role = known.role
    if known.has_held_alerts:  # alerts waiting for the WhatsApp customer's next message
        repo.release_held_for(session=session, recipient=contact.address, now=now)
    detected = None if contact.language_chosen else detect_language(inbound.text)
    repo.touch_contact(session=session, contact=contact, at=now, language=detected)
    reader = Reader(
        contact=contact,
        lang=contact.language,
        tz=timezone_for_address(contact.address),
        now=now,
        is_staff=role is not None,
    )
    turn = Turn(
        inbound=inbound, reader=reader, session=session, ctx=ctx, inbound_key=inbound_key, known=known
    )
    text = inbound.text.strip()
    if role is not None and staff.is_command(text):
        replies = staff.handle_command(turn, role=role)
    elif role is not None and text.startswith("/") and customer_keyword(text) is None:
        command = text.split()[0]
        replies = [Reply(f"Unknown command {command[:40]}. Send /help for the list of commands.")]
    elif text.startswith("/") and customer_keyword(text) is None:
        log.info("refused a staff command from a customer address")
        replies = [Reply(catalogue.text("staff.only", reader.lang, contact=ctx.business_contact))]
    else:
        replies = handle_customer(turn)
    if truncated:
        note = catalogue.text("long.truncated", reader.lang, limit=ctx.max_message_chars)
        replies = [Reply(note), *replies]
    return replies, len(turn.lookups)
