"""status lookups counted on the inbound message that made them, not one row per lookup

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lookups", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("lookupevent", schema=None) as batch_op:
        batch_op.drop_index("ix_lookup_address_at")
    op.drop_table("lookupevent")


def downgrade() -> None:
    op.create_table(
        "lookupevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lookupevent", schema=None) as batch_op:
        batch_op.create_index("ix_lookup_address_at", ["address", "at"], unique=False)
    with op.batch_alter_table("inboundmessage", schema=None) as batch_op:
        batch_op.drop_column("lookups")
