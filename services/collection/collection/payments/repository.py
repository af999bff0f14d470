from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing.models import Bill, BillStatus
from collection.database import OutboxMessage, flush_held, held_rows, one_statement, table
from collection.idempotency.models import IdempotencyRecord
from collection.ledger.accounts import Channel
from collection.ledger.models import LedgerEntry, LedgerTransaction
from collection.notifications.models import NotificationRejection
from collection.orders.models import OrderStatus, PaymentOrder
from collection.payments.models import Payment, PaymentItem
from shared import bulk
from shared.db import DriverStatement

# A paid or refunded bill was settled by exactly one payment; an open or cancelled one by none.
_SETTLED = (BillStatus.PAID, BillStatus.REFUNDED)


async def get(session: AsyncSession, payment_id: str) -> Payment | None:
    return await session.get(Payment, payment_id)


def add(session: AsyncSession, payment: Payment) -> None:
    session.add(payment)


async def totals_by_channel(session: AsyncSession) -> dict[Channel, int]:
    query = select(Payment.channel, func.sum(Payment.amount_fen)).group_by(Payment.channel)
    return {channel: int(total) for channel, total in (await session.execute(query)).all()}


async def settled_by_channel(session: AsyncSession) -> dict[Channel, int]:
    """Money each channel settled into the treasury (confirmed by reconciliation)."""
    query = (
        select(Payment.channel, func.sum(Payment.amount_fen))
        .where(Payment.settled_at.is_not(None))
        .group_by(Payment.channel)
    )
    return {channel: int(total) for channel, total in (await session.execute(query)).all()}


async def by_receipt_no(session: AsyncSession, receipt_no: str) -> Payment | None:
    return (await session.scalars(select(Payment).where(Payment.receipt_no == receipt_no))).one_or_none()


async def item_for_bill(session: AsyncSession, bill_id: str) -> tuple[PaymentItem, Payment] | None:
    query = select(PaymentItem, Payment).join(Payment, Payment.id == PaymentItem.payment_id)
    row = (await session.execute(query.where(PaymentItem.bill_id == bill_id))).first()
    return (row[0], row[1]) if row else None


async def by_channel_reference(session: AsyncSession, channel: Channel, reference: str) -> Payment | None:
    if one_statement(session):
        # Looked up on every notification, found almost never: a plain row first, the payment only if found.
        named = {"channel": channel.value, "reference": reference}
        found = await held_rows(session, _BY_CHANNEL_REFERENCE, named)
        return await get(session, found[0]["id"]) if found else None
    query = select(Payment).where(Payment.channel == channel, Payment.channel_reference == reference)
    return (await session.scalars(query)).one_or_none()


_BY_CHANNEL_REFERENCE = DriverStatement(
    text("SELECT id FROM payments WHERE channel = :channel AND channel_reference = :reference")
)


async def payments_not_matching_items(session: AsyncSession) -> list[str]:
    """Payments whose amount is not what their items put on bills."""
    items = (
        select(PaymentItem.payment_id, func.sum(PaymentItem.amount_fen).label("fen"))
        .group_by(PaymentItem.payment_id)
        .subquery()
    )
    query = (
        select(Payment.id)
        .outerjoin(items, items.c.payment_id == Payment.id)
        .where(func.coalesce(items.c.fen, -1) != Payment.amount_fen)
        .order_by(Payment.id)
    )
    return list((await session.scalars(query)).all())


async def bills_not_settled_once(session: AsyncSession) -> list[str]:
    """Bills paid by more than one payment, paid without one, or holding a payment while not paid."""
    count = func.count(PaymentItem.payment_id)
    query = (
        select(Bill.id)
        .outerjoin(PaymentItem, PaymentItem.bill_id == Bill.id)
        .group_by(Bill.id, Bill.status)
        .having(((Bill.status.in_(_SETTLED)) & (count != 1)) | ((Bill.status.not_in(_SETTLED)) & (count > 0)))
        .order_by(Bill.id)
    )
    return list((await session.scalars(query)).all())


# Bulk writes (a reconciliation records and settles thousands of payments in one request): rows in the order
# of these columns, written with COPY on PostgreSQL (shared.bulk).
PAYMENT_COLUMNS = (
    "id",
    "amount_fen",
    "channel",
    "receipt_no",
    "paid_at",
    "channel_reference",
    "origin",
    "settled_at",
)
ITEM_COLUMNS = ("payment_id", "bill_id", "enrollment_id", "amount_fen", "position")


