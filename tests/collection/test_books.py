"""A day of the campaign in collection, end to end over its API: every channel, a family, an agent and its
remittance, departments over- and under-paying, a refund, reconciliation — and the books balance after all."""

import uuid
from typing import Any

from shared.events import SubsidyLineData
from tests.collection.helpers import deliver, enrollment_event, pay_online
from tests.conftest import Harness

ASSISTANCE = "医疗救助资金"
DISABILITY = "县残联"
ONLINE = ("wechat", "alipay", "provincial_app", "bank")


async def bill(
    h: Harness, due_fen: int = 38000, lines: list[SubsidyLineData] | None = None
) -> dict[str, Any]:
    event = enrollment_event(due_fen, subsidy_lines=lines or [], refundable_reasons=["erroneous_payment"])
    await deliver(h, event)
    found: dict[str, Any] = (await h.client.get("/v1/bills", params={"enrollment_id": event.subject})).json()[
        "items"
    ][0]
    return found


async def post(h: Harness, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await h.client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


async def pay(h: Harness, bills: list[dict[str, Any]], amount: str, channel: str, **extra: str) -> None:
    """Online: a resident's order, recorded by the channel's notification; otherwise at the counter."""
    bill_ids = [b["bill_id"] for b in bills]
    if channel in ONLINE:
        paid = await pay_online(h, bill_ids, channel, transaction_id=extra.get("channel_reference"))
        assert (paid["amount"], paid["channel"]) == (amount, channel)
        return
    await post(h, "/v1/payments", {"bill_ids": bill_ids, "amount": amount, "channel": channel} | extra)


async def test_the_books_balance_after_a_day_of_everything(collection: Harness) -> None:
    h = collection
    channels = ["wechat", "alipay", "provincial_app", "tax_hall", "cash", "bank"]
    singles = {channel: await bill(h) for channel in channels}
    for i, (channel, single) in enumerate(singles.items()):
        await pay(h, [single], "380.00", channel, channel_reference=f"REF{i}")
    helped = [SubsidyLineData(category="low_income", funder=ASSISTANCE, amount_fen=20000)]
    await pay(h, [await bill(h), await bill(h, 18000, helped)], "560.00", "alipay")  # a family
    await post(h, "/v1/agents", {"agent_id": "AG1", "name": "城关镇代收点", "region_code": "340104"})
    await pay(h, [await bill(h)], "380.00", "agent", agent_id="AG1")
    await post(h, "/v1/agents/AG1/remittances", {"amount": "300.00", "reference": "JK1", "recorded_by": "x"})
    # Fully subsidised: settled by collection itself, the department owes it all.
    await bill(h, 0, [SubsidyLineData(category="disabled", funder=DISABILITY, amount_fen=38000)])
    transfer = {"region_code": "340104", "coverage_year": 2024, "recorded_by": "x"}
    over = await post(
        h, "/v1/subsidy-transfers", transfer | {"funder": ASSISTANCE, "amount": "250.00", "reference": "T1"}
    )
    under = await post(
        h, "/v1/subsidy-transfers", transfer | {"funder": DISABILITY, "amount": "100.00", "reference": "T2"}
    )
    assert (over["result"], under["result"]) == ("overpaid", "underpaid")
    wechat = singles["wechat"]["bill_id"]
    reconciled = await h.client.post(
        "/v1/reconciliations",
        data={"channel": "wechat", "business_day": "2023-10-08", "uploaded_by": "x"},
        files={
            "file": (
                "w.csv",
                f"交易流水号,缴费时间,缴费金额,账单号\nREF0,2023-10-08,380.00,{wechat}\n".encode(),
            )
        },
    )
    assert reconciled.status_code == 201, reconciled.text
    await post(h, "/v1/refunds", {"bill_id": wechat, "reason": "erroneous_payment", "requested_by": "x"})

    check = (await h.client.get("/v1/ledger/check")).json()
    assert check["ok"], check
    balances = (await h.client.get("/v1/ledger/balances")).json()["items"]
    assert {item["account"]: item["balance"] for item in balances} == {
        "agent_cash:AG1": "80.00",
        "channel_clearing:alipay": "940.00",
        "channel_clearing:bank": "380.00",
        "channel_clearing:cash": "380.00",
        "channel_clearing:provincial_app": "380.00",
        "channel_clearing:tax_hall": "380.00",
        "channel_clearing:wechat": "0.00",  # settled by the file, then refunded out of the treasury
        f"department_receivable:{ASSISTANCE}": "-50.00",  # overpaid
        f"department_receivable:{DISABILITY}": "280.00",  # still owed
        "resident_insurance_fiscal": "-3420.00",  # 3,800 due, 380 refunded
        "resident_receivable": "0.00",
        "treasury": "650.00",  # 380 settled + 350 transferred + 300 remitted - 380 refunded
    }
