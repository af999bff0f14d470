"""Reconciliation (扣款数据比对): the tax side's daily file of a channel's transactions against collection's
payments. Each line is judged once per run and only moves along the state machine in `models.TRANSITIONS`;
closed lines are never judged again, so a run (a corrected file, or the same day run again) cannot change a
settled result. A line that settles moves the payment's money from the channel's clearing to the treasury."""

import asyncio
import gc
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing import repository as bills
from collection.ledger import service as ledger
from collection.ledger.accounts import Channel
from collection.ledger.models import TransactionKind
from collection.payments import repository as payment_rows
from collection.payments import service as payments
from collection.reconciliation import judging, reading, repository
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
    LineState,
    LineTransition,
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
from collection.reconciliation.writing import Line, Writer
from shared import tabular
from shared.clock import Clock, business_day_bounds
from shared.db import lift_limits, statistics_stale_after

UNRECONCILED_CHANNELS = (Channel.AGENT, Channel.SUBSIDY)
T = TypeVar("T")


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
        checked = await asyncio.to_thread(reading.read, temp_path, upload.filename, upload.channel)
        run = _new_run(
            clock, upload.channel, upload.business_day, upload.uploaded_by, len(checked.references)
        )
        run.fingerprint, run.filename = fingerprint, upload.filename
        with _set_aside():
            await _reconcile(session, clock.now(), run, file=checked)
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
    await _reconcile(session, clock.now(), run, file=None)
    return RunOut.of(run, await summary(session, channel, day))


@contextmanager
def _set_aside() -> Iterator[None]:
    """The objects the process holds when a run starts (its modules, mappings, caches: hundreds of thousands)
    outlast the run; the cyclic garbage collector would walk them again and again as the run makes and drops
    its rows (a third of the run's CPU at 100,000 lines). They are set aside from it while the run lasts and
    handed back to it afterwards, so nothing it would collect is kept for good."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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


async def _reconcile(
    session: AsyncSession,
    now: datetime,
    run: ReconciliationRun,
    *,
    file: reading.CheckedFile | None,
) -> None:
    """One run over a channel's day: the file's lines (None: the open ones of the latest file, as stored),
    then the day's payments the file does not list, then payments reported missing that another file has
    since settled. Lines go in chunks, each judged on facts fetched for the whole chunk and written in bulk,
    so a file of any size runs in bounded memory; the request's one transaction still makes the run all or
    nothing."""
    # A day's file may wait for another run's locks (its ANALYZE, its lines) for as long as that run lasts.
    await lift_limits(session)
    session.add(run)
    writer = Writer(session, now, run)
    still_open = await repository.open_file_lines(session, run.channel, run.business_day)
    if file is None:
        for ids in _chunks(sorted(line_id for line_id, _ in still_open.values())):
            await _judge(session, writer, [_stored(s) for s in await repository.stored_lines(session, ids)])
    else:
        for reference, (line_id, state) in still_open.items():
            if reference not in file.references:
                writer.moved(line_id, state, LineState.WITHDRAWN, "not_in_corrected_file")
        await writer.write()
        chunks, done, end = file.chunks(repository.CHUNK), 0, list[reading.FileLine]()
        while chunk := await asyncio.to_thread(next, chunks, end):
            if statistics_stale_after(done):
                await repository.refresh_statistics(session)
            await _judge(session, writer, await _file_lines(session, writer, run, chunk))
            done += 1
    await _missing_from_file(session, writer, run)
    run.changes = dict(sorted(writer.changes.items()))
    await session.flush()


def _chunks(items: list[T]) -> list[list[T]]:
    return [items[i : i + repository.CHUNK] for i in range(0, len(items), repository.CHUNK)]


def _stored(line: repository.Stored) -> Line:
    listed = judging.Listed(line.reference, line.file_amount_fen, line.file_paid_on, tuple(line.bill_ids))
    return Line(listed, line.run_id, line.line_no, line.file_paid_at, (line.id, line.state, line.reason))


async def _file_lines(
    session: AsyncSession, writer: Writer, run: ReconciliationRun, chunk: list[reading.FileLine]
) -> list[Line]:
    """The lines of a chunk of the file to judge: new ones, and open ones with the file's (new) data.
    Closed lines the file lists again are kept as they are."""
    stored = await repository.file_line_states(
        session, run.channel, run.business_day, [fl.reference for fl in chunk]
    )
    to_judge = []
    for fl in chunk:
        found = stored.get(fl.reference)
        if found is not None and found[1] in CLOSED:
            writer.kept()
            continue
        listed = judging.Listed(fl.reference, fl.amount_fen, fl.paid_on, tuple(fl.bill_ids))
        to_judge.append(Line(listed, run.id, fl.line_no, fl.paid_at, found))
    return to_judge


async def _judge(session: AsyncSession, writer: Writer, lines: list[Line]) -> None:
    """Match file lines with the payments they report: by the channel's number first, then by their bills;
    a payment collection never had is recorded from the line. The chunk's facts come in a few queries."""
    channel = writer.channel
    known = await repository.payments_by_reference(
        session, channel, [line.listed.reference for line in lines]
    )
    unknown = [line for line in lines if line.listed.reference not in known]
    by_bill = await repository.payments_by_bill(
        session, channel, [b for line in unknown for b in line.listed.bill_ids]
    )
    to_record = []
    for line in lines:
        payment = known.get(line.listed.reference)
        if payment is None:
            payment = judging.paid_for_bills(line.listed, by_bill, writer.taken)
            if payment is not None:
                writer.take_reference(payment, line.listed.reference)
        if payment is not None:
            writer.judged(line, judging.compare(line.listed, payment), payment)
        elif not line.listed.bill_ids:
            writer.judged(line, judging.BILLS_NOT_NAMED, None)
        else:
            to_record.append(line)
    await _record(session, writer, to_record)
    await writer.write()


