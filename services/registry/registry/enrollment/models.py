import enum
from datetime import UTC, date, datetime

from sqlalchemy import BigInteger, Date, Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.database import Base
from registry.people.models import Person
from shared.db import UTCDateTime


class EnrollmentStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"
    ACTIVE = "active"


class Enrollment(Base):
    """One person's enrollment for one coverage year (参保登记). One person, one enrollment per year."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("person_id", "coverage_year"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    policy_id: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    coverage_year: Mapped[int] = mapped_column(Integer)
    status: Mapped[EnrollmentStatus] = mapped_column(
        Enum(EnrollmentStatus, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])
    )
    personal_due_fen: Mapped[int] = mapped_column(BigInteger)
    fiscal_subsidy_fen: Mapped[int] = mapped_column(BigInteger)
    total_financing_fen: Mapped[int] = mapped_column(BigInteger)
    coverage_start: Mapped[date] = mapped_column(Date)
    coverage_end: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    paid_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    payment_id: Mapped[str | None] = mapped_column(String(36), default=None)
    receipt_no: Mapped[str | None] = mapped_column(String(64), default=None)

    person: Mapped[Person] = relationship(lazy="joined", innerjoin=True)
