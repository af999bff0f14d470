"""What collection does when the registry's events arrive (registry.enrollments.v1): a bill is issued for each
enrollment, follows the registry's repricing, and is cancelled or refunded when the enrollment lapses or ends.
The handler table at the bottom is what the inbox dispatches by event type; requests are served by
`billing.service`."""

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing import repository
from collection.billing.models import Bill, BillStatus, BillSubsidyLine, by_funder
from collection.billing.watch import billed_on_commit
from collection.ledger import service as ledger
from collection.ledger.models import TransactionKind
from collection.payments import service as payments
from collection.refunds import service as refunds
from shared.events import (
    EnrollmentCancelled,
    EnrollmentCreated,
    EnrollmentLapsed,
    EnrollmentRepriced,
    Envelope,
)
from shared.inbox import BatchHandler, EventRejected, Handler

ERRONEOUS_PAYMENT = "erroneous_payment"  # 错误缴费


class RefundNotAllowedByPolicy(EventRejected):
    reason = "refund_not_allowed"


log = structlog.get_logger(__name__)


async def issue_for_enrollments(
    session: AsyncSession, created: Sequence[tuple[EnrollmentCreated, datetime]]
) -> None:
    """A bill for each enrollment, in order: one lookup of those billed already and one flush for them all
    (a run of events the consumer applies together); when every bill leaves the person something to pay
    (the usual run), one statement for them all on PostgreSQL, one per table on SQLite. The inbox already
    stops a redelivered event; the lookup (the statement: its unique index on the enrollment) covers the
    same enrollment sent under a new id."""
    if all(enrollment.personal_due_fen > 0 for enrollment, _ in created):
        for enrollment_id in await _issue_at_once(session, created):
            billed_on_commit(session, enrollment_id)  # a front-end waiting for the bill hears it at once
        return
    billed = await repository.billed(session, [enrollment.enrollment_id for enrollment, _ in created])
    issued: list[Bill] = []
    for enrollment, at in created:
        if enrollment.enrollment_id in billed:
            continue
        billed[enrollment.enrollment_id] = True
        bill = _bill_for(enrollment, at)
        repository.add(session, bill)
        billed_on_commit(session, bill.enrollment_id)  # a front-end waiting for the bill hears it at once
        issued.append(bill)
    await session.flush()
    for bill in issued:
        ledger.post(
            session,
            TransactionKind.BILL_ISSUED,
            bill.id,
            bill.created_at,
            ledger.due(bill.amount_due_fen, bill.subsidy_by_funder()),
        )
        await _settle_if_nothing_due(session, bill, bill.created_at)


async def _issue_at_once(
    session: AsyncSession, created: Sequence[tuple[EnrollmentCreated, datetime]]
) -> list[str]:
    """The bills, their subsidy lines and their ledger transactions as `_bill_for` and `ledger.post` make
    them, written in one statement (`repository.issue_many`); returns the enrollments billed by it."""
    bills: list[tuple[object, ...]] = []
    lines: list[tuple[object, ...]] = []
    entries: list[tuple[object, ...]] = []
    seen: set[str] = set()
    for enrollment, at in created:
        if enrollment.enrollment_id in seen:
            continue
        seen.add(enrollment.enrollment_id)
        bill_id, transaction_id = str(uuid.uuid4()), str(uuid.uuid4())
        bills.append(
            (
                bill_id,
                enrollment.enrollment_id,
                enrollment.document_type,
                enrollment.id_number,
                enrollment.name,
                enrollment.payer_organisation,
                json.dumps(list(enrollment.refundable_reasons)),
                enrollment.region_code,
                enrollment.coverage_year,
                enrollment.personal_due_fen,
                enrollment.price_version,
                enrollment.payable_until,
                enrollment.coverage_start,
                enrollment.coverage_end,
                at,
                transaction_id,
            )
        )
        lines.extend((bill_id, x.category, x.funder, x.amount_fen) for x in enrollment.subsidy_lines)
        amounts = ledger.due(enrollment.personal_due_fen, by_funder(enrollment.subsidy_lines))
        entries.extend(
            (transaction_id, *line) for line in ledger.entries(TransactionKind.BILL_ISSUED, bill_id, amounts)
        )
    return await repository.issue_many(session, bills, lines, entries)


def _bill_for(enrollment: EnrollmentCreated, at: datetime) -> Bill:
    bill = Bill(
        id=str(uuid.uuid4()),
        enrollment_id=enrollment.enrollment_id,
        document_type=enrollment.document_type,
        id_number=enrollment.id_number,
        payer_name=enrollment.name,
        payer_organisation=enrollment.payer_organisation,
        refundable_reasons=list(enrollment.refundable_reasons),
        region_code=enrollment.region_code,
        coverage_year=enrollment.coverage_year,
        amount_due_fen=enrollment.personal_due_fen,
        price_version=enrollment.price_version,
        payable_until=enrollment.payable_until,
        coverage_start=enrollment.coverage_start,
        coverage_end=enrollment.coverage_end,
        status=BillStatus.OPEN,
        created_at=at,
    )
    bill.subsidy_lines = BillSubsidyLine.from_events(enrollment.subsidy_lines)
    return bill


