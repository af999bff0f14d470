"""代收代缴: agents collect cash for residents, owe it to the treasury until they remit it, and the ledger
shows what each still holds."""

from typing import Any

import pytest

from tests.collection.helpers import open_bill
from tests.conftest import Harness
from tests.support import problem

AGENT = {
    "agent_id": "341823-JC-CD",
    "name": "泾川镇城东村村民委员会",
    "region_code": "341823",
    "township": "泾川镇",
}


async def pay(h: Harness, body: dict[str, Any], key: str) -> Any:
    return await h.client.post("/v1/payments", json=body, headers={"Idempotency-Key": key})


async def remit(h: Harness, amount: str, reference: str, key: str) -> Any:
    return await h.client.post(
        f"/v1/agents/{AGENT['agent_id']}/remittances",
        json={"amount": amount, "reference": reference, "recorded_by": "tax-03"},
        headers={"Idempotency-Key": key},
    )


async def agent_now(h: Harness) -> dict[str, Any]:
    body: dict[str, Any] = (await h.client.get(f"/v1/agents/{AGENT['agent_id']}")).json()
    return body


async def test_an_agent_collects_remits_and_owes_the_rest(collection: Harness) -> None:
    created = await collection.client.post("/v1/agents", json=AGENT)
    assert created.status_code == 201, created.text
    again = await collection.client.post("/v1/agents", json=AGENT)
    assert (again.status_code, problem(again)["code"]) == (409, "agent_exists")

    for n in range(2):
        bill = await open_bill(collection)
        body = {
            "bill_id": bill["bill_id"],
            "amount": "380.00",
            "channel": "agent",
            "agent_id": AGENT["agent_id"],
        }
        paid = await pay(collection, body, f"agent-{n}")
        assert paid.status_code == 201, paid.text
        assert paid.json()["agent_id"] == AGENT["agent_id"]
        receipt = (await collection.client.get(f"/v1/receipts/{paid.json()['receipt_no']}")).json()
        assert (receipt["channel_name"], receipt["agent_name"]) == ("代收代缴", AGENT["name"])
    assert (await agent_now(collection))["outstanding"] == "760.00"

    first = await remit(collection, "500.00", "JK001", "r-1")
    assert first.status_code == 201, first.text
    assert first.json()["outstanding_after"] == "260.00"
    replay = await remit(collection, "500.00", "JK001", "r-1")
    assert (replay.headers.get("Idempotent-Replayed"), replay.json()) == ("true", first.json())
    too_much = await remit(collection, "300.00", "JK002", "r-2")
    assert (too_much.status_code, problem(too_much)["code"]) == (422, "remittance_exceeds_cash")
    reused = await remit(collection, "10.00", "JK001", "r-3")
    assert (reused.status_code, problem(reused)["code"]) == (409, "remittance_reference_used")

    listed = (await collection.client.get("/v1/agents", params={"region_code": "341823"})).json()["items"]
    assert [(a["agent_id"], a["collected"], a["remitted"], a["outstanding"]) for a in listed] == [
        (AGENT["agent_id"], "760.00", "500.00", "260.00")
    ]
    balances = {
        i["account"]: i["balance"]
        for i in (await collection.client.get("/v1/ledger/balances")).json()["items"]
    }
    assert (balances[f"agent_cash:{AGENT['agent_id']}"], balances["treasury"]) == ("260.00", "500.00")
    assert "channel_clearing:agent" not in balances
    check = (await collection.client.get("/v1/ledger/check")).json()
    assert check["ok"] is True, check


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"channel": "agent"}, 422, "validation_error"),  # who collected it?
        ({"channel": "wechat", "agent_id": AGENT["agent_id"]}, 422, "validation_error"),
        ({"channel": "agent", "agent_id": "nobody"}, 404, "agent_not_found"),
    ],
)
async def test_agent_payments_must_name_a_known_agent(
    collection: Harness, extra: dict[str, Any], status: int, code: str
) -> None:
    assert (await collection.client.post("/v1/agents", json=AGENT)).status_code == 201
    bill = await open_bill(collection)
    response = await pay(collection, {"bill_id": bill["bill_id"], "amount": "380.00"} | extra, "bad")
    assert (response.status_code, problem(response)["code"]) == (status, code)
    assert (await collection.client.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "open"


async def test_remitting_for_an_unknown_agent_is_404(collection: Harness) -> None:
    response = await remit(collection, "1.00", "JK9", "r-9")
    assert (response.status_code, problem(response)["code"]) == (404, "agent_not_found")
