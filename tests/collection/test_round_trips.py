"""Collection's requests of the resident's flow in few round trips (issue 19): on PostgreSQL a channel's
notification completing an order writes everything in one statement, and a new payment order with its
idempotency record in one; nothing is read twice. What is written stays the same on both databases."""

from typing import Any

from sqlalchemy import func, select

from collection.database import OutboxMessage
from collection.payments.models import Payment
from shared.events import COLLECTION_PAYMENTS
from tests.collection.helpers import notify_order, open_bill, resident_token, start_order
from tests.conftest import Harness
from tests.support import statements

_WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")


def writes(sent: list[str]) -> list[str]:
    return [s for s in sent if s.lstrip().upper().startswith(_WRITES)]


async def counts(h: Harness) -> tuple[int, int]:
    """Payments recorded, payment confirmations in the outbox."""
    async with h.sessionmaker() as s:
        paid = await s.scalar(select(func.count()).select_from(Payment))
        told = await s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.topic == COLLECTION_PAYMENTS)
        )
    return int(paid or 0), int(told or 0)


async def test_a_notification_completing_an_order_is_one_write_and_replays(collection: Harness) -> None:
    bills = [await open_bill(collection) for _ in range(2)]  # a family's, paid at once
    token = resident_token()
    order = await start_order(collection, [b["bill_id"] for b in bills], token=token)

    with statements() as sent:
        first = await notify_order(collection, order, transaction_id="WX-ONE")
    again = await notify_order(collection, order, transaction_id="WX-ONE")  # delivered again

    assert first.status_code == 200, first.text
    if collection.backend == "postgresql":
        assert len(writes(sent)) == 1, writes(sent)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert again.json() == first.json()
    payment = first.json()
    assert [i["bill_id"] for i in payment["items"]] == [b["bill_id"] for b in bills]
    assert await counts(collection) == (1, 2)  # one confirmation per enrollment, once
    for bill in bills:
        standing = (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()
        assert (standing["status"], standing["paid_at"]) == ("paid", payment["paid_at"])
    shown = await collection.client.get(
        f"/v1/payment-orders/{order['order_id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert (shown.json()["status"], shown.json()["payment_id"]) == ("completed", payment["payment_id"])
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True


async def test_a_refused_notification_recorded_by_a_later_attempt_points_at_its_payment(
    collection: Harness,
) -> None:
    bill = await open_bill(collection)
    order = await start_order(collection, [bill["bill_id"]])
    refused = await notify_order(collection, order, amount="3.80", transaction_id="WX-LATER")
    assert refused.status_code == 422
    recorded = await notify_order(collection, order, transaction_id="WX-LATER")
    assert recorded.status_code == 200, recorded.text

    def kept(response: Any) -> list[tuple[str, str | None]]:
        return [(r["transaction_id"], r["payment_id"]) for r in response.json()["items"]]

    everything = await collection.client.get("/v1/notification-rejections", params={"open": "false"})
    assert kept(everything) == [("WX-LATER", recorded.json()["payment_id"])]
    assert kept(await collection.client.get("/v1/notification-rejections")) == []


async def test_the_sandbox_reads_its_order_once(collection: Harness) -> None:
    bill = await open_bill(collection)
    token = resident_token()
    order = await start_order(collection, [bill["bill_id"]], token=token)

    with statements() as sent:
        paid = await collection.client.post(
            f"/v1/sandbox/payment-orders/{order['order_id']}/payment",
            headers={"Authorization": f"Bearer {token}"},
        )

    assert paid.status_code == 200, paid.text
    assert len([s for s in sent if s.lstrip().upper().startswith("SELECT PAYMENT_ORDERS.")]) == 1
    assert await counts(collection) == (1, 1)


async def test_a_payment_order_reads_its_bills_once_and_writes_once(collection: Harness) -> None:
    bill = await open_bill(collection)

    with statements() as sent:
        order = await start_order(collection, [bill["bill_id"]], key="same-key")
    again = await start_order(collection, [bill["bill_id"]], key="same-key")

    assert len([s for s in sent if "FROM BILLS" in s.upper()]) == 1
    if collection.backend == "postgresql":
        audit = [s for s in writes(sent) if "AUDIT_EVENTS" in s.upper()]
        assert len(writes(sent)) - len(audit) == 1, writes(sent)
    assert again == order  # replayed from the idempotency record written with it
