"""The shipment store's tables. Every timestamp is UTC (stored naive on SQLite, aware on PostgreSQL;
``storage.db.utc`` makes either aware again).

References and shipments are many-to-many: one container or master air waybill carries many
customers' goods (groupage), each with its own entry or house reference.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, Integer, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC on every engine and always hands back an aware UTC datetime.

    SQLite keeps no offset, so values are converted to UTC and stored naive there; a naive value
    coming in is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(nullable: bool = True, index: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Shipment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    stage: str = Field(default="booked", max_length=20)
    consignee: str | None = Field(default=None, max_length=200)
    goods: str | None = Field(default=None, max_length=500)
    packages: int | None = None
    transport: str | None = Field(default=None, max_length=100)  # vessel/voyage or flight number
    port: str | None = Field(default=None, max_length=40)  # Mombasa, JKIA, ICD Embakasi
    eta: datetime | None = Field(default=None, sa_column=_ts())
    release_number: str | None = Field(default=None, max_length=60)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_by: str | None = Field(default=None, max_length=120)
    personal_data_purged: bool = False


class Reference(SQLModel, table=True):
    """A shipment reference as normalised by ``handlers.references`` (value is unique)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=12)
    value: str = Field(max_length=64, unique=True)


class ShipmentReference(SQLModel, table=True):
    __table_args__ = (Index("ix_shipmentreference_reference", "reference_id"),)

    shipment_id: int = Field(foreign_key="shipment.id", primary_key=True, ondelete="CASCADE")
    reference_id: int = Field(foreign_key="reference.id", primary_key=True, ondelete="CASCADE")


