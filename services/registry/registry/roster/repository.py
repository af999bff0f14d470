from collections.abc import Sequence
from datetime import date, datetime
from json import JSONDecoder
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, Text, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.exclusion.models import Exclusion, ExclusionKind
from registry.people.models import DocumentType, Person
from registry.roster.models import RosterRow, RosterUpload, RowStatus, UploadStatus
from registry.subsidy.models import SubsidyAssignment
from shared import bulk, db


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


# Bulk lookups select table columns (Core): rows come back as they are, without the ORM's loading.
_ROWS = cast(Table, RosterRow.__table__)
_PEOPLE = cast(Table, Person.__table__)

# The columns of rows stored as judged, in the order `insert_rows` takes them.
ROW_COLUMNS = ("upload_id", "row_no", "status", "id_number", "values", "problems", "evidence")


async def insert_rows(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    await bulk.insert_rows(session, RosterRow, ROW_COLUMNS, rows)


class Accepted(NamedTuple):
    """An accepted row, to apply: its number in the file, its ID number as validated, its values."""

    row_no: int
    id_number: str
    values: dict[str, Any]


async def accepted_after(session: AsyncSession, upload_id: str, after_row: int, limit: int) -> list[Accepted]:
    """The next accepted rows after `after_row`, in file order."""
    row = _ROWS.c
    query = (
        select(row.row_no, row.id_number, row["values"].cast(Text))
        .where(row.upload_id == upload_id, row.status == RowStatus.ACCEPTED, row.row_no > after_row)
        .order_by(row.row_no)
        .limit(limit)
    )
    return [Accepted(no, number, _json_value(text)[0]) for no, number, text in (await session.execute(query))]


# The values come as the JSON text `insert_rows` wrote (compact, from its first character), read without
# `json.loads`' checks around it and the driver's codec: they were about half of the decoding.
_json_value = JSONDecoder().raw_decode


async def mark_applied(session: AsyncSession, upload_id: str, outcomes: Sequence[tuple[int, str]]) -> None:
    """Rows applied, with what applying each did: one statement per distinct outcome."""
    by_outcome: dict[str, list[int]] = {}
    for row_no, outcome in outcomes:
        by_outcome.setdefault(outcome, []).append(row_no)
    row = _ROWS.c
    for outcome, row_nos in by_outcome.items():
        await session.execute(
            update(_ROWS)
            .where(row.upload_id == upload_id, bulk.among(session, row.row_no, row_nos))
            .values(status=RowStatus.APPLIED, outcome=outcome)
        )


async def earlier_rows(session: AsyncSession, upload_id: str, id_numbers: list[str]) -> dict[str, int]:
    """The first row of this upload already holding each ID number."""
    row = _ROWS.c
    query = select(row.id_number, row.row_no).where(
        row.upload_id == upload_id, bulk.among(session, row.id_number, id_numbers)
    )
    first: dict[str, int] = {}
    for id_number, row_no in (await session.execute(query)).all():
        if id_number is not None:
            first[id_number] = min(row_no, first.get(id_number, row_no))
    return first


async def known_people(session: AsyncSession, id_numbers: list[str]) -> dict[str, tuple[str, str]]:
    """(person id, registered name) by resident ID number."""
    person = _PEOPLE.c
    query = select(person.document_number, person.id, person.name).where(
        bulk.among(session, person.document_number, id_numbers),
        person.document_type == DocumentType.RESIDENT_ID,
    )
    return {number: (person_id, name) for number, person_id, name in (await session.execute(query)).all()}


async def held_categories(
    session: AsyncSession, person_ids: list[str], coverage_year: int
) -> set[tuple[str, str]]:
    if not person_ids:
        return set()
    held = SubsidyAssignment.__table__.c
    query = select(held.person_id, held.category_code).where(
        bulk.among(session, held.person_id, person_ids),
        held.coverage_year == coverage_year,
        held.removed_at.is_(None),
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
    person = _PEOPLE.c
    query = select(person.name, person.birth_date, person.document_number).where(
        bulk.among(session, person.name, names)
    )
    found: dict[tuple[str, date], list[str]] = {}
    wanted = set(keys)
    for name, birth, number in (await session.execute(query)).all():
        if (name, birth) in wanted:
            found.setdefault((name, birth), []).append(number)
    return found


async def employee_insured(
    session: AsyncSession, id_numbers: list[str], coverage_year: int
) -> dict[str, str]:
    listed = Exclusion.__table__.c
    query = select(listed.document_number, listed.source).where(
        listed.document_type == DocumentType.RESIDENT_ID,
        bulk.among(session, listed.document_number, id_numbers),
        listed.coverage_year == coverage_year,
        listed.kind == ExclusionKind.EMPLOYEE_INSURANCE,
        listed.removed_at.is_(None),
    )
    return {number: source for number, source in (await session.execute(query)).all()}


async def row(session: AsyncSession, upload_id: str, row_no: int) -> RosterRow | None:
    return await session.get(RosterRow, (upload_id, row_no))


# The tables validating and applying a roster fill and look up by the thousand, whose statistics a bulk load
# makes stale (the subsidy lines and the outbox that applying fills are never looked up that way): only the
# columns those lookups filter on, from a sample of 3,000 rows (statistics target 10, not 100). The planner
# needs the tables' sizes and those columns' distinct values, and a whole table at the default target (30,000
# rows read, every column's histogram sorted) took ten times as long at a million rows. An ANALYZE of named
# columns leaves the table's count of changes as it is, so autovacuum still analyzes the whole table later.
_VALIDATING_TABLES = "roster_rows (upload_id, row_no, status, id_number)"
_APPLYING_TABLES = (
    "people (id, document_type, document_number), "
    "subsidy_assignments (person_id, coverage_year, category_code, removed_at), "
    "enrollments (id, person_id, coverage_year, status)"
)
_STATISTICS_TARGET = 10


async def refresh_statistics(session: AsyncSession, *, applying: bool) -> None:
    if bulk.postgresql(session):
        await session.execute(text(f"SET LOCAL default_statistics_target = {_STATISTICS_TARGET}"))
    await db.refresh_statistics(session, _APPLYING_TABLES if applying else _VALIDATING_TABLES)
