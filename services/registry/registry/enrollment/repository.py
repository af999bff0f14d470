import enum
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Date, Integer, String, bindparam, column, insert, select, text, tuple_, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, lazyload

from registry.database import AuditEvent, OutboxMessage
from registry.enrollment.models import ENDED, Enrollment, EnrollmentStatus, EnrollmentSubsidyLine
from registry.people.models import DocumentType, Person, PersonSource
from shared import bulk
from shared.clock import utc_now
from shared.db import DriverStatement
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
    if for_update:  # in id order, as every batch takes them
        query = query.order_by(Enrollment.id).with_for_update(of=Enrollment)
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
    if for_update:  # in id order, as every batch takes them
        query = query.order_by(live.id).with_for_update(of=Enrollment)
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
# A new enrollment has no earlier dues: the column's default ('{}') gives them, so that a roster's rows carry
# no JSON to encode (each row rebuilt for it) and one value less each.
NEW_ENROLLMENT_COLUMNS = tuple(column for column in ENROLLMENT_COLUMNS if column != "earlier_dues")
LINE_COLUMNS = ("enrollment_id", "category_code", "category_name", "funder", "amount_fen")
EVENT_COLUMNS = ("event_id", "event_type", "topic", "key", "payload", "created_at")


async def insert_many(
    session: AsyncSession,
    enrollments: Sequence[tuple[Any, ...]],
    lines: Sequence[tuple[Any, ...]],
) -> None:
    """New enrollments (NEW_ENROLLMENT_COLUMNS) and their subsidy lines. The one-live-enrollment index
    refuses a person enrolled meanwhile with IntegrityError, as a flush would."""
    await bulk.insert_rows(session, Enrollment, NEW_ENROLLMENT_COLUMNS, enrollments)
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


# One person's enrollment through the API (service.enroll_one) ------------------------------------------


class Facts(NamedTuple):
    """What deciding one person's enrollment for a year needs, read with one statement: the registry's own
    exclusions of the document, the person if registered, the subsidy categories they hold and their live
    enrollment for the year."""

    exclusions: list[str]
    person_id: str | None
    name: str | None
    source: PersonSource | None
    phone: str | None
    held: list[str]
    live_id: str | None
    live_status: EnrollmentStatus | None
    live_payable_until: date | None
    category_epoch: int | None  # the person's, as the categories were read (people.models.Person)


# Each column that gathers codes (exclusion kinds, category codes: identifiers) separates them by commas.
_FACTS = """
SELECT
    (SELECT {gather}(x.kind, ',') FROM exclusions x
     WHERE x.document_number = :number AND x.document_type = :document_type AND x.coverage_year = :year
       AND x.removed_at IS NULL),
    p.id, p.name, p.source, p.phone,
    (SELECT {gather}(s.category_code, ',') FROM subsidy_assignments s
     WHERE s.person_id = p.id AND s.coverage_year = :year AND s.removed_at IS NULL),
    e.id, e.status, e.payable_until, p.category_epoch
FROM (SELECT 1 AS one) AS one
LEFT JOIN people p ON p.document_number = :number AND p.document_type = :document_type
LEFT JOIN enrollments e ON e.person_id = p.id AND e.coverage_year = :year AND e.status NOT IN ({ended})
"""
_ENDED = ", ".join(f"'{status.value}'" for status in ENDED)
_FACTS_PG = DriverStatement(text(_FACTS.format(gather="string_agg", ended=_ENDED)))
_FACTS_SQLITE = text(_FACTS.format(gather="group_concat", ended=_ENDED)).columns(
    column("exclusions", String),
    column("person_id", String),
    column("name", String),
    column("source", String),
    column("phone", String),
    column("held", String),
    column("live_id", String),
    column("live_status", String),
    column("live_payable_until", Date),
    column("category_epoch", Integer),
)


async def facts(session: AsyncSession, document_type: DocumentType, number: str, coverage_year: int) -> Facts:
    """Facts for a document and year, in one round trip."""
    chosen = {"document_type": document_type.value, "number": number, "year": coverage_year}
    if session.get_bind().dialect.name == "postgresql":
        row = tuple(await _FACTS_PG.fetchrow(session, chosen))
    else:
        row = tuple((await session.execute(_FACTS_SQLITE, chosen)).one())
    exclusions, person_id, name, source, phone, held, live_id, status, payable_until, epoch = row
    return Facts(
        exclusions.split(",") if exclusions else [],
        person_id,
        name,
        PersonSource(source) if source else None,
        phone,
        held.split(",") if held else [],
        live_id,
        EnrollmentStatus(status) if status else None,
        payable_until,
        epoch,
    )


class NewEnrollment(NamedTuple):
    """The rows of one enrollment, written together: the person (if registered now), the enrollment, its
    subsidy lines, its EnrollmentCreated event and the request's audit rows."""

    person: dict[str, Any] | None
    enrollment: dict[str, Any]
    lines: list[dict[str, Any]]
    event: dict[str, Any]
    audit: list[dict[str, Any]]
    category_epoch: int | None  # of a person on record, as their categories were read with the facts


