"""Payments: a bill is settled once, in full; the registry learns of it through collection.payments.v1."""

import secrets
import uuid
from dataclasses import KW_ONLY, dataclass
from datetime import date, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from collection import metrics
from collection.agents import service as agents
from collection.billing import repository as bills
from collection.billing.errors import BillNotFound
from collection.billing.models import Bill, BillStatus
from collection.database import OutboxMessage, took
from collection.idempotency import service as idempotency
from collection.ledger import service as ledger
from collection.ledger.accounts import Channel
from collection.ledger.models import TransactionKind
from collection.payments import repository
from collection.payments.errors import (
    AmountMismatch,
    BillAlreadyPaid,
    BillCancelled,
    ChannelRecordsItself,
    ChannelReferenceUsed,
    NoOpenBills,
    PaymentNotFound,
    PaymentWindowClosed,
)
from collection.payments.models import COUNTER_CHANNELS, Payment, PaymentItem, PaymentOrigin
from collection.payments.schemas import PaymentCreate, PaymentOut
from shared.clock import Clock, business_date, utc_now
from shared.events import COLLECTION_PAYMENTS, Envelope, PaymentConfirmed, new_envelope
from shared.money import format_fen
from shared.outbox import enqueue, wake_relay
from shared.tracing import trace_fields

SOURCE = "/canbao/collection"
log = structlog.get_logger(__name__)


def receipt_no(paid_at: datetime) -> str:
    # Date for the reader, 64 random bits so that receipt numbers reveal no volumes; unique in the table.
    return f"CB{business_date(paid_at):%Y%m%d}{secrets.token_hex(8).upper()}"


@dataclass(frozen=True)
class Receipt:
    """What a channel says it took: how much, when, under which transaction number."""

    amount_fen: int
    channel: Channel
    paid_at: datetime
    origin: PaymentOrigin
    _: KW_ONLY
    reference: str | None = None  # the channel's transaction number (交易流水号), when known
    agent_id: str | None = None
    payer: str | None = None  # who asked for it to be recorded (the caller's token subject)


async def pay(
    session: AsyncSession, clock: Clock, body: PaymentCreate, key: str, *, recorded_by: str
) -> tuple[PaymentOut, bool]:
    """A tax officer records money handed over in person (tax hall, cash, an agent's collection), for one or
    several bills, in full; returns the result and whether it replays an earlier identical request. Online
    channels record their own payments by their signed notifications."""
    request = idempotency.Request.of("payments", key, body)
    stored = await idempotency.stored_response(session, request)
    if stored is not None:
        return PaymentOut.model_validate(stored), True
    if body.channel not in COUNTER_CHANNELS:
        raise ChannelRecordsItself({"channel": body.channel.value})
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
        to_pay = await bills_named(session, body.bills)
    receipt = Receipt(
        body.amount,
        body.channel,
        clock.now(),
        PaymentOrigin.REQUEST,
        reference=body.channel_reference,
        agent_id=body.agent_id,
        payer=recorded_by,
    )
    result = PaymentOut.of(await settle(session, to_pay, receipt))
    idempotency.remember(session, request, 201, result)
    return result, False


async def record_notified(
    session: AsyncSession,
    clock: Clock,
    *,
    channel: Channel,
    bill_ids: list[str],
    amount_fen: int,
    reference: str,
) -> Payment:
    """A channel's signed notification names the bills it took money for (a bank counter, say): no order.
    The caller found the channel's transaction id unused, under the notification's lock."""
    to_pay = await bills_named(session, bill_ids)
    receipt = Receipt(amount_fen, channel, clock.now(), PaymentOrigin.NOTIFICATION, reference=reference)
    return await settle(session, to_pay, receipt, reference_checked=True)


async def get_payment(session: AsyncSession, payment_id: str) -> Payment:
    payment = await repository.get(session, payment_id)
    if payment is None:
        raise PaymentNotFound({"payment_id": payment_id})
    return payment


async def payable_found(session: AsyncSession, bill_ids: list[str], receipt: Receipt) -> list[Bill]:
    """The bills a payment the tax side's daily file shows (and collection never heard of) would settle, or
    the refusal any payment would get. Writes nothing: a reconciliation judges thousands of lines in one
    transaction, and a savepoint per line would overflow PostgreSQL's subtransaction cache."""
    to_pay = await bills_named(session, bill_ids)
    await _check(session, to_pay, receipt)
    return to_pay