async def insert_many(
    session: AsyncSession, payments: Sequence[tuple[Any, ...]], items: Sequence[tuple[Any, ...]]
) -> None:
    await bulk.insert_rows(session, Payment, PAYMENT_COLUMNS, payments)
    await bulk.insert_rows(session, PaymentItem, ITEM_COLUMNS, items)


async def settle_many(session: AsyncSession, payment_ids: Sequence[str], at: datetime) -> set[str]:
    """Mark payments settled into the treasury; returns those this did. One a concurrent transaction settled
    first is left out (the WHERE decides after waiting for its row lock), so money is never settled twice."""
    if not payment_ids:
        return set()
    query = (
        update(Payment)
        .where(bulk.among(session, Payment.id, payment_ids), Payment.settled_at.is_(None))
        .values(settled_at=at)
        .returning(Payment.id)
        .execution_options(synchronize_session=False)
    )
    return set((await session.scalars(query)).all())


async def take_references(session: AsyncSession, references: Sequence[tuple[str, str]]) -> None:
    """(payment id, the channel's transaction number) for payments recorded without one."""
    if not references:
        return
    table = cast(Table, Payment.__table__)
    query = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.channel_reference.is_(None))
        .values(channel_reference=bindparam("b_reference"))
    )
    await session.execute(query, [{"b_id": i, "b_reference": r} for i, r in references])


# A channel's notification completing a payment order, on PostgreSQL: everything it writes in one statement
# (the request's transaction holds the order and the bills locked). The bills settle only while open; the
# rest is written only when every one of them did (each part reads `payment`, which has a row only then), so
# a bill settled meanwhile writes nothing and the caller refuses. Foreign keys are checked at the statement's
# end, when the payment row exists. Arrays keep one statement, prepared once, for any number of bills.
_SETTLE_ORDER = DriverStatement(
    text(
        """
WITH settled AS (
    UPDATE bills
    SET status = 'paid', paid_at = CAST(:paid_at AS timestamptz), updated_at = CAST(:now AS timestamptz)
    WHERE id = ANY(CAST(:bill_ids AS varchar[])) AND status = 'open'
    RETURNING id, paid_at, updated_at
), payment AS (
    INSERT INTO payments
        (id, amount_fen, channel, agent_id, receipt_no, paid_at, channel_reference, origin, payer)
    SELECT CAST(:payment_id AS varchar), CAST(:amount_fen AS bigint), CAST(:channel AS varchar),
        CAST(:agent_id AS varchar), CAST(:receipt_no AS varchar), CAST(:paid_at AS timestamptz),
        CAST(:channel_reference AS varchar), CAST(:origin AS varchar), CAST(:payer AS varchar)
    WHERE (SELECT count(*) FROM settled) = cardinality(CAST(:bill_ids AS varchar[]))
    RETURNING id
), items AS (
    INSERT INTO payment_items (payment_id, bill_id, enrollment_id, amount_fen, position)
    SELECT payment.id, i.bill_id, i.enrollment_id, i.amount_fen, i.n - 1
    FROM payment, unnest(
        CAST(:bill_ids AS varchar[]), CAST(:enrollment_ids AS varchar[]), CAST(:item_fen AS bigint[])
    ) WITH ORDINALITY AS i(bill_id, enrollment_id, amount_fen, n)
), booked AS (
    INSERT INTO ledger_transactions (id, kind, reference, occurred_at)
    SELECT CAST(:transaction_id AS varchar), CAST(:kind AS varchar), payment.id, CAST(:paid_at AS timestamptz)
    FROM payment WHERE CAST(:transaction_id AS varchar) IS NOT NULL
    RETURNING id
), entries AS (
    INSERT INTO ledger_entries (transaction_id, account, amount_fen)
    SELECT booked.id, e.account, e.amount_fen
    FROM booked, unnest(CAST(:accounts AS varchar[]), CAST(:entry_fen AS bigint[]))
        WITH ORDINALITY AS e(account, amount_fen, n)
    ORDER BY e.n
), confirmations AS (
    INSERT INTO outbox (event_id, event_type, topic, key, payload, created_at)
    SELECT o.event_id, o.event_type, CAST(:topic AS varchar), o.key, o.payload, CAST(:now AS timestamptz)
    FROM payment, unnest(
        CAST(:event_ids AS varchar[]), CAST(:event_types AS varchar[]), CAST(:keys AS varchar[]),
        CAST(:payloads AS bytea[])
    ) WITH ORDINALITY AS o(event_id, event_type, key, payload, n)
    ORDER BY o.n
), remembered AS (
    INSERT INTO idempotency_keys (key, request_hash, status_code, response_body, created_at)
    SELECT CAST(:record_key AS varchar), CAST(:request_hash AS varchar), CAST(:status_code AS integer),
        CAST(:response_body AS text), CAST(:now AS timestamptz)
    FROM payment
), completed AS (
    UPDATE payment_orders
    SET status = 'completed', closed_at = CAST(:closed_at AS timestamptz), payment_id = payment.id
    FROM payment WHERE payment_orders.id = CAST(:order_id AS varchar)
), linked AS (
    UPDATE notification_rejections SET payment_id = payment.id
    FROM payment
    WHERE notification_rejections.channel = CAST(:channel AS varchar)
        AND notification_rejections.transaction_id = CAST(:channel_reference AS varchar)
)
SELECT id, paid_at, updated_at FROM settled
"""
    )
)


