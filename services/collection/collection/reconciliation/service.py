"""Reconciliation (扣款数据比对): the tax side's daily file of a channel's transactions against collection's
payments. Each line is judged once per run and only moves along the state machine in `models.TRANSITIONS`;
closed lines are never judged again, so a run (a corrected file, or the same day run again) cannot change a
settled result. A line that settles moves the payment's money from the channel's clearing to the treasury."""

import asyncio
import hashlib
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from collection.ledger import service as ledger
from collection.ledger.models import TransactionKind
from collection.payments import service as payments
from collection.payments.models import Channel, Payment, PaymentOrigin
from collection.reconciliation import reading, repository
from collection.reconciliation.errors import (
    ChannelNotReconciled,
    ReconciliationDayNotFound,
    ReconciliationFileTooLarge,
    ReconciliationLineNotFound,
    TransitionNotAllowed,
)
from collection.reconciliation.models import (
    CLOSED,
    SETTLED,
    TRANSITIONS,
    LineSource,
    LineState,
    LineTransition,
    ReconciliationLine,
    ReconciliationRun,
)
from collection.reconciliation.schemas import (
    Action,
    DayOut,
    DaySummary,
    LineDetail,
    LineOut,
    LinePage,
    Resolution,
    RunOut,
    TransitionOut,
)
from shared import tabular
from shared.clock import Clock, business_date, business_day_bounds
from shared.errors import DomainError

UNRECONCILED_CHANNELS = (Channel.AGENT, Channel.SUBSIDY)
_SETTLING = (LineState.MATCHED, LineState.RECORDED, LineState.ACCEPTED)


@dataclass(frozen=True)
class FileUpload:
    channel: Channel
    business_day: date
    filename: str
    uploaded_by: str


async def receive(
    session: AsyncSession,
    clock: Clock,
    directory: Path,
    upload: FileUpload,
    stream: IO[bytes],
    max_bytes: int,
) -> tuple[RunOut, bool]:
    """Reconcile a channel's day with the file the tax side sent; returns the run and whether it is new (the
    same file for the same channel and day again is the first run, and changes nothing)."""
    _check_reconciled(upload.channel)
    suffix = Path(upload.filename).suffix.lower()
    digest, temp_path = await asyncio.to_thread(
        tabular.spool, stream, directory, suffix, max_bytes, ReconciliationFileTooLarge
    )
    try:
        fingerprint = hashlib.sha256(f"{digest}|{upload.channel}|{upload.business_day}".encode()).hexdigest()
        earlier = await repository.run_by_fingerprint(session, fingerprint)
        if earlier is not None:
            return RunOut.of(earlier, await summary(session, earlier.channel, earlier.business_day)), False
        lines = await asyncio.to_thread(reading.read, temp_path, upload.filename, upload.channel)
        run = _new_run(clock, upload.channel, upload.business_day, upload.uploaded_by, len(lines))
        run.fingerprint, run.filename = fingerprint, upload.filename
        await _reconcile(session, clock.now(), run, lines)
        # Kept beside its run: the file is the evidence for every line's state.
        await asyncio.to_thread(shutil.move, temp_path, directory / f"{run.id}{suffix}")
        return RunOut.of(run, await summary(session, run.channel, run.business_day)), True
    finally:
        await asyncio.to_thread(temp_path.unlink, missing_ok=True)


async def rerun(session: AsyncSession, clock: Clock, channel: Channel, day: date, started_by: str) -> RunOut:
    """Judge a day's open lines again as its latest file gave them (a late notification, a repriced bill or a
    reissued bill may settle them now); closed lines stay as they are."""
    _check_reconciled(channel)
    if not await repository.runs(session, channel, day):
        raise ReconciliationDayNotFound({"channel": channel.value, "business_day": day.isoformat()})
    run = _new_run(clock, channel, day, started_by, 0)
    await _reconcile(session, clock.now(), run, None)
    return RunOut.of(run, await summary(session, channel, day))


def _check_reconciled(channel: Channel) -> None:
    if channel in UNRECONCILED_CHANNELS:
        raise ChannelNotReconciled({"channel": channel.value})


def _new_run(clock: Clock, channel: Channel, day: date, started_by: str, lines: int) -> ReconciliationRun:
    return ReconciliationRun(
        id=str(uuid.uuid4()),
        channel=channel,
        business_day=day,
        fingerprint=None,
        filename=None,
        started_by=started_by,
        started_at=clock.now(),
        lines_in_file=lines,
        changes={},
    )


