from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Date,
    String,
    Table,
    Update,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from collection.ledger.accounts import Channel
from collection.payments.models import Payment, PaymentItem
from collection.reconciliation.judging import Recorded
from collection.reconciliation.models import (
    CLOSED,
    LineSource,
    LineState,
    LineTransition,
    ReconciliationLine,
    ReconciliationRun,
)
from shared import bulk, db
from shared.db import UTCDateTime

# Lines judged and written at a time: big enough that each round trip carries thousands of rows, small enough
# that a file of any size runs in flat memory.
CHUNK = 2000
# The table a run grows and looks up again as it goes (the others it reads grow by a row per line at most).
_LOADED_TABLES = "reconciliation_lines"
# A chunk's lines may name up to 30 bills each; SQLite binds at most 32,766 values in one statement.
_BILLS_AT_ONCE = 10_000


@dataclass(frozen=True, slots=True)
class Stored:
    """A file line as stored, to judge again."""

    id: int
    reference: str
    run_id: str
    line_no: int | None
    file_amount_fen: int
    file_paid_on: date
    file_paid_at: datetime | None
    bill_ids: list[str]
    state: LineState
    reason: str


async def run_by_fingerprint(session: AsyncSession, fingerprint: str) -> ReconciliationRun | None:
    query = select(ReconciliationRun).where(ReconciliationRun.fingerprint == fingerprint)
    return (await session.scalars(query)).one_or_none()


async def runs(session: AsyncSession, channel: Channel, day: date) -> list[ReconciliationRun]:
    query = (
        select(ReconciliationRun)
        .where(ReconciliationRun.channel == channel, ReconciliationRun.business_day == day)
        .order_by(ReconciliationRun.started_at, ReconciliationRun.id)
    )
    return list((await session.scalars(query)).all())


# _LOCKED: a run reads the day's stored lines it will judge again under their row locks, in id order (a line
# before its payment, as an officer's resolution takes them): a resolution committed while the run judges
# them would otherwise be written over by the run's verdict. It waits for the run, then sees the verdict.


async def open_file_lines(
    session: AsyncSession, channel: Channel, day: date
) -> dict[str, tuple[int, LineState]]:
    """reference -> (line id, state) of a day's file lines still open, locked (`_LOCKED`)."""
    line = ReconciliationLine
    query = (
        select(line.reference, line.id, line.state)
        .where(
            line.channel == channel,
            line.business_day == day,
            line.source == LineSource.FILE,
            line.state.not_in(list(CLOSED)),
        )
        .order_by(line.id)
        .with_for_update()
    )
    return {ref: (line_id, state) for ref, line_id, state in (await session.execute(query)).all()}


async def stored_lines(session: AsyncSession, ids: Sequence[int]) -> list[Stored]:
    """File lines as their latest file gave them, to judge again; locked (`_LOCKED`)."""
    line = ReconciliationLine
    query = (
        select(
            line.id,
            line.reference,
            line.run_id,
            line.line_no,
            line.file_amount_fen,
            line.file_paid_on,
            line.file_paid_at,
            line.bill_ids,
            line.state,
            line.reason,
        )
        .where(bulk.among(session, line.id, ids))
        .order_by(line.id)
        .with_for_update()
    )
    return [Stored(**row._asdict()) for row in (await session.execute(query)).all()]


async def file_line_states(
    session: AsyncSession, channel: Channel, day: date, references: Sequence[str]
) -> dict[str, tuple[int, LineState, str]]:
    """reference -> (line id, state, reason) of the day's file lines with these references, locked
    (`_LOCKED`)."""
    line = ReconciliationLine
    query = (
        select(line.reference, line.id, line.state, line.reason)
        .where(
            line.channel == channel,
            line.business_day == day,
            line.source == LineSource.FILE,
            bulk.among(session, line.reference, references),
        )
        .order_by(line.id)
        .with_for_update()
    )
    rows = (await session.execute(query)).all()
    return {ref: (line_id, state, reason) for ref, line_id, state, reason in rows}


def _recorded(rows: Sequence[Any]) -> list[Recorded]:
    """Payments from rows of (payment columns…, bill id), in payment and item order."""
    found: list[Recorded] = []
    bills: list[str] = []
    for i, (payment_id, amount_fen, paid_at, settled_at, reference, bill_id) in enumerate(rows):
        if bill_id is not None:
            bills.append(bill_id)
        if i + 1 == len(rows) or rows[i + 1][0] != payment_id:
            settled = settled_at is not None
            found.append(Recorded(payment_id, amount_fen, paid_at, settled, reference, tuple(bills)))
            bills = []
    return found


_PAYMENTS_WITH_BILLS = (
    select(
        Payment.id,
        Payment.amount_fen,
        Payment.paid_at,
        Payment.settled_at,
        Payment.channel_reference,
        PaymentItem.bill_id,
    )
    .outerjoin(PaymentItem, PaymentItem.payment_id == Payment.id)
    .order_by(Payment.id, PaymentItem.position)
)


