"""Payment orders (支付订单): a resident starts a payment through an online channel; only that channel's
signed notification completes it into a payment. A resident's token never records money."""

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing.models import Bill
from collection.database import one_statement, took
from collection.idempotency import service as idempotency
from collection.ledger.accounts import Channel
from collection.orders import repository
from collection.orders.errors import (
    ChannelNotOrderable,
    OrderCancelled,
    OrderChannelMismatch,
    OrderCompleted,
    OrderExpired,
    OrderNotFound,
)
from collection.orders.models import OrderStatus, PaymentOrder
from collection.orders.schemas import PaymentOrderCreate, PaymentOrderOut
from collection.payments import service as payments
from collection.payments.errors import AmountMismatch
from collection.payments.models import NOTIFYING_CHANNELS, Payment, PaymentOrigin
from shared.clock import Clock, business_date
from shared.money import format_fen


def _reference() -> str:
    # 32 characters at most, as WeChat Pay's out_trade_no; random, so it reveals no volumes.
    return f"CBO{secrets.token_hex(12).upper()}"


async def start(
    session: AsyncSession,
    clock: Clock,
    body: PaymentOrderCreate,
    key: str,
    *,
    subject: str,
    ttl: timedelta,
) -> "Started":
    """Open an order for the bills' full amount; returns it, whether this is a replay of the same request and
    the bills as read (none for a replay). The key is the caller's own: the same key from another resident
    is another request."""
    # The subject hashed: the record key stays within its column whatever the token's subject.
    caller = hashlib.sha256(subject.encode()).hexdigest()[:16]
    request = idempotency.Request.of(f"payment-orders:{caller}", key, body)
    stored = await idempotency.stored_response(session, request)
    if stored is not None:
        replayed = await repository.get(session, PaymentOrderOut.model_validate(stored).order_id)
        if replayed is not None:
            return Started(replayed, replayed=True, bills=[])
    if body.channel not in NOTIFYING_CHANNELS:
        raise ChannelNotOrderable({"channel": body.channel.value})
    now = clock.now()
    to_pay = await payments.bills_named(session, body.bill_ids, for_update=False)
    for bill in to_pay:
        payments.check_payable(bill, business_date(now))
    order = PaymentOrder(
        id=str(uuid.uuid4()),
        reference=_reference(),
        channel=body.channel,
        bill_ids=list(body.bill_ids),
        amount_fen=sum(bill.amount_due_fen for bill in to_pay),
        status=OrderStatus.AWAITING_CHANNEL,
        created_by=subject,
        created_at=now,
        expires_at=now + ttl,
    )
    answer = PaymentOrderOut.of(order, now)
    if one_statement(session):
        record = (request.record_key, request.request_hash, 201, answer.model_dump_json())
        await repository.add_remembered(session, order, record)
    else:
        repository.add(session, order)
        idempotency.remember(session, request, 201, answer)
    return Started(order, replayed=False, bills=to_pay)


class Started(NamedTuple):
    order: PaymentOrder
    replayed: bool
    bills: list[Bill]


async def get(session: AsyncSession, order_id: str, *, for_update: bool = False) -> PaymentOrder:
    order = await (repository.get_for_update if for_update else repository.get)(session, order_id)
    if order is None:
        raise OrderNotFound({"order_id": order_id})
    return order


async def cancel(session: AsyncSession, clock: Clock, order_id: str) -> PaymentOrder:
    """The resident gives up an order before paying; a notification for it is refused from then on."""
    order = await get(session, order_id, for_update=True)
    require_open(order, clock.now())
    order.status = OrderStatus.CANCELLED
    order.closed_at = clock.now()
    return order


async def complete(
    session: AsyncSession,
    clock: Clock,
    *,
    channel: Channel,
    reference: str,
    amount_fen: int,
    transaction_id: str,
    remembered: idempotency.Request | None = None,
    held: PaymentOrder | None = None,
) -> tuple[Payment, bool]:
    """The channel says it took the order's money: record the payment, once, for exactly the order's bills.
    The caller found the channel's transaction id unused, under the notification's lock. Returns the payment
    and whether the notification's idempotency record (`remembered`, answered 200 with the payment) and an
    earlier rejection's link were written with it (`payments.settle_order`: on PostgreSQL one statement writes
    them all, on SQLite one per table)."""
    order = await awaiting(session, clock, channel=channel, reference=reference, held=held)
    now = clock.now()
    if amount_fen != order.amount_fen:
        raise AmountMismatch({"amount_due": format_fen(order.amount_fen), "amount": format_fen(amount_fen)})
    to_pay = await payments.bills_named(session, order.bill_ids)
    receipt = payments.Receipt(
        amount_fen, channel, now, PaymentOrigin.NOTIFICATION, reference=transaction_id, payer=order.created_by
    )
    if remembered is not None:
        completion = payments.OrderCompletion(order.id, now, remembered, 200)
        payment = await payments.settle_order(session, to_pay, receipt, completion)
        took(order, status=OrderStatus.COMPLETED, closed_at=now, payment_id=payment.id)
        return payment, True
    payment = await payments.settle(session, to_pay, receipt, reference_checked=True)
    await session.flush()  # the payment row first: the order refers to it
    completed_by(order, payment, now)
    return payment, False


async def awaiting(
    session: AsyncSession,
    clock: Clock,
    *,
    channel: Channel,
    reference: str,
    held: PaymentOrder | None = None,
) -> PaymentOrder:
    """The order a channel's notification quotes, locked, if it still waits for that channel; `held`: an
    order this transaction locked already (the sandbox's), taken if it is the one quoted."""
    if held is not None and held.reference == reference:
        order: PaymentOrder | None = held
    else:
        order = await repository.by_reference_for_update(session, reference)
    if order is None:
        raise OrderNotFound({"order_reference": reference})
    if order.channel is not channel:
        raise OrderChannelMismatch({"order_reference": reference, "order_channel": order.channel.value})
    require_open(order, clock.now())
    return order


def completed_by(order: PaymentOrder, payment: Payment, now: datetime) -> None:
    order.status, order.closed_at, order.payment_id = OrderStatus.COMPLETED, now, payment.id


def require_open(order: PaymentOrder, now: datetime) -> None:
    """The order still waits for its channel; otherwise the refusal that says why not."""
    status = order.status_at(now)
    if status is OrderStatus.COMPLETED:
        raise OrderCompleted({"order_id": order.id, "payment_id": order.payment_id})
    if status is OrderStatus.EXPIRED:
        raise OrderExpired({"order_id": order.id, "expires_at": order.expires_at.isoformat()})
    if status is OrderStatus.CANCELLED:
        raise OrderCancelled({"order_id": order.id})
