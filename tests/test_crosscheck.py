"""The cross-service check (核对) in process: both services' HTTP APIs compared, a lost confirmation published
again and applied once, and a difference collection cannot repair reported."""

from datetime import date
from typing import Any

from sqlalchemy import select

from canbao import check
from collection.database import OutboxMessage as CollectionOutbox
from registry.database import OutboxMessage as RegistryOutbox
from shared.events import Envelope, PaymentConfirmed
from tests.collection.helpers import deliver
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, deliver_payment, deliver_to_registry, enrolled, person

DAY = date(2023, 10, 8)


async def outbox(h: Harness, model: Any, after: int = 0) -> list[tuple[int, Envelope]]:
    async with h.sessionmaker() as s:
        rows = (await s.scalars(select(model).where(model.id > after).order_by(model.id))).all()
    return [(row.id, Envelope.from_bytes(row.payload)) for row in rows]


async def confirmations(collection: Harness, after: int = 0) -> list[tuple[int, PaymentConfirmed]]:
    return [
        (row_id, envelope.payload(PaymentConfirmed))
        for row_id, envelope in await outbox(collection, CollectionOutbox, after)
        if envelope.type == PaymentConfirmed.event_type
    ]


async def test_a_lost_confirmation_is_found_and_republished(registry: Harness, collection: Harness) -> None:
    people = [await enrolled(registry, person(), HEFEI) for _ in range(2)]
    for _, envelope in await outbox(registry, RegistryOutbox):
        await deliver(collection, envelope)  # registry -> collection, as the broker would
    for enrollment in people:
        bill = await collection.client.get("/v1/bills", params={"enrollment_id": enrollment["enrollment_id"]})
        body = {"bill_id": bill.json()["items"][0]["bill_id"], "amount": "380.00", "channel": "wechat"}
        paid = await collection.client.post(
            "/v1/payments", json=body, headers={"Idempotency-Key": enrollment["enrollment_id"]}
        )
        assert paid.status_code == 201, paid.text
    sent = await confirmations(collection)
    delivered, lost = sent[0][1], sent[1][1]
    await deliver_to_registry(registry, delivered, delivered.enrollment_id)  # the other one is lost

    report = await check.compare(registry.client, collection.client, "340104", DAY)

    assert (report.registry_paid, report.collection_paid) == (1, 2)
    assert [(d.enrollment_id, d.kind) for d in report.differences] == [
        (lost.enrollment_id, check.DifferenceKind.CONFIRMATION_MISSING)
    ]
    await check.republish(collection.client, report, "核对员")
    assert report.republished == [lost.enrollment_id]
    [(_, again)] = await confirmations(collection, after=sent[-1][0])
    assert again == lost
    await deliver_to_registry(registry, again, again.enrollment_id)
    await deliver_to_registry(registry, again, again.enrollment_id)  # published twice: applied once
    await check.verify(registry.client, report, wait_s=0)
    assert report.repaired == [lost.enrollment_id]
    assert report.ok
    repaired = (await registry.client.get(f"/v1/enrollments/{lost.enrollment_id}")).json()
    assert (repaired["status"], repaired["payment_id"]) == ("active", lost.payment_id)
    assert (await check.compare(registry.client, collection.client, "340104", DAY)).differences == []


async def test_a_payment_collection_never_recorded_is_reported_not_repaired(
    registry: Harness, collection: Harness
) -> None:
    enrollment = await enrolled(registry, person(), HEFEI)
    await deliver_payment(registry, enrollment, "2023-10-08T11:00:00+08:00")

    report = await check.compare(registry.client, collection.client, "340104", DAY)
    await check.republish(collection.client, report, "核对员")

    assert [(d.enrollment_id, d.kind) for d in report.differences] == [
        (enrollment["enrollment_id"], check.DifferenceKind.UNKNOWN_TO_COLLECTION)
    ]
    assert (report.republished, report.ok) == ([], False)
    other_day = await check.compare(registry.client, collection.client, "340104", date(2023, 10, 9))
    assert other_day.differences == []
    refused = await collection.client.post(
        "/v1/payments/confirmations",
        json={"enrollment_ids": [enrollment["enrollment_id"]], "requested_by": "x"},
    )
    assert refused.json() == {"republished": [], "not_paid": [enrollment["enrollment_id"]]}
