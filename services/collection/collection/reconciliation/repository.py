from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.ledger.accounts import Channel
from collection.payments.models import Payment, PaymentItem
from collection.reconciliation.models import (
    CLOSED,
    LineSource,
    LineState,
    LineTransition,
    ReconciliationLine,
    ReconciliationRun,
)
from shared import db

CHUNK = 500
_LOADED_TABLES = (
    "reconciliation_lines, reconciliation_transitions, payments, payment_items, bills, ledger_entries"
)


def add(session: AsyncSession, thing: ReconciliationRun | ReconciliationLine | LineTransition) -> None:
    session.add(thing)


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


async def open_file_lines(session: AsyncSession, channel: Channel, day: date) -> dict[str, int]:
    """reference -> line id of a day's file lines still open."""
    query = select(ReconciliationLine.reference, ReconciliationLine.id).where(
        ReconciliationLine.channel == channel,
        ReconciliationLine.business_day == day,
        ReconciliationLine.source == LineSource.FILE,
        ReconciliationLine.state.not_in(list(CLOSED)),
    )
    return {reference: line_id for reference, line_id in (await session.execute(query)).all()}


async def lines_by_id(session: AsyncSession, ids: list[int]) -> list[ReconciliationLine]:
    query = select(ReconciliationLine).where(ReconciliationLine.id.in_(ids)).order_by(ReconciliationLine.id)
    return list((await session.scalars(query)).all())


async def file_lines(
    session: AsyncSession, channel: Channel, day: date, references: list[str]
) -> dict[str, ReconciliationLine]:
    query = select(ReconciliationLine).where(
        ReconciliationLine.channel == channel,
        ReconciliationLine.business_day == day,
        ReconciliationLine.source == LineSource.FILE,
        ReconciliationLine.reference.in_(references),
    )
    return {line.reference: line for line in (await session.scalars(query)).all()}


async def payment_ids_in_file(session: AsyncSession, channel: Channel, day: date) -> set[str]:
    query = select(ReconciliationLine.payment_id).where(
        ReconciliationLine.channel == channel,
        ReconciliationLine.business_day == day,
        ReconciliationLine.source == LineSource.FILE,
        ReconciliationLine.payment_id.is_not(None),
    )
    return {payment_id for payment_id in (await session.scalars(query)).all() if payment_id}


async def missing_lines(session: AsyncSession, channel: Channel, day: date) -> dict[str, ReconciliationLine]:
    """payment id -> line of the day's payments reported missing from its file (in whatever state now)."""
    query = select(ReconciliationLine).where(
        ReconciliationLine.channel == channel,
        ReconciliationLine.business_day == day,
        ReconciliationLine.source == LineSource.RECORDS,
    )
    return {line.reference: line for line in (await session.scalars(query)).all()}


async def payments_by_reference(
    session: AsyncSession, channel: Channel, references: list[str]
) -> dict[str, Payment]:
    found: dict[str, Payment] = {}
    for start in range(0, len(references), CHUNK):
        query = select(Payment).where(
            Payment.channel == channel, Payment.channel_reference.in_(references[start : start + CHUNK])
        )
        found.update(
            (p.channel_reference, p) for p in (await session.scalars(query)).all() if p.channel_reference
        )
    return found


async def payments_by_bill(
    session: AsyncSession, channel: Channel, bill_ids: list[str]
) -> dict[str, list[Payment]]:
    """The payments on a channel that settled each of these bills."""
    found: dict[str, list[Payment]] = {}
    for start in range(0, len(bill_ids), CHUNK):
        query = (
            select(PaymentItem.bill_id, Payment)
            .join(Payment, Payment.id == PaymentItem.payment_id)
            .where(Payment.channel == channel, PaymentItem.bill_id.in_(bill_ids[start : start + CHUNK]))
        )
        for bill_id, payment in (await session.execute(query)).all():
            found.setdefault(bill_id, []).append(payment)
    return found


async def unsettled_payments(
    session: AsyncSession, channel: Channel, start: datetime, end: datetime, after: str
) -> list[Payment]:
    """A page of a channel's payments in [start, end) whose money no reconciliation has confirmed yet."""
    query = (
        select(Payment)
        .where(
            Payment.channel == channel,
            Payment.paid_at >= start,
            Payment.paid_at < end,
            Payment.settled_at.is_(None),
            Payment.id > after,
        )
        .order_by(Payment.id)
        .limit(CHUNK)
    )
    return list((await session.scalars(query)).all())


async def missing_now_settled(session: AsyncSession, channel: Channel) -> list[ReconciliationLine]:
    """Payments reported missing from their day's file that another file has since settled."""
    query = (
        select(ReconciliationLine)
        .join(Payment, Payment.id == ReconciliationLine.payment_id)
        .where(
            ReconciliationLine.channel == channel,
            ReconciliationLine.state == LineState.MISSING_FROM_FILE,
            Payment.settled_at.is_not(None),
        )
    )
    return list((await session.scalars(query)).all())


async def settling_line(session: AsyncSession, payment_id: str) -> ReconciliationLine | None:
    query = select(ReconciliationLine).where(
        ReconciliationLine.payment_id == payment_id,
        ReconciliationLine.source == LineSource.FILE,
        ReconciliationLine.state.in_([LineState.MATCHED, LineState.RECORDED, LineState.ACCEPTED]),
    )
    return (await session.scalars(query)).first()


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
