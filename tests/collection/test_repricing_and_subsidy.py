"""Bills follow the registry's price; a bill that leaves nothing to pay is settled by the subsidy at once."""

from sqlalchemy import select

from collection.database import OutboxMessage
from shared.events import Envelope, PaymentConfirmed
from tests.collection.helpers import deliver, enrollment_event, repricing_event
from tests.conftest import Harness
from tests.support import problem


async def bill_of(h: Harness, enrollment_id: str) -> dict[str, object]:
    [bill] = (await h.client.get("/v1/bills", params={"enrollment_id": enrollment_id})).json()["items"]
    return dict(bill)


async def confirmations(h: Harness) -> list[PaymentConfirmed]:
    async with h.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    envelopes = [Envelope.from_bytes(r.payload) for r in rows]
    return [e.payload(PaymentConfirmed) for e in envelopes if e.type == PaymentConfirmed.event_type]


async def test_an_open_bill_takes_the_newer_price(collection: Harness) -> None:
    created = enrollment_event(38000)
    await deliver(collection, created)
    await deliver(collection, repricing_event(created, 3800, version=2))

    bill = await bill_of(collection, created.subject)
    assert (bill["amount_due"], bill["status"]) == ("38.00", "open")
    paid = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill["bill_id"], "amount": "38.00", "channel": "tax_hall"},
        headers={"Idempotency-Key": "k"},
    )
    assert paid.status_code == 201
    [confirmation] = await confirmations(collection)
    assert (confirmation.amount_fen, confirmation.price_version) == (3800, 2)


async def test_an_older_price_arriving_late_is_ignored(collection: Harness) -> None:
    created = enrollment_event(38000)
    await deliver(collection, created)
    await deliver(collection, repricing_event(created, 3800, version=3))
    await deliver(collection, repricing_event(created, 19000, version=2))
    assert (await bill_of(collection, created.subject))["amount_due"] == "38.00"


async def test_a_fully_subsidised_enrollment_is_settled_and_confirmed_at_once(collection: Harness) -> None:
    created = enrollment_event(0)
    await deliver(collection, created)

    bill = await bill_of(collection, created.subject)
    assert (bill["amount_due"], bill["status"]) == ("0.00", "paid")
    [confirmation] = await confirmations(collection)
    assert (confirmation.enrollment_id, confirmation.amount_fen, confirmation.channel) == (
        created.subject,
        0,
        "subsidy",
    )
    assert confirmation.paid_at == created.time


async def test_repricing_to_nothing_due_settles_the_bill(collection: Harness) -> None:
    created = enrollment_event(38000)
    await deliver(collection, created)
    await deliver(collection, repricing_event(created, 0, version=2))

    assert (await bill_of(collection, created.subject))["status"] == "paid"
    [confirmation] = await confirmations(collection)
    assert (confirmation.channel, confirmation.price_version) == ("subsidy", 2)


async def test_a_paid_bill_repriced_lower_refunds_the_difference(collection: Harness) -> None:
    # The registry reprices a paid enrollment only where its policy refunds within the coverage period.
    created = enrollment_event(38000)
    await deliver(collection, created)
    bill = await bill_of(collection, created.subject)
    await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill["bill_id"], "amount": "380.00", "channel": "cash"},
        headers={"Idempotency-Key": "k"},
    )
    await deliver(collection, repricing_event(created, 3800, version=2))
    after = await bill_of(collection, created.subject)
    # The bill follows the registry's price (both services stand alike); the difference went back.
    assert (after["amount_due"], after["status"]) == ("38.00", "paid")
    assert len(await confirmations(collection)) == 1
    refunds = (await collection.client.get("/v1/refunds", params={"bill_id": str(bill["bill_id"])})).json()[
        "items"
    ]
    assert [(r["amount"], r["reason"], r["ends_enrollment"]) for r in refunds] == [
        ("342.00", "repriced", False)
    ]
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True


async def test_subsidy_is_not_a_channel_people_pay_through(collection: Harness) -> None:
    created = enrollment_event(38000)
    await deliver(collection, created)
    bill = await bill_of(collection, created.subject)
    response = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill["bill_id"], "amount": "380.00", "channel": "subsidy"},
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 422
    assert problem(response)["code"] == "validation_error"
    spec = (await collection.client.get("/openapi.json")).json()
    channels = spec["components"]["schemas"]["PaymentCreate"]["properties"]["channel"]["enum"]
    assert "subsidy" not in channels
    assert "wechat" in channels
