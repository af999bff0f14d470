"""Households (户): one member enrolls the others, and the front-end shows one total."""

from typing import Any

from tests.conftest import Harness
from tests.registry.helpers import HEFEI, assign, current, deliver_payment, person, row_counts
from tests.support import problem, resident_id


def member(relation: str, birth: str | None = None, name: str = "家人") -> dict[str, Any]:
    return person(resident_id(birth=birth), name=name) | {"relation": relation}


async def household(h: Harness, *members: dict[str, Any]) -> dict[str, Any]:
    response = await h.client.post("/v1/households", json={"members": list(members)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_household_enrolls_all_its_members_with_one_total(registry: Harness) -> None:
    head, spouse, child = (
        member("head", name="张父"),
        member("spouse", name="李母"),
        member("child", "20150301"),
    )
    await assign(registry, {k: spouse[k] for k in ("id_number", "name")}, HEFEI, "minimum_living")
    h = await household(registry, head, spouse, child)
    assert [m["relation"] for m in h["members"]] == ["head", "spouse", "child"]

    response = await registry.client.post(f"/v1/households/{h['household_id']}/enrollments", json=HEFEI)

    assert response.status_code == 201, response.text
    summary = response.json()
    assert [e["personal_due"] for e in summary["enrollments"]] == ["380.00", "38.00", "380.00"]
    assert (summary["total_due"], summary["total_paid"], summary["not_enrolled"]) == ("798.00", "0.00", [])
    assert {e["household_id"] for e in summary["enrollments"]} == {h["household_id"]}

    await deliver_payment(registry, summary["enrollments"][1], "2023-10-09T10:00:00+08:00")
    later = await registry.client.get(
        f"/v1/households/{h['household_id']}/enrollments", params={"coverage_year": 2024}
    )
    assert (later.json()["total_due"], later.json()["total_paid"]) == ("760.00", "38.00")
    assert (await current(registry, summary["enrollments"][1]))["status"] == "active"


async def test_some_members_can_be_enrolled_and_the_rest_later(registry: Harness) -> None:
    head, child = member("head"), member("child", "20180101")
    h = await household(registry, head, child)
    child_id = h["members"][1]["person_id"]

    first = await registry.client.post(
        f"/v1/households/{h['household_id']}/enrollments",
        json=HEFEI | {"members": [{"person_id": child_id, "basis": "student"}]},
    )
    assert [e["basis"] for e in first.json()["enrollments"]] == ["student"]
    assert [m["relation"] for m in first.json()["not_enrolled"]] == ["head"]

    rest = await registry.client.post(f"/v1/households/{h['household_id']}/enrollments", json=HEFEI)
    assert len(rest.json()["enrollments"]) == 2
    assert rest.json()["total_due"] == "760.00"


async def test_one_refused_member_refuses_the_whole_request(registry: Harness) -> None:
    head, spouse = member("head"), member("spouse")
    h = await household(registry, head, spouse)
    await registry.client.post(
        "/v1/exclusions",
        json={
            "person": {k: spouse[k] for k in ("id_number", "name")},
            "coverage_year": 2024,
            "kind": "employee_insurance",
            "source": "职工医保",
            "recorded_by": "s",
        },
    )
    before = await row_counts(registry)

    response = await registry.client.post(f"/v1/households/{h['household_id']}/enrollments", json=HEFEI)

    assert response.status_code == 409
    error = problem(response)
    assert (error["code"], error["details"]["member"]) == ("in_employee_insurance", 1)
    assert await row_counts(registry) == before


async def test_household_bad_input(registry: Harness) -> None:
    no_head = await registry.client.post("/v1/households", json={"members": [member("spouse")]})
    assert problem(no_head)["code"] == "household_needs_one_head"
    taken = member("head")
    await household(registry, taken)
    again = await registry.client.post("/v1/households", json={"members": [taken | {"relation": "head"}]})
    assert (again.status_code, problem(again)["code"]) == (409, "already_in_household")
    h = await household(registry, member("head"))
    stranger = await registry.client.post(
        f"/v1/households/{h['household_id']}/enrollments", json=HEFEI | {"members": [{"person_id": "nobody"}]}
    )
    assert problem(stranger)["code"] == "not_a_household_member"
    missing = await registry.client.get("/v1/households/nope")
    assert (missing.status_code, problem(missing)["code"]) == (404, "household_not_found")
