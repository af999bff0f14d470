"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:01:06.843165
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
        "agents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("township", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_region_code"), ["region_code"], unique=False)

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
        "bills",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("enrollment_id", sa.String(length=36), nullable=False),
        sa.Column("document_type", sa.String(length=32), nullable=False),
        sa.Column("id_number", sa.String(length=32), nullable=False),
        sa.Column("payer_name", sa.String(length=64), nullable=False),
        sa.Column("payer_organisation", sa.String(length=64), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("coverage_year", sa.Integer(), nullable=False),
        sa.Column("amount_due_fen", sa.BigInteger(), nullable=False),
        sa.Column("price_version", sa.Integer(), nullable=False),
        sa.Column("payable_until", sa.Date(), nullable=False),
        sa.Column("coverage_start", sa.Date(), nullable=True),
        sa.Column("coverage_end", sa.Date(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "paid", "cancelled", "refunded", name="billstatus", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refundable_reasons", sa.JSON(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint("enrollment_id", name=op.f("uq_bills_enrollment_id")),
    )
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bills_id_number"), ["id_number"], unique=False)
        batch_op.create_index(
            "ix_bills_organisation",
            ["payer_organisation", "region_code", "coverage_year", "status"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_bills_region_code"), ["region_code"], unique=False)
        batch_op.create_index("ix_bills_region_paid_at", ["region_code", "paid_at"], unique=False)
        batch_op.create_index(
            "ix_bills_region_year", ["region_code", "coverage_year", "enrollment_id"], unique=False
        )

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
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
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
        "ledger_transactions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "bill_issued",
                "bill_repriced",
                "bill_cancelled",
                "payment",
                "subsidy_transfer",
                "agent_remittance",
                "refund",
                "channel_settlement",
                name="transactionkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_transactions_reference"), ["reference"], unique=False)

    op.create_table(
        "lookup_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookup_failures")),
    )
    with op.batch_alter_table("lookup_failures", schema=None) as batch_op:
        batch_op.create_index("ix_lookup_failures_subject_at", ["subject", "at"], unique=False)

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
        "reconciliation_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "wechat",
                "alipay",
                "provincial_app",
                "tax_hall",
                "cash",
                "bank",
                "agent",
                "subsidy",
                name="channel",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lines_in_file", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_reconciliation_runs_fingerprint")),
    )
    op.create_table(
        "subsidy_transfers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("funder", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("coverage_year", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("owed_before_fen", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_transfers")),
        sa.UniqueConstraint("funder", "reference", name=op.f("uq_subsidy_transfers_funder_reference")),
    )
    with op.batch_alter_table("subsidy_transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subsidy_transfers_funder_region_year",
            ["funder", "region_code", "coverage_year"],
            unique=False,
        )

    op.create_table(
        "agent_remittances",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("remitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_remittances_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_remittances")),
        sa.UniqueConstraint("agent_id", "reference", name=op.f("uq_agent_remittances_agent_id_reference")),
    )
    with op.batch_alter_table("agent_remittances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_remittances_agent_id"), ["agent_id"], unique=False)

    op.create_table(
        "bill_subsidy_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bill_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("funder", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_bill_subsidy_lines_bill_id_bills")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_subsidy_lines")),
    )
    with op.batch_alter_table("bill_subsidy_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bill_subsidy_lines_bill_id"), ["bill_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bill_subsidy_lines_funder"), ["funder"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("account", sa.String(length=96), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entries_account"), ["account"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_transaction_id"), ["transaction_id"], unique=False
        )

    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "wechat",
                "alipay",
                "provincial_app",
                "tax_hall",
                "cash",
                "bank",
                "agent",
                "subsidy",
                name="channel",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("receipt_no", sa.String(length=32), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel_reference", sa.String(length=64), nullable=True),
        sa.Column(
            "origin",
            sa.Enum(
                "request",
                "notification",
                "reconciliation",
                "subsidy",
                name="paymentorigin",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payer", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_payments_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("receipt_no", name=op.f("uq_payments_receipt_no")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index("ix_payments_channel_paid_at", ["channel", "paid_at"], unique=False)
        batch_op.create_index("ix_payments_channel_reference", ["channel", "channel_reference"], unique=True)

    op.create_table(
        "payment_items",
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("bill_id", sa.String(length=36), nullable=False),
        sa.Column("enrollment_id", sa.String(length=36), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_payment_items_bill_id_bills")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_items_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("payment_id", "bill_id", name=op.f("pk_payment_items")),
    )
    with op.batch_alter_table("payment_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_items_bill_id"), ["bill_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_items_enrollment_id"), ["enrollment_id"], unique=False)

    op.create_table(
        "reconciliation_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "wechat",
                "alipay",
                "provincial_app",
                "tax_hall",
                "cash",
                "bank",
                "agent",
                "subsidy",
                name="channel",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column(
            "source",
            sa.Enum("file", "records", name="linesource", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("file_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("file_paid_on", sa.Date(), nullable=True),
        sa.Column("file_paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bill_ids", sa.JSON(), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("recorded_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("recorded_on", sa.Date(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "matched",
                "recorded",
                "accepted",
                "found",
                "dismissed",
                "withdrawn",
                "amount_mismatch",
                "date_mismatch",
                "unrecordable",
                "duplicate",
                "missing_from_file",
                name="linestate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_reconciliation_lines_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_runs.id"],
            name=op.f("fk_reconciliation_lines_run_id_reconciliation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_lines")),
        sa.UniqueConstraint(
            "channel",
            "business_day",
            "source",
            "reference",
            name=op.f("uq_reconciliation_lines_channel_business_day_source_reference"),
        ),
    )
    with op.batch_alter_table("reconciliation_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reconciliation_lines_day_state", ["channel", "business_day", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reconciliation_lines_payment_id"), ["payment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reconciliation_lines_run_id"), ["run_id"], unique=False)

    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("bill_id", sa.String(length=36), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("ends_enrollment", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=256), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_account", sa.String(length=96), nullable=False),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_refunds_bill_id_bills")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_bill_id"), ["bill_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "reconciliation_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column(
            "from_state",
            sa.Enum(
                "matched",
                "recorded",
                "accepted",
                "found",
                "dismissed",
                "withdrawn",
                "amount_mismatch",
                "date_mismatch",
                "unrecordable",
                "duplicate",
                "missing_from_file",
                name="linestate",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "matched",
                "recorded",
                "accepted",
                "found",
                "dismissed",
                "withdrawn",
                "amount_mismatch",
                "date_mismatch",
                "unrecordable",
                "duplicate",
                "missing_from_file",
                name="linestate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=256), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["reconciliation_lines.id"],
            name=op.f("fk_reconciliation_transitions_line_id_reconciliation_lines"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_runs.id"],
            name=op.f("fk_reconciliation_transitions_run_id_reconciliation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_transitions")),
    )
    with op.batch_alter_table("reconciliation_transitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reconciliation_transitions_line_id"), ["line_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_transitions_line_id"))

    op.drop_table("reconciliation_transitions")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_payment_id"))
        batch_op.drop_index(batch_op.f("ix_refunds_bill_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("reconciliation_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_lines_run_id"))
        batch_op.drop_index(batch_op.f("ix_reconciliation_lines_payment_id"))
        batch_op.drop_index("ix_reconciliation_lines_day_state")

    op.drop_table("reconciliation_lines")
    with op.batch_alter_table("payment_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_items_enrollment_id"))
        batch_op.drop_index(batch_op.f("ix_payment_items_bill_id"))

    op.drop_table("payment_items")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_channel_reference")
        batch_op.drop_index("ix_payments_channel_paid_at")
        batch_op.drop_index(batch_op.f("ix_payments_agent_id"))

    op.drop_table("payments")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_account"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("bill_subsidy_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bill_subsidy_lines_funder"))
        batch_op.drop_index(batch_op.f("ix_bill_subsidy_lines_bill_id"))

    op.drop_table("bill_subsidy_lines")
    with op.batch_alter_table("agent_remittances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_remittances_agent_id"))

    op.drop_table("agent_remittances")
    with op.batch_alter_table("subsidy_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_subsidy_transfers_funder_region_year")

    op.drop_table("subsidy_transfers")
    op.drop_table("reconciliation_runs")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unpublished",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )
        batch_op.drop_index("ix_outbox_key")

    op.drop_table("outbox")
    with op.batch_alter_table("lookup_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_lookup_failures_subject_at")

    op.drop_table("lookup_failures")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_reference"))

    op.drop_table("ledger_transactions")
    op.drop_table("inbox")
    op.drop_table("idempotency_keys")
    op.drop_table("dead_letters")
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_index("ix_bills_region_year")
        batch_op.drop_index("ix_bills_region_paid_at")
        batch_op.drop_index(batch_op.f("ix_bills_region_code"))
        batch_op.drop_index("ix_bills_organisation")
        batch_op.drop_index(batch_op.f("ix_bills_id_number"))

    op.drop_table("bills")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_person_at")
        batch_op.drop_index("ix_audit_events_actor_at")

    op.drop_table("audit_events")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_region_code"))

    op.drop_table("agents")
