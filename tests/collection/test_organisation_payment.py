"""A university pays for its batch as one payer: what it owes, one payment (a tax officer records it at the
counter), one confirmation per student."""

from typing import Any

import pytest
from sqlalchemy import select

from collection.database import OutboxMessage
from shared.events import Envelope, PaymentConfirmed
from tests.collection.helpers import deliver, enrollment_event
from tests.conftest import Harness
from tests.support import problem

UNIVERSITY = {"name": "合肥工业大学", "region_code": "340104", "coverage_year": 2024}


async def batch(h: Harness, dues: list[int], organisation: str = "合肥工业大学") -> list[str]:
    enrollment_ids = []
    for due in dues:
        event = enrollment_event(due, basis="student", payer_organisation=organisation)
        await deliver(h, event)
        enrollment_ids.append(event.subject)
    return enrollment_ids


async def due(h: Harness, organisation: dict[str, Any] = UNIVERSITY) -> dict[str, Any]:
    params = {"organisation": organisation["name"]} | {
        k: organisation[k] for k in ("region_code", "coverage_year")
    }
    body: dict[str, Any] = (await h.client.get("/v1/bills/organisation-due", params=params)).json()
    return body


async def test_a_university_pays_its_batch_at_once(collection: Harness) -> None:
    enrollment_ids = await batch(collection, [38000, 38000, 3800])
    await batch(collection, [38000], organisation="安徽大学")
    await deliver(collection, enrollment_event(38000))  # someone paying for themselves

    owed = await due(collection)
    assert (owed["open_bills"], owed["amount_due"]) == (3, "798.00")
    listed = await collection.client.get("/v1/bills", params={"enrollment_id": enrollment_ids[0]})
    assert listed.json()["items"][0]["payer_organisation"] == "合肥工业大学"

    response = await collection.client.post(
        "/v1/payments",
        json={"organisation": UNIVERSITY, "amount": "798.00", "channel": "tax_hall"},
        headers={"Idempotency-Key": "hfut-2024-1"},
    )
    assert response.status_code == 201, response.text
    paid = response.json()
    assert sorted(i["enrollment_id"] for i in paid["items"]) == sorted(enrollment_ids)
    assert (await due(collection))["open_bills"] == 0
    other = await due(collection, UNIVERSITY | {"name": "安徽大学"})
    assert (other["open_bills"], other["amount_due"]) == (1, "380.00")

    async with collection.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage))).all()
    confirmed = [Envelope.from_bytes(r.payload).payload(PaymentConfirmed) for r in rows]
    assert sorted(c.enrollment_id for c in confirmed) == sorted(enrollment_ids)
    assert {c.payment_id for c in confirmed} == {paid["payment_id"]}

    # Nothing left to pay: a second payment is refused.
    again = await collection.client.post(
        "/v1/payments",
        json={"organisation": UNIVERSITY, "amount": "798.00", "channel": "tax_hall"},
        headers={"Idempotency-Key": "hfut-2024-2"},
    )
    assert (again.status_code, problem(again)["code"]) == (404, "no_open_bills")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"organisation": UNIVERSITY, "amount": "760.00"}, 422, "amount_mismatch"),
        ({"organisation": UNIVERSITY | {"name": "无此学校"}, "amount": "798.00"}, 404, "no_open_bills"),
        ({"organisation": UNIVERSITY, "bill_id": "x", "amount": "798.00"}, 422, "validation_error"),
        ({"organisation": UNIVERSITY | {"region_code": "3401"}, "amount": "798.00"}, 422, "validation_error"),
    ],
)
async def test_a_bad_organisation_payment_settles_nothing(
    collection: Harness, body: dict[str, Any], status: int, code: str
) -> None:
    await batch(collection, [38000, 38000, 3800])
    response = await collection.client.post(
        "/v1/payments", json=body | {"channel": "tax_hall"}, headers={"Idempotency-Key": "bad"}
    )
    assert (response.status_code, problem(response)["code"]) == (status, code)
    assert (await due(collection))["open_bills"] == 3
