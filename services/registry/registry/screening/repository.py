from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import ENDED, Enrollment, EnrollmentStatus
from registry.people.models import Person
from registry.population.models import RegisteredResident
from registry.screening.models import FollowUpState, ScreeningCase, ScreeningCaseEvent

# Ids per IN (...) list: well inside SQLite's and asyncpg's parameter limits.
CHUNK = 2000
T = TypeVar("T")


def chunks(items: Iterable[T]) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


async def prior_enrollees(
    session: AsyncSession, region_code: str, years: Sequence[int]
) -> list[tuple[str, int, str | None, bool]]:
    """(person, year, township, student) of everyone enrolled and paid in the region in those years."""
    student = (Enrollment.basis == "student") | Enrollment.university.is_not(None)
    query = select(Enrollment.person_id, Enrollment.coverage_year, Enrollment.township, student).where(
        Enrollment.region_code == region_code,
        Enrollment.coverage_year.in_(years),
        Enrollment.paid_at.is_not(None),
    )
    return [(p, y, t, bool(s)) for p, y, t, s in (await session.execute(query)).all()]


async def registered_in(
    session: AsyncSession, region_code: str, coverage_year: int
) -> list[RegisteredResident]:
    query = select(RegisteredResident).where(
        RegisteredResident.region_code == region_code, RegisteredResident.coverage_year == coverage_year
    )
    return list((await session.scalars(query)).all())


async def registered_elsewhere(
    session: AsyncSession, person_ids: Iterable[str], region_code: str, coverage_year: int
) -> set[str]:
    found: set[str] = set()
    for batch in chunks(person_ids):
        query = select(RegisteredResident.person_id).where(
            RegisteredResident.person_id.in_(batch),
            RegisteredResident.coverage_year == coverage_year,
            RegisteredResident.region_code != region_code,
        )
        found.update((await session.scalars(query)).all())
    return found


async def live_statuses(
    session: AsyncSession, person_ids: Iterable[str], coverage_year: int
) -> dict[str, EnrollmentStatus]:
    """The status of each person's live enrollment for the year (active or pending payment), anywhere."""
    found: dict[str, EnrollmentStatus] = {}
    for batch in chunks(person_ids):
        query = select(Enrollment.person_id, Enrollment.status).where(
            Enrollment.person_id.in_(batch),
            Enrollment.coverage_year == coverage_year,
            Enrollment.status.not_in(ENDED),
        )
        found.update({p: s for p, s in (await session.execute(query)).all()})
    return found


async def deceased(session: AsyncSession, person_ids: Iterable[str]) -> set[str]:
    """People whose enrollment ended by death (自然减员)."""
    found: set[str] = set()
    for batch in chunks(person_ids):
        query = select(Enrollment.person_id).where(
            Enrollment.person_id.in_(batch), Enrollment.cancellation_reason == "death"
        )
        found.update((await session.scalars(query)).all())
    return found


async def people(session: AsyncSession, person_ids: Iterable[str]) -> dict[str, Person]:
    found: dict[str, Person] = {}
    for batch in chunks(person_ids):
        found.update(
            {p.id: p for p in (await session.scalars(select(Person).where(Person.id.in_(batch)))).all()}
        )
    return found


async def cases_of_people(
    session: AsyncSession, person_ids: Iterable[str], coverage_year: int
) -> dict[str, ScreeningCase]:
    found: dict[str, ScreeningCase] = {}
    for batch in chunks(person_ids):
        query = select(ScreeningCase).where(
            ScreeningCase.person_id.in_(batch), ScreeningCase.coverage_year == coverage_year
        )
        found.update({c.person_id: c for c in (await session.scalars(query)).all()})
    return found


async def open_case_people(
    session: AsyncSession, region_code: str, coverage_year: int, states: Iterable[FollowUpState]
) -> list[str]:
    query = select(ScreeningCase.person_id).where(
        ScreeningCase.region_code == region_code,
        ScreeningCase.coverage_year == coverage_year,
        ScreeningCase.state.in_(list(states)),
    )
    return list((await session.scalars(query)).all())


async def get(session: AsyncSession, case_id: int, *, for_update: bool = False) -> ScreeningCase | None:
    query = select(ScreeningCase).where(ScreeningCase.id == case_id)
    if for_update:
        query = query.with_for_update(of=ScreeningCase)
    result: ScreeningCase | None = await session.scalar(query)
    return result


async def listing(
    session: AsyncSession,
    region_code: str,
    coverage_year: int,
    *,
    township: str | None,
    village: str | None,
    states: Sequence[FollowUpState],
    aged_60_plus: bool | None,
    student: bool | None,
    after: int | None,
    limit: int | None,
    case_ids: Sequence[int] | None = None,
) -> list[ScreeningCase]:
    query = select(ScreeningCase).where(
        ScreeningCase.region_code == region_code, ScreeningCase.coverage_year == coverage_year
    )
    if township is not None:
        query = query.where(ScreeningCase.township == township)
    if village is not None:
        query = query.where(ScreeningCase.village == village)
    if states:
        query = query.where(ScreeningCase.state.in_(states))
    if aged_60_plus is not None:
        query = query.where(ScreeningCase.aged_60_plus == aged_60_plus)
    if student is not None:
        query = query.where(ScreeningCase.student == student)
    if after is not None:
        query = query.where(ScreeningCase.id > after)
    if case_ids is not None:
        query = query.where(ScreeningCase.id.in_(case_ids))
    query = query.order_by(ScreeningCase.id)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.scalars(query)).all())


async def state_counts(
    session: AsyncSession, region_code: str, coverage_year: int
) -> list[tuple[str | None, FollowUpState, bool, bool, int]]:
    """(township, state, aged 60+, student, cases)."""
    query = (
        select(
            ScreeningCase.township,
            ScreeningCase.state,
            ScreeningCase.aged_60_plus,
            ScreeningCase.student,
            func.count(),
        )
        .where(ScreeningCase.region_code == region_code, ScreeningCase.coverage_year == coverage_year)
        .group_by(
            ScreeningCase.township, ScreeningCase.state, ScreeningCase.aged_60_plus, ScreeningCase.student
        )
    )
    return [(t, s, bool(a), bool(st), n) for t, s, a, st, n in (await session.execute(query)).all()]


async def events(session: AsyncSession, case_id: int) -> list[ScreeningCaseEvent]:
    query = (
        select(ScreeningCaseEvent)
        .where(ScreeningCaseEvent.case_id == case_id)
        .order_by(ScreeningCaseEvent.id)
    )
    return list((await session.scalars(query)).all())


def add_all(session: AsyncSession, rows: Sequence[ScreeningCase | ScreeningCaseEvent]) -> None:
    session.add_all(rows)
