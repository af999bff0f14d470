"""为家人缴费: one payment settles several members' bills (a resident's payment order online, or at the
counter); each enrollment gets its own confirmation."""

from typing import Any

import pytest
from sqlalchemy import select

from collection.database import OutboxMessage
from shared.events import COLLECTION_PAYMENTS, Envelope, PaymentConfirmed
from tests.collection.helpers import notify_order, open_bill, resident_token, start_order
from tests.conftest import Harness
from tests.support import problem


async def family(h: Harness) -> list[dict[str, Any]]:
    return [await open_bill(h, 38000), await open_bill(h, 3800), await open_bill(h, 38000)]


async def test_one_payment_settles_a_familys_bills(collection: Harness) -> None:
    bills = await family(collection)
    listed = await collection.client.get(
        "/v1/bills", params=[("enrollment_id", b["enrollment_id"]) for b in bills]
    )
    assert {b["bill_id"] for b in listed.json()["items"]} == {b["bill_id"] for b in bills}

    order = await start_order(collection, [b["bill_id"] for b in bills], "alipay", key="family-1")
    assert order["amount"] == "798.00"  # the household's bills in one order
    response = await notify_order(collection, order)

    assert response.status_code == 200, response.text
    paid = response.json()
    assert (paid["amount"], [i["amount"] for i in paid["items"]]) == ("798.00", ["380.00", "38.00", "380.00"])
    for bill in bills:
        assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "paid"
    async with collection.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    confirmations = [Envelope.from_bytes(r.payload).payload(PaymentConfirmed) for r in rows]
    assert [(r.topic, r.key) for r in rows] == [(COLLECTION_PAYMENTS, b["enrollment_id"]) for b in bills]
    assert {(c.payment_id, c.receipt_no) for c in confirmations} == {(paid["payment_id"], paid["receipt_no"])}
    assert [c.amount_fen for c in confirmations] == [38000, 3800, 38000]


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda ids: {"bill_ids": ids, "amount": "760.00"}, 422, "amount_mismatch"),
        (lambda ids: {"bill_ids": [*ids, "missing"], "amount": "798.00"}, 404, "bill_not_found"),
        (lambda ids: {"bill_ids": [ids[0], ids[0]], "amount": "760.00"}, 422, "validation_error"),
        (lambda ids: {"bill_ids": ids, "bill_id": ids[0], "amount": "798.00"}, 422, "validation_error"),
        (lambda ids: {"bill_ids": [], "amount": "0.00"}, 422, "validation_error"),
    ],
)
async def test_a_bad_family_payment_settles_nothing(
    collection: Harness, mutate: Any, status: int, code: str
) -> None:
    bills = await family(collection)
    body = mutate([b["bill_id"] for b in bills]) | {"channel": "tax_hall"}

    response = await collection.client.post("/v1/payments", json=body, headers={"Idempotency-Key": "f"})

    assert response.status_code == status, response.text
    assert problem(response)["code"] == code
    for bill in bills:
        assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "open"


async def test_a_family_payment_with_one_bill_already_paid_is_refused_whole(collection: Harness) -> None:
    bills = await family(collection)
    single = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bills[1]["bill_id"], "amount": "38.00", "channel": "cash"},
        headers={"Idempotency-Key": "single"},
    )
    assert single.status_code == 201, single.text
    response = await collection.client.post(
        "/v1/payments",
        json={"bill_ids": [b["bill_id"] for b in bills], "amount": "798.00", "channel": "tax_hall"},
        headers={"Idempotency-Key": "family"},
    )
    assert (response.status_code, problem(response)["code"]) == (409, "bill_already_paid")
    # Online, the household's order is refused whole too.
    ordered = await collection.client.post(
        "/v1/payment-orders",
        json={"bill_ids": [b["bill_id"] for b in bills], "channel": "wechat"},
        headers={"Idempotency-Key": "family-order", "Authorization": f"Bearer {resident_token()}"},
    )
    assert (ordered.status_code, problem(ordered)["code"]) == (409, "bill_already_paid")
    assert (await collection.client.get(f"/v1/bills/{bills[0]['bill_id']}")).json()["status"] == "open"
