"""The enrollment decision without a database: one live enrollment per person and year, an unpayable one
giving way, and each new one priced and dated by the policy engine."""

from datetime import date
from typing import Any

import pytest

from registry.enrollment.decision import Applicant, Live, Plan, decide
from registry.enrollment.errors import AlreadyEnrolled
from registry.enrollment.models import EnrollmentStatus
from registry.enrollment.schemas import EnrollmentCreate, LateCaseIn
from registry.policy.book import SHIPPED_POLICIES, PolicyBook
from registry.policy.errors import EnrollmentWindowClosed, NewbornYearNotAllowed
from registry.policy.models import Charge, CoverageFrom, LateCaseKind, Policy
from shared.errors import DomainError

BOOK = PolicyBook.load(SHIPPED_POLICIES)
HEFEI, HEFEI_2023, JING = BOOK.find("340104", 2024), BOOK.find("340104", 2023), BOOK.find("341823", 2023)
IN_HEFEIS_WINDOW = date(2023, 10, 8)
AFTER_JINGS_WINDOW = date(2023, 6, 16)


def applicant(policy: Policy = HEFEI, person_id: str = "p1", **kw: Any) -> Applicant:
    late = kw.pop("late", None)
    request = EnrollmentCreate(
        id_number="340104199003071235",
        name="张三",
        region_code=policy.regions[0].code,
        coverage_year=policy.coverage_year,
        late_case=LateCaseIn(kind=late) if late else None,
    )
    values: dict[str, Any] = {"birth_date": date(1990, 3, 7), **kw}
    return Applicant(request, policy, person_id, **values)


def plan(decided: Plan | DomainError) -> Plan:
    assert isinstance(decided, Plan), decided
    return decided


def test_someone_not_enrolled_gets_the_windows_terms_and_price() -> None:
    (decided,) = decide([applicant()], IN_HEFEIS_WINDOW)
    found = plan(decided)
    assert (found.terms.charge, found.terms.coverage_start, found.terms.payable_until) == (
        Charge.PERSONAL,
        date(2024, 1, 1),
        date(2023, 12, 31),
    )
    assert (found.price.personal_due_fen, found.price.total_financing_fen, found.replaces) == (
        38000,
        102000,
        None,
    )


def test_the_categories_held_price_the_enrollment() -> None:
    (decided,) = decide([applicant(JING, held=("minimum_living", "village_cadre"))], date(2022, 11, 1))
    found = plan(decided)
    assert found.price.personal_due_fen == 3500
    assert [(line.category, line.amount_fen) for line in found.price.subsidy_lines] == [
        ("minimum_living", 31500)
    ]


@pytest.mark.parametrize(
    ("status", "payable_until"),
    [
        (EnrollmentStatus.PENDING_PAYMENT, date(2023, 12, 31)),
        (EnrollmentStatus.PENDING_PAYMENT, IN_HEFEIS_WINDOW),  # its last day to pay is today
        (EnrollmentStatus.ACTIVE, date(2023, 10, 1)),  # paid: the last day to pay no longer matters
    ],
)
def test_someone_enrolled_on_a_price_that_holds_is_refused(
    status: EnrollmentStatus, payable_until: date
) -> None:
    (decided,) = decide([applicant(live=Live("e1", status, payable_until))], IN_HEFEIS_WINDOW)
    assert isinstance(decided, AlreadyEnrolled)
    assert decided.details == {"coverage_year": 2024, "enrollment_id": "e1"}


def test_an_unpaid_enrollment_past_its_last_day_gives_way_to_the_terms_of_today() -> None:
    # A Jing newborn enrolled within 3 months of birth, unpaid when the third month ended: enrolled again,
    # now at the total financing, the old enrollment lapsing.
    born = date(2023, 3, 15)
    old = Live("e1", EnrollmentStatus.PENDING_PAYMENT, date(2023, 6, 15))
    (decided,) = decide(
        [applicant(JING, birth_date=born, live=old, late=LateCaseKind.NEWBORN)], AFTER_JINGS_WINDOW
    )
    found = plan(decided)
    assert found.replaces == "e1"
    assert (found.terms.charge, found.terms.coverage_from, found.terms.coverage_start) == (
        Charge.TOTAL_FINANCING,
        CoverageFrom.BIRTH,
        born,
    )
    assert found.price.personal_due_fen == 96000


def test_a_person_named_twice_in_a_batch_is_enrolled_once() -> None:
    first, second = decide([applicant(), applicant()], IN_HEFEIS_WINDOW)
    assert plan(first).replaces is None
    assert isinstance(second, AlreadyEnrolled)
    assert second.details == {"coverage_year": 2024, "enrollment_id": None}


def test_a_newborn_may_be_enrolled_for_both_years_in_one_batch() -> None:
    born = date(2023, 9, 1)
    for_2023, for_2024 = decide(
        [
            applicant(HEFEI_2023, birth_date=born, late=LateCaseKind.NEWBORN),
            applicant(HEFEI, birth_date=born, late=LateCaseKind.NEWBORN),
        ],
        IN_HEFEIS_WINDOW,
    )
    assert (plan(for_2023).price.personal_due_fen, plan(for_2023).terms.coverage_start) == (35000, born)
    assert (plan(for_2024).price.personal_due_fen, plan(for_2024).terms.coverage_start) == (
        38000,
        date(2024, 1, 1),
    )


def test_a_refusal_of_the_policy_engine_is_the_answer_and_counts_as_the_persons_try() -> None:
    refused, again, other = decide(
        [applicant(JING), applicant(JING), applicant(JING, "p2", late=LateCaseKind.NEWBORN)],
        AFTER_JINGS_WINDOW,
    )
    assert isinstance(refused, EnrollmentWindowClosed)
    assert isinstance(again, AlreadyEnrolled)
    # p2 claims the newborn case with an adult's birth date: refused by the engine, for its own reason.
    assert isinstance(other, NewbornYearNotAllowed)


@pytest.mark.parametrize(
    ("status", "payable_until", "unpayable"),
    [
        (EnrollmentStatus.PENDING_PAYMENT, date(2023, 10, 7), True),
        (EnrollmentStatus.PENDING_PAYMENT, date(2023, 10, 8), False),
        (EnrollmentStatus.ACTIVE, date(2023, 10, 7), False),
    ],
)
def test_only_an_unpaid_enrollment_past_its_last_day_is_unpayable(
    status: EnrollmentStatus, payable_until: date, unpayable: bool
) -> None:
    assert Live("e1", status, payable_until).unpayable(IN_HEFEIS_WINDOW) is unpayable
