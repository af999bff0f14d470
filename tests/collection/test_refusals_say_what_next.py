"""Refusals on the tax side cite the rule and say what the person can do next (issue 17): a refund for
a reason the policy does not name is refused with the policy's words, not as a malformed request; a bill past
its last day does not send the person to register again when registering again is refused after the
window."""

import pytest

from tests.collection.helpers import open_bill
from tests.collection.test_payable_until import pay
from tests.collection.test_refunds import REFUNDABLE, paid_bill, refund, refund_events
from tests.conftest import Harness
from tests.support import problem


@pytest.mark.parametrize("reason", ["changed_mind", "迁往外省", "repriced"])
async def test_any_stated_reason_is_heard_and_refused_with_the_rule(collection: Harness, reason: str) -> None:
    """Before, reasons other than the two codes were refused by schema validation (validation_error), so the
    documented refusal could never be returned."""
    bill_id = await paid_bill(collection, refundable=REFUNDABLE)

    response = await refund(collection, bill_id, reason)

    error = problem(response)
    assert (response.status_code, error["code"]) == (422, "refund_not_allowed")
    assert "待遇享受期内已缴纳的医保费不予退还" in error["message_zh"]
    assert (error["details"]["reason"], error["details"]["refundable_reasons"]) == (reason, REFUNDABLE)
    assert (await collection.client.get(f"/v1/bills/{bill_id}")).json()["status"] == "paid"
    assert await refund_events(collection) == []


async def test_the_documents_words_are_the_policys_reasons(collection: Harness) -> None:
    bill_id = await paid_bill(collection, refundable=REFUNDABLE)

    response = await refund(collection, bill_id, "错误缴费")

    assert response.status_code == 201, response.text
    assert (response.json()["reason"], response.json()["amount"]) == ("erroneous_payment", "380.00")


async def test_a_bill_past_its_last_day_says_what_the_person_can_do(collection: Harness) -> None:
    bill = await open_bill(collection)
    collection.at("2024-01-02T10:00:00+08:00")

    error = problem(await pay(collection, bill))

    assert error["code"] == "payment_window_closed"
    assert error["details"]["payable_until"] == "2023-12-31"
    # Not a bare 请重新参保登记: after the window only a late case may register again.
    assert "补办" in error["message_zh"]
    assert "下一年度集中参保" in error["message_zh"]
    assert "next campaign" in error["message_en"]