async def follow_repricing(session: AsyncSession, repriced: EnrollmentRepriced, at: datetime) -> None:
    """An open bill takes the newer price; a paid one stays as paid (the registry handles what follows)."""
    bill = await _bill_of(session, repriced.enrollment_id)
    if repriced.price_version <= bill.price_version:
        return
    if bill.status is BillStatus.PAID:
        await refunds.after_repricing(
            session,
            bill,
            at,
            personal_due_fen=repriced.personal_due_fen,
            lines=repriced.subsidy_lines,
            price_version=repriced.price_version,
        )
        return
    if bill.status is not BillStatus.OPEN:
        log.warning("repricing_after_settlement", bill_id=bill.id, price_version=repriced.price_version)
        return
    before = ledger.due(bill.amount_due_fen, bill.subsidy_by_funder())
    bill.amount_due_fen = repriced.personal_due_fen
    bill.price_version = repriced.price_version
    bill.subsidy_lines = BillSubsidyLine.from_events(repriced.subsidy_lines)
    after = ledger.due(bill.amount_due_fen, bill.subsidy_by_funder())
    difference = ledger.change(before, after)
    ledger.post(session, TransactionKind.BILL_REPRICED, bill.id, at, difference)
    await session.flush()
    await _settle_if_nothing_due(session, bill, at)


async def cancel_for_lapse(session: AsyncSession, lapsed: EnrollmentLapsed, at: datetime) -> None:
    """The person enrolled again after this enrollment could no longer be paid: an open bill is cancelled.
    One paid meanwhile (a payment found in the tax side's file, dated in time, crossing the lapse) paid for an
    enrollment that no longer exists, so it goes back in full."""
    bill = await _bill_of(session, lapsed.enrollment_id)
    if bill.status is BillStatus.OPEN:
        _cancel(session, bill, at)
    elif bill.status is BillStatus.PAID:
        log.warning("payment_crossed_lapse", bill_id=bill.id, enrollment_id=lapsed.enrollment_id)
        await refunds.refund_in_full(session, bill, _refund_reason(bill), at, requested_by="registry")


async def end_for_registry(session: AsyncSession, cancelled: EnrollmentCancelled, at: datetime) -> None:
    """The registry ended the enrollment (a death, an erroneous enrollment): an open bill is cancelled, a paid
    one refunded in full. The registry ends a paid enrollment only for the policy's refund reasons; a bill
    paid while the registry ended the unpaid enrollment paid for nothing: an erroneous payment (错误缴费),
    refunded where the policy refunds those."""
    bill = await _bill_of(session, cancelled.enrollment_id)
    if bill.status is BillStatus.OPEN:
        _cancel(session, bill, at)
    elif bill.status is BillStatus.PAID:
        reason = _refund_reason(bill, stated=cancelled.reason)
        await refunds.refund_in_full(
            session, bill, reason, at, requested_by="registry", note=cancelled.evidence_ref
        )


def _refund_reason(bill: Bill, *, stated: str | None = None) -> str:
    """Why a paid bill of an ended enrollment goes back: the stated reason if the policy refunds it, else
    as an erroneous payment (paid for an enrollment that had ended); set aside for an operator if neither."""
    for reason in (stated, ERRONEOUS_PAYMENT):
        if reason in bill.refundable_reasons:
            return reason
    raise RefundNotAllowedByPolicy(
        f"bill {bill.id} was paid for an ended enrollment; its policy refunds neither"
    )


async def _bill_of(session: AsyncSession, enrollment_id: str) -> Bill:
    """The enrollment's bill, locked: its state changes are serialised with payments and refunds."""
    bill = await repository.get_by_enrollment(session, enrollment_id, for_update=True)
    if bill is None:
        raise LookupError(f"no bill for enrollment {enrollment_id} yet")  # retried until it exists
    return bill


def _cancel(session: AsyncSession, bill: Bill, at: datetime) -> None:
    bill.status = BillStatus.CANCELLED
    written_off = {a: -fen for a, fen in ledger.due(bill.amount_due_fen, bill.subsidy_by_funder()).items()}
    ledger.post(session, TransactionKind.BILL_CANCELLED, bill.id, at, written_off)


async def _settle_if_nothing_due(session: AsyncSession, bill: Bill, at: datetime) -> None:
    # A full subsidy leaves the person nothing to pay: the funders' obligation settles the bill (the roster
    # guarantees the money, as the documents do), and the registry is told at once.
    if bill.amount_due_fen == 0:
        await payments.settle_by_subsidy(session, bill, at)


async def on_enrollments_created(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    await issue_for_enrollments(session, [(e.payload(EnrollmentCreated), e.time) for e in envelopes])


async def on_enrollment_repriced(session: AsyncSession, envelope: Envelope) -> None:
    await follow_repricing(session, envelope.payload(EnrollmentRepriced), envelope.time)


async def on_enrollment_lapsed(session: AsyncSession, envelope: Envelope) -> None:
    await cancel_for_lapse(session, envelope.payload(EnrollmentLapsed), envelope.time)


async def on_enrollment_cancelled(session: AsyncSession, envelope: Envelope) -> None:
    await end_for_registry(session, envelope.payload(EnrollmentCancelled), envelope.time)


async def lock_bills(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """A consumer batch's locks (shared.inbox.BatchLocks): the bills of its events' enrollments, in id order
    before any is applied, since a payment of several bills locks them in that order. An enrollment's
    creation changes no bill that exists (it issues one, or finds it issued), so a run of creations, the
    usual batch, locks nothing and costs no statement."""
    changing = [e.subject for e in envelopes if e.type != EnrollmentCreated.event_type]
    if changing:
        await repository.lock_of_enrollments(session, changing)


HANDLERS: dict[str, Handler] = {
    EnrollmentCancelled.event_type: on_enrollment_cancelled,
    EnrollmentCreated.event_type: BatchHandler(on_enrollments_created),
    EnrollmentRepriced.event_type: on_enrollment_repriced,
    EnrollmentLapsed.event_type: on_enrollment_lapsed,
}
