import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload
from sqlalchemy.orm.util import identity_key

from collection.billing.models import Bill, BillStatus, BillSubsidyLine, LookupFailure
from collection.database import attached, flush_held, held_rows, one_statement, table, took
from collection.ledger.models import LedgerEntry, LedgerTransaction, TransactionKind
from collection.payments.models import Payment, PaymentItem
from shared import bulk
from shared.clock import utc_now
from shared.db import DriverStatement

# Bills whose contributions are still due to the fund (open) or were paid and kept (paid).
STANDING = (BillStatus.OPEN, BillStatus.PAID)


async def get(session: AsyncSession, bill_id: str) -> Bill | None:
    return await session.get(Bill, bill_id)


async def get_by_enrollment(
    session: AsyncSession, enrollment_id: str, *, for_update: bool = False
) -> Bill | None:
    query = select(Bill).where(Bill.enrollment_id == enrollment_id)
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def billed(session: AsyncSession, enrollment_ids: Sequence[str]) -> dict[str, bool]:
    """Which of these enrollments have a bill (those that have none are absent)."""
    query = select(Bill.enrollment_id).where(Bill.enrollment_id.in_(sorted(set(enrollment_ids)))).distinct()
    return dict.fromkeys(await session.scalars(query), True)


# Bills as requests show them: without their subsidy lines, which no answer of these carries (a read of them
# would fail loudly rather than find none).
_WITHOUT_LINES = raiseload(Bill.subsidy_lines)


async def list_bills(session: AsyncSession, enrollment_ids: list[str], limit: int) -> list[Bill]:
    if enrollment_ids and one_statement(session):
        # A front-end's wait for its enrollment's bill (read before and after the wait): plain rows.
        rows = await held_rows(session, _OF_ENROLLMENTS, {"ids": enrollment_ids, "limit": limit})
        return list(_bills(session, rows).values())
    query = select(Bill).order_by(Bill.created_at, Bill.id).limit(limit).options(_WITHOUT_LINES)
    if enrollment_ids:
        query = query.where(Bill.enrollment_id.in_(enrollment_ids))
    return list((await session.scalars(query)).all())


async def for_person(session: AsyncSession, id_number: str, limit: int) -> list[Bill]:
    query = (
        select(Bill)
        .where(Bill.id_number == id_number)
        .order_by(Bill.created_at, Bill.id)
        .limit(limit)
        .options(_WITHOUT_LINES)
    )
    return list((await session.scalars(query)).all())


async def failed_lookups_since(session: AsyncSession, subject: str, since: datetime) -> int:
    query = select(func.count()).where(LookupFailure.subject == subject, LookupFailure.at >= since)
    return int(await session.scalar(query) or 0)


def add_failed_lookup(session: AsyncSession, subject: str, at: datetime) -> None:
    session.add(LookupFailure(subject=subject, at=at))


async def open_for_organisation(
    session: AsyncSession,
    organisation: str,
    region_code: str,
    coverage_year: int,
    *,
    for_update: bool = False,
) -> list[Bill]:
    query = (
        select(Bill)
        .where(
            Bill.payer_organisation == organisation,
            Bill.region_code == region_code,
            Bill.coverage_year == coverage_year,
            Bill.status == BillStatus.OPEN,
        )
        .order_by(Bill.id)
    )
    if for_update:
        query = query.with_for_update()
    return list((await session.scalars(query)).all())


async def get_for_update(session: AsyncSession, bill_id: str) -> Bill | None:
    query = select(Bill).where(Bill.id == bill_id).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def get_many_for_update(session: AsyncSession, bill_ids: list[str]) -> dict[str, Bill]:
    """The bills, locked for settling. Locked in id order, so two family payments sharing a bill cannot
    deadlock each other. Settling reads no subsidy lines, so they are not loaded (a read of them would fail
    loudly rather than find none)."""
    if one_statement(session):
        return _bills(session, await held_rows(session, _MANY_FOR_UPDATE, {"ids": bill_ids}))
    query = (
        select(Bill)
        .where(Bill.id.in_(bill_ids))
        .order_by(Bill.id)
        .options(raiseload(Bill.subsidy_lines))
        .with_for_update()
    )
    return {b.id: b for b in (await session.scalars(query)).all()}


