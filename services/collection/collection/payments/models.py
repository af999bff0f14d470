import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from collection.database import Base
from collection.ledger.accounts import Channel
from shared.db import UTCDateTime, enum_column

# Channels that hold a resident's money themselves and say so by a signed notification (webhook), after the
# resident started a payment order; nobody else may record a payment through them.
NOTIFYING_CHANNELS = (Channel.WECHAT, Channel.ALIPAY, Channel.PROVINCIAL_APP, Channel.BANK)
# Channels where the money is handed to the tax side in person: a tax officer records them.
COUNTER_CHANNELS = (Channel.TAX_HALL, Channel.CASH, Channel.AGENT)


class PaymentOrigin(enum.StrEnum):
    """How collection learnt of a payment: the audit trail of every record."""

    REQUEST = "request"  # POST /v1/payments: a tax officer at the counter, or an agent's cash
    NOTIFICATION = "notification"  # a channel's signed webhook (completing a payment order, or naming bills)
    RECONCILIATION = "reconciliation"  # found in the tax side's daily payment file, not recorded before
    SUBSIDY = "subsidy"  # nothing left to pay: the funders' obligation settles it


class Payment(Base):
    """One payment through one channel, with its tax receipt number (缴费单据). It may settle several bills at
    once, e.g. a family paying for its members (为家人缴费)."""

    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_channel_reference", "channel", "channel_reference", unique=True),
        Index("ix_payments_channel_paid_at", "channel", "paid_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    agent_id: Mapped[str | None] = mapped_column(
        ForeignKey("agents.id"), index=True, default=None, doc="The agent that collected it (代收)"
    )
    receipt_no: Mapped[str] = mapped_column(String(32), unique=True)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel_reference: Mapped[str | None] = mapped_column(
        String(64), default=None, doc="The channel's own transaction number (交易流水号), when known"
    )
    origin: Mapped[PaymentOrigin] = mapped_column(enum_column(PaymentOrigin))
    settled_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, default=None, doc="When reconciliation confirmed the money reached the treasury"
    )
    payer: Mapped[str | None] = mapped_column(
        String(128),
        default=None,
        doc="Who paid: the resident who started the payment order, or the officer who recorded it at the "
        "counter (a token's subject); residents see theirs. None when a channel named bills itself.",
    )
    items: Mapped[list["PaymentItem"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="PaymentItem.position"
    )


class PaymentItem(Base):
    """The part of a payment that settles one bill."""

    __tablename__ = "payment_items"

    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    # Indexed on its own: the primary key leads with the payment, and bills are looked up by themselves.
    bill_id: Mapped[str] = mapped_column(ForeignKey("bills.id"), primary_key=True, index=True)
    enrollment_id: Mapped[str] = mapped_column(String(36), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
