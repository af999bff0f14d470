from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from registry.database import OutboxMessage
from registry.enrollment.models import ENDED, Enrollment, EnrollmentStatus, EnrollmentSubsidyLine
from shared import bulk
from shared.clock import utc_now
from shared.outbox import wake_relay

# Its person and subsidy lines joined: one round trip for what showing an enrollment needs. Built once, so
# that each use only binds the id (the hottest read: a front-end asking whether it is paid yet).
_GET = (
    select(Enrollment).where(Enrollment.id == bindparam("id")).options(joinedload(Enrollment.subsidy_lines))
)
_GET_FOR_UPDATE = _GET.with_for_update(of=Enrollment)


async def get(session: AsyncSession, enrollment_id: str, *, for_update: bool = False) -> Enrollment | None:
    query = _GET_FOR_UPDATE if for_update else _GET
    return (await session.scalars(query, {"id": enrollment_id})).unique().one_or_none()


async def changed_at(session: AsyncSession, enrollment_ids: Sequence[str]) -> dict[str, datetime]:
    """When each of these enrollments last changed (`updated_at`), by id."""
    query = select(Enrollment.id, Enrollment.updated_at).where(Enrollment.id.in_(sorted(set(enrollment_ids))))
    return {row.id: row.updated_at for row in (await session.execute(query)).all()}


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


# Enrolling a roster in bulk (enrollment.bulk) -----------------------------------------------------------


class LiveRef(NamedTuple):
    """A live enrollment as plain data: what deciding about its person needs."""

    id: str
    person_id: str
    region_code: str
    status: EnrollmentStatus
    payable_until: date


async def live_refs(
    session: AsyncSession, person_ids: Sequence[str], coverage_year: int, *, for_update: bool = False
) -> dict[str, LiveRef]:
    """`live_for_people` as plain rows, for thousands of people at once."""
    if not person_ids:
        return {}
    live = Enrollment.__table__.c  # table columns: plain rows, without the ORM's loading
    query = select(live.id, live.person_id, live.region_code, live.status, live.payable_until).where(
        bulk.among(session, live.person_id, sorted(set(person_ids))),
        live.coverage_year == coverage_year,
        live.status.not_in(ENDED),
    )
    if for_update:
        query = query.with_for_update(of=Enrollment)
    return {row.person_id: LiveRef(*row) for row in (await session.execute(query)).all()}


# The columns of enrollments, subsidy lines and outbox events written in bulk, in the order rows give them.
ENROLLMENT_COLUMNS = (
    "id",
    "person_id",
    "township",
    "household_id",
    "policy_id",
    "region_code",
    "payer_organisation",
    "university",
    "coverage_year",
    "basis",
    "status",
    "charge",
    "late_case",
    "window_extension",
    "payable_until",
    "personal_due_fen",
    "fiscal_subsidy_fen",
    "total_financing_fen",
    "price_version",
    "earlier_dues",
    "coverage_from",
    "coverage_start",
    "coverage_end",
    "created_at",
    "refunded_fen",
    "updated_at",
)
LINE_COLUMNS = ("enrollment_id", "category_code", "category_name", "funder", "amount_fen")
EVENT_COLUMNS = ("event_id", "event_type", "topic", "key", "payload", "created_at")


async def insert_many(
    session: AsyncSession,
    enrollments: Sequence[tuple[Any, ...]],
    lines: Sequence[tuple[Any, ...]],
) -> None:
    """New enrollments and their subsidy lines. The one-live-enrollment index refuses a person enrolled
    meanwhile with IntegrityError, as a flush would."""
    await bulk.insert_rows(session, Enrollment, ENROLLMENT_COLUMNS, enrollments)
    await bulk.insert_rows(session, EnrollmentSubsidyLine, LINE_COLUMNS, lines)


async def lapse_many(session: AsyncSession, enrollment_ids: Sequence[str]) -> None:
    if enrollment_ids:
        await session.execute(
            update(Enrollment)
            .where(bulk.among(session, Enrollment.id, list(enrollment_ids)))
            .values(status=EnrollmentStatus.LAPSED, updated_at=utc_now())
            .execution_options(synchronize_session=False)
        )


async def insert_events(session: AsyncSession, events: Sequence[tuple[Any, ...]]) -> None:
    """Outbox rows (EVENT_COLUMNS) in the caller's transaction; the relay looks once it commits."""
    await bulk.insert_rows(session, OutboxMessage, EVENT_COLUMNS, events)
    if events:
        wake_relay(session)
