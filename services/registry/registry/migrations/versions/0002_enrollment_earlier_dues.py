"""the personal due of each earlier price version of an enrollment; when each enrollment last changed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        # Existing enrollments: their earlier prices were not kept; a payment of one is left for an operator.
        batch_op.add_column(
            sa.Column("earlier_dues", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        # Existing rows count as changed now: the repair job's first look covers them.
        changed = sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        )
        batch_op.add_column(changed)
        batch_op.create_index("ix_enrollments_updated_at", ["updated_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_updated_at")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("earlier_dues")
