"""Payments: a bill is paid once, in full; the registry learns of it through collection.payments.v1."""

import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing import repository as bills
from collection.billing.errors import BillNotFound
from collection.billing.models import Bill, BillStatus
from collection.database import OutboxMessage
from collection.idempotency import service as idempotency
from collection.payments import repository
from collection.payments.errors import AmountMismatch, BillAlreadyPaid
from collection.payments.models import Payment
from collection.payments.schemas import PaymentCreate, PaymentOut
from shared.clock import business_date, utc_now
from shared.events import COLLECTION_PAYMENTS, PaymentConfirmed, new_envelope
from shared.money import format_fen
from shared.outbox import enqueue

SOURCE = "/canbao/collection"


def _receipt_no(paid_on: str) -> str:
    # Date for the reader, 64 random bits so that receipt numbers reveal no volumes; unique in the table.
    return f"CB{paid_on}{secrets.token_hex(8).upper()}"


async def pay(session: AsyncSession, body: PaymentCreate, key: str) -> tuple[PaymentOut, bool]:
    """Record a payment; returns the result and whether it is the replay of an earlier identical request."""
    request = idempotency.Request.of("payments", key, body)
    stored = await idempotency.stored_response(session, request)
    if stored is not None:
        return PaymentOut.model_validate(stored), True

    bill = await bills.get(session, body.bill_id)
    if bill is None:
        raise BillNotFound({"bill_id": body.bill_id})
    _check_payable(bill, body)
    paid_at = utc_now()
    if not await bills.settle_if_open(session, bill, paid_at):
        # A concurrent request won; if it was this very request under the same key, answer as it did.
        stored = await idempotency.stored_response(session, request)
        if stored is not None:
            return PaymentOut.model_validate(stored), True
        raise BillAlreadyPaid({"bill_id": bill.id})

    payment = Payment(
        id=str(uuid.uuid4()),
        bill_id=bill.id,
        enrollment_id=bill.enrollment_id,
        amount_fen=body.amount,
        channel=body.channel,
        receipt_no=_receipt_no(business_date(paid_at).strftime("%Y%m%d")),
        paid_at=paid_at,
    )
    repository.add(session, payment)
    confirmed = PaymentConfirmed(
        payment_id=payment.id,
        bill_id=bill.id,
        enrollment_id=bill.enrollment_id,
        amount_fen=payment.amount_fen,
        channel=payment.channel.value,
        receipt_no=payment.receipt_no,
        paid_at=paid_at,
    )
    enqueue(session, OutboxMessage, COLLECTION_PAYMENTS, new_envelope(SOURCE, bill.enrollment_id, confirmed))
    result = PaymentOut.of(payment)
    idempotency.remember(session, request, 201, result)
    return result, False


def _check_payable(bill: Bill, body: PaymentCreate) -> None:
    if bill.status is BillStatus.PAID:
        raise BillAlreadyPaid({"bill_id": bill.id})
    if body.amount != bill.amount_due_fen:
        raise AmountMismatch(
            {"amount_due": format_fen(bill.amount_due_fen), "amount": format_fen(body.amount)}
        )