class _Mover:
    """Moves lines along the state machine, writing each move to the line's history and settling the money of
    the moves that settle."""

    def __init__(self, session: AsyncSession, now: datetime, run: ReconciliationRun | None, actor: str):
        self.session, self.now, self.run, self.actor = session, now, run, actor
        self.changes: Counter[str] = Counter()

    def move(
        self,
        line: ReconciliationLine,
        to: LineState,
        reason: str,
        payment: Payment | None = None,
        note: str | None = None,
    ) -> None:
        new = inspect(line).transient
        current = None if new else line.state
        if payment is not None:
            line.payment_id = payment.id
            line.recorded_amount_fen = payment.amount_fen
            line.recorded_on = business_date(payment.paid_at)
        if current is to and line.reason == reason:
            self.changes["unchanged"] += 1
            return
        if to not in TRANSITIONS.get(current, frozenset()):
            raise TransitionNotAllowed({"line_id": line.id, "state": current, "to": to.value})
        line.state, line.reason, line.updated_at = to, reason, self.now
        if new:
            self.session.add(line)
        line.transitions.add(
            LineTransition(
                run_id=self.run.id if self.run else None,
                from_state=current,
                to_state=to,
                reason=reason,
                actor=self.actor,
                note=note,
                at=self.now,
            )
        )
        self.changes[to.value] += 1
        if to in _SETTLING:
            assert payment is not None
            payment.settled_at = self.now
            ledger.post(
                self.session,
                TransactionKind.CHANNEL_SETTLEMENT,
                payment.id,
                self.now,
                ledger.settled(payment.channel, payment.amount_fen),
            )


async def _reconcile(
    session: AsyncSession, now: datetime, run: ReconciliationRun, file_lines: list[reading.FileLine] | None
) -> None:
    """One run over a channel's day: the file's lines (None: the latest file's, as stored), then the day's
    payments the file does not list, then payments reported missing that another file has since settled."""
    session.add(run)
    channel, day = run.channel, run.business_day
    existing = await repository.lines_of_day(session, channel, day)
    by_reference = {line.reference: line for line in existing if line.source is LineSource.FILE}
    mover = _Mover(session, now, run, run.started_by)
    to_judge: list[ReconciliationLine] = []
    if file_lines is None:
        to_judge = [line for line in by_reference.values() if line.state not in CLOSED]
    else:
        listed = {fl.reference for fl in file_lines}
        for line in by_reference.values():
            if line.reference not in listed and line.state not in CLOSED:
                mover.move(line, LineState.WITHDRAWN, "not_in_corrected_file")
        for fl in file_lines:
            line = by_reference.get(fl.reference) or ReconciliationLine(
                channel=channel, business_day=day, source=LineSource.FILE, reference=fl.reference
            )
            if not inspect(line).transient and line.state in CLOSED:
                mover.changes["kept"] += 1
                continue
            line.run_id, line.line_no, line.bill_ids = run.id, fl.line_no, fl.bill_ids
            line.file_amount_fen, line.file_paid_on, line.file_paid_at = fl.amount_fen, fl.paid_on, fl.paid_at
            to_judge.append(line)
    known = await repository.payments_by_reference(session, channel, [line.reference for line in to_judge])
    for line in to_judge:
        await _judge(session, mover, line, known.get(line.reference))
    await session.flush()

    in_file = {line.payment_id for line in by_reference.values() if line.payment_id}
    in_file |= {line.payment_id for line in to_judge if line.payment_id}
    missing = {line.payment_id: line for line in existing if line.source is LineSource.RECORDS}
    for payment_id, line in missing.items():
        if payment_id in in_file and line.state is LineState.MISSING_FROM_FILE:
            mover.move(line, LineState.WITHDRAWN, "listed_by_file")
    for payment in await repository.unsettled_payments(session, channel, *business_day_bounds(day)):
        if payment.id not in in_file and payment.id not in missing:
            line = ReconciliationLine(
                channel=channel,
                business_day=day,
                source=LineSource.RECORDS,
                reference=payment.id,
                run_id=run.id,
                bill_ids=[item.bill_id for item in payment.items],
            )
            mover.move(line, LineState.MISSING_FROM_FILE, "not_in_file", payment)
    for line in await repository.missing_now_settled(session, channel):
        mover.move(line, LineState.FOUND, "found_in_other_file")
    run.changes = dict(sorted(mover.changes.items()))
    await session.flush()


async def _judge(
    session: AsyncSession, mover: _Mover, line: ReconciliationLine, payment: Payment | None
) -> None:
    """Match a file line with the payment it reports, or record that payment if collection never had it."""
    payment = payment or await _paid_for_bills(session, line)
    if payment is None:
        await _record(session, mover, line)
    elif payment.settled_at is not None:
        mover.move(line, LineState.DUPLICATE, "reconciled_by_other_line", payment)
    elif payment.amount_fen != line.file_amount_fen:
        mover.move(line, LineState.AMOUNT_MISMATCH, "amount_differs", payment)
    elif business_date(payment.paid_at) != line.file_paid_on:
        mover.move(line, LineState.DATE_MISMATCH, "date_differs", payment)
    else:
        mover.move(line, LineState.MATCHED, "matched", payment)


