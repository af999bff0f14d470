"""households are real: invitations, who recorded a person, identity reviews, 户号 in population data

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SOURCE = sa.Enum("self", "official", "other_resident", name="personsource", native_enum=False, length=32)
_MEMBERSHIP = sa.Enum("accepted", "invited", name="membershipstatus", native_enum=False, length=32)
_REVIEW = sa.Enum("open", "confirmed", "reverted", name="identityreviewstate", native_enum=False, length=32)


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        # Records made before this revision came from the person, staff or rosters alike: trusted as official.
        batch_op.add_column(sa.Column("source", _SOURCE, nullable=False, server_default="official"))
        batch_op.add_column(sa.Column("recorded_by", sa.String(length=128), nullable=True))

    with op.batch_alter_table("household_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", _MEMBERSHIP, nullable=False, server_default="accepted"))
        batch_op.add_column(sa.Column("claimed_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("invited_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint("uq_household_members_person_id", type_="unique")
        batch_op.create_index(
            "uq_household_members_accepted_person",
            ["person_id"],
            unique=True,
            postgresql_where=sa.text("status = 'accepted'"),
            sqlite_where=sa.text("status = 'accepted'"),
        )

    with op.batch_alter_table("registered_residents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("household_no", sa.String(length=32), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_registered_residents_household_no"), ["household_no"], unique=False
        )

    op.create_table(
        "identity_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("recorded_name", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_name", sa.String(length=64), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=False),
        sa.Column("state", _REVIEW, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_identity_reviews_person_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_reviews")),
    )
    with op.batch_alter_table("identity_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_reviews_person_id"), ["person_id"], unique=False)
        batch_op.create_index("ix_identity_reviews_state_region", ["state", "region_code"], unique=False)


def downgrade() -> None:
    op.drop_table("identity_reviews")
    with op.batch_alter_table("registered_residents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registered_residents_household_no"))
        batch_op.drop_column("household_no")
    with op.batch_alter_table("household_members", schema=None) as batch_op:
        batch_op.drop_index("uq_household_members_accepted_person")
        batch_op.create_unique_constraint("uq_household_members_person_id", ["person_id"])
        for column in ("accepted_at", "invited_by", "claimed_name", "status"):
            batch_op.drop_column(column)
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("recorded_by")
        batch_op.drop_column("source")
