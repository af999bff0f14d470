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
from typing import IO, TypeVar

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from collection.ledger import service as ledger
from collection.ledger.accounts import Channel
from collection.ledger.models import TransactionKind
from collection.payments import service as payments
from collection.payments.models import Payment, PaymentOrigin
from collection.reconciliation import reading, repository
from collection.reconciliation.errors import (
    ChannelNotReconciled,
    ReconciliationDayNotFound,
    ReconciliationFileInvalid,
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
from shared.db import statistics_stale_after
from shared.errors import DomainError

UNRECONCILED_CHANNELS = (Channel.AGENT, Channel.SUBSIDY)
T = TypeVar("T")
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
    suffix = tabular.upload_suffix(upload.filename, ReconciliationFileInvalid)
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
        await _reconcile(session, clock.now(), run, file_lines=lines)
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
    await _reconcile(session, clock.now(), run, file_lines=None)
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

    def __init__(self, session: AsyncSession, now: datetime, *, run: ReconciliationRun | None, actor: str):
        self.session, self.now, self.run, self.actor = session, now, run, actor
        self.changes: Counter[str] = Counter()

    def move(
        self,
        line: ReconciliationLine,
        to: LineState,
        reason: str,
        *,
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
    session: AsyncSession,
    now: datetime,
    run: ReconciliationRun,
    *,
    file_lines: list[reading.FileLine] | None,
) -> None:
    """One run over a channel's day: the file's lines (None: the open ones of the latest file, as stored),
    then the day's payments the file does not list, then payments reported missing that another file has
    since settled. Lines go in chunks, each written and let go of, so a file of any size runs in bounded
    memory; the request's one transaction still makes the run all or nothing."""
    session.add(run)
    channel, day = run.channel, run.business_day
    mover = _Mover(session, now, run=run, actor=run.started_by)
    still_open = await repository.open_file_lines(session, channel, day)
    if file_lines is None:
        for ids in _chunks(list(still_open.values())):
            await _judge(session, mover, await repository.lines_by_id(session, ids))
            await _release(session, run)
    else:
        listed = {fl.reference for fl in file_lines}
        gone = [line_id for reference, line_id in still_open.items() if reference not in listed]
        for ids in _chunks(gone):
            for line in await repository.lines_by_id(session, ids):
                mover.move(line, LineState.WITHDRAWN, "not_in_corrected_file")
        for done, chunk in enumerate(_chunks(file_lines)):
            if statistics_stale_after(done):
                await repository.refresh_statistics(session)
            await _judge(session, mover, await _file_lines(session, mover, run, chunk))
            await _release(session, run)
    await _missing_from_file(session, mover, run)
    run.changes = dict(sorted(mover.changes.items()))
    await session.flush()


def _chunks(items: list[T]) -> list[list[T]]:
    return [items[i : i + repository.CHUNK] for i in range(0, len(items), repository.CHUNK)]


async def _release(session: AsyncSession, run: ReconciliationRun) -> None:
    """Write what a chunk changed and let go of it (the run stays)."""
    await session.flush()
    session.expunge_all()
    session.add(run)


async def _file_lines(
    session: AsyncSession, mover: _Mover, run: ReconciliationRun, chunk: list[reading.FileLine]
) -> list[ReconciliationLine]:
    """The lines of a chunk of the file to judge: new ones, and open ones with the file's (new) data.
    Closed lines the file lists again are kept as they are."""
    existing = await repository.file_lines(
        session, run.channel, run.business_day, [fl.reference for fl in chunk]
    )
    to_judge = []
    for fl in chunk:
        line = existing.get(fl.reference)
        if line is None:
            line = ReconciliationLine(
                channel=run.channel,
                business_day=run.business_day,
                source=LineSource.FILE,
                reference=fl.reference,
            )
        elif line.state in CLOSED:
            mover.changes["kept"] += 1
            continue
        line.run_id, line.line_no, line.bill_ids = run.id, fl.line_no, fl.bill_ids
        line.file_amount_fen, line.file_paid_on, line.file_paid_at = fl.amount_fen, fl.paid_on, fl.paid_at
        to_judge.append(line)
    return to_judge


async def _judge(session: AsyncSession, mover: _Mover, lines: list[ReconciliationLine]) -> None:
    """Match file lines with the payments they report: by the channel's number first (in memory), then by
    their bills; a payment collection never had is recorded from the line."""
    if not lines:
        return
    channel = lines[0].channel
    known = await repository.payments_by_reference(session, channel, [line.reference for line in lines])
    unknown = []
    for line in lines:
        if (payment := known.get(line.reference)) is not None:
            _compare(mover, line, payment)
        else:
            unknown.append(line)
    by_bill = await repository.payments_by_bill(
        session, channel, [b for line in unknown for b in line.bill_ids]
    )
    for line in unknown:
        if (payment := _paid_for_bills(line, by_bill)) is not None:
            _compare(mover, line, payment)
        else:
            await _record(session, mover, line)


async def _missing_from_file(session: AsyncSession, mover: _Mover, run: ReconciliationRun) -> None:
    """The day's payments no file line reports become lines of their own; those a file now lists are
    withdrawn; those another day's file settled are found."""
    channel, day = run.channel, run.business_day
    in_file = await repository.payment_ids_in_file(session, channel, day)
    reported = await repository.missing_lines(session, channel, day)
    for payment_id, line in reported.items():
        if payment_id in in_file and line.state is LineState.MISSING_FROM_FILE:
            mover.move(line, LineState.WITHDRAWN, "listed_by_file")
    start, end = business_day_bounds(day)
    after = ""
    while batch := await repository.unsettled_payments(session, channel, start, end, after):
        after = batch[-1].id
        for payment in batch:
            if payment.id in in_file or payment.id in reported:
                continue
            line = ReconciliationLine(
                channel=channel,
                business_day=day,
                source=LineSource.RECORDS,
                reference=payment.id,
                run_id=run.id,
                bill_ids=[item.bill_id for item in payment.items],
            )
            mover.move(line, LineState.MISSING_FROM_FILE, "not_in_file", payment=payment)
        await _release(session, run)
    for line in await repository.missing_now_settled(session, channel):
        mover.move(line, LineState.FOUND, "found_in_other_file")


def _compare(mover: _Mover, line: ReconciliationLine, payment: Payment) -> None:
    """Judge a file line against the payment it reports."""
    if payment.settled_at is not None:
        mover.move(line, LineState.DUPLICATE, "reconciled_by_other_line", payment=payment)
    elif payment.amount_fen != line.file_amount_fen:
        mover.move(line, LineState.AMOUNT_MISMATCH, "amount_differs", payment=payment)
    elif line.bill_ids and set(line.bill_ids) != {item.bill_id for item in payment.items}:
        mover.move(line, LineState.BILLS_MISMATCH, "bills_differ", payment=payment)
    elif business_date(payment.paid_at) != line.file_paid_on:
        mover.move(line, LineState.DATE_MISMATCH, "date_differs", payment=payment)
    else:
        mover.move(line, LineState.MATCHED, "matched", payment=payment)


def _paid_for_bills(line: ReconciliationLine, by_bill: dict[str, list[Payment]]) -> Payment | None:
    """A payment recorded without the channel's transaction number (at a counter, say) is the line's when it
    settled exactly the line's bills on the line's channel; it takes the number now."""
    candidates = {p.id: p for bill_id in line.bill_ids for p in by_bill.get(bill_id, [])}
    if len(candidates) != 1:
        return None
    [payment] = candidates.values()
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
        line.file_amount_fen,
        line.channel,
        line.moment,
        PaymentOrigin.RECONCILIATION,
        reference=line.reference,
    )
    try:
        to_pay = await payments.payable_found(session, line.bill_ids, receipt)
    except DomainError as refusal:
        mover.move(line, LineState.UNRECORDABLE, refusal.code)
        return
    payment = await payments.record_found(session, to_pay, receipt)
    mover.move(line, LineState.RECORDED, "recorded_from_file", payment=payment)


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
    mover = _Mover(session, clock.now(), run=None, actor=body.officer)
    mover.move(line, to, f"officer_{body.action.value}", payment=payment, note=body.note)
    await session.flush()
    return await line_detail(session, line.id)


async def summaries(
    session: AsyncSession,
    *,
    channel: Channel | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
) -> list[DaySummary]:
    days: dict[tuple[Channel, date], list[tuple[LineState, int, int, int]]] = {}
    for c, d, state, n, file_fen, recorded_fen in await repository.state_totals(
        session, channel=channel, day_from=day_from, day_to=day_to
    ):
        days.setdefault((c, d), []).append((state, n, file_fen, recorded_fen))
    return [_summary(c, d, totals) for (c, d), totals in days.items()]


async def summary(session: AsyncSession, channel: Channel, day: date) -> DaySummary:
    found = await summaries(session, channel=channel, day_from=day, day_to=day)
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
    session: AsyncSession, channel: Channel, day: date, *, states: list[LineState], after: int, limit: int
) -> LinePage:
    found = await repository.page(session, channel, day, states=states, after=after, limit=limit)
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
