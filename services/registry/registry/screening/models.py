import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.database import Base
from registry.people.models import Person
from shared.db import UTCDateTime, enum_column


class FollowUpState(enum.StrEnum):
    """跟进状态 of a person the screening listed."""

    NOT_CONTACTED = "not_contacted"  # 未联系
    REMINDED = "reminded"  # 已提醒 (a reminder went out, or staff phoned)
    VISITED = "visited"  # 已入户
    REFUSED = "refused"  # 拒绝参保
    MOVED_AWAY = "moved_away"  # 已迁出
    ENROLLED_ELSEWHERE = "enrolled_elsewhere"  # 已在外地参保
    ENROLLED = "enrolled"  # 已参保 (here, paid)
    NOT_REQUIRED = "not_required"  # 无需参保: in employee insurance, or deceased (set by a screening run)


OPEN = frozenset(
    {FollowUpState.NOT_CONTACTED, FollowUpState.REMINDED, FollowUpState.VISITED, FollowUpState.REFUSED}
)
# What community staff may record; not_required comes from the data (employee insurance, death) alone.
STAFF_STATES = frozenset(
    {
        FollowUpState.REMINDED,
        FollowUpState.VISITED,
        FollowUpState.REFUSED,
        FollowUpState.MOVED_AWAY,
        FollowUpState.ENROLLED_ELSEWHERE,
        FollowUpState.ENROLLED,
    }
)


class ScreeningCase(Base):
    """排查: a person expected to enroll this year who has not paid, with where to find them and how the
    follow-up stands. One per person and year; a screening run adds, moves and closes cases."""

    __tablename__ = "screening_cases"
    __table_args__ = (
        UniqueConstraint("person_id", "coverage_year"),
        Index("ix_screening_cases_region_year_township", "region_code", "coverage_year", "township", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    region_code: Mapped[str] = mapped_column(String(6))
    coverage_year: Mapped[int] = mapped_column(Integer)
    township: Mapped[str | None] = mapped_column(String(32))
    village: Mapped[str | None] = mapped_column(String(64))
    village_group: Mapped[str | None] = mapped_column(String(32))
    aged_60_plus: Mapped[bool] = mapped_column(Boolean)
    student: Mapped[bool] = mapped_column(Boolean)
    pending_payment: Mapped[bool] = mapped_column(Boolean, doc="Enrolled this year but not paid")
    found_in: Mapped[list[str]] = mapped_column(
        JSON, doc="enrolled_<year> for the last two years' enrollees, registered for 户籍人口"
    )
    state: Mapped[FollowUpState] = mapped_column(enum_column(FollowUpState))
    note: Mapped[str | None] = mapped_column(String(256), default=None)
    listed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
    last_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    person: Mapped[Person] = relationship(lazy="joined", innerjoin=True)


class ScreeningCaseEvent(Base):
    """Every change of a case's state, by whom (staff, a screening run, a reminder) and why."""

    __tablename__ = "screening_case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("screening_cases.id"), index=True)
    from_state: Mapped[FollowUpState] = mapped_column(enum_column(FollowUpState))
    to_state: Mapped[FollowUpState] = mapped_column(enum_column(FollowUpState))
    note: Mapped[str | None] = mapped_column(String(256))
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
