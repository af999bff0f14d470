"""The ledger check catches every class of error per bill: each inconsistency is planted directly in the
database (as a lost update or a crossed race would leave it) and the check must say which bill and what."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from tests.collection.helpers import deliver, enrollment_event, pay_online
from tests.conftest import Harness

NOW = "2023-11-01T10:00:00+08:00"


async def execute(h: Harness, sql: str, **params: Any) -> None:
    async with h.sessionmaker() as session, session.begin():
        await session.execute(text(sql), params)


async def second_refund(h: Harness, bill_id: str, payment_id: str) -> None:
    """The double refund a lost update left: a second refund row for the same payment."""
    await execute(
        h,
        "INSERT INTO refunds (id, bill_id, payment_id, amount_fen, reason, ends_enrollment, requested_by, "
        "refunded_at, from_account) VALUES (:id, :bill, :payment, 38000, 'death', true, 'registry', :at, "
        "'channel_clearing:wechat')",
        id=str(uuid.uuid4()),
        bill=bill_id,
        payment=payment_id,
        at=datetime.now(UTC),
    )


async def refunded_total_lost(h: Harness, bill_id: str, _: str) -> None:
    await execute(h, "UPDATE bills SET refunded_fen = 0 WHERE id = :id", id=bill_id)


async def cancelled_holding_money(h: Harness, bill_id: str, _: str) -> None:
    await execute(h, "UPDATE bills SET status = 'cancelled' WHERE id = :id", id=bill_id)


async def refunded_in_part(h: Harness, bill_id: str, _: str) -> None:
    await execute(h, "UPDATE refunds SET amount_fen = 100 WHERE bill_id = :id", id=bill_id)
    await execute(h, "UPDATE bills SET refunded_fen = 100 WHERE id = :id", id=bill_id)


async def paid_without_payment(h: Harness, bill_id: str, _: str) -> None:
    await execute(h, "DELETE FROM payment_items WHERE bill_id = :id", id=bill_id)


Plant = Callable[[Harness, str, str], Awaitable[None]]


@pytest.mark.parametrize(
    ("plant", "refunded_first", "finding"),
    [
        (second_refund, True, ("bill_refund_problems", "refunds_exceed_payment")),
        (refunded_total_lost, True, ("bill_refund_problems", "bill_refunded_total_differs")),
        (refunded_in_part, True, ("bill_refund_problems", "refunded_bill_not_refunded_in_full")),
        (cancelled_holding_money, False, ("bills_not_settled_once", None)),
        (paid_without_payment, False, ("bills_not_settled_once", None)),
    ],
)
async def test_the_check_names_each_planted_inconsistency(
    collection: Harness, plant: Plant, refunded_first: bool, finding: tuple[str, str | None]
) -> None:
    h = collection
    h.at(NOW)
    event = enrollment_event(refundable_reasons=["erroneous_payment", "death"])
    await deliver(h, event)
    bill = (await h.client.get("/v1/bills", params={"enrollment_id": event.subject})).json()["items"][0]
    payment = await pay_online(h, [bill["bill_id"]])
    if refunded_first:
        refund = await h.client.post(
            "/v1/refunds",
            json={"bill_id": bill["bill_id"], "reason": "death", "requested_by": "officer"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert refund.status_code == 201, refund.text
    before = (await h.client.get("/v1/ledger/check")).json()
    assert before["ok"], before

    await plant(h, bill["bill_id"], payment["payment_id"])

    after = (await h.client.get("/v1/ledger/check")).json()
    assert after["ok"] is False
    field, problem = finding
    if problem is None:
        assert bill["bill_id"] in after[field]
    else:
        assert {"bill_id": bill["bill_id"], "problem": problem} in [
            {"bill_id": p["bill_id"], "problem": p["problem"]} for p in after[field]
        ]
