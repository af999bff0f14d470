"""Role × endpoint × area for collection: residents reach their own bills and payments (and may pay anyone's
bill found by ID number and name), tax officers the collection side; every other caller gets 401/403 and
changes nothing. Bill A is resident A's, paid by A; bill B is resident B's, open."""

import uuid
from typing import Any

from collection.database import Base
from tests.access import ID_A, ID_B, NAME_A, NAME_B, PUBLIC, TOKENS, Call, call, check, covered, operations
from tests.collection.helpers import deliver, enrollment_event
from tests.conftest import Harness
from tests.support import problem

OFFICER_ONLY = ("tax_officer",)
RESIDENT_SIDE = ("resident", "tax_officer")
YEAR = {"region_code": "340104", "coverage_year": 2024}
DAY = "/v1/reconciliations/wechat/2023-10-08"

COLLECTION_CALLS: list[Call] = [
    call(
        "GET",
        "/v1/bills",
        *RESIDENT_SIDE,
        ok=True,
        build=lambda c: {"params": {"enrollment_id": c["enrollment_a"]}},
    ),
    call(
        "GET",
        "/v1/bills/lookup",
        "resident",
        "other_resident",
        "tax_officer",
        ok=True,
        params={"id_number": ID_A, "name": NAME_A},
    ),
    call(
        "GET",
        "/v1/bills/organisation-due",
        *OFFICER_ONLY,
        ok=True,
        params={"organisation": "安徽大学", "region_code": "340104", "coverage_year": 2024},
    ),
    call("GET", "/v1/bills/{bill_a}", *RESIDENT_SIDE, ok=True),
    call("GET", "/v1/bills/standings", *OFFICER_ONLY, ok=True, params=YEAR),
    call("GET", "/v1/payments/{payment_a}", *RESIDENT_SIDE, ok=True),
    call("GET", "/v1/receipts/{receipt_a}", *RESIDENT_SIDE, ok=True),
    call("GET", "/v1/receipts/{receipt_a}/print", *RESIDENT_SIDE, ok=True),
    call("POST", "/v1/refunds", *OFFICER_ONLY, headers={"Idempotency-Key": "r"}, json={}),
    call("GET", "/v1/refunds", *OFFICER_ONLY, ok=True, build=lambda c: {"params": {"bill_id": c["bill_a"]}}),
    call("POST", "/v1/subsidy-transfers", *OFFICER_ONLY, headers={"Idempotency-Key": "t"}, json={}),
    call(
        "GET",
        "/v1/subsidy-transfers/statement",
        *OFFICER_ONLY,
        ok=True,
        params={"funder": "医疗救助资金", "region_code": "340104", "coverage_year": 2024},
    ),
    call("POST", "/v1/agents", *OFFICER_ONLY, json={}),
    call("GET", "/v1/agents", *OFFICER_ONLY, ok=True),
    call("GET", "/v1/agents/nobody", *OFFICER_ONLY),
    call("POST", "/v1/agents/nobody/remittances", *OFFICER_ONLY, json={}),
    call(
        "POST",
        "/v1/reconciliations",
        *OFFICER_ONLY,
        data={"channel": "wechat"},
        files={"file": ("f.csv", b"x")},
    ),
    call("GET", "/v1/reconciliations", *OFFICER_ONLY, ok=True),
    call("GET", DAY, *OFFICER_ONLY),
    call("GET", f"{DAY}/lines", *OFFICER_ONLY),
    call("GET", f"{DAY}/report.xlsx", *OFFICER_ONLY),
    call("POST", f"{DAY}/rerun", *OFFICER_ONLY),
    call("GET", "/v1/reconciliation-lines/999999", *OFFICER_ONLY),
    call(
        "POST",
        "/v1/reconciliation-lines/999999/resolution",
        *OFFICER_ONLY,
        json={"action": "accept", "officer": "t", "note": "n"},
    ),
    call("GET", "/v1/ledger/balances", *OFFICER_ONLY, ok=True),
    call("GET", "/v1/ledger/check", *OFFICER_ONLY, ok=True),
    call("GET", "/v1/audit-events", ok=True),
    call("GET", "/v1/dead-letters", ok=True),
    call("GET", "/v1/events/backlog", ok=True),
    call("POST", "/v1/events/republications", ok=True, json={"subjects": ["x"], "requested_by": "t"}),
    call("POST", "/v1/dead-letters/999999/replay"),
    call("POST", "/v1/dead-letters/999999/discard", json={"note": "n"}),
    # Last: it pays bill B. Any resident may pay someone's bill (代缴); auditors and staff may not.
    call(
        "POST",
        "/v1/payments",
        "resident",
        "other_resident",
        "tax_officer",
        # A key per call: a replay of someone else's payment is not this caller's to see.
        build=lambda c: {
            "headers": {"Idempotency-Key": str(uuid.uuid4())},
            "json": {"bill_id": c["bill_b"], "amount": "380.00", "channel": "wechat"},
        },
    ),
]


