"""Repository functions: every query the product makes lives here. Keyword-only, session passed in.

Callers own the transaction (``storage.db.write_session`` / ``read_session``); nothing here commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from storage.db import attach, require_write_turn, write
from storage.models import (
    Contact,
    Hold,
    InboundMessage,
    MaintenanceWindow,
    Outbox,
    Reference,
    RuntimeState,
    Shipment,
    ShipmentContact,
    ShipmentReference,
    Staff,
    Subscription,
    TimelineEvent,
)
from storage.prepared import Prepared

# A container, master air waybill or master bill of lading may be linked to many shipments
# (groupage); every other kind belongs to exactly one.
SHARED_KINDS = frozenset({"container", "awb", "bl"})

# The statements every customer message runs, built once: constructing a statement costs more
# than SQLite takes to answer it. The hottest are ``Prepared`` (compiled once, run on the driver).
_CONTACT_BY_ADDRESS = select(Contact).where(Contact.address == bindparam("address"))
_STAFF_ROLE = select(Staff.role).where(Staff.address == bindparam("address"))
_SHIPMENTS_BY_REFERENCE = (
    select(Shipment)
    .join(ShipmentReference, ShipmentReference.shipment_id == Shipment.id)
    .join(Reference, Reference.id == ShipmentReference.reference_id)
    .where(Reference.value == bindparam("value"))
    .order_by(Shipment.id)
)
_ACTIVE_HOLDS = (
    select(Hold)
    .where(Hold.shipment_id == bindparam("shipment_id"), Hold.cleared_at.is_(None))  # type: ignore[union-attr]
    .order_by(Hold.raised_at, Hold.id)
)
_ACTIVE_SUBSCRIPTIONS = (
    select(Subscription)
    .where(Subscription.contact_id == bindparam("contact_id"), Subscription.active.is_(True))  # type: ignore[attr-defined]
    .order_by(Subscription.id)
)
_UPCOMING_WINDOWS = (
    select(MaintenanceWindow)
    .where(MaintenanceWindow.cancelled_at.is_(None), MaintenanceWindow.ends_at > bindparam("now"))  # type: ignore[union-attr]
    .order_by(MaintenanceWindow.starts_at)
)
_INBOUND_T = InboundMessage.__table__  # type: ignore[attr-defined]
_INSERT_INBOUND = insert(_INBOUND_T)
_ANSWERED_COLUMNS = ("provider_key", "address", "text", "received_at", "answered_at", "reply", "lookups")
# An answered message's record, written only while its sender's address is still on record: a
# message answered read-first must not bring back an address DELETE MY DATA erased meanwhile.
_RECORD_ANSWERED = Prepared(
    insert(_INBOUND_T).from_select(
        list(_ANSWERED_COLUMNS),
        select(
            *(bindparam(f"new_{name}", type_=_INBOUND_T.c[name].type) for name in _ANSWERED_COLUMNS)
        ).where(
            exists().where(Contact.__table__.c.address == bindparam("new_address"))  # type: ignore[attr-defined]
        ),
    )
)
_ANSWER_INBOUND = Prepared(
    update(_INBOUND_T)
    .where(_INBOUND_T.c.id == bindparam("row_id"))
    .values(answered_at=bindparam("answered_at"), reply=bindparam("reply"), lookups=bindparam("lookups"))
)
_CONTACT_T = Contact.__table__  # type: ignore[attr-defined]
_CONTACT_COLUMNS = tuple(_CONTACT_T.c)
_CONTACT_KEYS = tuple(column.key for column in _CONTACT_COLUMNS)
_CONTACT_MAPPER = inspect(Contact)
# The last-message time only moves forward and a language the contact chose is never replaced:
# a message answered read-first may write this after a later message's write turn.
_TOUCH_CONTACT = Prepared(
    update(_CONTACT_T)
    .where(_CONTACT_T.c.id == bindparam("contact_id"))
    .values(
        last_inbound_at=case(
            (
                or_(_CONTACT_T.c.last_inbound_at.is_(None), _CONTACT_T.c.last_inbound_at < bindparam("at")),
                bindparam("at"),
            ),
            else_=_CONTACT_T.c.last_inbound_at,
        ),
        language=case((_CONTACT_T.c.language_chosen, _CONTACT_T.c.language), else_=bindparam("language")),
    )
)
# Read-only statements for the status answer, run on the session's connection: they return named
# tuples (attribute access like the entities) without the ORM's per-statement and per-object cost.
_SHIPMENT_T = Shipment.__table__  # type: ignore[attr-defined]
_HOLD_T = Hold.__table__  # type: ignore[attr-defined]
_EVENT_T = TimelineEvent.__table__  # type: ignore[attr-defined]
_SUB_T = Subscription.__table__  # type: ignore[attr-defined]
_WINDOW_T = MaintenanceWindow.__table__  # type: ignore[attr-defined]
_LINK_T = ShipmentContact.__table__  # type: ignore[attr-defined]
# For the contact asking: linked to the shipment (may see its details), subscribed to it.
_LINKED_TO_ASKER = (
    exists()
    .where(_LINK_T.c.shipment_id == _SHIPMENT_T.c.id, _LINK_T.c.contact_id == bindparam("contact_id"))
    .label("linked")
)
_SUBSCRIBED_ASKER = (
    exists()
    .where(
        _SUB_T.c.shipment_id == _SHIPMENT_T.c.id,
        _SUB_T.c.contact_id == bindparam("contact_id"),
        _SUB_T.c.active.is_(True),
    )
    .label("subscribed")
)
_ON_HOLD = (
    exists().where(_HOLD_T.c.shipment_id == _SHIPMENT_T.c.id, _HOLD_T.c.cleared_at.is_(None)).label("on_hold")
)
_SHIPMENT_ROWS_BY_REFERENCE = Prepared(
    select(_SHIPMENT_T, _LINKED_TO_ASKER, _SUBSCRIBED_ASKER, _ON_HOLD)
    .join(ShipmentReference.__table__, ShipmentReference.__table__.c.shipment_id == _SHIPMENT_T.c.id)  # type: ignore[attr-defined]
    .join(Reference.__table__, Reference.__table__.c.id == ShipmentReference.__table__.c.reference_id)  # type: ignore[attr-defined]
    .where(Reference.__table__.c.value == bindparam("value"))  # type: ignore[attr-defined]
    .order_by(_SHIPMENT_T.c.id)
)
_ACTIVE_HOLD_ROWS = Prepared(
    select(_HOLD_T)
    .where(_HOLD_T.c.shipment_id == bindparam("shipment_id"), _HOLD_T.c.cleared_at.is_(None))
    .order_by(_HOLD_T.c.raised_at, _HOLD_T.c.id)
)
_LINKED_IDS_READ = select(_LINK_T.c.shipment_id).where(
    _LINK_T.c.contact_id == bindparam("contact_id"),
    _LINK_T.c.shipment_id.in_(bindparam("ids", expanding=True)),
)
_RECENT_EVENT_NOTES = Prepared(
    select(_EVENT_T.c.public, _EVENT_T.c.note)
    .where(_EVENT_T.c.shipment_id == bindparam("shipment_id"))
    .order_by(_EVENT_T.c.at.desc(), _EVENT_T.c.id.desc())
    .limit(bindparam("limit"))
)
_UPCOMING_WINDOW_ROWS = Prepared(
    select(_WINDOW_T)
    .where(_WINDOW_T.c.cancelled_at.is_(None), _WINDOW_T.c.ends_at > bindparam("now"))
    .order_by(_WINDOW_T.c.starts_at)
)
_LOOKUPS_T = _INBOUND_T.alias("earlier")  # the sender's earlier messages, beside the one arriving
_NEXT_WINDOW = (
    select(_WINDOW_T.c.starts_at, _WINDOW_T.c.ends_at)
    .where(_WINDOW_T.c.cancelled_at.is_(None), _WINDOW_T.c.ends_at > bindparam("now"))
    .order_by(_WINDOW_T.c.starts_at)
    .limit(1)
    .subquery("next_window")
)
# What answering an inbound message starts from, in one statement (see ``Arrival``). Every part is
# an outer join or a subquery on one anchor row, so a new sender or an unseen message reads as NULLs.
_ARRIVAL = Prepared(
    select(
        *_CONTACT_COLUMNS,  # first, in this order: see _contact_from_row
        Staff.__table__.c.role,  # type: ignore[attr-defined]
        _INBOUND_T.c.id.label("stored_id"),
        _INBOUND_T.c.answered_at,
        exists()
        .where(Outbox.recipient == bindparam("address"), Outbox.status == "held")
        .label("has_held_alerts"),
        select(func.coalesce(func.sum(_LOOKUPS_T.c.lookups), 0))
        .where(_LOOKUPS_T.c.address == bindparam("address"), _LOOKUPS_T.c.received_at >= bindparam("since"))
        .scalar_subquery()
        .label("lookups"),
        _NEXT_WINDOW.c.starts_at.label("window_starts_at"),
        _NEXT_WINDOW.c.ends_at.label("window_ends_at"),
    )
    .select_from(select(literal(1).label("anchor")).subquery("anchor"))
    .outerjoin(_CONTACT_T, _CONTACT_T.c.address == bindparam("address"))
    .outerjoin(Staff.__table__, Staff.__table__.c.address == bindparam("address"))  # type: ignore[attr-defined]
    .outerjoin(_INBOUND_T, _INBOUND_T.c.provider_key == bindparam("key"))
    .outerjoin(_NEXT_WINDOW, true())
)
_RELEASE_HELD = Prepared(
    update(Outbox)
    .where(Outbox.recipient == bindparam("to"), Outbox.status == "held")
    .values(status="pending", due_at=bindparam("due"), template=None, last_error=None)
)


def _upsert_insert(session: Session) -> Any:
    """The session's dialect's ``insert``, which has ``on_conflict_do_update`` / ``_do_nothing``:
    one statement where several processes may write the same key at once."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


