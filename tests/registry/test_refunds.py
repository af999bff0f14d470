"""The registry follows collection's refunds: a full refund ends the enrollment, a partial one leaves it."""

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
from tests.support import resident_id


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
