"""roster speed: applied roster rows updated in place (no status index, pages half filled), and enrollments
without the indexes a bulk load paid for and no query needed (region code alone, empty household ids)

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

_NOT_NULL = "household_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_roster_rows_upload_status_row", table_name="roster_rows")
    if op.get_bind().dialect.name == "postgresql":
        # Pages written from now on; the rows already stored keep theirs.
        op.execute("ALTER TABLE roster_rows SET (fillfactor = 50)")
    op.drop_index("ix_enrollments_region_code", table_name="enrollments")
    op.drop_index("ix_enrollments_household_id", table_name="enrollments")
    op.create_index(
        "ix_enrollments_household_id",
        "enrollments",
        ["household_id"],
        postgresql_where=sa.text(_NOT_NULL),
        sqlite_where=sa.text(_NOT_NULL),
    )


def downgrade() -> None:
    op.drop_index("ix_enrollments_household_id", table_name="enrollments")
    op.create_index("ix_enrollments_household_id", "enrollments", ["household_id"])
    op.create_index("ix_enrollments_region_code", "enrollments", ["region_code"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE roster_rows RESET (fillfactor)")
    op.create_index("ix_roster_rows_upload_status_row", "roster_rows", ["upload_id", "status", "row_no"])
