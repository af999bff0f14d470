from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.population.models import RegisteredResident


async def for_people(
    session: AsyncSession, person_ids: Sequence[str], coverage_year: int
) -> dict[str, RegisteredResident]:
    if not person_ids:
        return {}
    query = select(RegisteredResident).where(
        RegisteredResident.person_id.in_(sorted(set(person_ids))),
        RegisteredResident.coverage_year == coverage_year,
    )
    return {r.person_id: r for r in (await session.scalars(query)).all()}


def add_all(session: AsyncSession, residents: list[RegisteredResident]) -> None:
    session.add_all(residents)


async def count_per_township(
    session: AsyncSession, region_code: str, coverage_year: int
) -> dict[str | None, int]:
    query = (
        select(RegisteredResident.township, func.count())
        .where(
            RegisteredResident.region_code == region_code, RegisteredResident.coverage_year == coverage_year
        )
        .group_by(RegisteredResident.township)
    )
    return {township: count for township, count in (await session.execute(query)).all()}


async def registered_together(session: AsyncSession, person_id: str, others: Sequence[str]) -> set[str]:
    """Those of `others` whom public security's data registers in one 户 (same region and 户号) with the
    person, in any year."""
    if not others:
        return set()
    mine = select(RegisteredResident.region_code, RegisteredResident.household_no).where(
        RegisteredResident.person_id == person_id, RegisteredResident.household_no.is_not(None)
    )
    places = {(region, number) for region, number in (await session.execute(mine)).all()}
    if not places:
        return set()
    query = select(
        RegisteredResident.person_id, RegisteredResident.region_code, RegisteredResident.household_no
    ).where(
        RegisteredResident.person_id.in_(sorted(set(others))), RegisteredResident.household_no.is_not(None)
    )
    return {
        person
        for person, region, number in (await session.execute(query)).all()
        if (region, number) in places
    }
