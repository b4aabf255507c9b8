"""DELETE MY DATA / FUTA DATA YANGU: erase a contact's personal data after a confirmation.

Shipments, timelines and alert counts stay, anonymised: the contact's address and name are
replaced, their messages blanked, their subscriptions and links removed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session

from handlers import catalogue
from handlers.types import Reply
from storage import repo
from storage.models import Contact

if TYPE_CHECKING:
    from handlers.conversation import Turn

CONFIRM_WITHIN = timedelta(minutes=15)
_YES = {"yes", "ndio", "ndiyo", "confirm", "delete", "futa"}


def ask_delete(*, contact: Contact, now: datetime) -> None:
    contact.pending_action, contact.pending_payload, contact.pending_at = "delete", None, now


def handle_pending(turn: Turn) -> list[Reply] | None:
    """Answer a pending confirmation, or None when the message is not about one."""
    contact = turn.reader.contact
    if contact.pending_action != "delete":
        return None
    fresh = contact.pending_at is not None and turn.reader.now - contact.pending_at <= CONFIRM_WITHIN
    contact.pending_action = contact.pending_payload = contact.pending_at = None
    if fresh and turn.inbound.text.strip().lower().rstrip(".!") in _YES:
        erase_contact(session=turn.session, contact=contact)
        return [Reply(catalogue.text("delete.done", turn.reader.lang))]
    return [Reply(catalogue.text("delete.cancelled", turn.reader.lang))]


def anonymous_address(address: str) -> str:
    return "deleted:" + hashlib.sha256(address.encode()).hexdigest()[:16]


def erase_contact(*, session: Session, contact: Contact) -> None:
    repo.erase_contact_data(session=session, contact=contact, anonymous=anonymous_address(contact.address))