# --- contacts --------------------------------------------------------------------------------


def get_contact(*, session: Session, address: str) -> Contact | None:
    return session.execute(_CONTACT_BY_ADDRESS, {"address": address}).scalar_one_or_none()


LOOKUP_WINDOW = timedelta(hours=1)
"""The window of the per-sender lookup limit (``CARGOBOT_LOOKUP_LIMIT_PER_HOUR``)."""


@dataclass(frozen=True)
class WindowTimes:
    """When an iCMS maintenance window starts and ends (UTC)."""

    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Arrival:
    """What answering one inbound message starts from, read in one indexed statement: every
    statement less is a round trip less on PostgreSQL, and a shorter hold of SQLite's write lock."""

    contact: Contact | None  # None: a new sender
    role: str | None  # the address's staff role, None for a customer
    stored_id: int | None  # the message's row, when it was stored before
    answered: bool  # stored and answered before: a redelivery
    has_held_alerts: bool  # alerts held until the sender's next WhatsApp message
    lookups_last_hour: int  # the sender's status lookups within LOOKUP_WINDOW
    next_window: WindowTimes | None  # the first iCMS maintenance window not over yet


def arrival(*, session: Session, address: str, provider_key: str | None, now: datetime) -> Arrival:
    params = {"address": address, "key": provider_key, "since": now - LOOKUP_WINDOW, "now": now}
    session.flush()  # what an ORM query would autoflush first
    (row,) = _ARRIVAL.rows(session.connection(), params)
    window = None
    if row.window_starts_at is not None:
        window = WindowTimes(starts_at=row.window_starts_at, ends_at=row.window_ends_at)
    return Arrival(
        contact=None if row.id is None else _contact_from_row(session, row[: len(_CONTACT_KEYS)]),
        role=row.role,
        stored_id=row.stored_id,
        answered=row.answered_at is not None,
        has_held_alerts=bool(row.has_held_alerts),
        lookups_last_hour=int(row.lookups),
        next_window=window,
    )


