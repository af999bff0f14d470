"""Refunds (退费): paid contributions are not refunded within the coverage period (the Jing rule), except
for the reasons the bill's policy names (erroneous payment 错误缴费, death 自然减员), which end the
enrollment, and what a lower price leaves over where the policy refunds it. Money goes back the way it came;
each refund is a ledger transaction and an event to the registry."""

import uuid
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from collection import metrics
from collection.billing import repository as bills
from collection.billing.errors import BillNotFound
from collection.billing.models import Bill, BillStatus, BillSubsidyLine
from collection.database import OutboxMessage
from collection.idempotency import service as idempotency
from collection.ledger import accounts
from collection.ledger import service as ledger
from collection.ledger.models import TransactionKind
from collection.payments import repository as payments
from collection.payments.models import Payment
from collection.refunds import repository
from collection.refunds.errors import AlreadyRefunded, BillNotPaid, RefundNotAllowed
from collection.refunds.models import Refund
from collection.refunds.schemas import RefundCreate, RefundOut
from shared.clock import Clock
from shared.events import COLLECTION_PAYMENTS, PaymentRefunded, SubsidyLineData, new_envelope
from shared.outbox import enqueue

log = structlog.get_logger(__name__)
SOURCE = "/canbao/collection"


async def request(
    session: AsyncSession, clock: Clock, body: RefundCreate, key: str
) -> tuple[RefundOut, bool]:
    """A tax officer's refund request with a reason: granted in full if the policy names the reason."""
    stored_request = idempotency.Request.of("refunds", key, body)
    stored = await idempotency.stored_response(session, stored_request)
    if stored is not None:
        return RefundOut.model_validate(stored), True
    bill = await bills.get_for_update(session, body.bill_id)
    if bill is None:
        raise BillNotFound({"bill_id": body.bill_id})
    if bill.status is BillStatus.REFUNDED:
        raise AlreadyRefunded({"bill_id": bill.id})
    if bill.status is not BillStatus.PAID:
        raise BillNotPaid({"bill_id": bill.id, "status": bill.status.value})
    if body.reason not in bill.refundable_reasons:
        raise RefundNotAllowed({"reason": body.reason, "refundable_reasons": bill.refundable_reasons})
    refund = await refund_in_full(
        session, bill, body.reason, clock.now(), requested_by=body.requested_by, note=body.note
    )
    result = RefundOut.of(refund)
    idempotency.remember(session, stored_request, 201, result)
    return result, False


async def refund_in_full(
    session: AsyncSession,
    bill: Bill,
    reason: str,
    at: datetime,
    *,
    requested_by: str,
    note: str | None = None,
) -> Refund:
    """Everything paid goes back and the enrollment ends (the caller has checked the policy's reasons)."""
    payment, paid_fen = await _payment_of(session, bill)
    refund = _refund(session, bill, payment, paid_fen - bill.refunded_fen, reason, at, ends_enrollment=True)
    refund.requested_by, refund.note = requested_by, note
    bill.status = BillStatus.REFUNDED
    # Its subsidies are no longer owed either (a department that already paid is owed it back).
    written_off = {a: -fen for a, fen in ledger.due(0, bill.subsidy_by_funder()).items()}
    ledger.post(session, TransactionKind.BILL_CANCELLED, bill.id, at, written_off)
    return refund


async def after_repricing(
    session: AsyncSession,
    bill: Bill,
    at: datetime,
    *,
    personal_due_fen: int,
    lines: list[SubsidyLineData],
    price_version: int,
) -> None:
    """The registry repriced a paid enrollment (its policy refunds within the coverage period): the bill takes
    the new subsidy lines, and what was paid beyond the new price goes back."""
    before = ledger.due(0, bill.subsidy_by_funder())
    bill.subsidy_lines = BillSubsidyLine.from_events(lines)
    # The bill follows the registry's price, paid or not, so both stand alike (the refund settles the rest).
    bill.amount_due_fen, bill.price_version = personal_due_fen, price_version
    after = ledger.due(0, bill.subsidy_by_funder())
    difference = ledger.change(before, after)
    ledger.post(session, TransactionKind.BILL_REPRICED, bill.id, at, difference)
    payment, paid_fen = await _payment_of(session, bill)
    over = paid_fen - bill.refunded_fen - personal_due_fen
    if over > 0:
        refund = _refund(session, bill, payment, over, "repriced", at, ends_enrollment=False)
        refund.requested_by = "registry"
    elif over < 0:
        # A higher price after payment is not collected again: the policy's price applied when paid.
        log.warning("price_rose_after_payment", bill_id=bill.id, short_fen=-over)


def _refund(
    session: AsyncSession,
    bill: Bill,
    payment: Payment,
    amount_fen: int,
    reason: str,
    at: datetime,
    *,
    ends_enrollment: bool,
) -> Refund:
    # Money the channel already settled into the treasury goes back out of the treasury (退库).
    source = accounts.TREASURY if payment.settled_at else accounts.money_in(payment.channel, payment.agent_id)
    refund = Refund(
        id=str(uuid.uuid4()),
        bill_id=bill.id,
        payment_id=payment.id,
        amount_fen=amount_fen,
        reason=reason,
        ends_enrollment=ends_enrollment,
        requested_by="",
        note=None,
        refunded_at=at,
        from_account=source,
    )
    repository.add(session, refund)
    metrics.refund_recorded(session, reason, amount_fen)
    bill.refunded_fen += amount_fen
    ledger.post(
        session,
        TransactionKind.REFUND,
        refund.id,
        at,
        {source: -amount_fen, accounts.FISCAL_ACCOUNT: amount_fen},
    )
    refunded = PaymentRefunded(
        refund_id=refund.id,
        payment_id=payment.id,
        bill_id=bill.id,
        enrollment_id=bill.enrollment_id,
        amount_fen=amount_fen,
        reason=reason,
        ends_enrollment=ends_enrollment,
        refunded_at=at,
    )
    enqueue(
        session,
        OutboxMessage,
        COLLECTION_PAYMENTS,
        new_envelope(SOURCE, bill.enrollment_id, refunded, time=at),
    )
    return refund


async def _payment_of(session: AsyncSession, bill: Bill) -> tuple[Payment, int]:
    found = await payments.item_for_bill(session, bill.id)
    if found is None:  # a paid bill always has its payment: the same transaction wrote both
        raise LookupError(f"paid bill {bill.id} has no payment")
    item, payment = found
    return payment, item.amount_fen
