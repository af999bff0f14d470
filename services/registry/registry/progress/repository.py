from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import ColumnElement, case, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import Enrollment
from registry.progress.models import ProgressBaseline
from registry.subsidy.models import SubsidyAssignment
from shared.db import business_day


async def baseline(session: AsyncSession, policy_id: str) -> list[ProgressBaseline]:
    query = (
        select(ProgressBaseline)
        .where(ProgressBaseline.policy_id == policy_id)
        .order_by(ProgressBaseline.position)
    )
    return list((await session.scalars(query)).all())


async def replace_baseline(session: AsyncSession, policy_id: str, rows: list[ProgressBaseline]) -> None:
    await session.execute(delete(ProgressBaseline).where(ProgressBaseline.policy_id == policy_id))
    session.add_all(rows)
    await session.flush()


def _counted(until: datetime) -> ColumnElement[bool]:
    """Paid before `until` and not ended by then: enrolled as of that moment."""
    return (
        Enrollment.paid_at.is_not(None)
        & (Enrollment.paid_at < until)
        & or_(Enrollment.cancelled_at.is_(None), Enrollment.cancelled_at >= until)
    )


async def enrolled_counts(
    session: AsyncSession, region_codes: Sequence[str], coverage_year: int, until: datetime
) -> list[tuple[str, str | None, bool, int]]:
    """(region code, township, enrolled by a university, people) of enrollments counted as of `until`."""
    by_university = Enrollment.university.is_not(None)
    query = (
        select(Enrollment.region_code, Enrollment.township, by_university, func.count())
        .where(
            Enrollment.region_code.in_(region_codes),
            Enrollment.coverage_year == coverage_year,
            _counted(until),
        )
        .group_by(Enrollment.region_code, Enrollment.township, by_university)
    )
    return [(r, t, bool(u), n) for r, t, u, n in (await session.execute(query)).all()]


async def category_counts(
    session: AsyncSession, region_codes: Sequence[str], coverage_year: int, as_of: date, until: datetime
) -> list[tuple[str, str | None, str, int, int]]:
    """(region code, township, category, holders, holders enrolled) as of the day: people holding the category
    then (qualified by that day, not yet removed), by where the roster places them."""
    enrolled = (
        select(Enrollment.id)
        .where(
            Enrollment.person_id == SubsidyAssignment.person_id,
            Enrollment.coverage_year == coverage_year,
            _counted(until),
        )
        .exists()
    )
    query = (
        select(
            SubsidyAssignment.region_code,
            SubsidyAssignment.township,
            SubsidyAssignment.category_code,
            func.count(func.distinct(SubsidyAssignment.person_id)),
            func.count(func.distinct(case((enrolled, SubsidyAssignment.person_id)))),
        )
        .where(
            SubsidyAssignment.region_code.in_(region_codes),
            SubsidyAssignment.coverage_year == coverage_year,
            SubsidyAssignment.effective_date <= as_of,
            or_(SubsidyAssignment.removed_at.is_(None), SubsidyAssignment.removed_at >= until),
        )
        .group_by(SubsidyAssignment.region_code, SubsidyAssignment.township, SubsidyAssignment.category_code)
    )
    return [(r, t, c, h, e) for r, t, c, h, e in (await session.execute(query)).all()]


async def daily_payments(
    session: AsyncSession, region_codes: Sequence[str], coverage_year: int, since: datetime, until: datetime
) -> list[tuple[date, int, int]]:
    """(business day, enrollments paid, fen paid) per day in [since, until)."""
    day = business_day(Enrollment.paid_at)
    query = (
        select(day, func.count(), func.coalesce(func.sum(Enrollment.paid_fen), 0))
        .where(
            Enrollment.region_code.in_(region_codes),
            Enrollment.coverage_year == coverage_year,
            Enrollment.paid_at >= since,
            Enrollment.paid_at < until,
        )
        .group_by(day)
        .order_by(day)
    )
    return [(date.fromisoformat(d), n, int(fen or 0)) for d, n, fen in (await session.execute(query)).all()]
