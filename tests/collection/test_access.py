"""Role × endpoint × area for collection: residents reach their own bills, payments and payment orders (and
may start paying anyone's bill found by ID number and name), tax officers the collection side and the
counter; every other caller gets 401/403 and changes nothing. Bill A is resident A's, paid by A through
order A (WeChat's notification recorded it); bill B is resident B's, open, with order B that resident A
started for it."""

import uuid
from typing import Any

from collection.database import Base
from tests.access import ID_A, ID_B, NAME_A, NAME_B, PUBLIC, TOKENS, Call, call, check, covered, operations
from tests.collection.helpers import deliver, enrollment_event, notify_order, start_order
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
    # The repair job's: operators (admins) only, and auditors reading.
    call("GET", "/v1/bills/standings/changed", ok=True, params={"since": "2023-10-01T00:00:00Z"}),
    call(
        "GET",
        "/v1/bills/standings/of",
        ok=True,
        build=lambda c: {"params": {"enrollment_id": [c["enrollment_a"]]}},
    ),
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
    call("GET", "/v1/notification-rejections", *OFFICER_ONLY, ok=True),
    # Any resident may start paying someone's bill (代缴); nobody else starts payment orders.
    call(
        "POST",
        "/v1/payment-orders",
        "resident",
        "other_resident",
        ok=True,
        # A key per call: a replay of someone else's order is not this caller's to see.
        build=lambda c: {
            "headers": {"Idempotency-Key": str(uuid.uuid4())},
            "json": {"bill_ids": [c["bill_b"]], "channel": "wechat"},
        },
    ),
    # An order is seen by the resident who started it (other_resident did not) and by tax officers.
    call("GET", "/v1/payment-orders/{order_a}", *RESIDENT_SIDE, ok=True),
    # Only the resident who started it gives it up.
    call("POST", "/v1/payment-orders/{order_b}/cancellation", "resident"),
    # The sandbox plays the channel for the order's own resident only.
    call("POST", "/v1/sandbox/payment-orders/{order_b}/payment", "resident"),
    # Last: it pays bill B. Whoever holds the money records it: at the counter, a tax officer; residents pay
    # through a payment order; auditors and staff may not.
    call(
        "POST",
        "/v1/payments",
        *OFFICER_ONLY,
        # A key per call: a replay of someone else's payment is not this caller's to see.
        build=lambda c: {
            "headers": {"Idempotency-Key": str(uuid.uuid4())},
            "json": {"bill_id": c["bill_b"], "amount": "380.00", "channel": "tax_hall"},
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
    order_a = await start_order(collection, [bill_a], "wechat", token=TOKENS["resident"], key="matrix-a")
    paid = await notify_order(collection, order_a, transaction_id="WX-MATRIX-A")
    assert paid.status_code == 200, paid.text
    order_b = await start_order(collection, [bill_b], "wechat", token=TOKENS["resident"], key="matrix-b")
    return {
        "enrollment_a": enrollment_a,
        "bill_a": bill_a,
        "bill_b": bill_b,
        "order_a": order_a["order_id"],
        "order_b": order_b["order_id"],
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
    assert {("tax-01", "read", "/v1/bills/{bill_id}"), ("resident-a", "change", "/v1/payment-orders")} <= {
        (e["actor"], e["action"], e["route"]) for e in events
    }
    assert all(e["person"] != ID_A and e["person"].endswith(ID_A[-4:]) for e in events)
    # The auditor's own reading is on the trail too.
    mine = await collection.client.get("/v1/audit-events", params={"actor": "audit-01"}, headers=as_auditor)
    assert [e["route"] for e in mine.json()["items"]] == ["/v1/audit-events"]
    # Resident A's payment of bill A began with A's payment order: on the trail under A, with its bill.
    # (The channel's notification that recorded the payment has no caller to name.)
    started = await collection.client.get(
        "/v1/audit-events", params={"actor": "resident-a"}, headers=as_auditor
    )
    assert ("change", "/v1/payment-orders", f"bill:{ctx['bill_a']}") in {
        (e["action"], e["route"], e["record"]) for e in started.json()["items"]
    }
