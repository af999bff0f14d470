"""Enrollment windows, extensions and late cases, at their edges in Beijing time; through HTTP."""

from typing import Any

import pytest

from tests.conftest import Harness
from tests.registry.helpers import (
    HEFEI,
    JING,
    assign,
    current,
    deliver_payment,
    enroll,
    enrolled,
    person,
    row_counts,
)
from tests.support import problem, resident_id


@pytest.mark.parametrize(
    ("where", "moment", "extension", "outcome"),
    [
        (HEFEI, "2023-08-31T23:59:59+08:00", None, "enrollment_window_not_open"),
        (HEFEI, "2023-09-01T00:00:00+08:00", None, "201"),
        (HEFEI, "2023-12-31T23:30:00+08:00", None, "201"),  # 15:30 UTC: still 31 Dec in Beijing
        (HEFEI, "2023-12-31T23:59:59+08:00", None, "201"),
        (HEFEI, "2024-01-01T00:00:30+08:00", None, "enrollment_window_closed"),  # still 31 Dec in UTC
        (HEFEI, "2025-01-01T10:00:00+08:00", None, "coverage_year_over"),
        (JING, "2022-10-17T08:00:00+08:00", None, "201"),
        (JING, "2022-12-31T23:59:00+08:00", None, "201"),
        (JING, "2023-01-01T00:00:30+08:00", None, "enrollment_window_closed"),
        # 县外务工人员 pay until the end of February at the normal price and coverage.
        (JING, "2023-01-01T00:00:30+08:00", "migrant_worker", "201"),
        (JING, "2023-02-28T23:59:00+08:00", "migrant_worker", "201"),
        (JING, "2023-03-01T00:00:30+08:00", "migrant_worker", "enrollment_window_closed"),
        (JING, "2022-11-15T10:00:00+08:00", "fishing_crew", "unknown_window_extension"),
        (HEFEI, "2023-10-08T10:00:00+08:00", "migrant_worker", "unknown_window_extension"),
    ],
)
async def test_the_window_is_kept_in_beijing_time(
    registry: Harness, where: dict[str, Any], moment: str, extension: str | None, outcome: str
) -> None:
    registry.at(moment)
    terms = {"window_extension": extension} if extension else {}

    response = await enroll(registry, person(resident_id(region=where["region_code"])), where, **terms)

    if outcome == "201":
        assert response.status_code == 201, response.text
        e = response.json()
        personal = "380.00" if where is HEFEI else "350.00"
        assert (e["personal_due"], e["late_case"], e["window_extension"]) == (personal, None, extension)
        assert e["coverage_start"] == f"{where['coverage_year']}-01-01"
    else:
        assert response.status_code == 422
        assert problem(response)["code"] == outcome


def newborn(birth: str, region: str = "341823") -> dict[str, Any]:
    return person(resident_id(region=region, birth=birth.replace("-", "")), name="宝宝")


@pytest.mark.parametrize(
    ("where", "birth", "moment", "pays", "coverage_start"),
    [
        # Within 3 months of birth (inclusive): the personal contribution, covered from birth.
        (JING, "2023-03-15", "2023-06-15T20:00:00+08:00", "350.00", "2023-03-15"),
        # Later: the total financing, still covered from birth.
        (JING, "2023-03-15", "2023-06-16T08:00:00+08:00", "960.00", "2023-03-15"),
        # Month ends: 3 months after 31 Jan is 30 Apr.
        (JING, "2023-01-31", "2023-04-30T12:00:00+08:00", "350.00", "2023-01-31"),
        (JING, "2023-01-31", "2023-05-01T12:00:00+08:00", "960.00", "2023-01-31"),
        (HEFEI, "2024-02-10", "2024-03-01T09:00:00+08:00", "380.00", "2024-02-10"),
        # Hefei lets parents choose the next year: born in December, covered from 1 January.
        (HEFEI, "2023-12-20", "2024-01-15T09:00:00+08:00", "380.00", "2024-01-01"),
        (HEFEI, "2023-09-20", "2024-01-15T09:00:00+08:00", "1020.00", "2024-01-01"),
    ],
)
async def test_newborns_enroll_late_by_the_three_month_rule(
    registry: Harness, where: dict[str, Any], birth: str, moment: str, pays: str, coverage_start: str
) -> None:
    registry.at(moment)
    e = await enrolled(registry, newborn(birth, where["region_code"]), where, late_case={"kind": "newborn"})
    assert (e["late_case"], e["personal_due"], e["coverage_start"], e["coverage_from"]) == (
        "newborn",
        pays,
        coverage_start,
        "birth",
    )
    if pays in ("960.00", "1020.00"):
        assert (e["fiscal_subsidy"], e["total_financing"], e["subsidy_lines"]) == ("0.00", pays, [])


async def test_a_jing_newborn_may_not_take_the_next_year(registry: Harness) -> None:
    registry.at("2023-01-10T09:00:00+08:00")
    response = await enroll(registry, newborn("2022-11-30"), JING, late_case={"kind": "newborn"})
    assert response.status_code == 422
    assert problem(response)["code"] == "newborn_year_not_allowed"


