"""Who may enroll (参保对象), foreigners' documents, and 不得重复参保; through HTTP."""

from typing import Any

import pytest

from tests.conftest import Harness
from tests.registry.helpers import HEFEI, JING, JING_WINDOW, enroll, enrolled, exclude, person, row_counts
from tests.support import problem, resident_id

PASSPORT = {"document_type": "passport", "nationality": "DEU", "birth_date": "1985-04-02", "sex": "female"}


@pytest.mark.parametrize(
    ("who", "basis", "where", "outcome"),
    [
        (person(), "household_registration", HEFEI, "201"),
        (person(), "residence_permit", HEFEI, "201"),
        (person(), "student", HEFEI, "201"),
        (person(resident_id(birth="20150601")), "residence_permit_minor", HEFEI, "201"),
        (person(resident_id(birth="20150601")), "minor_of_insured_worker", HEFEI, "201"),
        (person(resident_id(birth="19900601")), "residence_permit_minor", HEFEI, "eligibility_not_met"),
        (person("P1234567", name="Anna Schmidt", **PASSPORT), "foreign_resident", HEFEI, "201"),
        (person("P7654321", name="Jonas Schmidt", **PASSPORT), "foreign_expert_family", HEFEI, "201"),
        (
            person("P1234567", name="Anna", **PASSPORT),
            "household_registration",
            HEFEI,
            "eligibility_document_mismatch",
        ),
        (person(), "foreign_resident", HEFEI, "eligibility_document_mismatch"),
        (
            person("P1234567", name="Anna", document_type="passport"),
            "foreign_resident",
            HEFEI,
            "foreign_document_details_missing",
        ),
        (
            person("P-12", name="Anna", **PASSPORT),
            "foreign_resident",
            HEFEI,
            "document_number_invalid_format",
        ),
        (person(resident_id(region="341823")), "long_term_resident", JING, "201"),
        (person(resident_id(region="341823")), "residence_permit", JING, "eligibility_not_in_policy"),
        (person(resident_id(region="341823")), "long_term_resident", HEFEI, "eligibility_not_in_policy"),
    ],
)
async def test_the_basis_of_enrollment_follows_the_policy(
    registry: Harness, who: dict[str, Any], basis: str, where: dict[str, Any], outcome: str
) -> None:
    if where is JING:
        registry.at(JING_WINDOW)
    response = await enroll(registry, who, where, basis=basis)
    if outcome == "201":
        assert response.status_code == 201, response.text
        assert response.json()["basis"] == basis
    else:
        assert response.status_code == 422, response.text
        assert problem(response)["code"] == outcome
        assert await row_counts(registry) == (0, 0, 0)


@pytest.mark.parametrize(
    ("kind", "code"),
    [("employee_insurance", "in_employee_insurance"), ("enrolled_elsewhere", "enrolled_elsewhere")],
)
async def test_people_insured_elsewhere_are_refused(registry: Harness, kind: str, code: str) -> None:
    who = person()
    recorded = await exclude(registry, who, kind)
    assert recorded.status_code == 201
    assert recorded.json()["document_number_masked"].count("*") == 10

    response = await enroll(registry, who, HEFEI)

    assert response.status_code == 409
    assert problem(response)["code"] == code
    assert (await row_counts(registry))[1:] == (0, 0)


async def test_an_exclusion_holds_for_its_year_only_and_can_be_lifted(registry: Harness) -> None:
    who = person()
    recorded = (await exclude(registry, who, "employee_insurance", year=2023)).json()
    assert (await enroll(registry, who, HEFEI)).status_code == 201  # 2024 is not excluded

    other = person()
    second = (await exclude(registry, other, "employee_insurance")).json()
    lifted = await registry.client.post(
        f"/v1/exclusions/{second['exclusion_id']}/removal", json={"removed_by": "s2"}
    )
    assert lifted.status_code == 200
    assert lifted.json()["removed_by"] == "s2"
    assert (await enroll(registry, other, HEFEI)).status_code == 201
    assert recorded["coverage_year"] == 2023


async def test_exclusions_are_not_recorded_twice(registry: Harness) -> None:
    who = person()
    await exclude(registry, who, "employee_insurance")
    again = await exclude(registry, who, "employee_insurance")
    assert again.status_code == 409
    assert problem(again)["code"] == "exclusion_already_recorded"
    unknown = await registry.client.post("/v1/exclusions/nope/removal", json={"removed_by": "s"})
    assert unknown.status_code == 404


async def test_a_foreigner_is_one_person_across_requests(registry: Harness) -> None:
    who = person(
        "E12345678",
        name="John Smith",
        document_type="foreign_permanent_residence",
        nationality="GBR",
        birth_date="1970-01-01",
        sex="male",
    )
    e = await enrolled(registry, who, HEFEI, basis="foreign_resident")
    again = await enroll(registry, who | {"id_number": "e12345678"}, HEFEI, basis="foreign_resident")
    assert again.status_code == 409
    assert problem(again)["code"] == "already_enrolled"
    assert e["id_number_masked"] == "E123*5678"


@pytest.mark.parametrize(
    ("where", "township", "outcome"),
    [
        (JING, "泾川镇", "201"),
        (JING, "汀溪乡", "201"),
        (JING, "泾县镇", "unknown_township"),
        (HEFEI, "三里庵街道", "201"),  # Hefei's policy lists no townships: the name is kept as given
    ],
)
async def test_a_township_must_be_one_the_policy_lists(
    registry: Harness, where: dict[str, Any], township: str, outcome: str
) -> None:
    if where is JING:
        registry.at(JING_WINDOW)
    response = await enroll(registry, person(resident_id(region="341823")), where, township=township)
    if outcome == "201":
        assert response.status_code == 201, response.text
        assert response.json()["township"] == township
    else:
        assert problem(response)["code"] == outcome
