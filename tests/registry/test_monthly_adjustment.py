"""The monthly adjustment run (动态调整) and the mobilisation list (动员名单), through the API."""

from typing import Any

from tests.conftest import Harness
from tests.registry.helpers import HEFEI, JING, JING_WINDOW, assign, enrolled, enrollment_of, person
from tests.spreadsheets import read_xlsx
from tests.support import problem, resident_id

AFTER_HEFEI_WINDOW = "2024-03-01T10:00:00+08:00"


async def run(h: Harness, where: dict[str, Any]) -> dict[str, Any]:
    response = await h.client.post("/v1/subsidy-assignments/monthly-adjustment", json=where)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def mobilisation(h: Harness, where: dict[str, Any], **params: str) -> list[dict[str, Any]]:
    response = await h.client.get("/v1/subsidy-assignments/mobilisation", params=where | params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_after_the_window_full_subsidies_are_enrolled_partial_ones_listed(registry: Harness) -> None:
    registry.at(AFTER_HEFEI_WINDOW)
    full = person(name="韩一")
    partial = person(name="杨二")
    partial_street = person(name="林三")
    enrolled_already = person(name="周四")
    assert (await assign(registry, full, HEFEI, "extreme_poverty")).status_code == 201
    assert (await assign(registry, partial, HEFEI, "minimum_living")).status_code == 201
    located = await assign(
        registry,
        partial_street,
        HEFEI,
        "poverty_monitoring",
        township="三里庵街道",
        village="安居苑社区",
        village_group="3组",
    )
    assert located.status_code == 201, located.text
    assert (await assign(registry, enrolled_already, HEFEI, "minimum_living")).status_code == 201
    await enrolled(registry, enrolled_already, HEFEI, late_case={"kind": "newly_subsidised"})

    # Before the run: the full subsidy is not on the list (the run enrolls them), partial ones are.
    listed = await mobilisation(registry, HEFEI)
    assert [(i["name"], i["personal_due"], i["category"]) for i in listed] == [
        ("林三", "190.00", "poverty_monitoring"),
        ("杨二", "38.00", "minimum_living"),
    ]
    assert listed[0]["id_number_masked"] != partial_street["id_number"]
    assert listed[0]["id_number_masked"][:4] == partial_street["id_number"][:4]

    result = await run(registry, HEFEI)
    assert (result["enrolled"], result["fully_subsidised"], result["to_mobilise"], result["refused"]) == (
        1,
        1,
        2,
        0,
    )
    assert result["run_on"] == "2024-03-01"
    enrollment = await enrollment_of(registry, full, HEFEI)
    assert (enrollment["personal_due"], enrollment["late_case"]) == ("0.00", "newly_subsidised")

    # Running it again enrolls nobody twice.
    again = await run(registry, HEFEI)
    assert (again["enrolled"], again["to_mobilise"]) == (0, 2)

    # The township's own list, and the person leaves it once mobilised and enrolled.
    street = await mobilisation(registry, HEFEI, township="三里庵街道")
    assert [(i["name"], i["village"], i["village_group"]) for i in street] == [("林三", "安居苑社区", "3组")]
    await enrolled(registry, partial, HEFEI, late_case={"kind": "newly_subsidised"})
    assert [i["name"] for i in await mobilisation(registry, HEFEI)] == ["林三"]

    sheet = await registry.client.get("/v1/subsidy-assignments/mobilisation.xlsx", params=HEFEI)
    assert sheet.status_code == 200
    rows = read_xlsx(sheet.content)
    assert rows[1][:4] == ["序号", "姓名", "身份证号码", "乡镇"]
    assert rows[2][1:8] == [
        "林三",
        listed[0]["id_number_masked"],
        "三里庵街道",
        "安居苑社区",
        "3组",
        "防止返贫监测对象",
        "190.00",
    ]


async def test_in_the_window_the_run_enrolls_every_holder_at_their_share(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    full = person(resident_id(region="341823"), name="甲")
    partial = person(resident_id(region="341823"), name="乙")
    assert (await assign(registry, full, JING, "key_special_care", township="泾川镇")).status_code == 201
    assert (await assign(registry, partial, JING, "severe_disability", township="汀溪乡")).status_code == 201

    result = await run(registry, JING)
    assert (result["enrolled"], result["fully_subsidised"], result["to_mobilise"]) == (2, 1, 0)
    enrollment = await enrollment_of(registry, partial, JING)
    assert (enrollment["personal_due"], enrollment["township"]) == ("35.00", "汀溪乡")
    assert await mobilisation(registry, JING) == []


async def test_the_list_refuses_a_township_the_policy_does_not_list(registry: Harness) -> None:
    response = await registry.client.get(
        "/v1/subsidy-assignments/mobilisation", params=JING | {"township": "泾县镇"}
    )
    assert response.status_code == 422
    assert problem(response)["code"] == "unknown_township"
    unknown = await registry.client.post(
        "/v1/subsidy-assignments/monthly-adjustment", json={"region_code": "110101", "coverage_year": 2024}
    )
    assert unknown.status_code == 422
    assert problem(unknown)["code"] == "policy_not_found"
