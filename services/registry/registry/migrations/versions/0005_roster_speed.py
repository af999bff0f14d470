"""roster speed: applied roster rows updated in place (no status index, pages half filled), and enrollments
without the index entries a bulk load paid for and no query needed (region code alone, empty household ids,
payment times of the unpaid)

Revision ID: 0005_roster_speed
Revises: 0004
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_roster_speed"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IN_HOUSEHOLD = "household_id IS NOT NULL"
_PAID = "paid_at IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_roster_rows_upload_status_row", table_name="roster_rows")
    if op.get_bind().dialect.name == "postgresql":
        # Pages written from now on; the rows already stored keep theirs.
        op.execute("ALTER TABLE roster_rows SET (fillfactor = 50)")
    op.drop_index("ix_enrollments_region_code", table_name="enrollments")
    for name, columns, where in (
        ("ix_enrollments_household_id", ["household_id"], _IN_HOUSEHOLD),
        ("ix_enrollments_region_paid_at", ["region_code", "paid_at"], _PAID),
    ):
        op.drop_index(name, table_name="enrollments")
        op.create_index(
            name, "enrollments", columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
        )


def downgrade() -> None:
    op.drop_index("ix_enrollments_region_paid_at", table_name="enrollments")
    op.create_index("ix_enrollments_region_paid_at", "enrollments", ["region_code", "paid_at"])
    op.drop_index("ix_enrollments_household_id", table_name="enrollments")
    op.create_index("ix_enrollments_household_id", "enrollments", ["household_id"])
    op.create_index("ix_enrollments_region_code", "enrollments", ["region_code"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE roster_rows RESET (fillfactor)")
    op.create_index("ix_roster_rows_upload_status_row", "roster_rows", ["upload_id", "status", "row_no"])
