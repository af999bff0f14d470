from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import ENDED, Enrollment
from registry.people.models import Person
from registry.subsidy.models import SubsidyAssignment
from shared import bulk


async def active_codes(session: AsyncSession, person_id: str, coverage_year: int) -> list[str]:
    query = select(SubsidyAssignment.category_code).where(
        SubsidyAssignment.person_id == person_id,
        SubsidyAssignment.coverage_year == coverage_year,
        SubsidyAssignment.removed_at.is_(None),
    )
    return list((await session.scalars(query)).all())


async def active_codes_many(
    session: AsyncSession, person_ids: Sequence[str], coverage_year: int
) -> dict[str, list[str]]:
    if not person_ids:
        return {}
    held = SubsidyAssignment.__table__.c  # table columns: plain rows, without the ORM's loading
    query = select(held.person_id, held.category_code).where(
        bulk.among(session, held.person_id, sorted(set(person_ids))),
        held.coverage_year == coverage_year,
        held.removed_at.is_(None),
    )
    codes: dict[str, list[str]] = {}
    for person_id, code in (await session.execute(query)).all():
        codes.setdefault(person_id, []).append(code)
    return codes


async def find_active(
    session: AsyncSession, person_id: str, coverage_year: int, category_code: str
) -> SubsidyAssignment | None:
    query = select(SubsidyAssignment).where(
        SubsidyAssignment.person_id == person_id,
        SubsidyAssignment.coverage_year == coverage_year,
        SubsidyAssignment.category_code == category_code,
        SubsidyAssignment.removed_at.is_(None),
    )
    return (await session.scalars(query)).one_or_none()


async def get(
    session: AsyncSession, assignment_id: str, *, for_update: bool = False
) -> SubsidyAssignment | None:
    return await session.get(
        SubsidyAssignment, assignment_id, with_for_update=for_update, populate_existing=for_update
    )


async def for_person(
    session: AsyncSession, person_id: str, *, coverage_year: int | None
) -> list[SubsidyAssignment]:
    query = select(SubsidyAssignment).where(SubsidyAssignment.person_id == person_id)
    if coverage_year is not None:
        query = query.where(SubsidyAssignment.coverage_year == coverage_year)
    return list((await session.scalars(query.order_by(SubsidyAssignment.assigned_at))).all())


def add(session: AsyncSession, assignment: SubsidyAssignment) -> None:
    session.add(assignment)


# The columns of assignments made in bulk (a roster chunk's), in the order `insert_many` takes them.
ASSIGNMENT_COLUMNS = (
    "id",
    "person_id",
    "policy_id",
    "region_code",
    "coverage_year",
    "category_code",
    "evidence_ref",
    "effective_date",
    "township",
    "village",
    "village_group",
    "note",
    "reason",
    "assigned_by",
    "assigned_at",
)


async def insert_many(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    """New assignments; the one-active-assignment index refuses one made meanwhile with IntegrityError."""
    await bulk.insert_rows(session, SubsidyAssignment, ASSIGNMENT_COLUMNS, rows)


async def enrolled_per_township(
    session: AsyncSession, region_code: str, coverage_year: int, category_code: str
) -> dict[str | None, int]:
    """People holding the category and enrolled for the year in the region, by their enrollment's township."""
    query = (
        select(Enrollment.township, func.count(func.distinct(SubsidyAssignment.person_id)))
        .join(Enrollment, Enrollment.person_id == SubsidyAssignment.person_id)
        .where(
            SubsidyAssignment.coverage_year == coverage_year,
            SubsidyAssignment.category_code == category_code,
            SubsidyAssignment.removed_at.is_(None),
            Enrollment.coverage_year == coverage_year,
            Enrollment.region_code == region_code,
            Enrollment.status.not_in(ENDED),
        )
        .group_by(Enrollment.township)
    )
    return {township: count for township, count in (await session.execute(query)).all()}


async def unenrolled_holders(
    session: AsyncSession, region_code: str, coverage_year: int, *, township: str | None = None
) -> list[tuple[Person, SubsidyAssignment]]:
    """People holding a category in the region for the year with no live enrollment: each once, with their
    latest assignment (for where they live)."""
    live = select(Enrollment.id).where(
        Enrollment.person_id == SubsidyAssignment.person_id,
        Enrollment.coverage_year == coverage_year,
        Enrollment.status.not_in(ENDED),
    )
    query = (
        select(Person, SubsidyAssignment)
        .join(Person, Person.id == SubsidyAssignment.person_id)
        .where(
            SubsidyAssignment.region_code == region_code,
            SubsidyAssignment.coverage_year == coverage_year,
            SubsidyAssignment.removed_at.is_(None),
            ~live.exists(),
        )
        .order_by(SubsidyAssignment.person_id, SubsidyAssignment.assigned_at.desc())
    )
    if township is not None:
        query = query.where(SubsidyAssignment.township == township)
    latest: dict[str, tuple[Person, SubsidyAssignment]] = {}
    for person, assignment in (await session.execute(query)).all():
        latest.setdefault(person.id, (person, assignment))
    return list(latest.values())


async def roster_entries(
    session: AsyncSession, region_code: str, coverage_year: int, category_code: str
) -> list[tuple[Person, SubsidyAssignment]]:
    """Everyone who held the category in the region for the year, removed ones included, in the order
    they were assigned."""
    query = (
        select(Person, SubsidyAssignment)
        .join(Person, Person.id == SubsidyAssignment.person_id)
        .where(
            SubsidyAssignment.region_code == region_code,
            SubsidyAssignment.coverage_year == coverage_year,
            SubsidyAssignment.category_code == category_code,
        )
        .order_by(SubsidyAssignment.assigned_at, SubsidyAssignment.id)
    )
    return [(person, assignment) for person, assignment in (await session.execute(query)).all()]