async def settle_order(session: AsyncSession, values: dict[str, Any]) -> list[Any]:
    """Write a notified order's payment at once (`_SETTLE_ORDER`); returns the bills settled, each with its
    id, paid_at and updated_at: all of them, or none when one was no longer open."""
    if one_statement(session):
        return await held_rows(session, _SETTLE_ORDER, values)
    return await _settle_order_in_steps(session, values)


async def _settle_order_in_steps(session: AsyncSession, v: dict[str, Any]) -> list[Any]:
    """`_SETTLE_ORDER`'s rows on SQLite (no data-modifying WITH, no arrays): a statement per table, the
    rows of a table in one, as plain rows rather than through the unit of work. The bills settle only while
    open; the rest is written only when every one of them did, and SQLite's one writer at a time holds the
    bills from this UPDATE to the commit."""
    await flush_held(session)
    bills = table(Bill)
    settled = (
        (
            await session.execute(
                update(bills)
                .where(bills.c.id.in_(v["bill_ids"]), bills.c.status == BillStatus.OPEN)
                .values(status=BillStatus.PAID, paid_at=v["paid_at"], updated_at=v["now"])
                .returning(bills.c.id, bills.c.paid_at, bills.c.updated_at)
            )
        )
        .mappings()
        .all()
    )
    if len(settled) != len(v["bill_ids"]):
        return list(settled)  # the caller refuses, and the request's rollback undoes these
    payment_id = v["payment_id"]
    payment = {name: v[name] for name in _PAYMENT_WRITTEN}
    await session.execute(insert(table(Payment)).values(id=payment_id, **payment))
    items = zip(v["bill_ids"], v["enrollment_ids"], v["item_fen"], strict=True)
    await session.execute(
        insert(table(PaymentItem)),
        [
            {"payment_id": payment_id, "bill_id": b, "enrollment_id": e, "amount_fen": fen, "position": n}
            for n, (b, e, fen) in enumerate(items)
        ],
    )
    if v["transaction_id"] is not None:
        booked = {
            "id": v["transaction_id"],
            "kind": v["kind"],
            "reference": payment_id,
            "occurred_at": v["paid_at"],
        }
        await session.execute(insert(table(LedgerTransaction)).values(**booked))
        entries = zip(v["accounts"], v["entry_fen"], strict=True)
        await session.execute(
            insert(table(LedgerEntry)),
            [{"transaction_id": v["transaction_id"], "account": a, "amount_fen": fen} for a, fen in entries],
        )
    events = zip(v["event_ids"], v["event_types"], v["keys"], v["payloads"], strict=True)
    await session.execute(
        insert(table(OutboxMessage)),
        [
            {
                "event_id": i,
                "event_type": t,
                "topic": v["topic"],
                "key": k,
                "payload": p,
                "created_at": v["now"],
            }
            for i, t, k, p in events
        ],
    )
    remembered = {name: v[name] for name in ("request_hash", "status_code", "response_body")}
    await session.execute(
        insert(table(IdempotencyRecord)).values(key=v["record_key"], created_at=v["now"], **remembered)
    )
    orders = table(PaymentOrder)
    await session.execute(
        update(orders)
        .where(orders.c.id == v["order_id"])
        .values(status=OrderStatus.COMPLETED, closed_at=v["closed_at"], payment_id=payment_id)
    )
    rejections = table(NotificationRejection)
    await session.execute(
        update(rejections)
        .where(rejections.c.channel == v["channel"], rejections.c.transaction_id == v["channel_reference"])
        .values(payment_id=payment_id)
    )
    return list(settled)


# The payment's columns `_SETTLE_ORDER`'s values carry under the same names.
_PAYMENT_WRITTEN = (
    "amount_fen",
    "channel",
    "agent_id",
    "receipt_no",
    "paid_at",
    "channel_reference",
    "origin",
    "payer",
)