async def record_found(session: AsyncSession, to_pay: list[Bill], receipt: Receipt) -> Payment:
    """Record that payment, as the channel took it (its time, its transaction number)."""
    return await _write(session, to_pay, receipt)


async def settle_by_subsidy(session: AsyncSession, bill: Bill, at: datetime) -> Payment | None:
    """Settle a bill that leaves the person nothing to pay."""
    if not await bills.settle_if_open(session, bill, at):
        return None
    return _record(session, [bill], Receipt(0, Channel.SUBSIDY, at, PaymentOrigin.SUBSIDY))


async def bills_named(session: AsyncSession, bill_ids: list[str], *, for_update: bool = True) -> list[Bill]:
    """The bills, in the order named, locked for settling unless only read; refuses unknown ones."""
    found = await (bills.get_many_for_update if for_update else bills.get_many)(session, bill_ids)
    missing = [bill_id for bill_id in bill_ids if bill_id not in found]
    if missing:
        raise BillNotFound({"bill_ids": missing})
    return [found[bill_id] for bill_id in bill_ids]


async def settle(
    session: AsyncSession, to_pay: list[Bill], receipt: Receipt, *, reference_checked: bool = False
) -> Payment:
    """Settle the bills in full with what the channel took, or refuse and change nothing.
    `reference_checked`: the caller already found the channel's transaction id unused in this transaction
    (a notification, under its lock), so it is not looked up again."""
    await _check(session, to_pay, receipt, reference_checked=reference_checked)
    return await _write(session, to_pay, receipt)


async def _check(
    session: AsyncSession, to_pay: list[Bill], receipt: Receipt, *, reference_checked: bool = False
) -> None:
    """Every refusal, before anything is written."""
    for bill in to_pay:
        check_payable(bill, business_date(receipt.paid_at))
    due = sum(bill.amount_due_fen for bill in to_pay)
    if receipt.amount_fen != due:
        raise AmountMismatch({"amount_due": format_fen(due), "amount": format_fen(receipt.amount_fen)})
    if receipt.reference is not None and not reference_checked:
        earlier = await repository.by_channel_reference(session, receipt.channel, receipt.reference)
        if earlier is not None:
            raise ChannelReferenceUsed({"channel_reference": receipt.reference, "payment_id": earlier.id})


async def _write(session: AsyncSession, to_pay: list[Bill], receipt: Receipt) -> Payment:
    for bill in to_pay:
        if not await bills.settle_if_open(session, bill, receipt.paid_at):
            raise BillAlreadyPaid({"bill_id": bill.id})
    return _record(session, to_pay, receipt)


def _record(session: AsyncSession, settled: list[Bill], receipt: Receipt) -> Payment:
    """One payment over the bills it settled, and one confirmation per enrollment (keyed by it, so each
    enrollment's events stay in order)."""
    channel, paid_at = receipt.channel, receipt.paid_at
    payment = _payment(settled, receipt)
    repository.add(session, payment)
    metrics.payment_recorded(session, channel, payment.amount_fen)
    if channel is not Channel.SUBSIDY:
        ledger.post(
            session,
            TransactionKind.PAYMENT,
            payment.id,
            paid_at,
            ledger.paid(channel, payment.amount_fen, agent_id=receipt.agent_id),
        )
    for bill, item in zip(settled, payment.items, strict=True):
        confirm(session, payment, item, bill.price_version)
    return payment


@dataclass(frozen=True)
class OrderCompletion:
    """What completing a payment order writes besides the payment: the order itself, the notification's
    idempotency record (its response is the payment) and the link of an earlier rejection of it."""

    order_id: str
    closed_at: datetime
    remembered: idempotency.Request
    status_code: int