async def payments_by_reference(
    session: AsyncSession, channel: Channel, references: Sequence[str]
) -> dict[str, Recorded]:
    query = _PAYMENTS_WITH_BILLS.where(
        Payment.channel == channel, bulk.among(session, Payment.channel_reference, references)
    )
    found = _recorded((await session.execute(query)).all())
    return {p.channel_reference: p for p in found if p.channel_reference is not None}


async def payments_by_bill(
    session: AsyncSession, channel: Channel, bill_ids: Sequence[str]
) -> dict[str, list[Recorded]]:
    """The payments on a channel that settled each of these bills, each with all its bills."""
    found: dict[str, list[Recorded]] = {}
    unique = sorted(set(bill_ids))
    for start in range(0, len(unique), _BILLS_AT_ONCE):
        wanted = unique[start : start + _BILLS_AT_ONCE]
        paying = select(PaymentItem.payment_id).where(bulk.among(session, PaymentItem.bill_id, wanted))
        query = _PAYMENTS_WITH_BILLS.where(Payment.channel == channel, Payment.id.in_(paying))
        for payment in _recorded((await session.execute(query)).all()):
            for bill_id in set(payment.bill_ids).intersection(wanted):
                found.setdefault(bill_id, []).append(payment)
    return found


async def unreported_payments(
    session: AsyncSession, channel: Channel, day: date, bounds: tuple[datetime, datetime], after: str
) -> list[Recorded]:
    """A page of a channel's payments within `bounds` [start, end) whose money no reconciliation has
    confirmed yet and that no line of the day lists: no file line, nor a report of it missing already."""
    line = ReconciliationLine
    listed = (
        select(line.id)
        .where(
            line.channel == channel,
            line.business_day == day,
            or_(
                and_(line.source == LineSource.FILE, line.payment_id == Payment.id),
                and_(line.source == LineSource.RECORDS, line.reference == Payment.id),
            ),
        )
        .exists()
    )
    page = (
        select(Payment.id)
        .where(
            Payment.channel == channel,
            Payment.paid_at >= bounds[0],
            Payment.paid_at < bounds[1],
            Payment.settled_at.is_(None),
            Payment.id > after,
            ~listed,
        )
        .order_by(Payment.id)
        .limit(CHUNK)
    )
    ids = list((await session.scalars(page)).all())
    if not ids:
        return []
    query = _PAYMENTS_WITH_BILLS.where(bulk.among(session, Payment.id, ids))
    return _recorded((await session.execute(query)).all())


async def missing_listed_by_file(
    session: AsyncSession, channel: Channel, day: date
) -> list[tuple[int, LineState]]:
    """The day's payments reported missing from its file that a file line of the day now lists."""
    line, listing = ReconciliationLine, aliased(ReconciliationLine)
    in_file = (
        select(listing.id)
        .where(
            listing.channel == channel,
            listing.business_day == day,
            listing.source == LineSource.FILE,
            listing.payment_id == line.reference,
        )
        .exists()
    )
    query = select(line.id, line.state).where(
        line.channel == channel,
        line.business_day == day,
        line.source == LineSource.RECORDS,
        line.state == LineState.MISSING_FROM_FILE,
        in_file,
    )
    return [(i, s) for i, s in (await session.execute(query)).all()]


async def missing_now_settled(session: AsyncSession, channel: Channel) -> list[tuple[int, LineState]]:
    """Payments reported missing from their day's file that another file has since settled."""
    line = ReconciliationLine
    query = (
        select(line.id, line.state)
        .join(Payment, Payment.id == line.payment_id)
        .where(
            line.channel == channel,
            line.state == LineState.MISSING_FROM_FILE,
            Payment.settled_at.is_not(None),
        )
    )
    return [(i, s) for i, s in (await session.execute(query)).all()]


# New lines: rows in the order of these columns (shared.bulk).
LINE_COLUMNS = (
    "channel",
    "business_day",
    "source",
    "reference",
    "run_id",
    "line_no",
    "file_amount_fen",
    "file_paid_on",
    "file_paid_at",
    "bill_ids",
    "payment_id",
    "recorded_amount_fen",
    "recorded_on",
    "state",
    "reason",
    "updated_at",
)
TRANSITION_COLUMNS = ("line_id", "run_id", "from_state", "to_state", "reason", "actor", "at")


async def insert_lines(
    session: AsyncSession, channel: Channel, day: date, source: LineSource, rows: Sequence[tuple[Any, ...]]
) -> dict[str, int]:
    """New lines (LINE_COLUMNS), all of one channel, day and source; returns reference -> their ids."""
    if not rows:
        return {}
    await bulk.insert_rows(session, ReconciliationLine, LINE_COLUMNS, rows)
    line = ReconciliationLine
    query = select(line.reference, line.id).where(
        line.channel == channel,
        line.business_day == day,
        line.source == source,
        bulk.among(session, line.reference, [row[3] for row in rows]),
    )
    return {reference: line_id for reference, line_id in (await session.execute(query)).all()}


