import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.database import Base
from registry.people.models import Person, PersonShown
from registry.policy.models import Charge, CoverageFrom, EligibilityKind, LateCaseKind
from shared.clock import utc_now
from shared.db import UTCDateTime, enum_column


class EnrollmentStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"
    ACTIVE = "active"
    LAPSED = "lapsed"  # not paid by payable_until; the person may enroll again on the terms of that day
    CANCELLED = "cancelled"  # paid, then refunded in full (erroneous payment, death): the enrollment ended


# Enrollments that no longer count: the person may enroll again for the year.
ENDED = (EnrollmentStatus.LAPSED, EnrollmentStatus.CANCELLED)


class Enrollment(Base):
    """One person's enrollment for one coverage year (参保登记). One person, one enrollment per year."""

    __tablename__ = "enrollments"
    __table_args__ = (
        # One person, one enrollment per year; lapsed ones stay as history.
        Index(
            "uq_enrollments_person_year_live",
            "person_id",
            "coverage_year",
            unique=True,
            postgresql_where=text("status NOT IN ('lapsed', 'cancelled')"),
            sqlite_where=text("status NOT IN ('lapsed', 'cancelled')"),
        ),
        # Every query by payment time asks for paid ones: enrollments waiting for payment are left out.
        Index(
            "ix_enrollments_region_paid_at",
            "region_code",
            "paid_at",
            postgresql_where=text("paid_at IS NOT NULL"),
            sqlite_where=text("paid_at IS NOT NULL"),
        ),
        Index("ix_enrollments_region_year", "region_code", "coverage_year", "id"),
        Index("ix_enrollments_updated_at", "updated_at", "id"),
        # Most enrollments (a roster's, anyone's on their own) belong to no household: not indexed.
        Index(
            "ix_enrollments_household_id",
            "household_id",
            postgresql_where=text("household_id IS NOT NULL"),
            sqlite_where=text("household_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    household_id: Mapped[str | None] = mapped_column(ForeignKey("households.id"))
    policy_id: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6))  # ix_enrollments_region_year leads with it
    township: Mapped[str | None] = mapped_column(String(32))
    payer_organisation: Mapped[str | None] = mapped_column(
        String(64), default=None, doc="A school paying for its students as one payer"
    )
    university: Mapped[str | None] = mapped_column(
        String(64), default=None, doc="高校: the university that enrolled this student where they study"
    )
    coverage_year: Mapped[int] = mapped_column(Integer)
    basis: Mapped[EligibilityKind] = mapped_column(enum_column(EligibilityKind))
    status: Mapped[EnrollmentStatus] = mapped_column(enum_column(EnrollmentStatus))
    charge: Mapped[Charge] = mapped_column(enum_column(Charge))
    late_case: Mapped[LateCaseKind | None] = mapped_column(enum_column(LateCaseKind))
    window_extension: Mapped[str | None] = mapped_column(String(32))
    payable_until: Mapped[date] = mapped_column(Date)
    personal_due_fen: Mapped[int] = mapped_column(BigInteger)
    fiscal_subsidy_fen: Mapped[int] = mapped_column(BigInteger)
    total_financing_fen: Mapped[int] = mapped_column(BigInteger)
    price_version: Mapped[int] = mapped_column(Integer)
    earlier_dues: Mapped[dict[str, int]] = mapped_column(
        JSON,
        default=dict,
        server_default=text("'{}'"),  # as migration 0002 made it: a roster's bulk insert leaves it out
        doc="The personal due of each earlier price version, to check a payment of an older price",
    )
    coverage_from: Mapped[CoverageFrom] = mapped_column(enum_column(CoverageFrom))
    coverage_start: Mapped[date | None] = mapped_column(Date)
    coverage_end: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    payment_id: Mapped[str | None] = mapped_column(String(36), default=None)
    receipt_no: Mapped[str | None] = mapped_column(String(64), default=None)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0, doc="Paid money collection gave back")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancellation_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utc_now,
        onupdate=utc_now,
        doc="Wall-clock time of the last change: the repair job compares what changed since it last looked",
    )

    person: Mapped[Person] = relationship(lazy="joined", innerjoin=True)
    subsidy_lines: Mapped[list["EnrollmentSubsidyLine"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="EnrollmentSubsidyLine.id"
    )


class EnrollmentSubsidyLine(Base):
    """One subsidy paid toward an enrollment's personal contribution, and who pays it."""

    __tablename__ = "enrollment_subsidy_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrollment_id: Mapped[str] = mapped_column(ForeignKey("enrollments.id"), index=True)
    category_code: Mapped[str] = mapped_column(String(64))
    category_name: Mapped[str] = mapped_column(String(64))
    funder: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class LineRecord:
    """A new enrollment's subsidy line as plain data (EnrollmentRecord)."""

    category_code: str
    category_name: str
    funder: str
    amount_fen: int


@dataclass
class EnrollmentRecord:
    """A new enrollment as plain data, written by one statement (service.enroll_one): what its answer and its
    event read of it, with the attributes of an Enrollment. Building the mapped object instead cost more than
    0.1 ms of a request (each attribute set through the ORM's instrumentation), for an object no session
    tracks."""

    id: str
    person_id: str
    person: PersonShown
    household_id: str | None
    policy_id: str
    region_code: str
    township: str | None
    payer_organisation: str | None
    coverage_year: int
    basis: EligibilityKind
    status: EnrollmentStatus
    charge: Charge
    late_case: LateCaseKind | None
    window_extension: str | None
    payable_until: date
    personal_due_fen: int
    fiscal_subsidy_fen: int
    total_financing_fen: int
    price_version: int
    coverage_from: CoverageFrom
    coverage_start: date | None
    coverage_end: date
    created_at: datetime
    updated_at: datetime
    subsidy_lines: list[LineRecord]
    university: str | None = None
    earlier_dues: dict[str, int] = field(default_factory=dict)
    refunded_fen: int = 0
    paid_fen: int | None = None
    paid_at: datetime | None = None
    payment_id: str | None = None
    receipt_no: str | None = None
    cancelled_at: datetime | None = None
    cancellation_reason: str | None = None


# What showing an enrollment, or its creation's event, reads.
Shown = Enrollment | EnrollmentRecord
