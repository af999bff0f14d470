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
        Index("ix_subsidy_assignments_region_year_category", "region_code", "coverage_year", "category_code"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    policy_id: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6))
    coverage_year: Mapped[int] = mapped_column(Integer)
    category_code: Mapped[str] = mapped_column(String(64))
    evidence_ref: Mapped[str] = mapped_column(String(128))
    effective_date: Mapped[date] = mapped_column(Date)
    # Where the person lives, as the roster gives it (乡镇, 村(居)委会, 村民组), for rosters and follow-up.
    township: Mapped[str | None] = mapped_column(String(32), default=None)
    village: Mapped[str | None] = mapped_column(String(64), default=None)
    village_group: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str | None] = mapped_column(String(256), default=None)
    reason: Mapped[str | None] = mapped_column(String(256), default=None, doc="新增原因, for additions")
    assigned_by: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    removed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    removal_reason: Mapped[str | None] = mapped_column(String(256), default=None)
