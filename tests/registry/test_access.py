"""Role × endpoint × area for the registry: allowed callers get through, every other one gets 401/403
and changes nothing. The records belong to resident A, enrolled in 340104 (包河区), in the 低保 category."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from registry.database import Base
from shared.logging import mask_id_number
from tests.access import (
    CATEGORY,
    ID_A,
    ID_B,
    NAME_A,
    NAME_B,
    PUBLIC,
    TOKENS,
    Call,
    call,
    check,
    covered,
    operations,
)
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, assign, enrolled, person
from tests.spreadsheets import read_xlsx
from tests.support import problem

OTHER_DISTRICT: dict[str, Any] = {"region_code": "340102", "coverage_year": 2024}
NOBODY = "00000000-0000-0000-0000-000000000000"
AREA: dict[str, Any] = {"region_code": "340104", "coverage_year": 2024}
CATEGORY_AREA: dict[str, Any] = AREA | {"category": CATEGORY}
STAFF_SIDE = ("staff", "other_staff")  # same role; other_staff's region is 340102
SIGNED_IN = tuple(name for name in TOKENS if name != "anonymous")

REGISTRY_CALLS: list[Call] = [
    call("POST", "/v1/enrollments", "resident", "staff", json=person(ID_A, NAME_A) | HEFEI),
    call("GET", "/v1/enrollments/standings", "staff", ok=True, params=AREA),
    # The repair job's: operators (admins) only, and auditors reading.
    call("GET", "/v1/enrollments/standings/changed", ok=True, params={"since": "2023-10-01T00:00:00Z"}),
    call(
        "GET",
        "/v1/enrollments/standings/of",
        ok=True,
        build=lambda c: {"params": {"enrollment_id": [c["enrollment_a"]]}},
    ),
    call("GET", "/v1/enrollments/{enrollment_a}", "resident", "staff", ok=True),
    call(
        "POST",
        "/v1/households",
        "resident",
        "staff",
        json={"members": [person(ID_A, NAME_A) | {"relation": "head"}]},
    ),
    call("GET", "/v1/households/{household_a}", "resident", "staff", ok=True),
    # Reviews are listed by the caller's regions (another district's staff see theirs: none here).
    call("GET", "/v1/identity-reviews", "staff", "other_staff", ok=True),
    call(
        "POST",
        "/v1/identity-reviews/999999/decision",
        "staff",
        "other_staff",
        json={"decision": "confirmed", "decided_by": "s"},
    ),
    # Resident A's own household: nothing to accept or decline (404), but A gets that far; nobody else does.
    call("POST", "/v1/households/{household_a}/acceptance", "resident"),
    call("POST", "/v1/households/{household_a}/refusal", "resident"),
    call("POST", "/v1/households/{household_a}/enrollments", "resident", "staff", json=HEFEI),
    call(
        "GET",
        "/v1/households/{household_a}/enrollments",
        "resident",
        "staff",
        ok=True,
        params={"coverage_year": 2024},
    ),
    call(
        "POST",
        "/v1/subsidy-assignments",
        "department",
        "staff",
        json={"person": person(ID_A, NAME_A), "category": CATEGORY, "evidence_ref": "e", "assigned_by": "s"}
        | HEFEI,
    ),
    # A listing by name and number: other areas' staff get through and see nothing of 340104's.
    call(
        "GET",
        "/v1/subsidy-assignments",
        "department",
        "other_department",
        *STAFF_SIDE,
        ok=True,
        params={"id_number": ID_A, "name": NAME_A},
    ),
    call("GET", "/v1/subsidy-assignments/summary", "department", "staff", ok=True, params=CATEGORY_AREA),
    call("GET", "/v1/subsidy-assignments/summary.xlsx", "department", "staff", ok=True, params=CATEGORY_AREA),
    call("GET", "/v1/subsidy-assignments/roster.xlsx", "department", "staff", ok=True, params=CATEGORY_AREA),
    call("POST", "/v1/subsidy-assignments/monthly-adjustment", "staff", json=AREA),
    call("GET", "/v1/subsidy-assignments/mobilisation", "staff", ok=True, params=AREA),
    call("GET", "/v1/subsidy-assignments/mobilisation.xlsx", "staff", ok=True, params=AREA),
    call("POST", "/v1/exclusions", json={}),
    call("POST", "/v1/exclusions/{nobody}/removal", json={}),
    call(
        "POST",
        "/v1/rosters",
        "department",
        "staff",
        files={"file": ("r.csv", "姓名,身份证号码\n张三,1\n".encode())},
        data={"kind": "subsidy", "category": CATEGORY, "department": "区民政局", "uploaded_by": "d"} | AREA,
    ),
    call("GET", "/v1/rosters/{nobody}", "department", "other_department", *STAFF_SIDE),
    call("GET", "/v1/rosters/{nobody}/rows", "department", "other_department", *STAFF_SIDE),
    call("GET", "/v1/rosters/{nobody}/report.xlsx", "department", "other_department", *STAFF_SIDE),
    call(
        "POST", "/v1/rosters/{nobody}/rows/1/decision", *STAFF_SIDE, json={"accept": True, "decided_by": "s"}
    ),
    call("POST", "/v1/rosters/{nobody}/approval", *STAFF_SIDE, json={"reviewed_by": "s"}),
    call("POST", "/v1/rosters/{nobody}/rejection", *STAFF_SIDE, json={"reviewed_by": "s"}),
    call("GET", "/v1/population/summary", "staff", ok=True, params=AREA),
    call("GET", "/v1/progress", "staff", ok=True, params=AREA),
    call("GET", "/v1/progress/report.xlsx", "staff", ok=True, params=AREA),
    call("GET", "/v1/progress/daily-payments", "staff", ok=True, params=AREA),
    call("GET", "/v1/progress/baseline", "staff", ok=True, params=AREA),
    call("PUT", "/v1/progress/baseline", data=AREA, files={"file": ("b.csv", b"x")}),
    call("POST", "/v1/screenings", "staff", json=AREA | {"run_by": "s"}),
    call("GET", "/v1/screening-cases", "staff", ok=True, params=AREA),
    call("GET", "/v1/screening-cases/summary", "staff", ok=True, params=AREA),
    call("GET", "/v1/screening-cases/list.xlsx", "staff", ok=True, params=AREA),
    call("GET", "/v1/screening-cases/999999", *STAFF_SIDE),
    call(
        "POST",
        "/v1/screening-cases/999999/follow-up",
        *STAFF_SIDE,
        json={"state": "visited", "updated_by": "s"},
    ),
    call("POST", "/v1/reminders", "staff", json=AREA | {"channel": "sms", "requested_by": "s"}),
    call("GET", "/v1/reminders", *STAFF_SIDE, ok=True, params={"case_id": 999999}),
    call("GET", "/dashboard", "staff", ok=True, params=AREA),
    call("GET", "/v1/audit-events", ok=True),
    call("GET", "/v1/dead-letters", ok=True),
    call("GET", "/v1/events/backlog", ok=True),
    call("POST", "/v1/events/republications", ok=True, json={"subjects": ["x"], "requested_by": "t"}),
    call("POST", "/v1/dead-letters/999999/replay"),
    call("POST", "/v1/dead-letters/999999/discard", json={"note": "n"}),
    # Accounts: administrators (auditors read). A token that names no sign-in session has none to refresh
    # or end (400), but every signed-in role gets that far.
    call("GET", "/v1/accounts", ok=True),
    call(
        "POST",
        "/v1/accounts",
        json={
            "username": "wang.wu",
            "display_name": "王五",
            "role": "auditor",
            "password": "correct-horse-9",
        },
    ),
    call("GET", "/v1/accounts/{account_a}", ok=True),
    call("PATCH", "/v1/accounts/{account_a}", json={"display_name": "赵六"}),
    call("POST", "/v1/accounts/{account_a}/deactivation", json={"reason": "调离岗位"}),
    call("POST", "/v1/accounts/{account_a}/reactivation"),
    call("POST", "/v1/sessions/current/token", *SIGNED_IN),
    call("POST", "/v1/sessions/current/end", *SIGNED_IN),
    # Last: they end what the calls above read.
    call(
        "POST",
        "/v1/subsidy-assignments/{assignment_a}/removal",
        "department",
        "staff",
        json={"removed_by": "s", "reason": "r"},
    ),
    call(
        "POST",
        "/v1/enrollments/{enrollment_a}/cancellation",
        "staff",
        json={"reason": "erroneous_payment", "evidence_ref": "e", "reported_by": "s"},
    ),
]


async def _records(registry: Harness) -> dict[str, Any]:
    household = await registry.client.post(
        "/v1/households", json={"members": [person(ID_A, NAME_A) | {"relation": "head"}]}
    )
    assert household.status_code == 201, household.text
    enrollment = await enrolled(registry, person(ID_A, NAME_A), HEFEI)
    assignment = await assign(registry, person(ID_A, NAME_A), HEFEI, CATEGORY)
    assert assignment.status_code == 201, assignment.text
    await enrolled(registry, person(ID_B, NAME_B), OTHER_DISTRICT)
    account = await registry.client.post(
        "/v1/accounts",
        json={
            "username": "staff.baohe",
            "display_name": "赵六",
            "role": "staff",
            "regions": ["340104"],
            "password": "correct-horse-1",
        },
    )
    assert account.status_code == 201, account.text
    return {
        "account_a": account.json()["account_id"],
        "enrollment_a": enrollment["enrollment_id"],
        "household_a": household.json()["household_id"],
        "assignment_a": assignment.json()["assignment_id"],
        "nobody": NOBODY,
    }


async def test_every_role_reaches_only_its_own_area_of_the_registry(registry: Harness) -> None:
    ctx = await _records(registry)
    failures = [f for spec in REGISTRY_CALLS for f in await check(registry, Base.metadata, spec, ctx)]
    assert not failures, "\n".join(failures)


def test_the_matrix_covers_every_registry_endpoint(registry: Harness) -> None:
    assert operations(registry.app) - PUBLIC == covered(registry.app, REGISTRY_CALLS)


@pytest.mark.parametrize(
    ("token", "reason"),
    [("not-a-jwt", "invalid_token"), (f"{TOKENS['admin']}x", "invalid_token")],
)
async def test_a_bad_token_is_refused_with_401(registry: Harness, token: str, reason: str) -> None:
    response = await registry.client.get("/v1/audit-events", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["details"]["reason"] == reason


async def test_spreadsheets_carry_full_id_numbers_only_for_roles_that_need_them(registry: Harness) -> None:
    await _records(registry)
    params = CATEGORY_AREA | {"layout": "additions"}  # qualified after the cut-off
    cells: dict[str, str] = {}
    for caller in ("staff", "auditor"):
        response = await registry.client.get(
            "/v1/subsidy-assignments/roster.xlsx",
            params=params,
            headers={"Authorization": f"Bearer {TOKENS[caller]}"},
        )
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(response.content)
        cells[caller] = str(read_xlsx(response.content))
    assert ID_A in cells["staff"]
    assert ID_A not in cells["auditor"]
    assert mask_id_number(ID_A) in cells["auditor"]
    assert NAME_A in cells["auditor"]


async def test_an_oversized_body_is_refused_before_it_is_read(registry: Harness) -> None:
    limit = registry.app.state.settings.max_body_bytes
    big = b'{"id_number": "' + b"1" * limit + b'"}'
    declared = await registry.client.post(
        "/v1/enrollments", content=big, headers={"Content-Type": "application/json"}
    )
    assert (declared.status_code, problem(declared)["code"]) == (413, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = await registry.client.post(
        "/v1/enrollments", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert (streamed.status_code, problem(streamed)["code"]) == (413, "payload_too_large")
    # An upload route has its own, larger limit: a roster over the JSON limit is still read.
    roster = await registry.client.post(
        "/v1/rosters",
        files={"file": ("r.csv", b"x" * (limit + 1))},
        data={"kind": "subsidy", "category": CATEGORY, "department": "d", "uploaded_by": "d"} | AREA,
    )
    assert roster.status_code != 413
