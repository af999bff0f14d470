"""An unpaid enrollment lapses when its price can no longer be paid; paid ones follow the refund rules."""

import pytest
from sqlalchemy import select

from registry.database import OutboxMessage
from shared.events import EnrollmentLapsed, EnrollmentRepriced, Envelope
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, assign, current, deliver_payment, enroll, enrolled, person
from tests.support import ROOT, problem, resident_id


async def events_of(h: Harness, event_type: str) -> list[Envelope]:
    async with h.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [e for e in (Envelope.from_bytes(r.payload) for r in rows) if e.type == event_type]


async def test_an_unpaid_enrollment_lapses_when_the_person_enrolls_again_late(registry: Harness) -> None:
    baby = person(resident_id(birth="20231201"), name="宝宝")
    registry.at("2023-12-15T10:00:00+08:00")
    first = await enrolled(registry, baby, HEFEI)
    assert first["payable_until"] == "2023-12-31"

    registry.at("2024-01-20T10:00:00+08:00")
    without_case = await enroll(registry, baby, HEFEI)
    assert problem(without_case)["code"] == "enrollment_window_closed"
    second = await enrolled(registry, baby, HEFEI, late_case={"kind": "newborn"})

    assert (second["personal_due"], second["coverage_start"], second["payable_until"]) == (
        "380.00",
        "2024-01-01",
        "2024-03-01",  # the newborn price holds for three months from birth
    )
    assert (await current(registry, first))["status"] == "lapsed"
    [lapsed] = await events_of(registry, EnrollmentLapsed.event_type)
    assert lapsed.payload(EnrollmentLapsed) == EnrollmentLapsed(
        enrollment_id=first["enrollment_id"], replaced_by=second["enrollment_id"]
    )


async def test_a_payable_enrollment_is_not_replaced(registry: Harness) -> None:
    who = person()
    first = await enrolled(registry, who, HEFEI)
    again = await enroll(registry, who, HEFEI)
    assert problem(again)["code"] == "already_enrolled"
    assert problem(again)["details"]["enrollment_id"] == first["enrollment_id"]


async def test_a_late_price_past_its_limit_is_payable_until_the_coverage_ends(registry: Harness) -> None:
    registry.at("2024-06-01T10:00:00+08:00")
    late = await enrolled(
        registry, person(resident_id(birth="20240101")), HEFEI, late_case={"kind": "newborn"}
    )
    assert (late["personal_due"], late["payable_until"]) == ("1020.00", "2024-12-31")


async def test_hefei_and_jing_refund_nothing_for_a_subsidy_granted_after_payment(registry: Harness) -> None:
    who = person()
    e = await enrolled(registry, who, HEFEI)
    await deliver_payment(registry, e, "2023-10-09T09:00:00+08:00")
    response = await assign(registry, who, HEFEI, "minimum_living")
    assert response.json()["enrollment"] == "paid_not_repriced"
    assert await events_of(registry, EnrollmentRepriced.event_type) == []


@pytest.mark.policy_dir(ROOT / "tests" / "data" / "policies")
async def test_a_policy_that_refunds_reprices_a_paid_enrollment(registry: Harness) -> None:
    yunxi = {"region_code": "349901", "coverage_year": 2025}
    registry.at("2024-10-01T10:00:00+08:00")
    who = person()
    e = await enrolled(registry, who, yunxi)
    await deliver_payment(registry, e, "2024-10-02T09:00:00+08:00")

    response = await assign(registry, who, yunxi, "orphan")

    assert response.json()["enrollment"] == "paid_refund_due"
    now = await current(registry, e)
    assert (now["status"], now["paid"], now["personal_due"], now["price_version"]) == (
        "active",
        "400.00",
        "0.00",
        2,
    )
    [repriced] = await events_of(registry, EnrollmentRepriced.event_type)
    assert repriced.payload(EnrollmentRepriced).personal_due_fen == 0
