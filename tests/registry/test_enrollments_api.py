"""POST/GET /v1/enrollments through HTTP, on SQLite and PostgreSQL."""

from typing import Any

import pytest
from sqlalchemy import select

from registry.database import OutboxMessage
from shared.events import REGISTRY_ENROLLMENTS, EnrollmentCreated, Envelope
from tests.conftest import Harness
from tests.registry.helpers import row_counts
from tests.support import problem, resident_id, with_wrong_check

JING_WINDOW = "2022-11-15T10:00:00+08:00"
HEFEI_WINDOW = "2023-10-08T10:00:00+08:00"


def jing_id() -> str:
    return resident_id(region="341823")


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "id_number": resident_id(),
        "name": "张三",
        "region_code": "340104",
        "coverage_year": 2024,
    } | overrides


@pytest.mark.parametrize(
    ("region_code", "coverage_year", "personal", "fiscal", "total", "start", "end"),
    [
        ("340104", 2024, "380.00", "640.00", "1020.00", "2024-01-01", "2024-12-31"),  # 蜀山区
        ("340100", 2024, "380.00", "640.00", "1020.00", "2024-01-01", "2024-12-31"),  # 合肥市
        ("340173", 2024, "380.00", "640.00", "1020.00", "2024-01-01", "2024-12-31"),  # 新站区 (zone code)
        ("341823", 2023, "350.00", "610.00", "960.00", "2023-01-01", "2023-12-31"),  # 泾县
    ],
)
async def test_enrollment_is_priced_from_the_region_policy(
    registry: Harness,
    region_code: str,
    coverage_year: int,
    personal: str,
    fiscal: str,
    total: str,
    start: str,
    end: str,
) -> None:
    if region_code == "341823":
        registry.at(JING_WINDOW)
    id_number = jing_id() if region_code == "341823" else resident_id()
    response = await registry.client.post(
        "/v1/enrollments",
        json=body(
            id_number=id_number, region_code=region_code, coverage_year=coverage_year, phone="13912345678"
        ),
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "pending_payment"
    assert (created["personal_due"], created["fiscal_subsidy"], created["total_financing"]) == (
        personal,
        fiscal,
        total,
    )
    assert (created["coverage_start"], created["coverage_end"]) == (start, end)
    assert created["id_number_masked"] == id_number[:4] + "*" * 10 + id_number[-4:]
    assert id_number not in response.text
    fetched = await registry.client.get(f"/v1/enrollments/{created['enrollment_id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_enrollment_writes_its_event_to_the_outbox_in_the_same_transaction(registry: Harness) -> None:
    id_number = resident_id()
    response = await registry.client.post("/v1/enrollments", json=body(id_number=id_number))
    enrollment_id = response.json()["enrollment_id"]

    async with registry.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage))).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.topic, row.key, row.published_at) == (REGISTRY_ENROLLMENTS, enrollment_id, None)
    envelope = Envelope.from_bytes(row.payload)
    assert (envelope.type, envelope.subject, envelope.source) == (
        EnrollmentCreated.event_type,
        enrollment_id,
        "/canbao/registry",
    )
    event = envelope.payload(EnrollmentCreated)
    assert (event.id_number, event.personal_due_fen, event.total_financing_fen) == (id_number, 38000, 102000)


@pytest.mark.parametrize(
    ("region", "birth"),
    [
        ("340104", "19500101"),  # 蜀山区's code dates from 1983 (西市区 until 2001): the 60+ still carry it
        ("341823", "19620815"),  # 泾县 took 341823 in 2000
    ],
)
async def test_people_born_before_their_division_code_existed_can_enroll(
    registry: Harness, region: str, birth: str
) -> None:
    response = await registry.client.post(
        "/v1/enrollments", json=body(id_number=resident_id(region=region, birth=birth))
    )
    assert response.status_code == 201, response.text


