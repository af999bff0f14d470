"""退费: refunds for the reasons a policy names, the refusal otherwise, and the books after them."""

from typing import Any

import pytest
from sqlalchemy import select

from collection.database import OutboxMessage
from shared.events import (
    EnrollmentCancelled,
    EnrollmentLapsed,
    Envelope,
    PaymentRefunded,
    SubsidyLineData,
    new_envelope,
)
from tests.collection.helpers import deliver, enrollment_event
from tests.conftest import Harness
from tests.support import problem

REFUNDABLE = ["erroneous_payment", "death"]


async def paid_bill(
    h: Harness, due_fen: int = 38000, refundable: list[str] = REFUNDABLE, **extra: Any
) -> str:
    event = enrollment_event(due_fen, refundable_reasons=refundable, **extra)
    await deliver(h, event)
    bill = (await h.client.get("/v1/bills", params={"enrollment_id": event.subject})).json()["items"][0]
    if bill["status"] == "open":
        paid = await h.client.post(
            "/v1/payments",
            json={"bill_id": bill["bill_id"], "amount": bill["amount_due"], "channel": "tax_hall"},
            headers={"Idempotency-Key": f"pay-{bill['bill_id']}"},
        )
        assert paid.status_code == 201, paid.text
    bill_id: str = bill["bill_id"]
    return bill_id


async def refund(h: Harness, bill_id: str, reason: str, key: str = "r-1") -> Any:
    return await h.client.post(
        "/v1/refunds",
        json={"bill_id": bill_id, "reason": reason, "requested_by": "tax-officer-02", "note": "重复扣款"},
        headers={"Idempotency-Key": key},
    )


async def refund_events(h: Harness) -> list[PaymentRefunded]:
    async with h.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    envelopes = [Envelope.from_bytes(r.payload) for r in rows]
    return [e.payload(PaymentRefunded) for e in envelopes if e.type == PaymentRefunded.event_type]


async def balances(h: Harness) -> dict[str, str]:
    items = (await h.client.get("/v1/ledger/balances")).json()["items"]
    return {i["account"]: i["balance"] for i in items}


async def test_an_erroneous_payment_is_refunded_in_full_and_ends_the_enrollment(collection: Harness) -> None:
    bill_id = await paid_bill(collection)

    response = await refund(collection, bill_id, "erroneous_payment")

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["amount"], body["reason"], body["ends_enrollment"]) == ("380.00", "erroneous_payment", True)
    assert (await collection.client.get(f"/v1/bills/{bill_id}")).json()["status"] == "refunded"
    [event] = await refund_events(collection)
    assert (event.bill_id, event.amount_fen, event.ends_enrollment) == (bill_id, 38000, True)
    assert (await balances(collection))["channel_clearing:tax_hall"] == "0.00"
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True

    replay = await refund(collection, bill_id, "erroneous_payment")
    assert (replay.headers.get("Idempotent-Replayed"), replay.json()) == ("true", body)
    again = await refund(collection, bill_id, "death", key="r-2")
    assert (again.status_code, problem(again)["code"]) == (409, "already_refunded")
    assert len(await refund_events(collection)) == 1
    # A refunded bill cannot be paid again: the registry enrolls the person anew if they wish.
    pay = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill_id, "amount": "380.00", "channel": "tax_hall"},
        headers={"Idempotency-Key": "again"},
    )
    assert problem(pay)["code"] == "bill_cancelled"


async def test_a_death_writes_off_the_subsidy_too(collection: Harness) -> None:
    line = SubsidyLineData(category="minimum_living", funder="医疗救助资金", amount_fen=34200)
    bill_id = await paid_bill(collection, 3800, subsidy_lines=[line])
    fully = await paid_bill(
        collection, 0, subsidy_lines=[SubsidyLineData(category="x", funder="县卫健委", amount_fen=38000)]
    )

    assert (await refund(collection, bill_id, "death")).json()["amount"] == "38.00"
    nothing_paid = await refund(collection, fully, "death", key="r-2")
    assert (nothing_paid.status_code, nothing_paid.json()["amount"]) == (201, "0.00")

    assert {a: b for a, b in (await balances(collection)).items() if a.startswith("department")} == {
        "department_receivable:医疗救助资金": "0.00",
        "department_receivable:县卫健委": "0.00",
    }
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True
    assert [e.ends_enrollment for e in await refund_events(collection)] == [True, True]


@pytest.mark.parametrize(
    ("refundable", "reason", "status", "code"),
    [
        ([], "erroneous_payment", 422, "refund_not_allowed"),  # a policy that refunds nothing
        (["death"], "erroneous_payment", 422, "refund_not_allowed"),
        (REFUNDABLE, "changed_mind", 422, "refund_not_allowed"),  # 待遇享受期内不予退还, said as the rule
    ],
)
async def test_other_refunds_are_refused_with_the_rule(
    collection: Harness, refundable: list[str], reason: str, status: int, code: str
) -> None:
    bill_id = await paid_bill(collection, refundable=refundable)
    response = await refund(collection, bill_id, reason)
    assert (response.status_code, problem(response)["code"]) == (status, code)
    if code == "refund_not_allowed":
        assert "不予退还" in problem(response)["message_zh"]
    assert (await collection.client.get(f"/v1/bills/{bill_id}")).json()["status"] == "paid"
    assert await refund_events(collection) == []


