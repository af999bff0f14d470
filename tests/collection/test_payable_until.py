"""A bill may be paid until its last day in Beijing time; a lapsed enrollment's bill is cancelled."""

import httpx
import pytest

from shared.events import EnrollmentLapsed, new_envelope
from tests.collection.helpers import deliver, open_bill
from tests.conftest import Harness
from tests.support import problem


async def pay(h: Harness, bill: dict[str, str], key: str = "k") -> httpx.Response:
    return await h.client.post(
        "/v1/payments",
        json={"bill_id": bill["bill_id"], "amount": bill["amount_due"], "channel": "tax_hall"},
        headers={"Idempotency-Key": key},
    )


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("2023-12-31T23:30:00+08:00", 201),  # 15:30 UTC: the last day, in Beijing
        ("2024-01-01T00:00:30+08:00", 422),  # still 31 Dec in UTC, but too late in Beijing
    ],
)
async def test_the_last_day_is_counted_in_beijing_time(collection: Harness, moment: str, status: int) -> None:
    bill = await open_bill(collection)
    assert bill["payable_until"] == "2023-12-31"
    collection.at(moment)

    response = await pay(collection, bill)

    assert response.status_code == status, response.text
    if status == 422:
        assert problem(response)["code"] == "payment_window_closed"
        assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "open"


async def test_a_lapsed_enrollment_cancels_its_bill(collection: Harness) -> None:
    bill = await open_bill(collection)
    lapsed = EnrollmentLapsed(enrollment_id=bill["enrollment_id"], replaced_by="new-enrollment")
    await deliver(collection, new_envelope("/canbao/registry", bill["enrollment_id"], lapsed))

    assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "cancelled"
    response = await pay(collection, bill)
    assert response.status_code == 409
    assert problem(response)["code"] == "bill_cancelled"