async def test_lowercase_x_check_character_is_accepted_and_normalised(registry: Harness) -> None:
    id_number = next(i for i in (resident_id(seq=n) for n in range(1000)) if i.endswith("X"))
    response = await registry.client.post("/v1/enrollments", json=body(id_number=id_number.lower()))
    assert response.status_code == 201, response.text
    assert response.json()["id_number_masked"].endswith("X")


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"id_number": with_wrong_check(resident_id())}, 422, "id_number_invalid_checksum"),
        ({"id_number": "34010419900307"}, 422, "id_number_invalid_format"),
        ({"id_number": "3401041990030712AB"}, 422, "id_number_invalid_format"),
        ({"id_number": resident_id(birth="19901332")}, 422, "id_number_invalid_birth_date"),
        ({"id_number": resident_id(birth="21990101")}, 422, "id_number_invalid_birth_date"),
        ({"id_number": resident_id(region="990000")}, 422, "id_number_invalid_region"),
        ({"region_code": "110101"}, 422, "policy_not_found"),
        ({"coverage_year": 2031}, 422, "policy_not_found"),
        ({"region_code": "3401"}, 422, "validation_error"),
        ({"name": "   "}, 422, "validation_error"),
        ({"phone": "12345"}, 422, "validation_error"),
        ({"coverage_year": "next year"}, 422, "validation_error"),
        ({"unexpected": 1}, 422, "validation_error"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    registry: Harness, overrides: dict[str, Any], status: int, code: str
) -> None:
    response = await registry.client.post("/v1/enrollments", json=body(**overrides))

    assert response.status_code == status, response.text
    assert problem(response)["code"] == code
    assert await row_counts(registry) == (0, 0, 0)


async def test_the_same_person_cannot_enroll_twice_for_one_year(registry: Harness) -> None:
    id_number = resident_id()
    first = await registry.client.post("/v1/enrollments", json=body(id_number=id_number))
    assert first.status_code == 201
    # Another district of the same city changes nothing: one person, one enrollment per coverage year.
    second = await registry.client.post(
        "/v1/enrollments", json=body(id_number=id_number, region_code="340102")
    )

    assert second.status_code == 409
    assert problem(second)["code"] == "already_enrolled"
    assert await row_counts(registry) == (1, 1, 1)


async def test_the_same_person_may_enroll_for_another_year(registry: Harness) -> None:
    id_number = jing_id()
    registry.at(JING_WINDOW)
    first = await registry.client.post(
        "/v1/enrollments", json=body(id_number=id_number, region_code="341823", coverage_year=2023)
    )
    registry.at(HEFEI_WINDOW)
    second = await registry.client.post("/v1/enrollments", json=body(id_number=id_number, coverage_year=2024))

    assert (first.status_code, second.status_code) == (201, 201)
    assert await row_counts(registry) == (1, 2, 2)


async def test_a_known_id_number_with_another_name_is_refused(registry: Harness) -> None:
    id_number = jing_id()
    registry.at(JING_WINDOW)
    await registry.client.post(
        "/v1/enrollments", json=body(id_number=id_number, region_code="341823", coverage_year=2023)
    )
    registry.at(HEFEI_WINDOW)
    response = await registry.client.post("/v1/enrollments", json=body(id_number=id_number, name="李四"))

    assert response.status_code == 409
    assert problem(response)["code"] == "person_name_mismatch"
    assert await row_counts(registry) == (1, 1, 1)


async def test_unknown_enrollment_is_404(registry: Harness) -> None:
    response = await registry.client.get("/v1/enrollments/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert problem(response)["code"] == "enrollment_not_found"


async def test_openapi_declares_the_error_responses(registry: Harness) -> None:
    spec = (await registry.client.get("/openapi.json")).json()
    responses = spec["paths"]["/v1/enrollments"]["post"]["responses"]
    assert {"201", "409", "422"} <= set(responses)
    assert "already_enrolled" in responses["409"]["description"]
    assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    # The endpoint writes its answer itself and takes its caller from one dependency
    # (router.create_enrollment): the document still says what it answers and that it needs a token.
    assert responses["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/EnrollmentOut")
    assert {"401", "403"} <= set(responses)
    assert spec["paths"]["/v1/enrollments"]["post"]["security"] == [{"HTTPBearer": []}]


async def test_a_new_enrollment_is_answered_as_fastapi_answers_the_model(registry: Harness) -> None:
    """POST writes its answer's bytes itself; GET leaves it to FastAPI. The same enrollment (no notices), the
    same bytes and headers."""
    created = await registry.client.post("/v1/enrollments", json=body())
    fetched = await registry.client.get(f"/v1/enrollments/{created.json()['enrollment_id']}")

    assert (created.status_code, fetched.status_code) == (201, 200)
    assert created.json()["notices"] == []
    assert created.content == fetched.content
    assert created.headers.multi_items() == fetched.headers.multi_items()
