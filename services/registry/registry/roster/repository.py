from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.exclusion.models import Exclusion, ExclusionKind
from registry.people.models import DocumentType, Person
from registry.roster.models import RosterRow, RosterUpload, RowStatus, UploadStatus
from registry.subsidy.models import SubsidyAssignment
from shared import db


async def get(session: AsyncSession, upload_id: str) -> RosterUpload | None:
    return await session.get(RosterUpload, upload_id, populate_existing=True)


async def by_fingerprint(session: AsyncSession, fingerprint: str) -> RosterUpload | None:
    return (
        await session.scalars(select(RosterUpload).where(RosterUpload.fingerprint == fingerprint))
    ).one_or_none()


def add(session: AsyncSession, upload: RosterUpload) -> None:
    session.add(upload)


async def claimable(session: AsyncSession, owner: str, now: datetime) -> list[str]:
    query = (
        select(RosterUpload.id)
        .where(
            RosterUpload.status.in_([UploadStatus.PENDING, UploadStatus.APPLYING]),
            or_(
                RosterUpload.lease_until.is_(None),
                RosterUpload.lease_until < now,
                RosterUpload.lease_owner == owner,
            ),
        )
        .order_by(RosterUpload.uploaded_at)
        .limit(5)
    )
    return list((await session.scalars(query)).all())


async def take_lease(
    session: AsyncSession, upload_id: str, owner: str, now: datetime, until: datetime
) -> bool:
    """Claim or renew; succeeds only if the lease is free, expired, or already this owner's."""
    result = await session.execute(
        update(RosterUpload)
        .where(
            RosterUpload.id == upload_id,
            or_(
                RosterUpload.lease_until.is_(None),
                RosterUpload.lease_until < now,
                RosterUpload.lease_owner == owner,
            ),
        )
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def insert_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(RosterRow), rows)


async def earlier_rows(session: AsyncSession, upload_id: str, id_numbers: list[str]) -> dict[str, int]:
    """The first row of this upload already holding each ID number."""
    query = select(RosterRow.id_number, RosterRow.row_no).where(
        RosterRow.upload_id == upload_id, RosterRow.id_number.in_(id_numbers)
    )
    first: dict[str, int] = {}
    for id_number, row_no in (await session.execute(query)).all():
        if id_number is not None:
            first[id_number] = min(row_no, first.get(id_number, row_no))
    return first


async def known_people(session: AsyncSession, id_numbers: list[str]) -> dict[str, Person]:
    query = select(Person).where(
        Person.document_type == DocumentType.RESIDENT_ID, Person.document_number.in_(id_numbers)
    )
    return {p.document_number: p for p in (await session.scalars(query)).all()}


async def held_categories(
    session: AsyncSession, person_ids: list[str], coverage_year: int
) -> set[tuple[str, str]]:
    query = select(SubsidyAssignment.person_id, SubsidyAssignment.category_code).where(
        SubsidyAssignment.person_id.in_(person_ids),
        SubsidyAssignment.coverage_year == coverage_year,
        SubsidyAssignment.removed_at.is_(None),
    )
    return {(p, c) for p, c in (await session.execute(query)).all()}


async def rows(
    session: AsyncSession, upload_id: str, status: RowStatus | None, after_row: int, limit: int
) -> list[RosterRow]:
    query = select(RosterRow).where(RosterRow.upload_id == upload_id, RosterRow.row_no > after_row)
    if status is not None:
        query = query.where(RosterRow.status == status)
    return list((await session.scalars(query.order_by(RosterRow.row_no).limit(limit))).all())


async def namesakes(session: AsyncSession, keys: list[tuple[str, date]]) -> dict[tuple[str, date], list[str]]:
    """Registered document numbers by (name, birth date), to spot one person under two numbers."""
    if not keys:
        return {}
    names = sorted({name for name, _ in keys})
    query = select(Person.name, Person.birth_date, Person.document_number).where(Person.name.in_(names))
    found: dict[tuple[str, date], list[str]] = {}
    wanted = set(keys)
    for name, birth, number in (await session.execute(query)).all():
        if (name, birth) in wanted:
            found.setdefault((name, birth), []).append(number)
    return found


async def employee_insured(
    session: AsyncSession, id_numbers: list[str], coverage_year: int
) -> dict[str, str]:
    query = select(Exclusion.document_number, Exclusion.source).where(
        Exclusion.document_type == DocumentType.RESIDENT_ID,
        Exclusion.document_number.in_(id_numbers),
        Exclusion.coverage_year == coverage_year,
        Exclusion.kind == ExclusionKind.EMPLOYEE_INSURANCE,
        Exclusion.removed_at.is_(None),
    )
    return {number: source for number, source in (await session.execute(query)).all()}


async def row(session: AsyncSession, upload_id: str, row_no: int) -> RosterRow | None:
    return await session.get(RosterRow, (upload_id, row_no))


# The tables a roster fills, whose statistics a bulk load makes stale.
_LOADED_TABLES = (
    "roster_rows, people, subsidy_assignments, enrollments, enrollment_subsidy_lines, exclusions, outbox"
)


async def refresh_statistics(session: AsyncSession) -> None:
    await db.refresh_statistics(session, _LOADED_TABLES)