def add(session: AsyncSession, bill: Bill) -> None:
    session.add(bill)


async def settle_if_open(session: AsyncSession, bill: Bill, paid_at: datetime) -> bool:
    """Mark an open bill paid; False if another payment settled it first (the WHERE decides, not a read).
    The bill takes what was written from the statement's RETURNING, without reading the row back."""
    written = (
        await session.execute(
            update(Bill)
            .where(Bill.id == bill.id, Bill.status == BillStatus.OPEN)
            .values(status=BillStatus.PAID, paid_at=paid_at)
            .returning(Bill.status, Bill.paid_at, Bill.updated_at)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if written is None:
        return False
    took(bill, **written._mapping)
    return True


async def open_due_total(session: AsyncSession) -> int:
    total = await session.scalar(select(func.sum(Bill.amount_due_fen)).where(Bill.status == BillStatus.OPEN))
    return int(total or 0)


async def subsidy_totals(session: AsyncSession) -> dict[str, int]:
    """What each funder owes on bills that stand (open or paid)."""
    query = (
        select(BillSubsidyLine.funder, func.sum(BillSubsidyLine.amount_fen))
        .join(Bill, Bill.id == BillSubsidyLine.bill_id)
        .where(Bill.status.in_(STANDING))
        .group_by(BillSubsidyLine.funder)
    )
    return {funder: int(total) for funder, total in (await session.execute(query)).all()}


async def get_many(session: AsyncSession, bill_ids: list[str]) -> dict[str, Bill]:
    if one_statement(session):
        return _bills(session, await held_rows(session, _MANY, {"ids": bill_ids}))
    query = select(Bill).where(Bill.id.in_(bill_ids)).options(_WITHOUT_LINES)
    return {b.id: b for b in (await session.scalars(query)).all()}


# The bills of the resident's flow (its wait for the bill, its order, the notification), read as plain rows
# on PostgreSQL (`held_rows`): the ORM's loading of them cost more than the statements. Their subsidy lines
# are not read (`attached`).
_MANY_FROM = """
SELECT id, enrollment_id, document_type, id_number, payer_name, payer_organisation, region_code,
    coverage_year, amount_due_fen, price_version, payable_until, coverage_start, coverage_end, status,
    created_at, paid_at, refundable_reasons, refunded_fen, updated_at
FROM bills
"""
_MANY = DriverStatement(text(_MANY_FROM + "WHERE id = ANY(CAST(:ids AS varchar[]))"))
_MANY_FOR_UPDATE = DriverStatement(
    text(_MANY_FROM + "WHERE id = ANY(CAST(:ids AS varchar[])) ORDER BY id FOR UPDATE")
)
_OF_ENROLLMENTS = DriverStatement(
    text(
        _MANY_FROM + "WHERE enrollment_id = ANY(CAST(:ids AS varchar[])) "
        "ORDER BY created_at, id LIMIT CAST(:limit AS integer)"
    )
)


def _bills(session: AsyncSession, rows: list[Any]) -> dict[str, Bill]:
    return {row["id"]: attached(session, Bill, {**row, "status": BillStatus(row["status"])}) for row in rows}


async def id_numbers(session: AsyncSession, bill_ids: list[str]) -> dict[str, str]:
    """Whose each bill is (bill id -> ID number, which never changes): those this session already holds
    without asking the database again."""
    held: dict[str, str] = {}
    for bill_id in bill_ids:
        bill = session.identity_map.get(identity_key(Bill, bill_id))
        # Only as loaded: an instance expired by a rollback would load itself again, which async forbids.
        number = bill.__dict__.get("id_number") if isinstance(bill, Bill) else None
        if number is not None:
            held[bill_id] = number
    missing = [bill_id for bill_id in bill_ids if bill_id not in held]
    if missing:
        query = select(Bill.id, Bill.id_number).where(Bill.id.in_(missing))
        held |= {row.id: row.id_number for row in (await session.execute(query)).all()}
    return held


async def of_region_year(
    session: AsyncSession, region_code: str, coverage_year: int, after: str, limit: int
) -> list[tuple[Bill, PaymentItem | None]]:
    """A region's bills of a coverage year with the payment item that settled each, by enrollment id."""
    query = (
        select(Bill, PaymentItem)
        .outerjoin(PaymentItem, PaymentItem.bill_id == Bill.id)
        .where(
            Bill.region_code == region_code, Bill.coverage_year == coverage_year, Bill.enrollment_id > after
        )
        .order_by(Bill.enrollment_id)
        .limit(limit)
    )
    return [(bill, item) for bill, item in (await session.execute(query)).all()]


async def changed_since(
    session: AsyncSession, after_at: datetime, after_enrollment: str, limit: int
) -> list[tuple[Bill, PaymentItem | None]]:
    """Bills changed at or after `after_at` (past `after_enrollment` at that moment), oldest change first,
    with the payment item that settled each."""
    query = (
        select(Bill, PaymentItem)
        .outerjoin(PaymentItem, PaymentItem.bill_id == Bill.id)
        .where(tuple_(Bill.updated_at, Bill.enrollment_id) > tuple_(after_at, after_enrollment))
        .order_by(Bill.updated_at, Bill.enrollment_id)
        .limit(limit)
    )
    return [(bill, item) for bill, item in (await session.execute(query)).all()]


async def of_enrollments(
    session: AsyncSession, enrollment_ids: list[str]
) -> list[tuple[Bill, PaymentItem | None]]:
    query = (
        select(Bill, PaymentItem)
        .outerjoin(PaymentItem, PaymentItem.bill_id == Bill.id)
        .where(Bill.enrollment_id.in_(sorted(set(enrollment_ids))))
        .order_by(Bill.enrollment_id)
    )
    return [(bill, item) for bill, item in (await session.execute(query)).all()]


# Bills at once in one statement of the bulk functions: SQLite binds at most 32,766 values in a statement.
_MANY_AT_ONCE = 10_000


async def lock_many(session: AsyncSession, bill_ids: Sequence[str]) -> dict[str, Bill]:
    """Many bills locked for settling at once (a reconciliation chunk's), in id order as
    `get_many_for_update` locks them; their subsidy lines are not loaded."""
    found: dict[str, Bill] = {}
    unique = sorted(set(bill_ids))
    for start in range(0, len(unique), _MANY_AT_ONCE):
        query = (
            select(Bill)
            .where(bulk.among(session, Bill.id, unique[start : start + _MANY_AT_ONCE]))
            .order_by(Bill.id)
            .options(raiseload(Bill.subsidy_lines))
            .with_for_update()
        )
        found.update((b.id, b) for b in (await session.scalars(query)).all())
    return found


async def settle_many_by_items(session: AsyncSession, bill_ids: Sequence[str]) -> int:
    """Mark open bills paid at the time of the payment whose item settles each (written just before);
    returns how many were. Only open bills change (the WHERE decides, not a read)."""
    paid_at = (
        select(Payment.paid_at)
        .join(PaymentItem, PaymentItem.payment_id == Payment.id)
        .where(PaymentItem.bill_id == Bill.id)
        .scalar_subquery()
    )
    settled = 0
    for start in range(0, len(bill_ids), _MANY_AT_ONCE):
        some = bill_ids[start : start + _MANY_AT_ONCE]
        query = (
            update(Bill)
            .where(bulk.among(session, Bill.id, some), Bill.status == BillStatus.OPEN)
            .values(status=BillStatus.PAID, paid_at=paid_at)
            .returning(Bill.id)
            .execution_options(synchronize_session=False)
        )
        settled += len((await session.scalars(query)).all())
    return settled


async def lock_of_enrollments(session: AsyncSession, enrollment_ids: Sequence[str]) -> None:
    """Lock these enrollments' bills in id order, the order payments lock theirs in."""
    query = (
        select(Bill.id)
        .where(Bill.enrollment_id.in_(sorted(set(enrollment_ids))))
        .order_by(Bill.id)
        .with_for_update()
    )
    await session.execute(query)


# A consumer's run of new bills on PostgreSQL, in one statement: the bills (an enrollment billed already, or
# twice in the run, is skipped by its unique index), the subsidy lines and ledger transactions of those
# written, and their entries. Foreign keys are checked at the statement's end. Arrays keep one statement,
# prepared once, for any number of bills.
_ISSUE_MANY = DriverStatement(
    text(
        """
WITH issued AS (
    INSERT INTO bills (id, enrollment_id, document_type, id_number, payer_name, payer_organisation,
        refundable_reasons, region_code, coverage_year, amount_due_fen, price_version, payable_until,
        coverage_start, coverage_end, status, created_at, refunded_fen, updated_at)
    SELECT b.id, b.enrollment_id, b.document_type, b.id_number, b.payer_name, b.payer_organisation,
        CAST(b.refundable_reasons AS json), b.region_code, b.coverage_year, b.amount_due_fen, b.price_version,
        b.payable_until, b.coverage_start, b.coverage_end, CAST(:status AS varchar), b.created_at, 0,
        CAST(:now AS timestamptz)
    FROM unnest(
        CAST(:ids AS varchar[]), CAST(:enrollment_ids AS varchar[]), CAST(:document_types AS varchar[]),
        CAST(:id_numbers AS varchar[]), CAST(:payer_names AS varchar[]),
        CAST(:payer_organisations AS varchar[]), CAST(:refundable_reasons AS text[]),
        CAST(:region_codes AS varchar[]), CAST(:coverage_years AS integer[]), CAST(:amounts_due AS bigint[]),
        CAST(:price_versions AS integer[]), CAST(:payable_until AS date[]), CAST(:coverage_starts AS date[]),
        CAST(:coverage_ends AS date[]), CAST(:created_at AS timestamptz[])
    ) WITH ORDINALITY AS b(id, enrollment_id, document_type, id_number, payer_name, payer_organisation,
        refundable_reasons, region_code, coverage_year, amount_due_fen, price_version, payable_until,
        coverage_start, coverage_end, created_at, n)
    ORDER BY b.n
    ON CONFLICT (enrollment_id) DO NOTHING
    RETURNING id, enrollment_id
), lines AS (
    INSERT INTO bill_subsidy_lines (bill_id, category, funder, amount_fen)
    SELECT l.bill_id, l.category, l.funder, l.amount_fen
    FROM unnest(
        CAST(:line_bills AS varchar[]), CAST(:line_categories AS varchar[]), CAST(:line_funders AS varchar[]),
        CAST(:line_fen AS bigint[])
    ) WITH ORDINALITY AS l(bill_id, category, funder, amount_fen, n)
    JOIN issued ON issued.id = l.bill_id
    ORDER BY l.n
), booked AS (
    INSERT INTO ledger_transactions (id, kind, reference, occurred_at)
    SELECT t.id, CAST(:kind AS varchar), t.bill_id, t.occurred_at
    FROM unnest(
        CAST(:transaction_ids AS varchar[]), CAST(:ids AS varchar[]), CAST(:created_at AS timestamptz[])
    ) WITH ORDINALITY AS t(id, bill_id, occurred_at, n)
    JOIN issued ON issued.id = t.bill_id
    ORDER BY t.n
    RETURNING id
), entries AS (
    INSERT INTO ledger_entries (transaction_id, account, amount_fen)
    SELECT e.transaction_id, e.account, e.amount_fen
    FROM unnest(
        CAST(:entry_transactions AS varchar[]), CAST(:accounts AS varchar[]), CAST(:entry_fen AS bigint[])
    ) WITH ORDINALITY AS e(transaction_id, account, amount_fen, n)
    JOIN booked ON booked.id = e.transaction_id
    ORDER BY e.n
)
SELECT enrollment_id FROM issued
"""
    )
)


async def issue_many(
    session: AsyncSession,
    bills: Sequence[tuple[Any, ...]],
    lines: Sequence[tuple[Any, ...]],
    entries: Sequence[tuple[Any, ...]],
) -> list[str]:
    """Write new bills at once (`_ISSUE_MANY`); returns the enrollments billed, those billed already left
    out. `bills`: (id, enrollment id, document type, ID number, payer's name, payer organisation,
    refundable reasons as JSON, region code, coverage year, amount due, price version, payable until,
    coverage start, coverage end, created at, ledger transaction id), each open; `lines`: (bill id, category,
    funder, fen); `entries`: (ledger transaction id, account, fen) of each bill's issue."""
    if not one_statement(session):
        return await _issue_many_in_steps(session, bills, lines, entries)
    values = {
        **_columns(_BILL_ARRAYS, bills),
        **_columns(("line_bills", "line_categories", "line_funders", "line_fen"), lines),
        **_columns(("entry_transactions", "accounts", "entry_fen"), entries),
        "status": BillStatus.OPEN.value,
        "kind": TransactionKind.BILL_ISSUED.value,
        "now": utc_now(),
    }
    return [row["enrollment_id"] for row in await held_rows(session, _ISSUE_MANY, values)]


# The arrays of `_ISSUE_MANY`'s bills, in the order of `issue_many`'s tuples.
_BILL_ARRAYS = (
    "ids",
    "enrollment_ids",
    "document_types",
    "id_numbers",
    "payer_names",
    "payer_organisations",
    "refundable_reasons",
    "region_codes",
    "coverage_years",
    "amounts_due",
    "price_versions",
    "payable_until",
    "coverage_starts",
    "coverage_ends",
    "created_at",
    "transaction_ids",
)


def _columns(names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """Rows as one array per column, named."""
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


async def _issue_many_in_steps(
    session: AsyncSession,
    bills: Sequence[tuple[Any, ...]],
    lines: Sequence[tuple[Any, ...]],
    entries: Sequence[tuple[Any, ...]],
) -> list[str]:
    """`_ISSUE_MANY`'s rows on SQLite (no data-modifying WITH, no arrays): a statement per table, the rows
    of a table in one, as plain rows rather than through the unit of work; the bills of enrollments billed
    already are skipped by the same unique index."""
    await flush_held(session)
    bills_table = table(Bill)
    now, status = utc_now(), BillStatus.OPEN
    rows = [
        {
            **dict(zip(_BILL_COLUMNS, bill[:-1], strict=True)),
            "status": status,
            "refunded_fen": 0,
            "updated_at": now,
        }
        for bill in bills
    ]
    for row in rows:
        row["refundable_reasons"] = json.loads(row["refundable_reasons"])  # the column writes its own JSON
    written = sqlite_insert(bills_table).on_conflict_do_nothing(index_elements=[bills_table.c.enrollment_id])
    returned = await session.execute(written.returning(bills_table.c.id, bills_table.c.enrollment_id), rows)
    issued: dict[str, str] = dict(returned.all())
    if not issued:
        return []
    booked = {bill[-1]: bill for bill in bills if bill[0] in issued}
    await bulk.insert_rows(
        session, BillSubsidyLine, _LINE_COLUMNS, [line for line in lines if line[0] in issued]
    )
    await bulk.insert_rows(
        session,
        LedgerTransaction,
        ("id", "kind", "reference", "occurred_at"),
        [(t, TransactionKind.BILL_ISSUED, bill[0], bill[_CREATED_AT]) for t, bill in booked.items()],
    )
    await bulk.insert_rows(session, LedgerEntry, _ENTRY_COLUMNS, [e for e in entries if e[0] in booked])
    return [bill[1] for bill in bills if bill[0] in issued]


# `issue_many`'s columns of a bill, in the order of its tuples (the ledger transaction's id last, apart).
_BILL_COLUMNS = (
    "id",
    "enrollment_id",
    "document_type",
    "id_number",
    "payer_name",
    "payer_organisation",
    "refundable_reasons",
    "region_code",
    "coverage_year",
    "amount_due_fen",
    "price_version",
    "payable_until",
    "coverage_start",
    "coverage_end",
    "created_at",
)
_CREATED_AT = _BILL_COLUMNS.index("created_at")
_LINE_COLUMNS = ("bill_id", "category", "funder", "amount_fen")
_ENTRY_COLUMNS = ("transaction_id", "account", "amount_fen")
