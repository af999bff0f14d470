"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:01:05.266059
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=256), nullable=False),
        sa.Column("person", sa.String(length=32), nullable=True),
        sa.Column("record", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_actor_at", ["actor", "at"], unique=False)
        batch_op.create_index("ix_audit_events_person_at", ["person", "at"], unique=False)

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_table(
        "exclusions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "document_type",
            sa.Enum(
                "resident_id",
                "foreign_permanent_residence",
                "passport",
                name="documenttype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("document_number", sa.String(length=32), nullable=False),
        sa.Column("coverage_year", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "employee_insurance", "enrolled_elsewhere", name="exclusionkind", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exclusions")),
    )
    with op.batch_alter_table("exclusions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_exclusions_active",
            ["document_number", "document_type", "coverage_year", "kind"],
            unique=True,
            postgresql_where=sa.text("removed_at IS NULL"),
            sqlite_where=sa.text("removed_at IS NULL"),
        )

    op.create_table(
        "households",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_inbox")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_key", ["key"], unique=False)
        batch_op.create_index(
            "ix_outbox_unpublished",
            ["id"],
            unique=False,
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )

    op.create_table(
        "people",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "document_type",
            sa.Enum(
                "resident_id",
                "foreign_permanent_residence",
                "passport",
                name="documenttype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("document_number", sa.String(length=32), nullable=False),
        sa.Column("nationality", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint(
            "document_number", "document_type", name=op.f("uq_people_document_number_document_type")
        ),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index("ix_people_name_birth_date", ["name", "birth_date"], unique=False)

    op.create_table(
        "progress_baselines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("region", "township", "university", name="unitkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("resident_population", sa.BigInteger(), nullable=True),
        sa.Column("registered_population", sa.BigInteger(), nullable=True),
        sa.Column("enrolled_last_year", sa.BigInteger(), nullable=True),
        sa.Column("target", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("loaded_by", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_baselines")),
        sa.UniqueConstraint("policy_id", "position", name=op.f("uq_progress_baselines_policy_id_position")),
    )
    op.create_table(
        "roster_uploads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "subsidy",
                "subsidy_addition",
                "subsidy_reduction",
                "employee_insurance",
                "student",
                "university",
                "household_registration",
                name="rosterkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("coverage_year", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("category_code", sa.String(length=64), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=256), nullable=False),
        sa.Column("stored_path", sa.String(length=512), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "validated",
                "applying",
                "applied",
                "rejected",
                name="uploadstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_accepted", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.Column("rows_held", sa.BigInteger(), nullable=False),
        sa.Column("rows_applied", sa.BigInteger(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=256), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_uploads")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_roster_uploads_fingerprint")),
    )
    with op.batch_alter_table("roster_uploads", schema=None) as batch_op:
        batch_op.create_index("ix_roster_uploads_status", ["status"], unique=False)

    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("household_id", sa.String(length=36), nullable=True),
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("township", sa.String(length=32), nullable=True),
        sa.Column("payer_organisation", sa.String(length=64), nullable=True),
        sa.Column("university", sa.String(length=64), nullable=True),
        sa.Column("coverage_year", sa.Integer(), nullable=False),
        sa.Column(
            "basis",
            sa.Enum(
                "household_registration",
                "residence_permit",
                "residence_permit_minor",
                "student",
                "minor_of_insured_worker",
                "foreign_expert_family",
                "foreign_resident",
                "long_term_resident",
                name="eligibilitykind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending_payment",
                "active",
                "lapsed",
                "cancelled",
                name="enrollmentstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "charge",
            sa.Enum("personal", "total_financing", name="charge", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "late_case",
            sa.Enum(
                "newborn",
                "discharged_veteran",
                "newly_subsidised",
                "employee_insurance_interrupted",
                "released_prisoner",
                name="latecasekind",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("window_extension", sa.String(length=32), nullable=True),
        sa.Column("payable_until", sa.Date(), nullable=False),
        sa.Column("personal_due_fen", sa.BigInteger(), nullable=False),
        sa.Column("fiscal_subsidy_fen", sa.BigInteger(), nullable=False),
        sa.Column("total_financing_fen", sa.BigInteger(), nullable=False),
        sa.Column("price_version", sa.Integer(), nullable=False),
        sa.Column(
            "coverage_from",
            sa.Enum(
                "birth",
                "day_after_payment",
                "coverage_start",
                name="coveragefrom",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("coverage_start", sa.Date(), nullable=True),
        sa.Column("coverage_end", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_fen", sa.BigInteger(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("receipt_no", sa.String(length=64), nullable=True),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancellation_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_enrollments_household_id_households")
        ),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_enrollments_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollments_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enrollments_region_code"), ["region_code"], unique=False)
        batch_op.create_index("ix_enrollments_region_paid_at", ["region_code", "paid_at"], unique=False)
        batch_op.create_index(
            "ix_enrollments_region_year", ["region_code", "coverage_year", "id"], unique=False
        )
        batch_op.create_index(
            "uq_enrollments_person_year_live",
            ["person_id", "coverage_year"],
            unique=True,
            postgresql_where=sa.text("status NOT IN ('lapsed', 'cancelled')"),
            sqlite_where=sa.text("status NOT IN ('lapsed', 'cancelled')"),
        )

    op.create_table(
        "household_members",
        sa.Column("household_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column(
            "relation",
            sa.Enum(
                "head",
                "spouse",
                "child",
                "parent",
                "grandchild",
                "grandparent",
                "other",
                name="relation",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_household_members_household_id_households")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_household_members_person_id_people")
        ),
        sa.PrimaryKeyConstraint("household_id", "person_id", name=op.f("pk_household_members")),
        sa.UniqueConstraint("person_id", name=op.f("uq_household_members_person_id")),
    )
    op.create_table(
        "registered_residents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("coverage_year", sa.Integer(), nullable=False),
        sa.Column("township", sa.String(length=32), nullable=True),
        sa.Column("village", sa.String(length=64), nullable=True),
        sa.Column("village_group", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_registered_residents_person_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_residents")),
        sa.UniqueConstraint(
            "person_id", "coverage_year", name=op.f("uq_registered_residents_person_id_coverage_year")
        ),
    )
    with op.batch_alter_table("registered_residents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_registered_residents_region_year_township",
            ["region_code", "coverage_year", "township"],
            unique=False,
        )

    op.create_table(
        "reminder_throttles",
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_reminder_throttles_person_id_people")
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_reminder_throttles")),
    )
    op.create_table(
        "roster_rows",
        sa.Column("upload_id", sa.String(length=36), nullable=False),
        sa.Column("row_no", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "accepted", "rejected", "held", "applied", name="rowstatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("id_number", sa.String(length=32), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decision_note", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["upload_id"], ["roster_uploads.id"], name=op.f("fk_roster_rows_upload_id_roster_uploads")
        ),
        sa.PrimaryKeyConstraint("upload_id", "row_no", name=op.f("pk_roster_rows")),
    )
    with op.batch_alter_table("roster_rows", schema=None) as batch_op:
        batch_op.create_index("ix_roster_rows_upload_id_number", ["upload_id", "id_number"], unique=False)
        batch_op.create_index(
            "ix_roster_rows_upload_status_row", ["upload_id", "status", "row_no"], unique=False
        )

    op.create_table(
        "screening_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("coverage_year", sa.Integer(), nullable=False),
        sa.Column("township", sa.String(length=32), nullable=True),
        sa.Column("village", sa.String(length=64), nullable=True),
        sa.Column("village_group", sa.String(length=32), nullable=True),
        sa.Column("aged_60_plus", sa.Boolean(), nullable=False),
        sa.Column("student", sa.Boolean(), nullable=False),
        sa.Column("pending_payment", sa.Boolean(), nullable=False),
        sa.Column("found_in", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "not_contacted",
                "reminded",
                "visited",
                "refused",
                "moved_away",
                "enrolled_elsewhere",
                "enrolled",
                "not_required",
                name="followupstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=256), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("last_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_screening_cases_person_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_cases")),
        sa.UniqueConstraint(
            "person_id", "coverage_year", name=op.f("uq_screening_cases_person_id_coverage_year")
        ),
    )
    with op.batch_alter_table("screening_cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_screening_cases_region_year_township",
            ["region_code", "coverage_year", "township", "state"],
            unique=False,
        )

    op.create_table(
        "subsidy_assignments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("coverage_year", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=64), nullable=False),
        sa.Column("evidence_ref", sa.String(length=128), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("township", sa.String(length=32), nullable=True),
        sa.Column("village", sa.String(length=64), nullable=True),
        sa.Column("village_group", sa.String(length=32), nullable=True),
        sa.Column("note", sa.String(length=256), nullable=True),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("assigned_by", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=64), nullable=True),
        sa.Column("removal_reason", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_subsidy_assignments_person_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_assignments")),
    )
    with op.batch_alter_table("subsidy_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subsidy_assignments_region_year_category",
            ["region_code", "coverage_year", "category_code"],
            unique=False,
        )
        batch_op.create_index(
            "uq_subsidy_assignments_active",
            ["person_id", "coverage_year", "category_code"],
            unique=True,
            postgresql_where=sa.text("removed_at IS NULL"),
            sqlite_where=sa.text("removed_at IS NULL"),
        )

    op.create_table(
        "enrollment_subsidy_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.String(length=36), nullable=False),
        sa.Column("category_code", sa.String(length=64), nullable=False),
        sa.Column("category_name", sa.String(length=64), nullable=False),
        sa.Column("funder", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_enrollment_subsidy_lines_enrollment_id_enrollments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_subsidy_lines")),
    )
    with op.batch_alter_table("enrollment_subsidy_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrollment_subsidy_lines_enrollment_id"), ["enrollment_id"], unique=False
        )

    op.create_table(
        "reminders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column(
            "channel",
            sa.Enum("sms", "wechat", name="reminderchannel", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("text", sa.String(length=512), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "sent", "failed", name="reminderstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_by", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["screening_cases.id"], name=op.f("fk_reminders_case_id_screening_cases")
        ),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_reminders_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
    )
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reminders_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reminders_person_id"), ["person_id"], unique=False)
        batch_op.create_index(
            "ix_reminders_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "screening_case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "not_contacted",
                "reminded",
                "visited",
                "refused",
                "moved_away",
                "enrolled_elsewhere",
                "enrolled",
                "not_required",
                name="followupstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "not_contacted",
                "reminded",
                "visited",
                "refused",
                "moved_away",
                "enrolled_elsewhere",
                "enrolled",
                "not_required",
                name="followupstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=256), nullable=True),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["screening_cases.id"], name=op.f("fk_screening_case_events_case_id_screening_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_case_events")),
    )
    with op.batch_alter_table("screening_case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_screening_case_events_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("screening_case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_screening_case_events_case_id"))

    op.drop_table("screening_case_events")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_status_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_reminders_person_id"))
        batch_op.drop_index(batch_op.f("ix_reminders_case_id"))

    op.drop_table("reminders")
    with op.batch_alter_table("enrollment_subsidy_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollment_subsidy_lines_enrollment_id"))

    op.drop_table("enrollment_subsidy_lines")
    with op.batch_alter_table("subsidy_assignments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_subsidy_assignments_active",
            postgresql_where=sa.text("removed_at IS NULL"),
            sqlite_where=sa.text("removed_at IS NULL"),
        )
        batch_op.drop_index("ix_subsidy_assignments_region_year_category")

    op.drop_table("subsidy_assignments")
    with op.batch_alter_table("screening_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_screening_cases_region_year_township")

    op.drop_table("screening_cases")
    with op.batch_alter_table("roster_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_roster_rows_upload_status_row")
        batch_op.drop_index("ix_roster_rows_upload_id_number")

    op.drop_table("roster_rows")
    op.drop_table("reminder_throttles")
    with op.batch_alter_table("registered_residents", schema=None) as batch_op:
        batch_op.drop_index("ix_registered_residents_region_year_township")

    op.drop_table("registered_residents")
    op.drop_table("household_members")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_enrollments_person_year_live",
            postgresql_where=sa.text("status NOT IN ('lapsed', 'cancelled')"),
            sqlite_where=sa.text("status NOT IN ('lapsed', 'cancelled')"),
        )
        batch_op.drop_index("ix_enrollments_region_year")
        batch_op.drop_index("ix_enrollments_region_paid_at")
        batch_op.drop_index(batch_op.f("ix_enrollments_region_code"))
        batch_op.drop_index(batch_op.f("ix_enrollments_household_id"))

    op.drop_table("enrollments")
    with op.batch_alter_table("roster_uploads", schema=None) as batch_op:
        batch_op.drop_index("ix_roster_uploads_status")

    op.drop_table("roster_uploads")
    op.drop_table("progress_baselines")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("ix_people_name_birth_date")

    op.drop_table("people")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unpublished",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )
        batch_op.drop_index("ix_outbox_key")

    op.drop_table("outbox")
    op.drop_table("inbox")
    op.drop_table("households")
    with op.batch_alter_table("exclusions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_exclusions_active",
            postgresql_where=sa.text("removed_at IS NULL"),
            sqlite_where=sa.text("removed_at IS NULL"),
        )

    op.drop_table("exclusions")
    op.drop_table("dead_letters")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_person_at")
        batch_op.drop_index("ix_audit_events_actor_at")

    op.drop_table("audit_events")
