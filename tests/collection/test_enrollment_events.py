"""Enrollment events become bills, exactly once; undeliverable messages are set aside, not retried forever."""

from sqlalchemy import func, select

from collection.database import DeadLetter, InboxMessage
from tests.collection.helpers import consumer, deliver, enrollment_event, record
from tests.conftest import Harness


async def test_an_enrollment_event_issues_one_open_bill(collection: Harness) -> None:
    event = enrollment_event(38000)
    await deliver(collection, event)

    response = await collection.client.get("/v1/bills", params={"enrollment_id": event.subject})
    assert response.status_code == 200
    [bill] = response.json()["items"]
    assert (bill["status"], bill["amount_due"], bill["payer_name"], bill["coverage_year"]) == (
        "open",
        "380.00",
        "王五",
        2024,
    )
    assert bill["id_number_masked"].count("*") == 10
    assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json() == bill


async def test_the_same_event_delivered_twice_yields_one_bill(collection: Harness) -> None:
    event = enrollment_event()
    await deliver(collection, event)
    await deliver(collection, event)

    bills = (await collection.client.get("/v1/bills", params={"enrollment_id": event.subject})).json()[
        "items"
    ]
    assert len(bills) == 1
    async with collection.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(InboxMessage)) == 1


async def test_malformed_and_unknown_messages_go_to_the_dead_letter_table(collection: Harness) -> None:
    c = consumer(collection)
    await c.handle(record(b"{not json"))
    bad_type = enrollment_event().model_copy(update={"type": "canbao.registry.unknown.v9"})
    await c.handle(record(bad_type.to_bytes()))
    missing_field = enrollment_event()
    del missing_field.data["personal_due_fen"]
    await c.handle(record(missing_field.to_bytes()))

    async with collection.sessionmaker() as s:
        reasons = sorted((await s.scalars(select(DeadLetter.reason))).all())
        inbox = await s.scalar(select(func.count()).select_from(InboxMessage))
    assert reasons == ["invalid_payload", "malformed_envelope", "unknown_event_type"]
    assert inbox == 0
    assert (await collection.client.get("/v1/bills")).json()["items"] == []
