"""delivery reports that arrive before their message id is recorded

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliveryreport",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("error_code", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_deliveryreport_provider_id"), "deliveryreport", ["provider_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveryreport_provider_id"), table_name="deliveryreport")
    op.drop_table("deliveryreport")
