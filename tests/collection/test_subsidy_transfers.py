"""A department pays its subsidy share as one transfer: matched against what it owes, over and under shown,
and the ledger still proves the books."""

from typing import Any

import pytest

from shared.events import EnrollmentLapsed, SubsidyLineData, new_envelope
from tests.collection.helpers import deliver, enrollment_event
from tests.conftest import Harness
from tests.support import problem

FUNDER = "县民政局"
WHERE: dict[str, Any] = {"region_code": "341823", "coverage_year": 2023}


async def subsidised(h: Harness, category: str, amount_fen: int, funder: str = FUNDER) -> str:
    event = enrollment_event(
        35000 - amount_fen,
        region_code="341823",
        coverage_year=2023,
        subsidy_lines=[SubsidyLineData(category=category, funder=funder, amount_fen=amount_fen)],
    )
    await deliver(h, event)
    return event.subject


async def transfer(h: Harness, amount: str, reference: str, key: str | None = None, **extra: Any) -> Any:
    body = {"funder": FUNDER, "amount": amount, "reference": reference, "recorded_by": "tax-07"}
    return await h.client.post(
        "/v1/subsidy-transfers", json=body | WHERE | extra, headers={"Idempotency-Key": key or reference}
    )


async def statement(h: Harness) -> dict[str, Any]:
    body: dict[str, Any] = (
        await h.client.get("/v1/subsidy-transfers/statement", params={"funder": FUNDER} | WHERE)
    ).json()
    return body


async def test_a_transfer_is_matched_against_what_the_department_owes(collection: Harness) -> None:
    await subsidised(collection, "extreme_poverty", 35000)
    await subsidised(collection, "minimum_living", 31500)
    await subsidised(collection, "minimum_living", 31500)
    lapsing = await subsidised(collection, "minimum_living", 31500)
    await subsidised(collection, "severe_disability", 31500, funder="县残联")  # another funder's
    lapsed = EnrollmentLapsed(enrollment_id=lapsing, replaced_by="x")
    await deliver(collection, new_envelope("/canbao/registry", lapsing, lapsed))

    owed = await statement(collection)
    assert (owed["owed"], owed["transferred"], owed["outstanding"]) == ("980.00", "0.00", "980.00")
    assert [(c["category"], c["people"], c["owed"]) for c in owed["by_category"]] == [
        ("extreme_poverty", 1, "350.00"),
        ("minimum_living", 2, "630.00"),
    ]

    short = await transfer(collection, "900.00", "HB20221201001")
    assert short.status_code == 201, short.text
    assert (short.json()["result"], short.json()["owed_before"], short.json()["outstanding_after"]) == (
        "underpaid",
        "980.00",
        "80.00",
    )
    over = await transfer(collection, "100.00", "HB20221215002")
    assert (over.json()["result"], over.json()["outstanding_after"]) == ("overpaid", "-20.00")

    now = await statement(collection)
    assert (now["transferred"], now["outstanding"]) == ("1000.00", "-20.00")
    assert [t["reference"] for t in now["transfers"]] == ["HB20221201001", "HB20221215002"]

    balances = {
        i["account"]: i["balance"]
        for i in (await collection.client.get("/v1/ledger/balances")).json()["items"]
    }
    assert (balances[f"department_receivable:{FUNDER}"], balances["treasury"]) == ("-20.00", "1000.00")
    check = (await collection.client.get("/v1/ledger/check")).json()
    assert check["ok"] is True, check


async def test_replays_and_repeated_references(collection: Harness) -> None:
    await subsidised(collection, "minimum_living", 31500)
    first = await transfer(collection, "315.00", "HB1", key="k-1")
    replay = await transfer(collection, "315.00", "HB1", key="k-1")
    assert (replay.status_code, replay.headers.get("Idempotent-Replayed")) == (201, "true")
    assert replay.json()["transfer_id"] == first.json()["transfer_id"]
    again = await transfer(collection, "315.00", "HB1", key="k-2")
    assert (again.status_code, problem(again)["code"]) == (409, "transfer_reference_used")
    assert (await statement(collection))["transferred"] == "315.00"


@pytest.mark.parametrize(
    ("extra", "status", "code"),
    [
        ({"funder": "无此部门"}, 422, "nothing_owed_by_funder"),
        ({"amount": 315}, 422, "validation_error"),  # money is a string, never a JSON number
        ({"amount": "-1.00"}, 422, "validation_error"),
        ({"region_code": "34"}, 422, "validation_error"),
    ],
)
async def test_bad_transfers_are_refused_and_record_nothing(
    collection: Harness, extra: dict[str, Any], status: int, code: str
) -> None:
    await subsidised(collection, "minimum_living", 31500)
    response = await transfer(collection, **({"amount": "315.00", "reference": "HB9"} | extra))
    assert (response.status_code, problem(response)["code"]) == (status, code)
    assert (await statement(collection))["transferred"] == "0.00"
    assert (await collection.client.get("/v1/ledger/check")).json()["transactions"] == 1
