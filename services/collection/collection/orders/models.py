import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from collection.database import Base
from collection.ledger.accounts import Channel
from shared.db import UTCDateTime, enum_column


class OrderStatus(enum.StrEnum):
    """支付订单状态. An order awaiting its channel past `expires_at` is expired, whatever its row says."""

    AWAITING_CHANNEL = "awaiting_channel"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class PaymentOrder(Base):
    """A payment a resident started (支付订单): the bills, the amount and the channel it will be paid through.
    Only the channel's signed notification quoting `reference` completes it into a payment."""

    __tablename__ = "payment_orders"
    __table_args__ = (Index("ix_payment_orders_created_by_at", "created_by", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(
        String(32), unique=True, doc="What the channel quotes back (as WeChat Pay's out_trade_no)"
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    bill_ids: Mapped[list[str]] = mapped_column(JSON)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus))
    created_by: Mapped[str] = mapped_column(String(128), doc="The resident's token subject")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"), default=None, index=True)

    def status_at(self, now: datetime) -> OrderStatus:
        if self.status is OrderStatus.AWAITING_CHANNEL and now >= self.expires_at:
            return OrderStatus.EXPIRED
        return self.status