def _refreshed_file_line() -> Update:
    """A file line judged again with its (latest) file's data. The payment it was compared with stays unless
    the judgement names one; a line judged the same as before keeps its time (None for `b_updated_at`)."""
    table = cast(Table, ReconciliationLine.__table__)
    c = table.c
    return (
        update(table)
        .where(c.id == bindparam("b_id"))
        .values(
            run_id=bindparam("b_run_id"),
            line_no=bindparam("b_line_no"),
            file_amount_fen=bindparam("b_file_amount_fen"),
            file_paid_on=bindparam("b_file_paid_on"),
            file_paid_at=bindparam("b_file_paid_at"),
            bill_ids=bindparam("b_bill_ids"),
            payment_id=func.coalesce(bindparam("b_payment_id", type_=String()), c.payment_id),
            recorded_amount_fen=func.coalesce(
                bindparam("b_recorded_amount_fen", type_=BigInteger()), c.recorded_amount_fen
            ),
            recorded_on=func.coalesce(bindparam("b_recorded_on", type_=Date()), c.recorded_on),
            state=bindparam("b_state"),
            reason=bindparam("b_reason"),
            updated_at=func.coalesce(bindparam("b_updated_at", type_=UTCDateTime()), c.updated_at),
        )
    )


async def update_file_lines(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """File lines judged again: dicts of `b_` + column name, and `b_id` (`_refreshed_file_line`)."""
    if rows:
        await session.execute(_refreshed_file_line(), rows)


async def move_lines(
    session: AsyncSession, ids: Sequence[int], state: LineState, reason: str, at: datetime
) -> None:
    if ids:
        line = ReconciliationLine
        await session.execute(
            update(line)
            .where(bulk.among(session, line.id, ids))
            .values(state=state, reason=reason, updated_at=at)
            .execution_options(synchronize_session=False)
        )


async def insert_transitions(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    await bulk.insert_rows(session, LineTransition, TRANSITION_COLUMNS, rows)


async def get_line(
    session: AsyncSession, line_id: int, *, for_update: bool = False
) -> ReconciliationLine | None:
    query = select(ReconciliationLine).where(ReconciliationLine.id == line_id)
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def history(session: AsyncSession, line_id: int) -> list[LineTransition]:
    query = select(LineTransition).where(LineTransition.line_id == line_id).order_by(LineTransition.id)
    return list((await session.scalars(query)).all())


async def state_totals(
    session: AsyncSession, *, channel: Channel | None, day_from: date | None, day_to: date | None
) -> list[tuple[Channel, date, LineState, int, int, int]]:
    """(channel, day, state, lines, file amount, recorded amount) per channel, day and state."""
    query = select(
        ReconciliationLine.channel,
        ReconciliationLine.business_day,
        ReconciliationLine.state,
        func.count(),
        func.coalesce(func.sum(ReconciliationLine.file_amount_fen), 0),
        func.coalesce(func.sum(ReconciliationLine.recorded_amount_fen), 0),
    ).group_by(ReconciliationLine.channel, ReconciliationLine.business_day, ReconciliationLine.state)
    if channel is not None:
        query = query.where(ReconciliationLine.channel == channel)
    if day_from is not None:
        query = query.where(ReconciliationLine.business_day >= day_from)
    if day_to is not None:
        query = query.where(ReconciliationLine.business_day <= day_to)
    query = query.order_by(ReconciliationLine.business_day, ReconciliationLine.channel)
    return [
        (c, d, s, int(n or 0), int(f or 0), int(r or 0))
        for c, d, s, n, f, r in (await session.execute(query)).all()
    ]


async def page(
    session: AsyncSession,
    channel: Channel,
    day: date,
    *,
    states: Iterable[LineState] | None,
    after: int,
    limit: int,
) -> list[ReconciliationLine]:
    query = select(ReconciliationLine).where(
        ReconciliationLine.channel == channel,
        ReconciliationLine.business_day == day,
        ReconciliationLine.id > after,
    )
    if states:
        query = query.where(ReconciliationLine.state.in_(list(states)))
    return list((await session.scalars(query.order_by(ReconciliationLine.id).limit(limit))).all())


async def stream(session: AsyncSession, channel: Channel, day: date) -> AsyncIterator[ReconciliationLine]:
    after = 0
    while batch := await page(session, channel, day, states=None, after=after, limit=CHUNK):
        for line in batch:
            yield line
        after = batch[-1].id


async def refresh_statistics(session: AsyncSession) -> None:
    await db.refresh_statistics(session, _LOADED_TABLES)