async def test_unpaid_and_unknown_bills_have_nothing_to_refund(collection: Harness) -> None:
    event = enrollment_event(38000, refundable_reasons=REFUNDABLE)
    await deliver(collection, event)
    bill = (await collection.client.get("/v1/bills", params={"enrollment_id": event.subject})).json()[
        "items"
    ][0]
    unpaid = await refund(collection, bill["bill_id"], "death")
    assert (unpaid.status_code, problem(unpaid)["code"]) == (409, "bill_not_paid")
    unknown = await refund(collection, "no-such-bill", "death", key="r-2")
    assert (unknown.status_code, problem(unknown)["code"]) == (404, "bill_not_found")


async def test_a_registry_cancellation_cancels_an_open_bill_and_refunds_a_paid_one(
    collection: Harness,
) -> None:
    open_event = enrollment_event(38000, refundable_reasons=REFUNDABLE)
    await deliver(collection, open_event)
    paid_id = await paid_bill(collection)
    paid = (await collection.client.get(f"/v1/bills/{paid_id}")).json()

    for enrollment_id in (open_event.subject, paid["enrollment_id"]):
        cancelled = EnrollmentCancelled(
            enrollment_id=enrollment_id, reason="death", evidence_ref="死亡证明 1"
        )
        await deliver(collection, new_envelope("/canbao/registry", enrollment_id, cancelled))

    listed = await collection.client.get("/v1/bills", params={"enrollment_id": open_event.subject})
    assert listed.json()["items"][0]["status"] == "cancelled"
    assert (await collection.client.get(f"/v1/bills/{paid_id}")).json()["status"] == "refunded"
    [event] = await refund_events(collection)
    assert (event.enrollment_id, event.amount_fen, event.reason, event.ends_enrollment) == (
        paid["enrollment_id"],
        38000,
        "death",
        True,
    )
    [refund_row] = (await collection.client.get("/v1/refunds", params={"bill_id": paid_id})).json()["items"]
    assert (refund_row["requested_by"], refund_row["note"]) == ("registry", "死亡证明 1")
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True


async def test_a_payment_that_crossed_a_cancellation_goes_back_as_an_erroneous_payment(
    collection: Harness,
) -> None:
    """The registry ends a paid enrollment only for its policy's refund reasons; a bill paid while the
    registry ended the unpaid enrollment paid for an enrollment that had ended: an erroneous payment
    (错误缴费), refunded where the policy refunds those, even if not for the cancellation's own reason."""
    paid_id = await paid_bill(collection, refundable=["erroneous_payment"])
    paid = (await collection.client.get(f"/v1/bills/{paid_id}")).json()
    cancelled = EnrollmentCancelled(
        enrollment_id=paid["enrollment_id"], reason="death", evidence_ref="死亡证明 2"
    )
    await deliver(collection, new_envelope("/canbao/registry", paid["enrollment_id"], cancelled))

    assert (await collection.client.get("/v1/dead-letters")).json()["items"] == []
    assert (await collection.client.get(f"/v1/bills/{paid_id}")).json()["status"] == "refunded"
    [event] = await refund_events(collection)
    assert (event.bill_id, event.amount_fen, event.reason, event.ends_enrollment) == (
        paid_id,
        38000,
        "erroneous_payment",
        True,
    )
    assert (await balances(collection))["channel_clearing:tax_hall"] == "0.00"
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True


async def test_a_policy_refunding_nothing_sets_the_crossing_aside_for_an_operator(
    collection: Harness,
) -> None:
    paid_id = await paid_bill(collection, refundable=[])
    paid = (await collection.client.get(f"/v1/bills/{paid_id}")).json()
    cancelled = EnrollmentCancelled(enrollment_id=paid["enrollment_id"], reason="death", evidence_ref="x")
    await deliver(collection, new_envelope("/canbao/registry", paid["enrollment_id"], cancelled))

    [letter] = (await collection.client.get("/v1/dead-letters")).json()["items"]
    assert letter["reason"] == "refund_not_allowed"
    assert (await collection.client.get(f"/v1/bills/{paid_id}")).json()["status"] == "paid"
    assert await refund_events(collection) == []


async def test_a_lapse_reaching_a_paid_bill_refunds_it_in_full(collection: Harness) -> None:
    """A payment dated in time that crossed the lapse (the person enrolled again meanwhile) paid for an
    enrollment that no longer exists."""
    paid_id = await paid_bill(collection)
    paid = (await collection.client.get(f"/v1/bills/{paid_id}")).json()
    lapsed = EnrollmentLapsed(enrollment_id=paid["enrollment_id"], replaced_by="new-enrollment")
    await deliver(collection, new_envelope("/canbao/registry", paid["enrollment_id"], lapsed))

    assert (await collection.client.get("/v1/dead-letters")).json()["items"] == []
    assert (await collection.client.get(f"/v1/bills/{paid_id}")).json()["status"] == "refunded"
    [event] = await refund_events(collection)
    assert (event.bill_id, event.amount_fen, event.reason) == (paid_id, 38000, "erroneous_payment")
    [refund_row] = (await collection.client.get("/v1/refunds", params={"bill_id": paid_id})).json()["items"]
    assert (refund_row["amount"], refund_row["requested_by"]) == ("380.00", "registry")
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True
