"""A third county joins by a policy file alone: tests/data/policies/yunxi-2025.toml, a fictional county that
no code names, with its own amounts, categories, window extension and late cases."""

import pytest

from tests.conftest import Harness
from tests.registry.helpers import (
    assign,
    deliver_payment,
    enroll,
    enrolled,
    person,
    processed,
    rows_of,
    upload,
)
from tests.registry.roster_files import ATTACHMENT_4
from tests.spreadsheets import xlsx
from tests.support import ROOT, problem, resident_id

YUNXI = {"region_code": "349901", "coverage_year": 2025}

pytestmark = pytest.mark.policy_dir(ROOT / "tests" / "data" / "policies")


@pytest.mark.parametrize(
    ("category", "pays", "subsidy", "funder"),
    [
        (None, "400.00", None, None),
        ("orphan", "0.00", "400.00", "县民政局"),
        ("elderly_80", "100.00", "300.00", "县财政局"),
        ("flood_relief", "279.50", "120.50", "县应急管理局"),
    ],
)
async def test_people_enroll_in_a_county_added_by_file(
    registry: Harness, category: str | None, pays: str, subsidy: str | None, funder: str | None
) -> None:
    registry.at("2024-10-01T10:00:00+08:00")
    who = person()
    if category:
        assert (await assign(registry, who, YUNXI, category)).status_code == 201

    e = await enrolled(registry, who, YUNXI)

    assert (e["personal_due"], e["fiscal_subsidy"], e["total_financing"]) == (pays, "670.00", "1070.00")
    assert [(x["category"], x["amount"], x["funder"]) for x in e["subsidy_lines"]] == (
        [(category, subsidy, funder)] if category else []
    )
    assert (e["coverage_start"], e["coverage_end"]) == ("2025-01-01", "2025-12-31")


async def test_its_own_window_extension_and_late_cases_apply(registry: Harness) -> None:
    registry.at("2025-03-31T22:00:00+08:00")
    crew = await enrolled(
        registry, person(), YUNXI | {"region_code": "349902"}, window_extension="fishing_crew"
    )
    assert (crew["personal_due"], crew["coverage_start"]) == ("400.00", "2025-01-01")

    # Six months for newborns here, not three.
    baby = person(resident_id(birth="20241115"), name="宝宝")
    newborn = await enrolled(registry, baby, YUNXI, late_case={"kind": "newborn"})
    assert (newborn["personal_due"], newborn["coverage_start"]) == ("400.00", "2025-01-01")

    # One month for released prisoners, and no late price after it.
    late = await enroll(
        registry,
        person(),
        YUNXI,
        late_case={"kind": "released_prisoner", "event_date": "2025-02-01", "evidence_ref": "释放证明1"},
    )
    assert problem(late)["code"] == "late_case_expired"
    veteran = await enroll(
        registry,
        person(),
        YUNXI,
        late_case={"kind": "discharged_veteran", "event_date": "2025-02-01", "evidence_ref": "退役证1"},
    )
    assert problem(veteran)["code"] == "late_case_not_in_policy"


async def test_the_shipped_regions_are_unaffected(registry: Harness) -> None:
    e = await enrolled(registry, person(), {"region_code": "340104", "coverage_year": 2024})
    assert e["personal_due"] == "380.00"


async def test_a_county_that_lists_its_villages_gets_them_checked(registry: Harness) -> None:
    registry.at("2024-10-01T10:00:00+08:00")
    rows = [
        [1, "甲", resident_id(), "云溪镇", "东溪村", "1组", ""],
        [2, "乙", resident_id(), "云溪镇", "北溪村", "", ""],
        [3, "丙", resident_id(), "石桥乡", "任何村", "", ""],  # 石桥乡 lists no villages: any name is kept
    ]
    data = xlsx(ATTACHMENT_4, rows, ["人员类别：孤儿"])
    created = await upload(registry, data, "云溪孤儿.xlsx", **YUNXI, department="县民政局")
    await processed(registry, created.json()["upload_id"])
    report = await rows_of(registry, created.json()["upload_id"])
    assert [(r["status"], [(p["column"], p["code"]) for p in r["problems"]]) for r in report] == [
        ("accepted", []),
        ("rejected", [("村（居）委\n会", "unknown_village")]),
        ("accepted", []),
    ]
    single = await assign(registry, person(), YUNXI, "orphan", township="云溪镇", village="北溪村")
    assert problem(single)["code"] == "unknown_village"


async def test_a_paid_enrollment_ends_only_for_a_reason_its_policy_refunds(registry: Harness) -> None:
    registry.at("2024-10-01T10:00:00+08:00")
    e = await enrolled(registry, person(), YUNXI)
    await deliver_payment(registry, e, "2024-10-01T11:00:00+08:00")
    report = {"reason": "death", "evidence_ref": "死亡证明 7", "reported_by": "staff-1"}
    refused = await registry.client.post(f"/v1/enrollments/{e['enrollment_id']}/cancellation", json=report)
    assert (refused.status_code, problem(refused)["code"]) == (422, "cancellation_not_allowed")
    assert problem(refused)["details"]["refundable_reasons"] == ["erroneous_payment"]
    erroneous = report | {"reason": "erroneous_payment", "evidence_ref": "重复缴费说明"}
    accepted = await registry.client.post(
        f"/v1/enrollments/{e['enrollment_id']}/cancellation", json=erroneous
    )
    assert accepted.status_code == 200, accepted.text
