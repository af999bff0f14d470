import enum
from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from collection.database import Base
from shared.clock import utc_now
from shared.db import UTCDateTime, enum_column
from shared.events import SubsidyLineData


class BillStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"  # the enrollment lapsed unpaid (or was withdrawn)
    REFUNDED = "refunded"  # paid, then refunded in full: the enrollment ended


class Bill(Base):
    """What one person owes for one enrollment (应缴费额), issued from the registry's enrollment event."""

    __tablename__ = "bills"
    __table_args__ = (
        Index("ix_bills_organisation", "payer_organisation", "region_code", "coverage_year", "status"),
        Index("ix_bills_region_paid_at", "region_code", "paid_at"),
        Index("ix_bills_region_year", "region_code", "coverage_year", "enrollment_id"),
        Index("ix_bills_updated_at", "updated_at", "enrollment_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    enrollment_id: Mapped[str] = mapped_column(String(36), unique=True)
    document_type: Mapped[str] = mapped_column(String(32))
    id_number: Mapped[str] = mapped_column(String(32), index=True)
    payer_name: Mapped[str] = mapped_column(String(64))
    payer_organisation: Mapped[str | None] = mapped_column(
        String(64), default=None, doc="A school that pays this bill with its others (a university's batch)"
    )
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    coverage_year: Mapped[int] = mapped_column(Integer)
    amount_due_fen: Mapped[int] = mapped_column(BigInteger)
    price_version: Mapped[int] = mapped_column(Integer, doc="The registry's price version this bill follows")
    payable_until: Mapped[date] = mapped_column(Date, doc="Last Beijing business day it may be paid")
    coverage_start: Mapped[date | None] = mapped_column(Date)
    coverage_end: Mapped[date] = mapped_column(Date)
    status: Mapped[BillStatus] = mapped_column(enum_column(BillStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    refundable_reasons: Mapped[list[str]] = mapped_column(
        JSON, default=list, doc="Why the policy refunds a paid contribution within the coverage period"
    )
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utc_now,
        onupdate=utc_now,
        doc="Wall-clock time of the last change: the repair job compares what changed since it last looked",
    )
    subsidy_lines: Mapped[list["BillSubsidyLine"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="BillSubsidyLine.id"
    )

    def subsidy_by_funder(self) -> dict[str, int]:
        """What each funder owes on this bill."""
        return by_funder(self.subsidy_lines)


def by_funder(lines: "Iterable[BillSubsidyLine | SubsidyLineData]") -> dict[str, int]:
    """What each funder owes on a bill of these subsidy lines."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.funder] = totals.get(line.funder, 0) + line.amount_fen
    return totals


class BillSubsidyLine(Base):
    """A funder's share of the person's contribution on a bill: what that department owes (应拨付资助资金)."""

    __tablename__ = "bill_subsidy_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[str] = mapped_column(ForeignKey("bills.id"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    funder: Mapped[str] = mapped_column(String(64), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)

    @classmethod
    def from_events(cls, lines: list[SubsidyLineData]) -> list["BillSubsidyLine"]:
        return [cls(category=x.category, funder=x.funder, amount_fen=x.amount_fen) for x in lines]


class LookupFailure(Base):
    """A lookup of a bill by ID number and name that matched nothing: counted per caller, so that repeated
    guesses are throttled and the API cannot be used to find out who is insured."""

    __tablename__ = "lookup_failures"
    __table_args__ = (Index("ix_lookup_failures_subject_at", "subject", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
