"""Enrollment events become bills, exactly once; undeliverable messages are set aside, not retried forever."""

from sqlalchemy import func, select

from collection.database import DeadLetter, InboxMessage
from tests.collection.helpers import consumer, deliver, enrollment_event, record, repricing_event
from tests.conftest import Harness
from tests.support import problem


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


async def test_operators_list_and_replay_a_dead_letter_once_its_cause_is_fixed(collection: Harness) -> None:
    created = enrollment_event(38000)
    repriced = repricing_event(created, 0, version=2)
    # The repricing arrives before its bill exists: retried, then set aside without blocking the partition.
    await consumer(collection).handle(record(repriced.to_bytes(), key=repriced.subject))
    await consumer(collection).handle(record(b"{not json"))
    listed = (await collection.client.get("/v1/dead-letters")).json()["items"]
    assert [(d["reason"], d["resolution"]) for d in listed] == [
        ("handler_failed", None),
        ("malformed_envelope", None),
    ]
    assert created.data["id_number"] not in str(listed)  # payloads are shown masked
    letter, garbage = listed[0]["id"], listed[1]["id"]

    # Not yet: the bill is still missing, the replay fails and changes nothing.
    early = await collection.client.post(f"/v1/dead-letters/{letter}/replay")
    assert (early.status_code, problem(early)["code"]) == (409, "replay_failed")

    await deliver(collection, created)
    replayed = await collection.client.post(f"/v1/dead-letters/{letter}/replay")
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["resolution"], replayed.json()["resolved_by"]) == ("replayed", "dev-admin")
    [bill] = (await collection.client.get("/v1/bills", params={"enrollment_id": created.subject})).json()[
        "items"
    ]
    assert bill["amount_due"] == "0.00"
    again = await collection.client.post(f"/v1/dead-letters/{letter}/replay")
    assert (again.status_code, problem(again)["code"]) == (409, "dead_letter_resolved")
    # The same event redelivered by the broker is now a duplicate the inbox skips.
    await deliver(collection, repriced)

    unreplayable = await collection.client.post(f"/v1/dead-letters/{garbage}/replay")
    assert problem(unreplayable)["details"]["reason"] == "malformed_envelope"
    dropped = await collection.client.post(f"/v1/dead-letters/{garbage}/discard", json={"note": "not JSON"})
    assert dropped.json()["resolution"] == "discarded"
    assert (await collection.client.get("/v1/dead-letters")).json()["items"] == []
    resolved = (await collection.client.get("/v1/dead-letters", params={"state": "resolved"})).json()["items"]
    assert len(resolved) == 2
