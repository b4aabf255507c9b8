"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:50:15.333597
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "contact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("language_chosen", sa.Boolean(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("pending_payload", sa.Text(), nullable=True),
        sa.Column("pending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address"),
    )
    op.create_table(
        "inboundmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_key"),
    )
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_address_at", ["address", "received_at"], unique=False)

    op.create_table(
        "lookupevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lookupevent", schema=None) as batch_op:
        batch_op.create_index("ix_lookup_address_at", ["address", "at"], unique=False)

    op.create_table(
        "maintenancewindow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=True),
        sa.Column("announced_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("planned_phases", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("maintenancewindow", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_maintenancewindow_ends_at"), ["ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_maintenancewindow_starts_at"), ["starts_at"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("template", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("template_vars", sa.Text(), nullable=True),
        sa.Column("force_template", sa.Boolean(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.Column("change_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_key", "recipient", name="uq_outbox_event_recipient"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_change_id"), ["change_id"], unique=False)
        batch_op.create_index("ix_outbox_due", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index("ix_outbox_recipient_status", ["recipient", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_shipment_id"), ["shipment_id"], unique=False)

    op.create_table(
        "reference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("value"),
    )
    op.create_table(
        "runtimestate",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "shipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("consignee", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("goods", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("packages", sa.Integer(), nullable=True),
        sa.Column("transport", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("port", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("eta", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_number", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("personal_data_purged", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address"),
    )
    op.create_table(
        "hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hold", schema=None) as batch_op:
        batch_op.create_index("ix_hold_shipment_active", ["shipment_id", "cleared_at"], unique=False)

    op.create_table(
        "shipmentcontact",
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("shipment_id", "contact_id"),
    )
    with op.batch_alter_table("shipmentcontact", schema=None) as batch_op:
        batch_op.create_index("ix_shipmentcontact_contact", ["contact_id"], unique=False)

    op.create_table(
        "shipmentreference",
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["reference_id"], ["reference.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("shipment_id", "reference_id"),
    )
    with op.batch_alter_table("shipmentreference", schema=None) as batch_op:
        batch_op.create_index("ix_shipmentreference_reference", ["reference_id"], unique=False)

    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("all_stages", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contact_id", "shipment_id", name="uq_subscription_contact_shipment"),
    )
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.create_index("ix_subscription_shipment_active", ["shipment_id", "active"], unique=False)

    op.create_table(
        "timelineevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("change_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("undo", sa.Text(), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("timelineevent", schema=None) as batch_op:
        batch_op.create_index("ix_timeline_author_at", ["author", "at"], unique=False)
        batch_op.create_index("ix_timeline_shipment_at", ["shipment_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_timelineevent_change_id"), ["change_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("timelineevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timelineevent_change_id"))
        batch_op.drop_index("ix_timeline_shipment_at")
        batch_op.drop_index("ix_timeline_author_at")

    op.drop_table("timelineevent")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_shipment_active")

    op.drop_table("subscription")
    with op.batch_alter_table("shipmentreference", schema=None) as batch_op:
        batch_op.drop_index("ix_shipmentreference_reference")

    op.drop_table("shipmentreference")
    with op.batch_alter_table("shipmentcontact", schema=None) as batch_op:
        batch_op.drop_index("ix_shipmentcontact_contact")

    op.drop_table("shipmentcontact")
    with op.batch_alter_table("hold", schema=None) as batch_op:
        batch_op.drop_index("ix_hold_shipment_active")

    op.drop_table("hold")
    op.drop_table("staff")
    op.drop_table("shipment")
    op.drop_table("runtimestate")
    op.drop_table("reference")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_shipment_id"))
        batch_op.drop_index("ix_outbox_recipient_status")
        batch_op.drop_index(batch_op.f("ix_outbox_provider_id"))
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_index(batch_op.f("ix_outbox_change_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("maintenancewindow", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_maintenancewindow_starts_at"))
        batch_op.drop_index(batch_op.f("ix_maintenancewindow_ends_at"))

    op.drop_table("maintenancewindow")
    with op.batch_alter_table("lookupevent", schema=None) as batch_op:
        batch_op.drop_index("ix_lookup_address_at")

    op.drop_table("lookupevent")
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_address_at")

    op.drop_table("inboundmessage")
    op.drop_table("contact")