class Hold(SQLModel, table=True):
    __table_args__ = (Index("ix_hold_shipment_active", "shipment_id", "cleared_at"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(foreign_key="shipment.id", ondelete="CASCADE")
    kind: str = Field(max_length=20)
    note: str | None = Field(default=None, sa_column=Column(Text))
    raised_at: datetime = Field(sa_column=_ts(nullable=False))
    raised_by: str | None = Field(default=None, max_length=120)
    cleared_at: datetime | None = Field(default=None, sa_column=_ts())
    cleared_by: str | None = Field(default=None, max_length=120)


class TimelineEvent(SQLModel, table=True):
    """One change to a shipment: who, when, what. ``undo`` holds the state to restore for /undo."""

    __table_args__ = (
        Index("ix_timeline_shipment_at", "shipment_id", "at"),
        Index("ix_timeline_author_at", "author", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(foreign_key="shipment.id", ondelete="CASCADE")
    at: datetime = Field(sa_column=_ts(nullable=False))
    author: str = Field(max_length=120)
    action: str = Field(max_length=40)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    note: str | None = Field(default=None, sa_column=Column(Text))
    public: bool = False
    change_id: str | None = Field(default=None, max_length=40, index=True)
    undo: str | None = Field(default=None, sa_column=Column(Text))  # JSON
    undone_at: datetime | None = Field(default=None, sa_column=_ts())


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=120, unique=True)  # whatsapp:+E164, telegram:CHAT_ID, console:NAME
    display_name: str | None = Field(default=None, max_length=200)
    language: str = Field(default="en", max_length=5)
    language_chosen: bool = False
    opted_out: bool = False
    opted_out_at: datetime | None = Field(default=None, sa_column=_ts())
    last_inbound_at: datetime | None = Field(default=None, sa_column=_ts())
    pending_action: str | None = Field(default=None, max_length=40)  # awaiting a confirmation
    pending_payload: str | None = Field(default=None, sa_column=Column(Text))
    pending_at: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class ShipmentContact(SQLModel, table=True):
    """A customer linked to a shipment by staff: they may read its details."""

    __table_args__ = (Index("ix_shipmentcontact_contact", "contact_id"),)

    shipment_id: int = Field(foreign_key="shipment.id", primary_key=True, ondelete="CASCADE")
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, ondelete="CASCADE")
    consent_at: datetime | None = Field(default=None, sa_column=_ts())


class Subscription(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("contact_id", "shipment_id", name="uq_subscription_contact_shipment"),
        Index("ix_subscription_shipment_active", "shipment_id", "active"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", ondelete="CASCADE")
    shipment_id: int = Field(foreign_key="shipment.id", ondelete="CASCADE")
    reference: str = Field(max_length=64)  # the reference the customer subscribed with
    all_stages: bool = False
    active: bool = True
    stopped: bool = False  # ended by STOP; START restores it
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class Staff(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=120, unique=True)
    role: str = Field(default="agent", max_length=10)  # admin | agent
    added_by: str | None = Field(default=None, max_length=120)
    added_at: datetime = Field(sa_column=_ts(nullable=False))


class MaintenanceWindow(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    starts_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    ends_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    source_text: str | None = Field(default=None, sa_column=Column(Text))
    announced_by: str = Field(max_length=120)
    announced_at: datetime = Field(sa_column=_ts(nullable=False))
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts())
    planned_phases: str = Field(
        default="", max_length=80
    )  # phases whose alerts are written, e.g. "announced,start"


class Outbox(SQLModel, table=True):
    """One alert to one recipient. (event_key, recipient) is unique: one event, one message each."""

    __table_args__ = (
        UniqueConstraint("event_key", "recipient", name="uq_outbox_event_recipient"),
        Index("ix_outbox_due", "status", "due_at"),
        Index("ix_outbox_recipient_status", "recipient", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(max_length=120)
    recipient: str = Field(max_length=120)
    kind: str = Field(max_length=30)  # release, hold, hold_cleared, stage, maintenance_*, broadcast, agent
    text: str = Field(sa_column=Column(Text, nullable=False))
    buttons: str | None = Field(default=None, sa_column=Column(Text))  # JSON [{"label", "data"}]
    template: str | None = Field(default=None, max_length=20)  # release | hold | maintenance
    template_vars: str | None = Field(default=None, sa_column=Column(Text))  # JSON
    force_template: bool = False  # WhatsApp said the 24-hour window is closed: send the template
    shipment_id: int | None = Field(default=None, index=True)
    change_id: str | None = Field(default=None, max_length=40, index=True)
    status: str = Field(default="pending", max_length=12)
    # pending -> sending -> sent -> delivered -> read ; or retry/held/failed/skipped/expired/cancelled
    due_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=_ts())  # not worth sending after this
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = Field(default=None, sa_column=_ts())
    provider_id: str | None = Field(default=None, max_length=80, index=True)
    sent_at: datetime | None = Field(default=None, sa_column=_ts())
    delivery_status: str | None = Field(default=None, max_length=20)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class DeliveryReport(SQLModel, table=True):
    """A provider's status callback that came before its message id was recorded (kept to apply)."""

    id: int | None = Field(default=None, primary_key=True)
    provider_id: str = Field(max_length=80, index=True)
    status: str = Field(max_length=20)
    error_code: str | None = Field(default=None, max_length=20)
    received_at: datetime = Field(sa_column=_ts(nullable=False))


class InboundMessage(SQLModel, table=True):
    """Every inbound message, stored before it is answered: the dedup key is ``provider_key``."""

    __table_args__ = (Index("ix_inbound_address_at", "address", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    provider_key: str | None = Field(default=None, max_length=120, unique=True)  # channel:provider id
    address: str = Field(max_length=120)
    text: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_column=_ts(nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=_ts())
    reply: str | None = Field(default=None, sa_column=Column(Text))
    # Status lookups its answer made: the per-sender hourly limit sums them by address and time.
    lookups: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class RuntimeState(SQLModel, table=True):
    """Small process state kept in the database: Telegram offset, worker heartbeat."""

    key: str = Field(primary_key=True, max_length=60)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