async def _record(session: AsyncSession, writer: Writer, lines: list[Line]) -> None:
    """Lines whose payment collection never had: recorded from the file, or unrecordable with the refusal
    the payment would get. Their bills are locked first (in id order, as a payment locks them), so a
    notification paying one of them meanwhile waits, then finds it paid."""
    locked = await bills.lock_many(session, [b for line in lines for b in line.listed.bill_ids])
    claimed: set[str] = set()
    for line in lines:
        refused = judging.refusal(line.listed, locked, claimed)
        if refused is not None:
            writer.judged(line, (LineState.UNRECORDABLE, refused), None)
        else:
            claimed.update(line.listed.bill_ids)
            writer.record(line, [locked[bill_id] for bill_id in line.listed.bill_ids])
    for bill in locked.values():
        session.expunge(bill)  # read for the rules only: the chunk lets go of them


async def _missing_from_file(session: AsyncSession, writer: Writer, run: ReconciliationRun) -> None:
    """The day's payments no file line reports become lines of their own; those a file now lists are
    withdrawn; those another day's file settled are found."""
    channel, day = run.channel, run.business_day
    for line_id, state in await repository.missing_listed_by_file(session, channel, day):
        writer.moved(line_id, state, LineState.WITHDRAWN, "listed_by_file")
    await writer.write()
    bounds, after = business_day_bounds(day), ""
    while batch := await repository.unreported_payments(session, channel, day, bounds, after):
        after = batch[-1].id
        for payment in batch:
            writer.missing(payment)
        await writer.write()
    for line_id, state in await repository.missing_now_settled(session, channel):
        writer.moved(line_id, state, LineState.FOUND, "found_in_other_file")
    await writer.write()


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
    now = clock.now()
    if to is LineState.ACCEPTED:
        payment = await payments.get_payment(session, line.payment_id or "")
        # Settled only if no run settled it meanwhile (the WHERE decides, after any such run commits).
        if not await payment_rows.settle_many(session, [payment.id], now):
            raise TransitionNotAllowed({"line_id": line.id, "reason": "payment_already_settled"})
        amounts = ledger.settled(payment.channel, payment.amount_fen)
        ledger.post(session, TransactionKind.CHANNEL_SETTLEMENT, payment.id, now, amounts)
    line.transitions.add(
        LineTransition(
            run_id=None,
            from_state=line.state,
            to_state=to,
            reason=f"officer_{body.action.value}",
            actor=body.officer,
            note=body.note,
            at=now,
        )
    )
    line.state, line.reason, line.updated_at = to, f"officer_{body.action.value}", now
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