async def write_new(session: AsyncSession, new: NewEnrollment) -> bool:
    """Write an enrollment decided on `facts`; False (and nothing written) when the person it registers was
    registered meanwhile by a concurrent transaction (the unique index made this one wait for it), or when
    the categories of the person on record were taken since the facts were read (their epoch moved: a
    category may have been assigned, and the enrollment must be priced again under the lock). A person
    enrolled meanwhile fails with IntegrityError (the one-live-enrollment index), as a flush would."""
    if session.get_bind().dialect.name == "postgresql":
        written = await _write_in_one_statement(session, new)
    else:
        written = await _write_statement_by_statement(session, new)
    if written:
        wake_relay(session)
    return written


# PostgreSQL: one round trip. Each row after the person's is inserted only if the one before it was (a
# person registered concurrently leaves everything unwritten); the foreign keys are checked at the end of the
# statement, when the person's row exists.
_ENROLLMENT_TYPES = (
    ("id", "varchar"),
    ("person_id", "varchar"),
    ("household_id", "varchar"),
    ("policy_id", "varchar"),
    ("region_code", "varchar"),
    ("township", "varchar"),
    ("payer_organisation", "varchar"),
    ("university", "varchar"),
    ("coverage_year", "integer"),
    ("basis", "varchar"),
    ("status", "varchar"),
    ("charge", "varchar"),
    ("late_case", "varchar"),
    ("window_extension", "varchar"),
    ("payable_until", "date"),
    ("personal_due_fen", "bigint"),
    ("fiscal_subsidy_fen", "bigint"),
    ("total_financing_fen", "bigint"),
    ("price_version", "integer"),
    ("earlier_dues", "json"),
    ("coverage_from", "varchar"),
    ("coverage_start", "date"),
    ("coverage_end", "date"),
    ("created_at", "timestamptz"),
    ("refunded_fen", "bigint"),
    ("updated_at", "timestamptz"),
)
_AUDIT_TYPES = (
    ("at", "timestamptz"),
    ("actor", "varchar"),
    ("role", "varchar"),
    ("action", "varchar"),
    ("method", "varchar"),
    ("route", "varchar"),
    ("person", "varchar"),
    ("record", "varchar"),
)
_PERSON_COLUMNS = [column.key for column in Person.__table__.columns]
# Built from the constants above only: no value is ever spliced into the text.
_WRITE = """
WITH person AS ({person}),
enrollment AS (
    INSERT INTO enrollments ({enrollment_columns}) SELECT {enrollment_values} FROM person RETURNING id
),
lines AS (
    INSERT INTO enrollment_subsidy_lines (enrollment_id, category_code, category_name, funder, amount_fen)
    SELECT enrollment.id, l.code, l.name, l.funder, l.amount
    FROM enrollment, unnest(
        CAST(:line_codes AS varchar[]), CAST(:line_names AS varchar[]),
        CAST(:line_funders AS varchar[]), CAST(:line_amounts AS bigint[])
    ) AS l(code, name, funder, amount)
),
event AS (
    INSERT INTO outbox (event_id, event_type, topic, key, payload, created_at)
    SELECT CAST(:event_id AS varchar), CAST(:event_type AS varchar), CAST(:topic AS varchar), enrollment.id,
        CAST(:payload AS bytea), CAST(:event_created_at AS timestamptz)
    FROM enrollment
),
audit AS (
    INSERT INTO audit_events ({audit_columns}) SELECT a.* FROM enrollment, unnest({audit_arrays}) AS a
)
SELECT count(*) FROM enrollment
"""
_WRITE_PARTS = {
    "enrollment_columns": ", ".join(c for c, _ in _ENROLLMENT_TYPES),
    "enrollment_values": ", ".join(f"CAST(:{c} AS {t})" for c, t in _ENROLLMENT_TYPES),
    "audit_columns": ", ".join(c for c, _ in _AUDIT_TYPES),
    "audit_arrays": ", ".join(f"CAST(:audit_{c} AS {t}[])" for c, t in _AUDIT_TYPES),
}
_REGISTER = """
INSERT INTO people ({columns}) VALUES ({values})
ON CONFLICT (document_number, document_type) DO NOTHING RETURNING id
""".format(columns=", ".join(_PERSON_COLUMNS), values=", ".join(f":p_{c}" for c in _PERSON_COLUMNS))
_WRITE_FOR_NEW_PERSON = DriverStatement(text(_WRITE.format(person=_REGISTER, **_WRITE_PARTS)))
# The person on record, locked, while their category epoch is the one read with the facts. A transaction
# that took their categories meanwhile and has not ended is waited for; PostgreSQL then reads the row again
# and, the epoch having moved, finds none. The lock is held until this statement ends: one that takes the
# categories after it waits, and then sees this enrollment to reprice.
_KNOWN = """
SELECT id FROM people
WHERE id = CAST(:person_id AS varchar)
  AND category_epoch IS NOT DISTINCT FROM CAST(:category_epoch AS integer)
FOR NO KEY UPDATE
"""
_WRITE_FOR_KNOWN_PERSON = DriverStatement(text(_WRITE.format(person=_KNOWN, **_WRITE_PARTS)))


