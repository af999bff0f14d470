"""category epoch: taking a person's subsidy categories (to change them, or to price under the lock) moves
it, so an enrollment priced on categories read without the lock is written only while it has not moved

Revision ID: 0006_category_epoch
Revises: 0005_roster_speed
Create Date: 2026-11-30 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_category_epoch"
down_revision: str | None = "0005_roster_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites nothing on PostgreSQL, and None reads as never taken.
    op.add_column("people", sa.Column("category_epoch", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("category_epoch")
