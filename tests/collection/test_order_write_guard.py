"""A channel's notification completing an order is written in one statement on PostgreSQL, and records a
payment only when that statement settled every bill it was given. The API cannot reach the guard (the request
holds the order's bills locked from their check to the write), so the service is driven here with one bill
settled by another writer in between: nothing is recorded and the caller is refused."""

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from collection.database import OutboxMessage
from collection.idempotency import service as idempotency
from collection.idempotency.models import IdempotencyRecord
from collection.ledger.accounts import Channel
from collection.ledger.models import LedgerEntry, LedgerTransaction
from collection.notifications.models import NotificationRejection
from collection.orders import repository as orders
from collection.payments import service as payments
from collection.payments.errors import BillAlreadyPaid
from collection.payments.models import Payment, PaymentItem, PaymentOrigin
from tests.collection.helpers import open_bill, start_order
from tests.conftest import Harness

NOW = "2023-11-01T10:00:00+08:00"
WRITTEN: tuple[type[Any], ...] = (
    Payment,
    PaymentItem,
    LedgerTransaction,
    LedgerEntry,
    OutboxMessage,
    IdempotencyRecord,
    NotificationRejection,
)


async def rows(session: AsyncSession) -> dict[str, int]:
    counts = [await session.scalar(select(func.count()).select_from(table)) for table in WRITTEN]
    return {table.__tablename__: count or 0 for table, count in zip(WRITTEN, counts, strict=True)}


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite writes through the unit of work instead
async def test_a_bill_settled_between_the_check_and_the_write_records_nothing(collection: Harness) -> None:
    collection.at(NOW)
    bills = [(await open_bill(collection))["bill_id"] for _ in range(2)]
    order = await start_order(collection, bills)
    now = collection.app.state.clock.now()
    async with collection.sessionmaker() as session:
        held = await orders.by_reference_for_update(session, order["reference"])
        assert held is not None
        to_pay = await payments.bills_named(session, held.bill_ids)
        before = await rows(session)
        # Another writer settles the second bill; the service still holds it as it was checked, open.
        await session.execute(
            text("UPDATE bills SET status = 'paid', paid_at = :now WHERE id = :id"),
            {"now": now, "id": bills[1]},
        )
        receipt = payments.Receipt(
            held.amount_fen,
            Channel.WECHAT,
            now,
            PaymentOrigin.NOTIFICATION,
            reference=f"WX{uuid.uuid4().hex}",
        )
        completion = payments.OrderCompletion(
            held.id, now, idempotency.Request("notification:wechat", str(uuid.uuid4()), "0" * 64), 200
        )

        with pytest.raises(BillAlreadyPaid) as refused:
            await payments.settle_order(session, to_pay, receipt, completion)

        assert refused.value.details == {"bill_id": bills[1]}
        assert await rows(session) == before  # no payment, ledger, event, idempotency record or link
        status = await session.scalar(
            text("SELECT status FROM payment_orders WHERE id = :id"), {"id": held.id}
        )
        assert status == order["status"]
        await (
            session.rollback()
        )  # what the request's refusal does: the bill the statement settled is open again
    first = await collection.client.get(f"/v1/bills/{bills[0]}")
    assert first.json()["status"] == "open"