async def _write_in_one_statement(session: AsyncSession, new: NewEnrollment) -> bool:
    values: dict[str, Any] = {
        **{k: _plain(v) for k, v in new.enrollment.items()},
        "earlier_dues": json.dumps(new.enrollment["earlier_dues"]),
        "line_codes": [line["category_code"] for line in new.lines],
        "line_names": [line["category_name"] for line in new.lines],
        "line_funders": [line["funder"] for line in new.lines],
        "line_amounts": [line["amount_fen"] for line in new.lines],
        **{k if k != "created_at" else "event_created_at": v for k, v in new.event.items() if k != "key"},
        **{f"audit_{c}": [row[c] for row in new.audit] for c, _ in _AUDIT_TYPES},
    }
    if new.person is None:
        statement = _WRITE_FOR_KNOWN_PERSON
        values |= {"person_id": new.enrollment["person_id"], "category_epoch": new.category_epoch}
    else:
        statement = _WRITE_FOR_NEW_PERSON
        values |= {f"p_{k}": _plain(v) for k, v in new.person.items()}
    return bool((await statement.fetchrow(session, values))[0])


async def _write_statement_by_statement(session: AsyncSession, new: NewEnrollment) -> bool:
    """SQLite, which has no INSERT in a WITH: the same rows, a statement each (its writers take turns)."""
    if new.person is not None:
        registering = sqlite.insert(Person).on_conflict_do_nothing(
            index_elements=["document_number", "document_type"]
        )
        if (await session.execute(registering.returning(Person.id), new.person)).first() is None:
            return False
    else:
        # Compared under the write lock (a locking read on SQLite): a category assigned by a transaction
        # that held the lock meanwhile has moved the epoch.
        untaken = (
            select(Person.id)
            .where(
                Person.id == new.enrollment["person_id"],
                Person.category_epoch.is_not_distinct_from(new.category_epoch),
            )
            .with_for_update()
        )
        if (await session.execute(untaken)).first() is None:
            return False
    await session.execute(insert(Enrollment), new.enrollment)
    if new.lines:
        lines = [{"enrollment_id": new.enrollment["id"], **line} for line in new.lines]
        await session.execute(insert(EnrollmentSubsidyLine), lines)
    await session.execute(insert(OutboxMessage), new.event)
    await insert_audit(session, new.audit)
    return True


def _plain(value: Any) -> Any:
    """An enum as the string the columns store (the text statement's parameters have no column types)."""
    return value.value if isinstance(value, enum.Enum) else value


async def insert_audit(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Audit rows (shared.audit's) in the caller's transaction."""
    if rows:
        await session.execute(insert(AuditEvent), rows)


# The enrollments the session's current transaction holds locked, by id (`lock_many`, `locked`).
_LOCKED = "registry_enrollments_locked"


def _held(session: AsyncSession) -> dict[str, Enrollment]:
    transaction = session.sync_session.get_transaction()
    held_in: object
    held: dict[str, Enrollment]
    held_in, held = session.info.get(_LOCKED, (None, {}))
    if held_in is not transaction:  # locks end with their transaction
        held = {}
        session.info[_LOCKED] = (transaction, held)
    return held


async def lock_many(session: AsyncSession, enrollment_ids: Sequence[str]) -> None:
    """Lock these enrollments in id order (a batch of events about them, before it applies any); `locked`
    then finds them without another read."""
    held = _held(session)
    held |= await _lock(session, [i for i in enrollment_ids if i not in held])


async def locked(session: AsyncSession, enrollment_ids: Sequence[str]) -> dict[str, Enrollment]:
    """These enrollments (those that exist), by id, locked for this transaction: those `lock_many` locked
    already as it read them, the others locked now in id order, with one statement. Their person and subsidy
    lines are not loaded."""
    held = _held(session)
    held |= await _lock(session, [i for i in enrollment_ids if i not in held])
    return {i: held[i] for i in enrollment_ids if i in held}


_LOCK = (
    select(Enrollment)
    .where(Enrollment.id.in_(bindparam("ids", expanding=True)))
    .order_by(Enrollment.id)
    .options(lazyload(Enrollment.person), lazyload(Enrollment.subsidy_lines))
    .with_for_update(of=Enrollment)
)


async def _lock(session: AsyncSession, enrollment_ids: Sequence[str]) -> dict[str, Enrollment]:
    if not enrollment_ids:
        return {}
    found = await session.scalars(_LOCK, {"ids": sorted(set(enrollment_ids))})
    return {e.id: e for e in found.all()}
