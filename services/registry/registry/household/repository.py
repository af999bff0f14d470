from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import ENDED, Enrollment
from registry.household.models import Household, HouseholdMember, MembershipStatus
from registry.people.models import Person


async def get(session: AsyncSession, household_id: str) -> Household | None:
    return await session.get(Household, household_id)


async def membership_of(session: AsyncSession, person_id: str) -> HouseholdMember | None:
    """The household a person belongs to (invitations aside)."""
    query = select(HouseholdMember).where(
        HouseholdMember.person_id == person_id, HouseholdMember.status == MembershipStatus.ACCEPTED
    )
    return (await session.scalars(query)).one_or_none()


async def members_enrollments(
    session: AsyncSession, household: Household, coverage_year: int
) -> list[Enrollment]:
    person_ids = [m.person_id for m in household.members if m.established]
    query = select(Enrollment).where(
        Enrollment.person_id.in_(person_ids),
        Enrollment.coverage_year == coverage_year,
        Enrollment.status.not_in(ENDED),
    )
    return list((await session.scalars(query)).all())


def add(session: AsyncSession, household: Household) -> None:
    session.add(household)


async def enrollment_regions(session: AsyncSession, household: Household) -> set[str]:
    """The regions any member has ever enrolled in: where the household's staff are."""
    person_ids = [m.person_id for m in household.members]
    query = select(Enrollment.region_code).where(Enrollment.person_id.in_(person_ids)).distinct()
    return set((await session.scalars(query)).all())


async def enrollment_regions_of_numbers(session: AsyncSession, numbers: list[str]) -> set[str]:
    """The regions the people with these document numbers have ever enrolled in."""
    query = (
        select(Enrollment.region_code)
        .join(Person, Person.id == Enrollment.person_id)
        .where(Person.document_number.in_(numbers))
        .distinct()
    )
    return set((await session.scalars(query)).all())
