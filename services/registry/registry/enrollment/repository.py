from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import ENDED, Enrollment


async def get(session: AsyncSession, enrollment_id: str, *, for_update: bool = False) -> Enrollment | None:
    query = select(Enrollment).where(Enrollment.id == enrollment_id)
    if for_update:
        query = query.with_for_update(of=Enrollment)
    return (await session.scalars(query)).one_or_none()


async def find_for_person_year(
    session: AsyncSession, person_id: str, coverage_year: int, *, for_update: bool = False
) -> Enrollment | None:
    query = select(Enrollment).where(
        Enrollment.person_id == person_id,
        Enrollment.coverage_year == coverage_year,
        Enrollment.status.not_in(ENDED),
    )
    if for_update:
        query = query.with_for_update(of=Enrollment)
    return (await session.scalars(query)).one_or_none()


async def live_for_people(
    session: AsyncSession, person_ids: Sequence[str], coverage_year: int, *, for_update: bool = False
) -> dict[str, Enrollment]:
    """Each person's enrollment for the year that has not lapsed (there is at most one)."""
    if not person_ids:
        return {}
    query = select(Enrollment).where(
        Enrollment.person_id.in_(sorted(set(person_ids))),
        Enrollment.coverage_year == coverage_year,
        Enrollment.status.not_in(ENDED),
    )
    if for_update:
        query = query.with_for_update(of=Enrollment)
    return {e.person_id: e for e in (await session.scalars(query)).all()}


def add(session: AsyncSession, enrollment: Enrollment) -> None:
    session.add(enrollment)


async def of_region_year(
    session: AsyncSession, region_code: str, coverage_year: int, after: str, limit: int
) -> list[Enrollment]:
    """A region's enrollments of a coverage year, every status, by id from `after`."""
    query = (
        select(Enrollment)
        .where(
            Enrollment.region_code == region_code,
            Enrollment.coverage_year == coverage_year,
            Enrollment.id > after,
        )
        .order_by(Enrollment.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def changed_since(
    session: AsyncSession, after_at: datetime, after_id: str, limit: int
) -> list[Enrollment]:
    """Enrollments changed at or after `after_at` (past `after_id` at that moment), oldest change first."""
    query = (
        select(Enrollment)
        .where(tuple_(Enrollment.updated_at, Enrollment.id) > tuple_(after_at, after_id))
        .order_by(Enrollment.updated_at, Enrollment.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def get_many(session: AsyncSession, enrollment_ids: Sequence[str]) -> list[Enrollment]:
    query = select(Enrollment).where(Enrollment.id.in_(sorted(set(enrollment_ids)))).order_by(Enrollment.id)
    return list((await session.scalars(query)).all())
