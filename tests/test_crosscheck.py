"""The cross-service check (核对) in process: both services' standings agree through bills, payments and
repricings; events lost between them are found, published again with their original ids and applied once;
collection's books catch a bill paid twice. The broker is played by `pump`, which delivers what each outbox
holds unpublished to the other service and marks it published, as the relay does."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from canbao import check
from collection.database import OutboxMessage as CollectionOutbox
from collection.payments.models import PaymentItem
from registry.database import OutboxMessage as RegistryOutbox
from shared.crosscheck import EnrollmentStanding
from shared.events import Envelope
from shared.outbox import OutboxMixin
from tests.collection.helpers import deliver
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, assign, deliver_envelope, enrolled, person


async def pump(
    source: Harness, target: Harness, model: type[OutboxMixin], lose: frozenset[str] = frozenset()
) -> int:
    """Deliver the source's unpublished events to the target, except those about `lose` (the broker lost
    them); every one is marked published either way. Returns how many were delivered."""
    async with source.sessionmaker() as s, s.begin():
        rows = (await s.scalars(select(model).where(model.published_at.is_(None)).order_by(model.id))).all()
        await s.execute(
            update(model).where(model.id.in_([r.id for r in rows])).values(published_at=datetime.now(UTC))
        )
    delivered = 0
    for row in rows:
        envelope = Envelope.from_bytes(row.payload)
        if envelope.subject in lose:
            continue
        if model is RegistryOutbox:
            await deliver(target, envelope)
        else:
            await deliver_envelope(target, envelope)
        delivered += 1
    return delivered


async def both_ways(registry: Harness, collection: Harness, lose: frozenset[str] = frozenset()) -> None:
    while await pump(registry, collection, RegistryOutbox, lose) + await pump(
        collection, registry, CollectionOutbox, lose
    ):
        pass


def report() -> check.CheckReport:
    return check.CheckReport(["340104"], 2024)


async def pay(collection: Harness, enrollment_id: str) -> dict[str, Any]:
    bill = (await collection.client.get("/v1/bills", params={"enrollment_id": enrollment_id})).json()[
        "items"
    ][0]
    body = {"bill_id": bill["bill_id"], "amount": bill["amount_due"], "channel": "tax_hall"}
    paid = await collection.client.post("/v1/payments", json=body, headers={"Idempotency-Key": enrollment_id})
    assert paid.status_code == 201, paid.text
    result: dict[str, Any] = paid.json()
    return result


async def test_standings_agree_through_billing_payment_and_repricing(
    registry: Harness, collection: Harness
) -> None:
    owing = await enrolled(registry, person(), HEFEI)
    paying = await enrolled(registry, person(), HEFEI)
    subsidised_who = person()
    subsidised = await enrolled(registry, subsidised_who, HEFEI)
    await both_ways(registry, collection)
    await pay(collection, paying["enrollment_id"])
    assert (await assign(registry, subsidised_who, HEFEI, "minimum_living")).status_code == 201
    await both_ways(registry, collection)

    found = report()
    assert await check.compare(registry.client, collection.client, found) == []
    assert (found.registry.listed, found.collection.listed) == (3, 3)
    standings = {
        s.enrollment_id: s
        for s in check_standings(await registry.client.get(check.REGISTRY_STANDINGS, params=HEFEI))
    }
    assert standings[owing["enrollment_id"]].standing == "open"
    assert standings[paying["enrollment_id"]].standing == "paid"
    assert standings[paying["enrollment_id"]].payment_id is not None
    assert standings[subsidised["enrollment_id"]].price_version == 2


def check_standings(response: Any) -> list[EnrollmentStanding]:
    assert response.status_code == 200, response.text
    return [EnrollmentStanding.model_validate(item) for item in response.json()["items"]]


async def test_lost_events_are_found_and_published_again_with_their_ids(
    registry: Harness, collection: Harness
) -> None:
    never_billed = await enrolled(registry, person(), HEFEI)
    paid = await enrolled(registry, person(), HEFEI)
    await both_ways(registry, collection, lose=frozenset({never_billed["enrollment_id"]}))
    await pay(collection, paid["enrollment_id"])
    await both_ways(registry, collection, lose=frozenset({paid["enrollment_id"]}))  # the confirmation is lost

    found = report()
    differences = await check.compare(registry.client, collection.client, found)
    assert [(d.enrollment_id, d.kind) for d in differences] == sorted(
        [
            (never_billed["enrollment_id"], check.DifferenceKind.UNKNOWN_TO_COLLECTION),
            (paid["enrollment_id"], check.DifferenceKind.STANDINGS_DIFFER),
        ]
    )
    backlog = (await registry.client.get(check.BACKLOG)).json()
    assert backlog == {"unpublished": 0, "oldest_unpublished_at": None, "dead_letters_open": 0}

    subjects = [d.enrollment_id for d in differences]
    assert await check.republish(registry.client, subjects, "核对员") == sorted(subjects)
    assert await check.republish(collection.client, subjects, "核对员") == [paid["enrollment_id"]]
    assert (await registry.client.get(check.BACKLOG)).json()["unpublished"] == 2  # both enrollments' created
    before = await outbox_ids(registry, RegistryOutbox)
    await both_ways(registry, collection)
    await both_ways(registry, collection)  # nothing left to send: changes nothing

    assert await check.compare(registry.client, collection.client, found) == []
    assert await outbox_ids(registry, RegistryOutbox) == before  # sent again, not written again
    bills = await collection.client.get("/v1/bills", params={"enrollment_id": subjects})
    assert len(bills.json()["items"]) == 2  # the redelivered enrollment was billed once
    unknown = await registry.client.post(check.REPUBLISH, json={"subjects": ["nobody"], "requested_by": "x"})
    assert unknown.json() == {"events": 0, "subjects": []}


async def outbox_ids(h: Harness, model: type[OutboxMixin]) -> list[str]:
    async with h.sessionmaker() as s:
        return list((await s.scalars(select(model.event_id).order_by(model.id))).all())


async def test_the_books_catch_a_bill_paid_twice(registry: Harness, collection: Harness) -> None:
    enrollment = await enrolled(registry, person(), HEFEI)
    other = await enrolled(registry, person(), HEFEI)
    await both_ways(registry, collection)
    first = await pay(collection, enrollment["enrollment_id"])
    assert (await collection.client.get(check.LEDGER_CHECK)).json()["ok"] is True
    second = await pay(collection, other["enrollment_id"])
    async with collection.sessionmaker() as s, s.begin():
        # The second payment's item moved onto the first bill: that bill now has two payments, the other none.
        bill_id = (
            await s.scalars(select(PaymentItem.bill_id).where(PaymentItem.payment_id == first["payment_id"]))
        ).one()
        await s.execute(
            update(PaymentItem).where(PaymentItem.payment_id == second["payment_id"]).values(bill_id=bill_id)
        )

    books = (await collection.client.get(check.LEDGER_CHECK)).json()

    assert books["ok"] is False
    assert bill_id in books["bills_not_settled_once"]
    assert len(books["bills_not_settled_once"]) == 2
