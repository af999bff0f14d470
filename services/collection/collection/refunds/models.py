from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from collection.database import Base
from shared.db import UTCDateTime


class Refund(Base):
    """退费: paid money given back through the way it came, with the reason and who asked."""

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bill_id: Mapped[str] = mapped_column(ForeignKey("bills.id"), index=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32), doc="erroneous_payment, death or repriced")
    ends_enrollment: Mapped[bool]
    requested_by: Mapped[str] = mapped_column(String(64), doc="A tax officer, or `registry` for a repricing")
    note: Mapped[str | None] = mapped_column(String(256))
    refunded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_account: Mapped[str] = mapped_column(
        String(96), doc="The ledger account the money left: channel clearing, or the treasury once settled"
    )
