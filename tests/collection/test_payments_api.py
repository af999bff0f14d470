"""POST /v1/payments (the counter: a tax officer records money handed over): idempotency keys, amounts,
unknown bills; every payment, at the counter or by a channel's notification, confirmed to the registry
through the outbox."""

from typing import Any

import pytest
from sqlalchemy import func, select

from collection.database import OutboxMessage
from collection.payments.models import Payment
from shared.events import COLLECTION_PAYMENTS, Envelope, PaymentConfirmed
from tests.collection.helpers import open_bill, pay_online
from tests.conftest import Harness
from tests.support import problem


async def pay(h: Harness, payload: dict[str, Any], key: str | None = "key-1") -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await h.client.post("/v1/payments", json=payload, headers=headers)


async def recorded(h: Harness) -> tuple[int, int]:
    async with h.sessionmaker() as s:
        payments = await s.scalar(select(func.count()).select_from(Payment))
        events = await s.scalar(select(func.count()).select_from(OutboxMessage))
    return payments or 0, events or 0


@pytest.mark.parametrize(
    "channel",
    ["wechat", "alipay", "provincial_app", "tax_hall", "cash", "bank"],  # agents: test_agents.py
)
async def test_paying_a_bill_records_the_payment_and_confirms_it(collection: Harness, channel: str) -> None:
    bill = await open_bill(collection)

    if channel in ("tax_hall", "cash"):
        response = await pay(collection, {"bill_id": bill["bill_id"], "amount": "380.00", "channel": channel})
        assert response.status_code == 201, response.text
        paid = response.json()
        assert paid["origin"] == "request"
    else:  # online: the resident's payment order, recorded by the channel's notification
        paid = await pay_online(collection, [bill["bill_id"]], channel)
        assert paid["origin"] == "notification"
    assert (paid["amount"], paid["channel"]) == ("380.00", channel)
    item = {"bill_id": bill["bill_id"], "enrollment_id": bill["enrollment_id"], "amount": "380.00"}
    assert paid["items"] == [item]
    assert paid["receipt_no"].startswith("CB")
    assert (await collection.client.get(f"/v1/payments/{paid['payment_id']}")).json() == paid
    bill_now = (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()
    assert bill_now["status"] == "paid"
    async with collection.sessionmaker() as s:
        [row] = (await s.scalars(select(OutboxMessage))).all()
    assert (row.topic, row.key) == (COLLECTION_PAYMENTS, bill["enrollment_id"])
    event = Envelope.from_bytes(row.payload).payload(PaymentConfirmed)
    assert (event.payment_id, event.amount_fen, event.receipt_no) == (
        paid["payment_id"],
        38000,
        paid["receipt_no"],
    )


async def test_replaying_the_same_key_and_body_returns_the_first_result(collection: Harness) -> None:
    bill = await open_bill(collection)
    payload = {"bill_id": bill["bill_id"], "amount": "380.00", "channel": "tax_hall"}

    first = await pay(collection, payload)
    again = await pay(collection, payload)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await recorded(collection) == (1, 1)


async def test_the_same_key_with_another_body_is_refused(collection: Harness) -> None:
    bill = await open_bill(collection)
    await pay(collection, {"bill_id": bill["bill_id"], "amount": "380.00", "channel": "tax_hall"})

    response = await pay(collection, {"bill_id": bill["bill_id"], "amount": "380.00", "channel": "cash"})

    assert response.status_code == 422
    assert problem(response)["code"] == "idempotency_key_reused"
    assert await recorded(collection) == (1, 1)


async def test_a_paid_bill_cannot_be_paid_again_under_another_key(collection: Harness) -> None:
    bill = await open_bill(collection)
    payload = {"bill_id": bill["bill_id"], "amount": "380.00", "channel": "tax_hall"}
    await pay(collection, payload, key="first")

    response = await pay(collection, payload, key="second")

    assert response.status_code == 409
    assert problem(response)["code"] == "bill_already_paid"
    assert await recorded(collection) == (1, 1)


@pytest.mark.parametrize(
    ("payload", "key", "status", "code"),
    [
        ({"amount": "38.00", "channel": "tax_hall"}, "k", 422, "amount_mismatch"),
        ({"amount": "380.01", "channel": "tax_hall"}, "k", 422, "amount_mismatch"),
        ({"bill_id": "no-such-bill", "amount": "380.00", "channel": "tax_hall"}, "k", 404, "bill_not_found"),
        ({"amount": 380, "channel": "tax_hall"}, "k", 422, "validation_error"),
        ({"amount": "380.001", "channel": "tax_hall"}, "k", 422, "validation_error"),
        ({"amount": "-380.00", "channel": "tax_hall"}, "k", 422, "validation_error"),
        ({"amount": "380.00", "channel": "paypal"}, "k", 422, "validation_error"),
        ({"amount": "380.00", "channel": "tax_hall"}, None, 400, "idempotency_key_required"),
        ({"amount": "380.00", "channel": "tax_hall"}, "x" * 129, 400, "idempotency_key_required"),
    ],
)
async def test_bad_payments_are_refused_and_nothing_is_recorded(
    collection: Harness, payload: dict[str, Any], key: str | None, status: int, code: str
) -> None:
    bill = await open_bill(collection)

    response = await pay(collection, {"bill_id": bill["bill_id"]} | payload, key=key)

    assert response.status_code == status, response.text
    assert problem(response)["code"] == code
    assert await recorded(collection) == (0, 0)
    assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "open"
    if code == "amount_mismatch":
        assert problem(response)["details"] == {"amount_due": "380.00", "amount": payload["amount"]}


async def test_a_refused_payment_does_not_burn_its_idempotency_key(collection: Harness) -> None:
    bill = await open_bill(collection)
    refused = await pay(
        collection, {"bill_id": bill["bill_id"], "amount": "1.00", "channel": "cash"}, key="retry"
    )
    assert refused.status_code == 422

    accepted = await pay(
        collection, {"bill_id": bill["bill_id"], "amount": "380.00", "channel": "cash"}, key="retry"
    )

    assert accepted.status_code == 201


async def test_unknown_payment_is_404(collection: Harness) -> None:
    response = await collection.client.get("/v1/payments/nope")
    assert response.status_code == 404
    assert problem(response)["code"] == "payment_not_found"