async def _paid_for_bills(session: AsyncSession, line: ReconciliationLine) -> Payment | None:
    """A payment recorded without the channel's transaction number (at a counter, say) is the line's when it
    settled exactly the line's bills on the line's channel; it takes the number now."""
    if not line.bill_ids:
        return None
    candidates = await repository.payments_of_bills(session, line.channel, line.bill_ids)
    if len(candidates) != 1:
        return None
    payment = candidates[0]
    if payment.channel_reference is not None or {i.bill_id for i in payment.items} != set(line.bill_ids):
        return None
    payment.channel_reference = line.reference
    return payment


async def _record(session: AsyncSession, mover: _Mover, line: ReconciliationLine) -> None:
    if not line.bill_ids:
        mover.move(line, LineState.UNRECORDABLE, "bills_not_named")
        return
    # File lines always have both.
    assert line.file_amount_fen is not None
    assert line.moment is not None
    receipt = payments.Receipt(
        line.file_amount_fen, line.channel, line.moment, line.reference, PaymentOrigin.RECONCILIATION
    )
    try:
        # A savepoint: a refusal part-way leaves nothing of the payment behind.
        async with session.begin_nested():
            payment = await payments.record_found(session, line.bill_ids, receipt)
    except DomainError as refusal:
        mover.move(line, LineState.UNRECORDABLE, refusal.code)
        return
    mover.move(line, LineState.RECORDED, "recorded_from_file", payment)


async def resolve(session: AsyncSession, clock: Clock, line_id: int, body: Resolution) -> LineDetail:
    """A tax officer accepts a date mismatch (the money is right: it settles) or dismisses an open line."""
    line = await repository.get_line(session, line_id, for_update=True)
    if line is None:
        raise ReconciliationLineNotFound({"line_id": line_id})
    to = LineState.ACCEPTED if body.action is Action.ACCEPT else LineState.DISMISSED
    if to not in TRANSITIONS.get(line.state, frozenset()):
        raise TransitionNotAllowed(
            {"line_id": line.id, "state": line.state.value, "action": body.action.value}
        )
    payment = None
    if to is LineState.ACCEPTED:
        payment = await payments.get_payment(session, line.payment_id or "")
        if payment.settled_at is not None:
            raise TransitionNotAllowed({"line_id": line.id, "reason": "payment_already_settled"})
    mover = _Mover(session, clock.now(), None, body.officer)
    mover.move(line, to, f"officer_{body.action.value}", payment, body.note)
    await session.flush()
    return await line_detail(session, line.id)


async def summaries(
    session: AsyncSession, channel: Channel | None, day_from: date | None, day_to: date | None
) -> list[DaySummary]:
    days: dict[tuple[Channel, date], list[tuple[LineState, int, int, int]]] = {}
    for c, d, state, n, file_fen, recorded_fen in await repository.state_totals(
        session, channel, day_from, day_to
    ):
        days.setdefault((c, d), []).append((state, n, file_fen, recorded_fen))
    return [_summary(c, d, totals) for (c, d), totals in days.items()]


async def summary(session: AsyncSession, channel: Channel, day: date) -> DaySummary:
    found = await summaries(session, channel, day, day)
    return found[0] if found else _summary(channel, day, [])


def _summary(channel: Channel, day: date, totals: list[tuple[LineState, int, int, int]]) -> DaySummary:
    lines = {state: n for state, n, _, _ in totals}
    open_lines = sum(n for state, n in lines.items() if state not in CLOSED)
    return DaySummary(
        channel=channel,
        business_day=day,
        lines=lines,
        file_amount=sum(f for state, _, f, _ in totals if state is not LineState.WITHDRAWN),
        settled_amount=sum(
            r for state, _, _, r in totals if state in SETTLED and state is not LineState.FOUND
        ),
        missing_amount=sum(r for state, _, _, r in totals if state is LineState.MISSING_FROM_FILE),
        open_lines=open_lines,
        reconciled=open_lines == 0,
    )


async def day_of(session: AsyncSession, channel: Channel, day: date) -> DayOut:
    runs = await repository.runs(session, channel, day)
    if not runs:
        raise ReconciliationDayNotFound({"channel": channel.value, "business_day": day.isoformat()})
    current = await summary(session, channel, day)
    return DayOut(summary=current, runs=[RunOut.of(run, current) for run in runs])


async def lines_page(
    session: AsyncSession, channel: Channel, day: date, states: list[LineState], after: int, limit: int
) -> LinePage:
    found = await repository.page(session, channel, day, states, after, limit)
    return LinePage(
        items=[LineOut.of(line) for line in found],
        next_after=found[-1].id if len(found) == limit else None,
    )


async def line_detail(session: AsyncSession, line_id: int) -> LineDetail:
    line = await repository.get_line(session, line_id)
    if line is None:
        raise ReconciliationLineNotFound({"line_id": line_id})
    history = [TransitionOut.of(t) for t in await repository.history(session, line_id)]
    return LineDetail(
        **LineOut.fields(line), channel=line.channel, business_day=line.business_day, history=history
    )
