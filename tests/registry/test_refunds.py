"""The registry follows collection's refunds: a full refund ends the enrollment, a partial one leaves it."""

from sqlalchemy import select

from registry.database import OutboxMessage
from shared.events import EnrollmentCancelled, Envelope
from tests.conftest import Harness
from tests.registry.helpers import (
    JING,
    JING_WINDOW,
    current,
    deliver_payment,
    deliver_refund,
    enrolled,
    person,
)
from tests.support import problem, resident_id


async def test_a_full_refund_cancels_the_enrollment_and_the_person_may_enroll_again(
    registry: Harness,
) -> None:
    registry.at(JING_WINDOW)
    who = person(resident_id(region="341823"))
    e = await enrolled(registry, who, JING)
    confirmation = await deliver_payment(registry, e, "2022-11-15T10:00:00+08:00")
    assert (await current(registry, e))["status"] == "active"

    await deliver_refund(registry, confirmation, 35000, "erroneous_payment", ends_enrollment=True)

    now = await current(registry, e)
    assert (now["status"], now["refunded"], now["cancellation_reason"]) == (
        "cancelled",
        "350.00",
        "erroneous_payment",
    )
    again = await enrolled(registry, who, JING)
    assert again["enrollment_id"] != e["enrollment_id"]


async def test_a_partial_refund_leaves_the_enrollment_active(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    e = await enrolled(registry, person(resident_id(region="341823")), JING)
    confirmation = await deliver_payment(registry, e, "2022-11-15T10:00:00+08:00")
    await deliver_refund(registry, confirmation, 31500, "repriced", ends_enrollment=False)
    now = await current(registry, e)
    assert (now["status"], now["refunded"], now["cancelled_at"]) == ("active", "315.00", None)


async def test_a_death_ends_an_unpaid_enrollment_at_once_and_a_paid_one_after_its_refund(
    registry: Harness,
) -> None:
    registry.at(JING_WINDOW)
    unpaid = await enrolled(registry, person(resident_id(region="341823")), JING)
    paid = await enrolled(registry, person(resident_id(region="341823")), JING)
    confirmation = await deliver_payment(registry, paid, "2022-11-15T10:00:00+08:00")
    report = {"reason": "death", "evidence_ref": "死亡证明 NO.0012", "reported_by": "staff-07"}

    ended = await registry.client.post(f"/v1/enrollments/{unpaid['enrollment_id']}/cancellation", json=report)
    assert (ended.status_code, ended.json()["status"], ended.json()["cancellation_reason"]) == (
        200,
        "cancelled",
        "death",
    )
    waiting = await registry.client.post(f"/v1/enrollments/{paid['enrollment_id']}/cancellation", json=report)
    assert waiting.json()["status"] == "active"  # until collection's refund comes back
    async with registry.sessionmaker() as s:
        payloads = (await s.scalars(select(OutboxMessage.payload).order_by(OutboxMessage.id))).all()
    told = [
        e.payload(EnrollmentCancelled)
        for e in map(Envelope.from_bytes, payloads)
        if e.type == EnrollmentCancelled.event_type
    ]
    assert [(c.enrollment_id, c.reason) for c in told] == [
        (unpaid["enrollment_id"], "death"),
        (paid["enrollment_id"], "death"),
    ]
    await deliver_refund(registry, confirmation, 35000, "death", ends_enrollment=True)
    assert (await current(registry, paid))["status"] == "cancelled"

    again = await registry.client.post(f"/v1/enrollments/{unpaid['enrollment_id']}/cancellation", json=report)
    assert (again.status_code, problem(again)["code"]) == (409, "enrollment_ended")
    unknown = await registry.client.post("/v1/enrollments/nope/cancellation", json=report)
    assert (unknown.status_code, problem(unknown)["code"]) == (404, "enrollment_not_found")


async def test_a_payment_that_crossed_a_cancellation_is_kept_and_the_enrollment_stays_ended(
    registry: Harness,
) -> None:
    """The bill was paid while the registry ended the unpaid enrollment: the payment is recorded, not
    activated, and collection's refund of it (when the cancellation reaches it) changes nothing else."""
    registry.at(JING_WINDOW)
    e = await enrolled(registry, person(resident_id(region="341823")), JING)
    report = {"reason": "death", "evidence_ref": "死亡证明 NO.0013", "reported_by": "staff-07"}
    ended = await registry.client.post(f"/v1/enrollments/{e['enrollment_id']}/cancellation", json=report)
    assert ended.json()["status"] == "cancelled", ended.text

    confirmation = await deliver_payment(registry, e, "2022-11-15T10:00:00+08:00")

    now = await current(registry, e)
    assert (now["status"], now["paid"], now["payment_id"], now["cancellation_reason"]) == (
        "cancelled",
        "350.00",
        confirmation.payment_id,
        "death",
    )
    assert (await registry.client.get("/v1/dead-letters")).json()["items"] == []
    await deliver_refund(registry, confirmation, 35000, "death", ends_enrollment=True)
    refunded = await current(registry, e)
    assert (refunded["status"], refunded["refunded"], refunded["cancelled_at"]) == (
        "cancelled",
        "350.00",
        now["cancelled_at"],
    )
    assert (await registry.client.get("/v1/dead-letters")).json()["items"] == []
