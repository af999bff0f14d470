"""Payments: a bill is settled once, in full; the registry learns of it through collection.payments.v1."""

import secrets
import uuid
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from collection.agents import service as agents
from collection.billing import repository as bills
from collection.billing.errors import BillNotFound
from collection.billing.models import Bill, BillStatus
from collection.database import OutboxMessage
from collection.idempotency import service as idempotency
from collection.ledger import service as ledger
from collection.ledger.models import TransactionKind
from collection.payments import repository
from collection.payments.errors import (
    AmountMismatch,
    BillAlreadyPaid,
    BillCancelled,
    NoOpenBills,
    PaymentWindowClosed,
)
from collection.payments.models import Channel, Payment, PaymentItem
from collection.payments.schemas import PaymentCreate, PaymentOut
from shared.clock import Clock, business_date
from shared.events import COLLECTION_PAYMENTS, PaymentConfirmed, new_envelope
from shared.money import format_fen
from shared.outbox import enqueue

SOURCE = "/canbao/collection"


def _receipt_no(paid_at: datetime) -> str:
    # Date for the reader, 64 random bits so that receipt numbers reveal no volumes; unique in the table.
    return f"CB{business_date(paid_at):%Y%m%d}{secrets.token_hex(8).upper()}"


async def pay(session: AsyncSession, clock: Clock, body: PaymentCreate, key: str) -> tuple[PaymentOut, bool]:
    """Record a payment of one or several bills, in full; returns the result and whether it is the replay
    of an earlier identical request."""
    request = idempotency.Request.of("payments", key, body)
    stored = await idempotency.stored_response(session, request)
    if stored is not None:
        return PaymentOut.model_validate(stored), True

    if body.agent_id is not None:
        await agents.get(session, body.agent_id)  # refuses an unknown agent
    if body.organisation is not None:
        org = body.organisation
        to_pay = await bills.open_for_organisation(
            session, org.name, org.region_code, org.coverage_year, for_update=True
        )
        if not to_pay:
            raise NoOpenBills({"organisation": org.name})
    else:
        found = await bills.get_many_for_update(session, body.bills)
        missing = [bill_id for bill_id in body.bills if bill_id not in found]
        if missing:
            raise BillNotFound({"bill_ids": missing})
        to_pay = [found[bill_id] for bill_id in body.bills]
    paid_at = clock.now()
    for bill in to_pay:
        _check_payable(bill, business_date(paid_at))
    due = sum(bill.amount_due_fen for bill in to_pay)
    if body.amount != due:
        raise AmountMismatch({"amount_due": format_fen(due), "amount": format_fen(body.amount)})
    for bill in to_pay:
        if not await bills.settle_if_open(session, bill, paid_at):
            # A concurrent request won; if it was this very request under the same key, answer as it did.
            stored = await idempotency.stored_response(session, request)
            if stored is not None:
                return PaymentOut.model_validate(stored), True
            raise BillAlreadyPaid({"bill_id": bill.id})
    result = PaymentOut.of(_record(session, to_pay, body.channel, paid_at, body.agent_id))
    idempotency.remember(session, request, 201, result)
    return result, False


async def settle_by_subsidy(session: AsyncSession, bill: Bill, at: datetime) -> Payment | None:
    """Settle a bill that leaves the person nothing to pay."""
    if not await bills.settle_if_open(session, bill, at):
        return None
    return _record(session, [bill], Channel.SUBSIDY, at)


def _record(
    session: AsyncSession,
    settled: list[Bill],
    channel: Channel,
    paid_at: datetime,
    agent_id: str | None = None,
) -> Payment:
    """One payment over the bills it settled, and one confirmation per enrollment (keyed by it, so each
    enrollment's events stay in order)."""
    payment = Payment(
        id=str(uuid.uuid4()),
        amount_fen=sum(bill.amount_due_fen for bill in settled),
        channel=channel,
        agent_id=agent_id,
        receipt_no=_receipt_no(paid_at),
        paid_at=paid_at,
        items=[
            PaymentItem(
                bill_id=bill.id, enrollment_id=bill.enrollment_id, amount_fen=bill.amount_due_fen, position=i
            )
            for i, bill in enumerate(settled)
        ],
    )
    repository.add(session, payment)
    if channel is not Channel.SUBSIDY:
        ledger.post(
            session,
            TransactionKind.PAYMENT,
            payment.id,
            paid_at,
            ledger.paid(channel, payment.amount_fen, agent_id),
        )
    for bill in settled:
        confirmed = PaymentConfirmed(
            payment_id=payment.id,
            bill_id=bill.id,
            enrollment_id=bill.enrollment_id,
            amount_fen=bill.amount_due_fen,
            price_version=bill.price_version,
            channel=channel.value,
            receipt_no=payment.receipt_no,
            paid_at=paid_at,
        )
        envelope = new_envelope(SOURCE, bill.enrollment_id, confirmed, time=paid_at)
        enqueue(session, OutboxMessage, COLLECTION_PAYMENTS, envelope)
    return payment


def _check_payable(bill: Bill, today: date) -> None:
    if bill.status is BillStatus.PAID:
        raise BillAlreadyPaid({"bill_id": bill.id})
    if bill.status in (BillStatus.CANCELLED, BillStatus.REFUNDED):
        raise BillCancelled({"bill_id": bill.id})
    if today > bill.payable_until:
        # Beijing business date: a payment at 23:30 on the last day is in time.
        raise PaymentWindowClosed({"bill_id": bill.id, "payable_until": bill.payable_until.isoformat()})