def _contact_from_row(session: Session, values: Sequence[Any]) -> Contact:
    """The contact whose columns are ``values``, in ``session`` as if an ORM query had loaded it
    (the session's own instance when it holds one already). ``arrival`` runs as Core: loading
    the contact through the ORM cost as much as the rest of the statement."""
    held = session.identity_map.get(_CONTACT_MAPPER.identity_key_from_primary_key((values[0],)))
    if held is not None:
        return held  # type: ignore[no-any-return]
    if not _CONTACT_MAPPER.configured:  # as an ORM query would: a process may not have made one yet
        configure_mappers()
    contact: Contact = _CONTACT_MAPPER.class_manager.new_instance()
    contact.__dict__.update(zip(_CONTACT_KEYS, values, strict=True))  # as the ORM's loader fills it
    make_transient_to_detached(contact)  # those values become its loaded state, its id its key
    attach(session, contact)
    return contact


def clean_display_name(name: str | None) -> str | None:
    """A name as the channel gave it (the person typed it), made storable."""
    if name is None:
        return None
    return name.replace("\x00", "")[:200] or None


def get_or_create_contact(
    *,
    session: Session,
    address: str,
    now: datetime,
    display_name: str | None = None,
    known: Arrival | None = None,
) -> Contact:
    """The contact, created when new; ``known``: its message's ``arrival``, when already read."""
    known = known or arrival(session=session, address=address, provider_key=None, now=now)
    display_name = clean_display_name(display_name)
    contact = known.contact
    if contact is None:
        require_write_turn(session)  # its id is needed from here on
        contact = Contact(address=address, display_name=display_name, created_at=now)
        session.add(contact)
        session.flush()
    elif display_name and contact.display_name != display_name:
        contact.display_name = display_name
    return contact


TOUCH_GRANULARITY = timedelta(seconds=60)
"""How stale a contact's last message time may be: a customer who sends several messages within
a minute costs one UPDATE, and the 24-hour window it measures closes at most this much early (an
alert due in that last minute goes as the template, or is held until they write, as after it)."""


def touch_contact(*, session: Session, contact: Contact, at: datetime, language: str | None = None) -> None:
    """Record that ``contact`` wrote at ``at`` (the WhatsApp 24-hour window), in ``language`` when
    given (the language of the message, for a contact who has not chosen one).

    One Core statement, and the loaded contact updated as if read so: on every inbound message,
    the ORM's flush machinery for these columns cost more than the rest of the write. None when
    neither changed (by more than ``TOUCH_GRANULARITY``).
    """
    language = language or contact.language
    last = contact.last_inbound_at
    if language == contact.language and last is not None and at - last < TOUCH_GRANULARITY:
        return
    write(session, _TOUCH_CONTACT, {"contact_id": contact.id, "at": at, "language": language})
    set_committed_value(contact, "last_inbound_at", at)
    set_committed_value(contact, "language", language)


# --- staff -----------------------------------------------------------------------------------