async def settle_order(
    session: AsyncSession, to_pay: list[Bill], receipt: Receipt, completion: OrderCompletion
) -> Payment:
    """`settle` for a channel's notification completing an order: the same checks, then the same rows as
    `settle`, the order's completion, the idempotency record and an earlier rejection's link in one
    statement on PostgreSQL instead of about ten (on SQLite one per table, without the unit of work). The
    bills are locked by the caller; the transaction id was found unused under the notification's lock."""
    await _check(session, to_pay, receipt, reference_checked=True)
    payment = _payment(to_pay, receipt)
    lines = ledger.entries(
        TransactionKind.PAYMENT, payment.id, ledger.paid(receipt.channel, payment.amount_fen)
    )
    confirmations = [
        _traced(confirmation(payment, item, bill.price_version))
        for bill, item in zip(to_pay, payment.items, strict=True)
    ]
    now = utc_now()
    written = await repository.settle_order(
        session,
        {
            "bill_ids": [bill.id for bill in to_pay],
            "enrollment_ids": [item.enrollment_id for item in payment.items],
            "item_fen": [item.amount_fen for item in payment.items],
            "paid_at": payment.paid_at,
            "now": now,
            "payment_id": payment.id,
            "amount_fen": payment.amount_fen,
            "channel": payment.channel.value,
            "agent_id": None,
            "receipt_no": payment.receipt_no,
            "channel_reference": payment.channel_reference,
            "origin": payment.origin.value,
            "payer": payment.payer,
            "transaction_id": str(uuid.uuid4()) if lines else None,
            "kind": TransactionKind.PAYMENT.value,
            "accounts": [account for account, _ in lines],
            "entry_fen": [fen for _, fen in lines],
            "topic": COLLECTION_PAYMENTS,
            "event_ids": [e.id for e in confirmations],
            "event_types": [e.type for e in confirmations],
            "keys": [e.subject for e in confirmations],
            "payloads": [e.to_bytes() for e in confirmations],
            "record_key": completion.remembered.record_key,
            "request_hash": completion.remembered.request_hash,
            "status_code": completion.status_code,
            "response_body": PaymentOut.of(payment).model_dump_json(),
            "order_id": completion.order_id,
            "closed_at": completion.closed_at,
        },
    )
    settled = {row["id"]: row for row in written}
    missing = [bill.id for bill in to_pay if bill.id not in settled]
    if missing or len(settled) != len(to_pay):
        # The statement writes the payment only when it settled every bill it was given: fewer (one no longer
        # open, or a bill named twice) wrote nothing else, and the refusal rolls the settled ones back.
        raise BillAlreadyPaid({"bill_id": (missing or [to_pay[0].id])[0]})
    for bill in to_pay:
        row = settled[bill.id]
        took(bill, status=BillStatus.PAID, paid_at=row["paid_at"], updated_at=row["updated_at"])
    metrics.payment_recorded(session, payment.channel, payment.amount_fen)
    wake_relay(session)
    return payment


def _traced(envelope: Envelope) -> Envelope:
    """The event carrying the current trace's context, as `shared.outbox.enqueue` writes it."""
    fields = trace_fields()
    return envelope.model_copy(update=fields) if fields else envelope


def _payment(settled: list[Bill], receipt: Receipt) -> Payment:
    """The payment over these bills, not yet added to any session."""
    channel, paid_at = receipt.channel, receipt.paid_at
    return Payment(
        id=str(uuid.uuid4()),
        amount_fen=sum(bill.amount_due_fen for bill in settled),
        channel=channel,
        agent_id=receipt.agent_id,
        receipt_no=receipt_no(paid_at),
        paid_at=paid_at,
        channel_reference=receipt.reference,
        origin=receipt.origin,
        payer=receipt.payer,
        items=[
            PaymentItem(
                bill_id=bill.id, enrollment_id=bill.enrollment_id, amount_fen=bill.amount_due_fen, position=i
            )
            for i, bill in enumerate(settled)
        ],
    )


def confirm(session: AsyncSession, payment: Payment, item: PaymentItem, price_version: int) -> None:
    """Tell the registry an enrollment is paid (again, when a check finds the first telling was lost: the
    registry applies a payment once)."""
    enqueue(session, OutboxMessage, COLLECTION_PAYMENTS, confirmation(payment, item, price_version))


def confirmation(payment: Payment, item: PaymentItem, price_version: int) -> Envelope:
    """The event telling the registry an enrollment is paid, keyed by it (so its events stay in order)."""
    confirmed = PaymentConfirmed(
        payment_id=payment.id,
        bill_id=item.bill_id,
        enrollment_id=item.enrollment_id,
        amount_fen=item.amount_fen,
        price_version=price_version,
        channel=payment.channel.value,
        receipt_no=payment.receipt_no,
        paid_at=payment.paid_at,
    )
    return new_envelope(SOURCE, item.enrollment_id, confirmed, time=payment.paid_at)


def check_payable(bill: Bill, today: date) -> None:
    if bill.status is BillStatus.PAID:
        raise BillAlreadyPaid({"bill_id": bill.id})
    if bill.status in (BillStatus.CANCELLED, BillStatus.REFUNDED):
        raise BillCancelled({"bill_id": bill.id})
    if today > bill.payable_until:
        # Beijing business date: a payment at 23:30 on the last day is in time.
        raise PaymentWindowClosed({"bill_id": bill.id, "payable_until": bill.payable_until.isoformat()})
