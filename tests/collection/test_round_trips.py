"""Collection's requests of the resident's flow in few round trips (issue 19): on PostgreSQL a channel's
notification completing an order writes everything in one statement (on SQLite one per table), and a new
payment order with its idempotency record in one; nothing is read twice, and what they read (the order, its
bills, the idempotency record, the wait for a bill) is read, and what they write written, through the driver
itself: SQLAlchemy's execution of a statement cost more than its round trip.
What is written stays the same on both databases."""

import re
from typing import Any

from sqlalchemy import func, select

from collection.database import OutboxMessage
from collection.payments.models import Payment
from shared.events import COLLECTION_PAYMENTS
from tests.collection.helpers import notify_order, open_bill, resident_token, start_order
from tests.conftest import Harness
from tests.support import all_statements

_WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")
_DRIVER = "driver: "


def writes(sent: list[str]) -> list[str]:
    return [s for s in sent if s.removeprefix(_DRIVER).lstrip().upper().startswith(_WRITES)]


def own_writes(sent: list[str]) -> list[str]:
    """The request's writes, without the audit trail's (written after it commits, in a transaction of its
    own)."""
    return [s for s in writes(sent) if "AUDIT_EVENTS" not in s.upper()]


def through_sqlalchemy(sent: list[str]) -> list[str]:
    """The statements SQLAlchemy executed, but the audit trail's (the others went through the driver)."""
    return [s for s in sent if not s.startswith(_DRIVER) and "AUDIT_EVENTS" not in s.upper()]


_WRITTEN = re.compile(r"\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+\"?(\w+)", re.IGNORECASE)


def tables_written(sent: list[str]) -> list[str]:
    """The table each of the request's own writes names, one entry per statement."""
    return [m.group(1).lower() for s in own_writes(sent) if (m := _WRITTEN.match(s.removeprefix(_DRIVER)))]


def reading(table: str, sent: list[str]) -> list[str]:
    return [s for s in sent if f"FROM {table.upper()}" in s.upper()]


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

    with all_statements() as sent:
        first = await notify_order(collection, order, transaction_id="WX-ONE")
    again = await notify_order(collection, order, transaction_id="WX-ONE")  # delivered again

    assert first.status_code == 200, first.text
    assert len(reading("payment_orders", sent)) == len(reading("bills", sent)) == 1
    if collection.backend == "postgresql":
        assert len(writes(sent)) == 1, writes(sent)
        assert through_sqlalchemy(sent) == [], sent
    else:  # no data-modifying WITH: each table's rows in one statement, not the unit of work's one per row
        written = tables_written(sent)
        assert len(written) == len(set(written)) == len(writes(sent)), writes(sent)
        assert {"bills", "payments", "payment_items", "ledger_entries", "outbox"} <= set(written)
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

    with all_statements() as sent:
        paid = await collection.client.post(
            f"/v1/sandbox/payment-orders/{order['order_id']}/payment",
            headers={"Authorization": f"Bearer {token}"},
        )

    assert paid.status_code == 200, paid.text
    assert len(reading("payment_orders", sent)) == 1
    if collection.backend == "postgresql":
        assert len(own_writes(sent)) == 1, own_writes(sent)
        assert through_sqlalchemy(sent) == [], sent
    assert await counts(collection) == (1, 1)


async def test_a_payment_order_reads_its_bills_once_and_writes_once(collection: Harness) -> None:
    bill = await open_bill(collection)

    with all_statements() as sent:
        order = await start_order(collection, [bill["bill_id"]], key="same-key")
    again = await start_order(collection, [bill["bill_id"]], key="same-key")

    assert len(reading("bills", sent)) == 1
    if collection.backend == "postgresql":
        assert len(own_writes(sent)) == 1, writes(sent)
        assert through_sqlalchemy(sent) == [], sent
    assert again == order  # replayed from the idempotency record written with it


async def test_a_wait_for_a_bill_reads_it_as_plain_rows(collection: Harness) -> None:
    bill = await open_bill(collection)
    params = {"enrollment_id": bill["enrollment_id"], "wait_s": 1}

    with all_statements() as sent:
        waited = await collection.client.get("/v1/bills", params=params)

    assert waited.status_code == 200, waited.text
    assert [b["bill_id"] for b in waited.json()["items"]] == [bill["bill_id"]]
    assert len(reading("bills", sent)) == 1
    if collection.backend == "postgresql":
        assert reading("bills", through_sqlalchemy(sent)) == [], sent