def staff_role(*, session: Session, address: str) -> str | None:
    return session.execute(_STAFF_ROLE, {"address": address}).scalar_one_or_none()


def list_staff(*, session: Session) -> Sequence[Staff]:
    return session.execute(select(Staff).order_by(Staff.address)).scalars().all()


def set_staff(*, session: Session, address: str, role: str, added_by: str | None, now: datetime) -> Staff:
    staff = session.execute(select(Staff).where(Staff.address == address)).scalar_one_or_none()
    if staff is None:
        staff = Staff(address=address, role=role, added_by=added_by, added_at=now)
        session.add(staff)
    else:
        staff.role = role
    session.flush()
    return staff


def remove_staff(*, session: Session, address: str) -> bool:
    return bool(session.execute(delete(Staff).where(Staff.address == address)).rowcount)  # type: ignore[attr-defined]


def ensure_admins(*, session: Session, addresses: Iterable[str], now: datetime) -> None:
    """Make each address an admin, in one statement each: every process bootstraps the admins as
    it starts, several at once on PostgreSQL, so a read-then-insert would race. A ``Staff`` row
    the session loaded before is not refreshed (call this in a session of its own)."""
    insert = _upsert_insert(session)
    for address in addresses:
        stmt = insert(Staff).values(address=address, role="admin", added_by="CARGOBOT_ADMINS", added_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["address"], set_={"role": "admin"}, where=Staff.role != "admin"
        )
        session.execute(stmt)


# --- references and shipments ----------------------------------------------------------------


def get_reference(*, session: Session, value: str) -> Reference | None:
    return session.execute(select(Reference).where(Reference.value == value)).scalar_one_or_none()


def shipments_for_reference(*, session: Session, value: str) -> list[Shipment]:
    return list(session.execute(_SHIPMENTS_BY_REFERENCE, {"value": value}).scalars().all())


ShipmentRow = Any
"""A shipment's columns as one asker sees it, a named tuple (``storage.prepared``): ``linked``,
``subscribed``, ``on_hold`` besides."""


def shipment_rows_for_reference(*, session: Session, value: str, contact_id: int | None) -> list[ShipmentRow]:
    """Read-only ``shipments_for_reference`` as ``contact_id`` sees them: named tuples, not entities
    (nothing may change them), each with ``linked`` and ``subscribed`` for that contact, and
    ``on_hold`` (``active_hold_rows`` has something to read)."""
    params = {"value": value, "contact_id": contact_id}
    return _SHIPMENT_ROWS_BY_REFERENCE.rows(session.connection(), params)


def references_of(*, session: Session, shipment_id: int) -> list[Reference]:
    stmt = (
        select(Reference)
        .join(ShipmentReference, ShipmentReference.reference_id == Reference.id)
        .where(ShipmentReference.shipment_id == shipment_id)
        .order_by(Reference.id)
    )
    return list(session.execute(stmt).scalars().all())


def shipment_count_for_reference(*, session: Session, reference_id: int) -> int:
    stmt = (
        select(func.count())
        .select_from(ShipmentReference)
        .where(ShipmentReference.reference_id == reference_id)
    )
    return int(session.execute(stmt).scalar_one())


def create_shipment(*, session: Session, now: datetime, author: str, stage: str = "booked") -> Shipment:
    shipment = Shipment(stage=stage, created_at=now, updated_at=now, updated_by=author)
    session.add(shipment)
    session.flush()
    return shipment


def link_reference(*, session: Session, shipment_id: int, kind: str, value: str) -> Reference:
    reference = get_reference(session=session, value=value)
    if reference is None:
        reference = Reference(kind=kind, value=value)
        session.add(reference)
        session.flush()
    exists = session.execute(
        select(ShipmentReference).where(
            ShipmentReference.shipment_id == shipment_id, ShipmentReference.reference_id == reference.id
        )
    ).first()
    if not exists:
        session.add(ShipmentReference(shipment_id=shipment_id, reference_id=reference.id))  # type: ignore[arg-type]
        session.flush()
    return reference


def get_shipment(*, session: Session, shipment_id: int) -> Shipment | None:
    return session.get(Shipment, shipment_id)


def _drop_orphan_references(*, session: Session, reference_ids: Iterable[int]) -> None:
    """Delete references no shipment links to any more, so the value is free to be used again."""
    ids = list(reference_ids)
    if not ids:
        return
    linked = select(ShipmentReference.reference_id).where(ShipmentReference.reference_id.in_(ids))  # type: ignore[attr-defined]
    session.execute(delete(Reference).where(Reference.id.in_(ids), Reference.id.not_in(linked)))  # type: ignore[union-attr]


def unlink_references(*, session: Session, shipment_id: int, reference_ids: Iterable[int]) -> None:
    ids = list(reference_ids)
    session.execute(
        delete(ShipmentReference).where(
            ShipmentReference.shipment_id == shipment_id,
            ShipmentReference.reference_id.in_(ids),  # type: ignore[attr-defined]
        )
    )
    _drop_orphan_references(session=session, reference_ids=ids)


