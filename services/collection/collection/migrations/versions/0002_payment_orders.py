"""payment orders, rejected channel notifications, when each bill last changed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_orders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("bill_ids", sa.JSON(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_orders_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_orders")),
        sa.UniqueConstraint("reference", name=op.f("uq_payment_orders_reference")),
    )
    with op.batch_alter_table("payment_orders", schema=None) as batch_op:
        batch_op.create_index("ix_payment_orders_created_by_at", ["created_by", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_orders_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "notification_rejections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=64), nullable=False),
        sa.Column("order_reference", sa.String(length=64), nullable=True),
        sa.Column("bill_ids", sa.String(length=2048), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_rejections")),
    )
    with op.batch_alter_table("notification_rejections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_rejections_channel_transaction", ["channel", "transaction_id"], unique=True
        )
        batch_op.create_index("ix_notification_rejections_received_at", ["received_at"], unique=False)

    with op.batch_alter_table("bills", schema=None) as batch_op:
        # Existing rows count as changed now: the repair job's first look covers them.
        changed = sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        )
        batch_op.add_column(changed)
        batch_op.create_index("ix_bills_updated_at", ["updated_at", "enrollment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bills", schema=None) as batch_op:
        batch_op.drop_index("ix_bills_updated_at")
        batch_op.drop_column("updated_at")
    op.drop_table("notification_rejections")
    op.drop_table("payment_orders")
