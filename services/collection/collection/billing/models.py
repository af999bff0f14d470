import enum
from datetime import UTC, date, datetime

from sqlalchemy import BigInteger, Date, Enum, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from collection.database import Base
from shared.db import UTCDateTime


class BillStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"


class Bill(Base):
    """What one person owes for one enrollment (应缴费额), issued from the registry's enrollment event."""

    __tablename__ = "bills"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    enrollment_id: Mapped[str] = mapped_column(String(36), unique=True)
    id_number: Mapped[str] = mapped_column(String(18), index=True)
    payer_name: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    coverage_year: Mapped[int] = mapped_column(Integer)
    amount_due_fen: Mapped[int] = mapped_column(BigInteger)
    coverage_start: Mapped[date] = mapped_column(Date)
    coverage_end: Mapped[date] = mapped_column(Date)
    status: Mapped[BillStatus] = mapped_column(
        Enum(BillStatus, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