def delete_shipment(*, session: Session, shipment: Shipment) -> None:
    """Remove a shipment and everything hanging off it (the database cascades), and orphaned references."""
    assert shipment.id is not None
    reference_ids = [r.id for r in references_of(session=session, shipment_id=shipment.id) if r.id]
    session.delete(shipment)
    session.flush()
    _drop_orphan_references(session=session, reference_ids=reference_ids)


def shipment_with_exact_references(*, session: Session, values: Sequence[str]) -> Shipment | None:
    """The shipment linked to exactly these reference values, no more and no fewer (the lowest id)."""
    wanted = sorted(set(values))
    if not wanted:
        return None
    first = (
        select(ShipmentReference.shipment_id)
        .join(Reference, Reference.id == ShipmentReference.reference_id)
        .where(Reference.value == wanted[0])
    )
    stmt = (
        select(ShipmentReference.shipment_id)
        .join(Reference, Reference.id == ShipmentReference.reference_id)
        .where(ShipmentReference.shipment_id.in_(first))  # type: ignore[attr-defined]
        .group_by(ShipmentReference.shipment_id)
        .having(
            func.count() == len(wanted),
            func.sum(case((Reference.value.in_(wanted), 1), else_=0)) == len(wanted),  # type: ignore[attr-defined]
        )
        .order_by(ShipmentReference.shipment_id)
        .limit(1)
    )
    shipment_id = session.execute(stmt).scalar_one_or_none()
    return None if shipment_id is None else session.get(Shipment, shipment_id)


# --- holds -----------------------------------------------------------------------------------


def active_holds(*, session: Session, shipment_id: int) -> list[Hold]:
    return list(session.execute(_ACTIVE_HOLDS, {"shipment_id": shipment_id}).scalars().all())


def active_hold_rows(*, session: Session, shipment_id: int) -> list[Any]:
    """Read-only ``active_holds``: named tuples, not entities."""
    return _ACTIVE_HOLD_ROWS.rows(session.connection(), {"shipment_id": shipment_id})


def add_hold(
    *, session: Session, shipment_id: int, kind: str, note: str | None, at: datetime, author: str
) -> Hold:
    hold = Hold(shipment_id=shipment_id, kind=kind, note=note, raised_at=at, raised_by=author)
    session.add(hold)
    session.flush()
    return hold


def get_holds(*, session: Session, hold_ids: Iterable[int]) -> list[Hold]:
    ids = list(hold_ids)
    if not ids:
        return []
    return list(session.execute(select(Hold).where(Hold.id.in_(ids)).order_by(Hold.id)).scalars().all())  # type: ignore[union-attr]


def delete_hold(*, session: Session, hold_id: int) -> None:
    session.execute(delete(Hold).where(Hold.id == hold_id))


# --- customers linked to shipments -----------------------------------------------------------


def link_contact(*, session: Session, shipment_id: int, contact_id: int, consent_at: datetime | None) -> None:
    existing = session.get(ShipmentContact, (shipment_id, contact_id))
    if existing is None:
        session.add(ShipmentContact(shipment_id=shipment_id, contact_id=contact_id, consent_at=consent_at))
    elif consent_at and not existing.consent_at:
        existing.consent_at = consent_at
    session.flush()


def linked_shipment_ids(*, session: Session, contact_id: int, among: Iterable[int]) -> set[int]:
    """Which of ``among`` the contact is linked to (links are flushed when made: no autoflush)."""
    ids = list(among)
    if not ids:
        return set()
    return set(
        session.connection().execute(_LINKED_IDS_READ, {"contact_id": contact_id, "ids": ids}).scalars().all()
    )


def linked_contacts(*, session: Session, shipment_id: int) -> list[Contact]:
    stmt = (
        select(Contact)
        .join(ShipmentContact, ShipmentContact.contact_id == Contact.id)
        .where(ShipmentContact.shipment_id == shipment_id)
        .order_by(Contact.id)
    )
    return list(session.execute(stmt).scalars().all())


def get_contact_link(*, session: Session, shipment_id: int, contact_id: int) -> ShipmentContact | None:
    return session.get(ShipmentContact, (shipment_id, contact_id))


def unlink_contact(*, session: Session, shipment_id: int, contact_id: int) -> None:
    session.execute(
        delete(ShipmentContact).where(
            ShipmentContact.shipment_id == shipment_id, ShipmentContact.contact_id == contact_id
        )
    )


# --- subscriptions ---------------------------------------------------------------------------


def subscribe(
    *, session: Session, contact_id: int, shipment_id: int, reference: str, all_stages: bool, now: datetime
) -> Subscription:
    sub = session.execute(
        select(Subscription).where(
            Subscription.contact_id == contact_id, Subscription.shipment_id == shipment_id
        )
    ).scalar_one_or_none()
    if sub is None:
        sub = Subscription(
            contact_id=contact_id,
            shipment_id=shipment_id,
            reference=reference,
            all_stages=all_stages,
            created_at=now,
        )
        session.add(sub)
    else:
        sub.active, sub.stopped, sub.reference = True, False, reference
        sub.all_stages = all_stages or sub.all_stages
    session.flush()
    return sub


