from datetime import UTC, date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.db import UTCDateTime


class SubsidyAssignment(Base):
    """A person holds a subsidy category (资助类别) for a coverage year, on some evidence, set by someone.
    Removal keeps the row (who, when, why): the history is the audit trail."""

    __tablename__ = "subsidy_assignments"
    __table_args__ = (
        # One active assignment per person, year and category; removed ones stay as history.
        Index(
            "uq_subsidy_assignments_active",
            "person_id",
            "coverage_year",
            "category_code",
            unique=True,
            postgresql_where=text("removed_at IS NULL"),
            sqlite_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    policy_id: Mapped[str] = mapped_column(String(64))
    coverage_year: Mapped[int] = mapped_column(Integer)
    category_code: Mapped[str] = mapped_column(String(64))
    evidence_ref: Mapped[str] = mapped_column(String(128))
    effective_date: Mapped[date] = mapped_column(Date)
    assigned_by: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    removed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    removal_reason: Mapped[str | None] = mapped_column(String(256), default=None)