async def _bill(collection: Harness, id_number: str, name: str, region_code: str) -> tuple[str, str]:
    event = enrollment_event(id_number=id_number, name=name, region_code=region_code)
    await deliver(collection, event)
    bills = (await collection.client.get("/v1/bills", params={"enrollment_id": event.subject})).json()
    return event.subject, bills["items"][0]["bill_id"]


async def _records(collection: Harness) -> dict[str, Any]:
    enrollment_a, bill_a = await _bill(collection, ID_A, NAME_A, "340104")
    _, bill_b = await _bill(collection, ID_B, NAME_B, "340102")
    paid = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill_a, "amount": "380.00", "channel": "wechat"},
        headers={"Idempotency-Key": "matrix-payment-a", "Authorization": f"Bearer {TOKENS['resident']}"},
    )
    assert paid.status_code == 201, paid.text
    return {
        "enrollment_a": enrollment_a,
        "bill_a": bill_a,
        "bill_b": bill_b,
        "payment_a": paid.json()["payment_id"],
        "receipt_a": paid.json()["receipt_no"],
    }


async def test_every_role_reaches_only_its_own_part_of_collection(collection: Harness) -> None:
    ctx = await _records(collection)
    failures = [f for spec in COLLECTION_CALLS for f in await check(collection, Base.metadata, spec, ctx)]
    assert not failures, "\n".join(failures)


def test_the_matrix_covers_every_collection_endpoint(collection: Harness) -> None:
    assert operations(collection.app) - PUBLIC == covered(collection.app, COLLECTION_CALLS)


async def test_residents_see_their_own_bills_masked_and_others_only_by_id_number_and_name(
    collection: Harness,
) -> None:
    ctx = await _records(collection)
    as_b = {"Authorization": f"Bearer {TOKENS['other_resident']}"}
    own = await collection.client.get("/v1/bills", headers=as_b)
    assert [b["bill_id"] for b in own.json()["items"]] == [ctx["bill_b"]]
    refused = await collection.client.get(f"/v1/bills/{ctx['bill_a']}", headers=as_b)
    assert (refused.status_code, problem(refused)["code"]) == (403, "not_your_record")
    found = await collection.client.get(
        "/v1/bills/lookup", params={"id_number": ID_A, "name": NAME_A}, headers=as_b
    )
    assert [b["bill_id"] for b in found.json()["items"]] == [ctx["bill_a"]]
    assert ID_A not in found.text  # masked for residents
    wrong_name = await collection.client.get(
        "/v1/bills/lookup", params={"id_number": ID_A, "name": "王五"}, headers=as_b
    )
    assert wrong_name.json()["items"] == []


async def test_repeated_failed_lookups_are_throttled(collection: Harness) -> None:
    await _records(collection)
    as_b = {"Authorization": f"Bearer {TOKENS['other_resident']}"}
    allowed = collection.app.state.settings.lookup_failures_allowed
    for _ in range(allowed):
        miss = await collection.client.get(
            "/v1/bills/lookup", params={"id_number": ID_A, "name": "王五"}, headers=as_b
        )
        assert miss.status_code == 200
    # Now even a right guess is refused: the caller has to wait.
    blocked = await collection.client.get(
        "/v1/bills/lookup", params={"id_number": ID_A, "name": NAME_A}, headers=as_b
    )
    assert (blocked.status_code, problem(blocked)["code"]) == (429, "too_many_lookups")
    assert int(blocked.headers["Retry-After"]) == collection.app.state.settings.lookup_failure_window_s
    # Another caller is not held back by B's guesses.
    as_a = {"Authorization": f"Bearer {TOKENS['resident']}"}
    ok = await collection.client.get(
        "/v1/bills/lookup", params={"id_number": ID_A, "name": NAME_A}, headers=as_a
    )
    assert ok.status_code == 200
    collection.at("2023-10-08T10:16:00+08:00")  # the window has passed
    again = await collection.client.get(
        "/v1/bills/lookup", params={"id_number": ID_A, "name": NAME_A}, headers=as_b
    )
    assert again.status_code == 200


async def test_the_audit_trail_shows_who_read_a_persons_bill(collection: Harness) -> None:
    ctx = await _records(collection)
    await collection.client.get(
        f"/v1/bills/{ctx['bill_a']}", headers={"Authorization": f"Bearer {TOKENS['tax_officer']}"}
    )
    as_auditor = {"Authorization": f"Bearer {TOKENS['auditor']}"}
    trail = await collection.client.get("/v1/audit-events", params={"person": ID_A}, headers=as_auditor)
    events = trail.json()["items"]
    assert {(e["actor"], e["action"], e["route"]) for e in events} >= {
        ("resident-a", "change", "/v1/payments"),
        ("tax-01", "read", "/v1/bills/{bill_id}"),
    }
    assert all(e["person"] != ID_A and e["person"].endswith(ID_A[-4:]) for e in events)
    # The auditor's own reading is on the trail too.
    mine = await collection.client.get("/v1/audit-events", params={"actor": "audit-01"}, headers=as_auditor)
    assert [e["route"] for e in mine.json()["items"]] == ["/v1/audit-events"]
