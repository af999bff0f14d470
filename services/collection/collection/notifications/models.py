from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from collection.database import Base
from shared.db import UTCDateTime


class NotificationRejection(Base):
    """A channel's genuine (signature-verified) notification that recorded nothing: the channel holds money
    that no bill took (an expired or cancelled order, another amount, a bill paid meanwhile). Operators
    settle each with the channel (return the money, or record it by hand)."""

    __tablename__ = "notification_rejections"
    __table_args__ = (
        Index("ix_notification_rejections_channel_transaction", "channel", "transaction_id", unique=True),
        Index("ix_notification_rejections_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    transaction_id: Mapped[str] = mapped_column(String(64), doc="The channel's own transaction id")
    order_reference: Mapped[str | None] = mapped_column(String(64))
    bill_ids: Mapped[str | None] = mapped_column(String(2048), doc="Bills it named, comma-separated")
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(64), doc="Why it was refused: the error code answered")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, doc="The last time it was refused")
    attempts: Mapped[int] = mapped_column(Integer, default=1, doc="Channels retry until answered 2xx")
    payment_id: Mapped[str | None] = mapped_column(
        String(36), default=None, doc="A later attempt recorded it after all (e.g. its bill arrived)"
    )