@pytest.mark.parametrize(
    ("case", "event_date", "moment", "pays"),
    [
        ("discharged_veteran", "2023-03-01", "2023-05-01T10:00:00+08:00", "350.00"),
        ("employee_insurance_interrupted", "2023-02-01", "2023-05-01T10:00:00+08:00", "960.00"),
        ("released_prisoner", "2023-02-10", "2023-05-10T10:00:00+08:00", "350.00"),
        ("released_prisoner", "2023-02-10", "2023-05-11T10:00:00+08:00", "960.00"),
    ],
)
async def test_late_cases_price_and_wait_for_payment_to_start_coverage(
    registry: Harness, case: str, event_date: str, moment: str, pays: str
) -> None:
    registry.at(moment)
    claim = {"kind": case, "event_date": event_date, "evidence_ref": "证明2023-001"}

    e = await enrolled(registry, person(resident_id(region="341823")), JING, late_case=claim)

    assert (e["late_case"], e["personal_due"], e["coverage_from"], e["coverage_start"]) == (
        case,
        pays,
        "day_after_payment",
        None,
    )


@pytest.mark.parametrize(
    ("paid_at", "coverage_start"),
    [
        ("2023-05-01T23:30:00+08:00", "2023-05-02"),  # 15:30 UTC on 1 May: still 1 May in Beijing
        ("2023-05-02T00:30:00+08:00", "2023-05-03"),  # 16:30 UTC on 1 May: already 2 May in Beijing
    ],
)
async def test_coverage_starts_the_beijing_day_after_payment(
    registry: Harness, paid_at: str, coverage_start: str
) -> None:
    registry.at("2023-05-01T10:00:00+08:00")
    claim = {"kind": "discharged_veteran", "event_date": "2023-03-01", "evidence_ref": "退役证0001"}
    e = await enrolled(registry, person(resident_id(region="341823")), JING, late_case=claim)

    await deliver_payment(registry, e, paid_at)

    paid = await current(registry, e)
    assert (paid["status"], paid["coverage_start"], paid["coverage_end"]) == (
        "active",
        coverage_start,
        "2023-12-31",
    )


async def test_newly_subsidised_people_pay_their_share_after_the_window(registry: Harness) -> None:
    registry.at("2023-04-01T10:00:00+08:00")
    who = person(resident_id(region="341823"))
    assert (await assign(registry, who, JING, "minimum_living")).status_code == 201

    e = await enrolled(registry, who, JING, late_case={"kind": "newly_subsidised"})

    assert (e["personal_due"], e["coverage_from"], e["coverage_start"]) == (
        "35.00",
        "day_after_payment",
        None,
    )


@pytest.mark.parametrize(
    ("where", "moment", "claim", "code"),
    [
        (
            JING,
            "2023-05-01T10:00:00+08:00",
            {"kind": "discharged_veteran", "event_date": "2023-03-01"},
            "late_case_evidence_missing",
        ),
        (
            JING,
            "2023-05-01T10:00:00+08:00",
            {"kind": "released_prisoner", "evidence_ref": "x"},
            "late_case_evidence_missing",
        ),
        (
            JING,
            "2023-05-01T10:00:00+08:00",
            {"kind": "discharged_veteran", "event_date": "2022-12-01", "evidence_ref": "x"},
            "late_case_evidence_invalid",
        ),
        (
            JING,
            "2023-05-01T10:00:00+08:00",
            {"kind": "released_prisoner", "event_date": "2023-06-01", "evidence_ref": "x"},
            "late_case_evidence_invalid",
        ),
        (
            JING,
            "2023-05-02T10:00:00+08:00",
            {"kind": "employee_insurance_interrupted", "event_date": "2023-02-01", "evidence_ref": "x"},
            "late_case_expired",
        ),
        (JING, "2023-05-01T10:00:00+08:00", {"kind": "newly_subsidised"}, "late_case_evidence_invalid"),
        (
            HEFEI,
            "2024-05-01T10:00:00+08:00",
            {"kind": "discharged_veteran", "event_date": "2024-03-01", "evidence_ref": "x"},
            "late_case_not_in_policy",
        ),
    ],
)
async def test_late_cases_without_their_conditions_are_refused(
    registry: Harness, where: dict[str, Any], moment: str, claim: dict[str, Any], code: str
) -> None:
    registry.at(moment)
    response = await enroll(
        registry, person(resident_id(region=where["region_code"])), where, late_case=claim
    )
    assert response.status_code == 422, response.text
    assert problem(response)["code"] == code
    assert await row_counts(registry) == (0, 0, 0)


async def test_inside_the_window_a_late_case_is_not_needed(registry: Harness) -> None:
    registry.at("2022-11-15T10:00:00+08:00")
    e = await enrolled(registry, newborn("2022-10-01"), JING, late_case={"kind": "newborn"})
    assert (e["late_case"], e["personal_due"], e["coverage_start"]) == (None, "350.00", "2023-01-01")