def get_subscription(*, session: Session, contact_id: int, shipment_id: int) -> Subscription | None:
    return session.execute(
        select(Subscription).where(
            Subscription.contact_id == contact_id, Subscription.shipment_id == shipment_id
        )
    ).scalar_one_or_none()


def delete_subscription(*, session: Session, subscription_id: int) -> None:
    session.execute(delete(Subscription).where(Subscription.id == subscription_id))


def unsubscribe(*, session: Session, contact_id: int, shipment_ids: Iterable[int]) -> int:
    ids = list(shipment_ids)
    result = session.execute(
        update(Subscription)
        .where(Subscription.contact_id == contact_id, Subscription.shipment_id.in_(ids))  # type: ignore[attr-defined]
        .values(active=False, stopped=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def subscribers(*, session: Session, shipment_id: int) -> list[tuple[Subscription, Contact]]:
    stmt = (
        select(Subscription, Contact)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(Subscription.shipment_id == shipment_id, Subscription.active.is_(True))  # type: ignore[attr-defined]
        .order_by(Subscription.id)
    )
    return [(s, c) for s, c in session.execute(stmt).all()]


def subscriptions_of(*, session: Session, contact_id: int, active_only: bool = True) -> list[Subscription]:
    if active_only:
        return list(session.execute(_ACTIVE_SUBSCRIPTIONS, {"contact_id": contact_id}).scalars().all())
    stmt = select(Subscription).where(Subscription.contact_id == contact_id).order_by(Subscription.id)
    return list(session.execute(stmt).scalars().all())


def stop_contact(*, session: Session, contact: Contact, now: datetime) -> int:
    """STOP: opt out of everything; returns how many subscriptions were paused."""
    contact.opted_out, contact.opted_out_at = True, now
    result = session.execute(
        update(Subscription)
        .where(Subscription.contact_id == contact.id, Subscription.active.is_(True))  # type: ignore[attr-defined]
        .values(active=False, stopped=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def start_contact(*, session: Session, contact: Contact) -> int:
    """START: undo STOP, restoring the subscriptions it ended."""
    contact.opted_out, contact.opted_out_at = False, None
    result = session.execute(
        update(Subscription)
        .where(Subscription.contact_id == contact.id, Subscription.stopped.is_(True))  # type: ignore[attr-defined]
        .values(active=True, stopped=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def unreleased_subscriber_contacts(*, session: Session, released_stages: Sequence[str]) -> list[Contact]:
    """Contacts with an active subscription to a shipment not yet released (maintenance affects them)."""
    stmt = (
        select(Contact)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .join(Shipment, Shipment.id == Subscription.shipment_id)
        .where(Subscription.active.is_(True), Shipment.stage.not_in(list(released_stages)))  # type: ignore[attr-defined]
        .distinct()
        .order_by(Contact.id)
    )
    return list(session.execute(stmt).scalars().all())


def all_reachable_contacts(*, session: Session) -> list[Contact]:
    """Every contact that has not opted out (for /broadcast)."""
    stmt = select(Contact).where(Contact.opted_out.is_(False)).order_by(Contact.id)  # type: ignore[attr-defined]
    return list(session.execute(stmt).scalars().all())


# --- timeline --------------------------------------------------------------------------------


def add_event(
    *,
    session: Session,
    shipment_id: int,
    at: datetime,
    author: str,
    action: str,
    detail: str | None = None,
    note: str | None = None,
    public: bool = False,
    change_id: str | None = None,
    undo: dict[str, Any] | None = None,
) -> TimelineEvent:
    event = TimelineEvent(
        shipment_id=shipment_id,
        at=at,
        author=author,
        action=action,
        detail=detail,
        note=note,
        public=public,
        change_id=change_id,
        undo=json.dumps(undo) if undo is not None else None,
    )
    session.add(event)
    session.flush()
    return event


def timeline(*, session: Session, shipment_id: int, limit: int = 50) -> list[TimelineEvent]:
    stmt = (
        select(TimelineEvent)
        .where(TimelineEvent.shipment_id == shipment_id)
        .order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc())  # type: ignore[attr-defined]
        .limit(limit)
    )
    return list(session.execute(stmt).scalars().all())


def recent_public_note(*, session: Session, shipment_id: int, limit: int = 20) -> str | None:
    """The newest public note among the shipment's latest ``limit`` timeline events (read-only)."""
    params = {"shipment_id": shipment_id, "limit": limit}
    for public, note in _RECENT_EVENT_NOTES.rows(session.connection(), params):
        if public and note:
            return str(note)
    return None


def latest_change_by(*, session: Session, author: str, since: datetime) -> list[TimelineEvent]:
    """The events of ``author``'s most recent change (one change_id) made after ``since``, not undone."""
    stmt = (
        select(TimelineEvent)
        .where(
            TimelineEvent.author == author,
            TimelineEvent.at >= since,
            TimelineEvent.change_id.is_not(None),  # type: ignore[union-attr]
            TimelineEvent.undone_at.is_(None),  # type: ignore[union-attr]
        )
        .order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc())  # type: ignore[attr-defined]
        .limit(1)
    )
    last = session.execute(stmt).scalar_one_or_none()
    if last is None:
        return []
    stmt = select(TimelineEvent).where(TimelineEvent.change_id == last.change_id).order_by(TimelineEvent.id)
    return list(session.execute(stmt).scalars().all())


def has_note(*, session: Session, shipment_id: int, note: str) -> bool:
    """Whether the shipment's timeline already holds this note (not undone): re-imports add it once."""
    stmt = select(TimelineEvent.id).where(
        TimelineEvent.shipment_id == shipment_id,
        TimelineEvent.action == "note",
        TimelineEvent.note == note,
        TimelineEvent.undone_at.is_(None),  # type: ignore[union-attr]
    )
    return session.execute(stmt.limit(1)).first() is not None


# --- maintenance windows ---------------------------------------------------------------------


def add_window(
    *,
    session: Session,
    starts_at: datetime,
    ends_at: datetime,
    source_text: str | None,
    author: str,
    now: datetime,
) -> MaintenanceWindow:
    window = MaintenanceWindow(
        starts_at=starts_at, ends_at=ends_at, source_text=source_text, announced_by=author, announced_at=now
    )
    session.add(window)
    session.flush()
    return window


def upcoming_windows(*, session: Session, now: datetime) -> list[MaintenanceWindow]:
    """Windows not cancelled that have not ended yet, soonest first."""
    return list(session.execute(_UPCOMING_WINDOWS, {"now": now}).scalars().all())


def upcoming_window_rows(*, session: Session, now: datetime) -> list[Any]:
    """Read-only ``upcoming_windows``: named tuples, not entities."""
    return _UPCOMING_WINDOW_ROWS.rows(session.connection(), {"now": now})


def get_window(*, session: Session, window_id: int) -> MaintenanceWindow | None:
    return session.get(MaintenanceWindow, window_id)


# --- inbound messages ------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundClaim:
    """An inbound message being answered. ``row_id`` is set when its row exists already: stored
    earlier and never answered, or stored at once because it has no provider key."""

    key: str  # the provider key, or ``local:<row id>``
    row_id: int | None
    fields: dict[str, Any]


def claim_inbound(
    *,
    session: Session,
    known: Arrival,
    provider_key: str | None,
    address: str,
    text: str,
    received_at: datetime,
) -> InboundClaim | None:
    """Claim an inbound message for answering; None when it was already answered (a redelivery,
    as ``known``, its ``arrival``, says). ``record_answer`` writes it, in the same transaction.

    A message stored earlier but never answered (the process died mid-way) is handed back so it is
    answered now, exactly once.
    """
    fields = {"provider_key": provider_key, "address": address, "text": text, "received_at": received_at}
    if provider_key is not None and known.answered:
        return None
    if provider_key is None or known.stored_id is not None:
        # Its key is its new row's id, or a leftover row must be answered exactly once: both need
        # the write turn before they are answered (``storage.db.read_first_session``).
        require_write_turn(session)
    if provider_key is not None:
        return InboundClaim(provider_key, known.stored_id, fields)
    row_id = session.connection().execute(_INSERT_INBOUND, fields).inserted_primary_key[0]
    return InboundClaim(f"local:{row_id}", row_id, fields)


def record_answer(
    *, session: Session, claim: InboundClaim, reply: str, answered_at: datetime, lookups: int = 0
) -> None:
    """Store the claimed message with its answer and the status ``lookups`` the answer made (the
    per-sender hourly limit counts them): one INSERT (or UPDATE when it was stored before).

    Two deliveries of one message answered at once: the second INSERT breaks the provider key's
    unique index and its transaction rolls back.
    """
    answer = {"answered_at": answered_at, "reply": reply, "lookups": lookups}
    if claim.row_id is None:
        row = {f"new_{name}": value for name, value in (claim.fields | answer).items()}
        write(session, _RECORD_ANSWERED, row, must_change=True)
    else:
        write(session, _ANSWER_INBOUND, {"row_id": claim.row_id, **answer})


# --- outbox ----------------------------------------------------------------------------------


def enqueue(*, session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert outbox rows, ignoring any whose (event_key, recipient) already exists. Returns rows added."""
    if not rows:
        return 0
    insert = _upsert_insert(session)
    stmt = insert(Outbox).values(list(rows)).on_conflict_do_nothing(index_elements=["event_key", "recipient"])
    # Counted through RETURNING: psycopg reports no rowcount (-1) for this statement.
    return len(session.execute(stmt.returning(Outbox.id)).all())


def recipients_told(*, session: Session, event_keys: Sequence[str]) -> list[str]:
    """Who has been sent a message of any of these events (an indexed lookup by key)."""
    stmt = (
        select(Outbox.recipient)
        .where(
            Outbox.event_key.in_(list(event_keys)),  # type: ignore[attr-defined]
            Outbox.status.in_(["sent", "delivered", "read"]),  # type: ignore[attr-defined]
        )
        .distinct()
    )
    return list(session.execute(stmt).scalars().all())


def cancel_pending(*, session: Session, event_keys: Sequence[str], reason: str) -> int:
    stmt = (
        update(Outbox)
        .where(
            Outbox.event_key.in_(list(event_keys)),  # type: ignore[attr-defined]
            Outbox.status.in_(["pending", "retry", "held"]),  # type: ignore[attr-defined]
        )
        .values(status="cancelled", last_error=reason)
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def cancel_pending_for_change(*, session: Session, change_id: str) -> int:
    stmt = (
        update(Outbox)
        .where(Outbox.change_id == change_id, Outbox.status.in_(["pending", "retry", "held"]))  # type: ignore[attr-defined]
        .values(status="cancelled", last_error="the change was undone")
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def outbox_for_shipment(*, session: Session, shipment_id: int, limit: int = 20) -> list[Outbox]:
    stmt = (
        select(Outbox)
        .where(Outbox.shipment_id == shipment_id)
        .order_by(Outbox.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    return list(session.execute(stmt).scalars().all())


def outbox_backlog(*, session: Session, now: datetime) -> int:
    stmt = (
        select(func.count())
        .select_from(Outbox)
        .where(
            Outbox.status.in_(["pending", "retry", "sending"]),  # type: ignore[attr-defined]
            Outbox.due_at <= now,
        )
    )
    return int(session.execute(stmt).scalar_one())


def release_held_for(*, session: Session, recipient: str, now: datetime) -> None:
    """The customer wrote again: alerts held for a closed WhatsApp window become due now."""
    write(session, _RELEASE_HELD, {"to": recipient, "due": now})


# --- runtime state ---------------------------------------------------------------------------


def get_state(*, session: Session, key: str) -> RuntimeState | None:
    return session.get(RuntimeState, key)


def set_state(*, session: Session, key: str, value: str, now: datetime) -> None:
    """Insert or update in one statement: several workers may write the same key at once."""
    insert = _upsert_insert(session)
    stmt = insert(RuntimeState).values(key=key, value=value, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
    )
    session.execute(stmt)


def erase_contact_data(*, session: Session, contact: Contact, anonymous: str) -> None:
    """DELETE MY DATA: drop the contact's links and subscriptions, blank their messages (and the
    lookups they counted), cancel what was waiting for them, and replace their address with
    ``anonymous`` everywhere."""
    address = contact.address
    session.execute(delete(Subscription).where(Subscription.contact_id == contact.id))
    session.execute(delete(ShipmentContact).where(ShipmentContact.contact_id == contact.id))
    session.execute(
        update(InboundMessage)
        .where(InboundMessage.address == address)
        .values(address=anonymous, text="", reply=None, lookups=0)
    )
    session.execute(
        update(Outbox)
        .where(Outbox.recipient == address, Outbox.status.in_(["pending", "retry", "held"]))  # type: ignore[attr-defined]
        .values(status="cancelled", last_error="contact asked to delete their data")
    )
    session.execute(
        update(Outbox).where(Outbox.recipient == address).values(recipient=anonymous, text="", buttons=None)
    )
    contact.address, contact.display_name = anonymous, None
    contact.opted_out, contact.last_inbound_at = True, None
    session.flush()


# --- retention -------------------------------------------------------------------------------


def purge_personal_data(*, session: Session, before: datetime) -> tuple[int, int]:
    """Remove personal data of shipments delivered before ``before`` and of old inbound messages.

    Delivered shipments lose consignee, goods, notes, linked customers and subscriptions; their
    stage history stays. Inbound messages received before ``before`` lose their text and reply.
    Returns (shipments purged, messages blanked).
    """
    ids = list(
        session.execute(
            select(Shipment.id).where(
                Shipment.stage == "delivered",
                Shipment.updated_at < before,
                Shipment.personal_data_purged.is_(False),  # type: ignore[attr-defined]
            )
        ).scalars()
    )
    if ids:
        session.execute(
            update(Shipment)
            .where(Shipment.id.in_(ids))  # type: ignore[union-attr]
            .values(consignee=None, goods=None, packages=None, personal_data_purged=True)
        )
        session.execute(
            update(TimelineEvent).where(TimelineEvent.shipment_id.in_(ids)).values(note=None)  # type: ignore[attr-defined]
        )
        session.execute(delete(ShipmentContact).where(ShipmentContact.shipment_id.in_(ids)))  # type: ignore[attr-defined]
        session.execute(delete(Subscription).where(Subscription.shipment_id.in_(ids)))  # type: ignore[attr-defined]
    blanked = session.execute(
        update(InboundMessage)
        .where(InboundMessage.received_at < before, InboundMessage.text != "")
        .values(text="", reply=None)
    ).rowcount  # type: ignore[attr-defined]
    return len(ids), int(blanked)
