"""The policy engine against the two documents, without a database: the shipped policy files loaded as the
registry loads them, and every price, date and late case of DOMAIN.md asserted in fen and calendar days.

Hefei: 合医保发〔2023〕12号, coverage year 2024 (and the 当年度 terms for newborns of 2023).
Jing county: 泾政办秘〔2022〕75号, coverage year 2023."""

from datetime import date
from typing import Any

import pytest

from registry.people.models import DocumentType
from registry.people.service import Identity
from registry.policy import rules
from registry.policy.book import SHIPPED_POLICIES, PolicyBook
from registry.policy.errors import (
    CoverageYearOver,
    EligibilityDocumentMismatch,
    EligibilityNotInPolicy,
    EligibilityNotMet,
    EnrollmentWindowClosed,
    EnrollmentWindowNotOpen,
    LateCaseEvidenceInvalid,
    LateCaseEvidenceMissing,
    LateCaseExpired,
    LateCaseNotInPolicy,
    NewbornsOnlyYear,
    NewbornYearNotAllowed,
    UnknownTownship,
    UnknownWindowExtension,
)
from registry.policy.models import Charge, CoverageFrom, EligibilityKind, LateCaseKind, Policy
from shared.errors import DomainError

BOOK = PolicyBook.load(SHIPPED_POLICIES)
HEFEI = BOOK.find("340104", 2024)  # 蜀山区; every Hefei division is under the one policy
HEFEI_NEWBORNS_2023 = BOOK.find("340104", 2023)  # 当年度, derived from hefei-2024.toml
JING = BOOK.find("341823", 2023)

ADULT_BORN = date(1980, 5, 5)
NO_HELD: tuple[str, ...] = ()

P = rules.Price
L = rules.SubsidyLine
T = rules.Terms


def terms(
    policy: Policy,
    today: date,
    *,
    born: date = ADULT_BORN,
    held: tuple[str, ...] = NO_HELD,
    extension: str | None = None,
    late: LateCaseKind | None = None,
    event: date | None = None,
    evidence: str | None = None,
) -> rules.Terms:
    claim = rules.LateClaim(late, event, evidence) if late else None
    return rules.terms(policy, today, born, held, extension, claim)


def refused(error: type[DomainError], policy: Policy, today: date, **kw: Any) -> DomainError:
    """The refusal `terms` gives, which must be `error`."""
    with pytest.raises(error) as caught:
        terms(policy, today, **kw)
    return caught.value


# --- 筹资标准: personal contribution, fiscal subsidy, total financing ---------------------------------


def test_the_policies_are_the_two_documents_and_hefeis_current_year_terms() -> None:
    assert (HEFEI.policy_id, HEFEI.source_document, HEFEI.coverage_year) == (
        "hefei-2024",
        "合医保发〔2023〕12号",
        2024,
    )
    assert (JING.policy_id, JING.source_document, JING.coverage_year) == (
        "jing-2023",
        "泾政办秘〔2022〕75号",
        2023,
    )
    assert HEFEI_NEWBORNS_2023.policy_id == "hefei-2024-newborns-2023"
    assert HEFEI_NEWBORNS_2023.newborns_only


@pytest.mark.parametrize(
    ("policy", "personal", "fiscal", "total"),
    [
        (HEFEI, 38000, 64000, 102000),  # 380 + 640 = 1,020 yuan
        (JING, 35000, 61000, 96000),  # 350 + 610 = 960 yuan
        (HEFEI_NEWBORNS_2023, 35000, 61000, 96000),  # the 2023 standard the file assumes
    ],
)
def test_an_unsubsidised_person_pays_the_personal_contribution(
    policy: Policy, personal: int, fiscal: int, total: int
) -> None:
    assert rules.price(policy, NO_HELD, Charge.PERSONAL) == P(personal, (), fiscal, total)


@pytest.mark.parametrize(("policy", "total"), [(HEFEI, 102000), (JING, 96000), (HEFEI_NEWBORNS_2023, 96000)])
def test_total_financing_is_the_whole_amount_with_no_subsidy_and_no_fiscal_share(
    policy: Policy, total: int
) -> None:
    # 按当年筹资总额缴纳: a full subsidy does not apply either.
    assert rules.price(policy, ("extreme_poverty",), Charge.TOTAL_FINANCING) == P(total, (), 0, total)


# --- 资助参保: every category of both documents --------------------------------------------------------

HEFEI_CATEGORIES = [
    # code, name, subsidy, person pays (of 380); funder 医疗救助资金 for all
    ("extreme_poverty", "特困人员", 38000, 0),
    ("minimum_living", "低保对象", 34200, 3800),
    ("near_minimum_living_elderly", "低保边缘家庭老年人", 34200, 3800),
    ("family_planning_special", "计划生育特殊家庭父母", 34200, 3800),
    ("returned_to_poverty", "返贫致贫人口", 30400, 7600),
    ("poverty_monitoring", "防止返贫监测对象", 19000, 19000),
]

JING_CATEGORIES = [
    # code, name, subsidy, person pays (of 350), funder
    ("extreme_poverty", "特困人员", 35000, 0, "县医保局"),
    ("minimum_living", "低保对象", 31500, 3500, "县医保局"),
    ("returned_to_poverty", "返贫致贫人口", 28000, 7000, "县医保局"),
    ("low_income_monitoring", "农村低收入人口监测对象", 17500, 17500, "县医保局"),
    ("family_planning_special", "计生特扶对象", 35000, 0, "县卫健委"),
    ("key_special_care", "重点优抚对象", 35000, 0, "县退役军人事务局"),
    ("severe_disability", "重度残疾人", 31500, 3500, "县残联"),
]


def test_each_document_has_exactly_its_categories() -> None:
    assert [c.code for c in HEFEI.subsidy_categories] == [c[0] for c in HEFEI_CATEGORIES]
    assert [c.code for c in JING.subsidy_categories] == [c[0] for c in JING_CATEGORIES] + ["village_cadre"]


@pytest.mark.parametrize(("code", "name", "subsidy", "pays"), HEFEI_CATEGORIES)
def test_hefei_categories_pay_their_share_of_380(code: str, name: str, subsidy: int, pays: int) -> None:
    assert rules.price(HEFEI, (code,), Charge.PERSONAL) == P(
        pays, (L(code, name, "医疗救助资金", subsidy),), 64000, 102000
    )


@pytest.mark.parametrize(("code", "name", "subsidy", "pays", "funder"), JING_CATEGORIES)
def test_jing_categories_pay_their_fixed_amount_of_350(
    code: str, name: str, subsidy: int, pays: int, funder: str
) -> None:
    assert rules.price(JING, (code,), Charge.PERSONAL) == P(
        pays, (L(code, name, funder, subsidy),), 61000, 96000
    )


def test_jings_village_cadres_are_held_but_priced_at_nothing_until_an_amount_is_set() -> None:
    # 村干部参加医疗保险按照县政府办泾政办秘〔2022〕66号文件执行: no amount in this notice.
    cadre = JING.category("village_cadre")
    assert cadre is not None
    assert rules.subsidy_amount(cadre, 35000) is None
    assert rules.price(JING, ("village_cadre",), Charge.PERSONAL) == P(35000, (), 61000, 96000)
    assert rules.most_generous(JING, ("village_cadre",)) is None


def test_in_jing_who_certifies_and_who_pays_differ() -> None:
    # 县民政局 certifies 特困/低保, 县医保局 pays for them.
    for code in ("extreme_poverty", "minimum_living"):
        category = JING.category(code)
        assert category is not None
        assert (category.certifier, category.funder) == ("县民政局", "县医保局")


@pytest.mark.parametrize(
    ("policy", "held", "code", "pays"),
    [
        (HEFEI, ("poverty_monitoring", "minimum_living"), "minimum_living", 3800),
        (HEFEI, ("returned_to_poverty", "extreme_poverty", "minimum_living"), "extreme_poverty", 0),
        (JING, ("village_cadre", "low_income_monitoring"), "low_income_monitoring", 17500),
        (JING, ("low_income_monitoring", "returned_to_poverty"), "returned_to_poverty", 7000),
        # Ties go to the category the policy lists first: the funder follows.
        (JING, ("severe_disability", "minimum_living"), "minimum_living", 3500),
        (JING, ("key_special_care", "family_planning_special"), "family_planning_special", 0),
        (JING, ("key_special_care", "extreme_poverty"), "extreme_poverty", 0),
    ],
)
def test_several_categories_give_the_single_most_generous(
    policy: Policy, held: tuple[str, ...], code: str, pays: int
) -> None:
    # 就高不就低: one subsidy line, never two.
    price = rules.price(policy, held, Charge.PERSONAL)
    assert [line.category for line in price.subsidy_lines] == [code]
    assert price.personal_due_fen == pays
    assert price.personal_due_fen + price.subsidy_lines[0].amount_fen == policy.contribution.personal


def test_an_unknown_code_held_gives_no_subsidy() -> None:
    assert rules.price(JING, ("near_minimum_living_elderly",), Charge.PERSONAL).personal_due_fen == 35000


@pytest.mark.parametrize(
    ("policy", "text", "code"),
    [
        (HEFEI, "事实无人抚养儿童", "extreme_poverty"),
        (HEFEI, "社会散居孤儿", "extreme_poverty"),
        (HEFEI, "特困人员（含社会散居孤儿、事实无人抚养儿童）", "extreme_poverty"),
        (JING, "特困供养人员（含孤儿、事实无人抚养的儿童）", "extreme_poverty"),
        (JING, "乡村振兴部门认定的返贫致贫人口", "returned_to_poverty"),
        (JING, "纳入相关部门农村低收入人口监测范围的人口", "low_income_monitoring"),
        (JING, "计生特扶对象", "family_planning_special"),
    ],
)
def test_the_documents_group_names_find_their_category(policy: Policy, text: str, code: str) -> None:
    found = policy.find_category(text)
    assert found is not None
    assert found.code == code


def test_a_group_of_the_other_document_is_unknown() -> None:
    assert JING.find_category("防止返贫监测对象") is None
    assert HEFEI.find_category("重度残疾人") is None


# --- 集中参保期 and 待遇享受期 -----------------------------------------------------------------------


@pytest.mark.parametrize("today", [date(2023, 9, 1), date(2023, 10, 8), date(2023, 12, 31)])
def test_hefeis_window_is_1_september_to_31_december_for_2024_coverage(today: date) -> None:
    assert terms(HEFEI, today) == T(
        Charge.PERSONAL, CoverageFrom.COVERAGE_START, date(2024, 1, 1), None, None, date(2023, 12, 31)
    )
    assert HEFEI.coverage.end == date(2024, 12, 31)


@pytest.mark.parametrize("today", [date(2022, 10, 17), date(2022, 12, 31)])
def test_jings_window_ends_31_december_for_2023_coverage(today: date) -> None:
    assert terms(JING, today) == T(
        Charge.PERSONAL, CoverageFrom.COVERAGE_START, date(2023, 1, 1), None, None, date(2022, 12, 31)
    )
    assert JING.coverage.end == date(2023, 12, 31)


@pytest.mark.parametrize(
    ("policy", "day_before", "opens"),
    [(HEFEI, date(2023, 8, 31), "2023-09-01"), (JING, date(2022, 10, 16), "2022-10-17")],
)
def test_nobody_enrolls_before_the_window_opens(policy: Policy, day_before: date, opens: str) -> None:
    assert refused(EnrollmentWindowNotOpen, policy, day_before).details == {"opens": opens}


@pytest.mark.parametrize(
    ("policy", "day_after", "closed"),
    [(HEFEI, date(2024, 1, 1), "2023-12-31"), (JING, date(2023, 1, 1), "2022-12-31")],
)
def test_after_the_window_only_a_late_case_enrolls(policy: Policy, day_after: date, closed: str) -> None:
    details = refused(EnrollmentWindowClosed, policy, day_after).details
    assert details is not None
    assert details["closed"] == closed
    assert [c["kind"] for c in details["late_cases"]] == [c.kind.value for c in policy.late_cases]


@pytest.mark.parametrize(
    ("policy", "late"),
    [(HEFEI, LateCaseKind.NEWBORN), (JING, LateCaseKind.NEWLY_SUBSIDISED)],
)
def test_after_the_coverage_year_nobody_enrolls_for_it(policy: Policy, late: LateCaseKind) -> None:
    day_after = policy.coverage.end.replace(year=policy.coverage.end.year + 1, month=1, day=1)
    refused(CoverageYearOver, policy, day_after, late=late, born=date(policy.coverage_year, 12, 1))


@pytest.mark.parametrize("today", [date(2023, 1, 1), date(2023, 2, 28)])
def test_jings_migrant_workers_pay_until_february_at_the_normal_price_and_coverage(today: date) -> None:
    # 县外务工人员缴费期限可延长到2023年2月底，缴纳个人参保费用，享受居民医保待遇.
    assert terms(JING, today, extension="migrant_worker") == T(
        Charge.PERSONAL,
        CoverageFrom.COVERAGE_START,
        date(2023, 1, 1),
        None,
        "migrant_worker",
        date(2023, 2, 28),
    )


def test_jings_extension_ends_with_february() -> None:
    refused(EnrollmentWindowClosed, JING, date(2023, 3, 1), extension="migrant_worker")


@pytest.mark.parametrize(("policy", "today"), [(HEFEI, date(2023, 10, 8)), (JING, date(2022, 11, 1))])
def test_a_group_the_policy_does_not_extend_is_refused(policy: Policy, today: date) -> None:
    details = refused(UnknownWindowExtension, policy, today, extension="seasonal_worker").details
    assert details == {
        "window_extension": "seasonal_worker",
        "accepted": [e.group for e in policy.enrollment_window.extensions],
    }
    assert [e.group for e in HEFEI.enrollment_window.extensions] == []


def test_a_late_case_inside_the_window_is_an_ordinary_enrollment() -> None:
    assert terms(JING, date(2022, 11, 1), born=date(2022, 10, 1), late=LateCaseKind.NEWBORN) == terms(
        JING, date(2022, 11, 1)
    )


# --- 补办: Jing's late cases -----------------------------------------------------------------------

LATE = date(2023, 6, 15)  # after the window and its extension, inside the coverage year


def test_jing_allows_exactly_the_documents_late_cases() -> None:
    assert [c.kind for c in JING.late_cases] == [
        LateCaseKind.NEWBORN,
        LateCaseKind.DISCHARGED_VETERAN,
        LateCaseKind.NEWLY_SUBSIDISED,
        LateCaseKind.EMPLOYEE_INSURANCE_INTERRUPTED,
        LateCaseKind.RELEASED_PRISONER,
    ]


def test_a_jing_newborn_within_3_months_pays_350_covered_from_birth() -> None:
    born = date(2023, 3, 15)  # 15 June is the last day of the third month (含3个月)
    found = terms(JING, LATE, born=born, late=LateCaseKind.NEWBORN)
    assert found == T(Charge.PERSONAL, CoverageFrom.BIRTH, born, LateCaseKind.NEWBORN, None, LATE)
    assert rules.price(JING, NO_HELD, found.charge).personal_due_fen == 35000


def test_a_jing_newborn_after_3_months_pays_960_still_covered_from_birth() -> None:
    born = date(2023, 3, 14)
    found = terms(JING, LATE, born=born, late=LateCaseKind.NEWBORN)
    assert found == T(
        Charge.TOTAL_FINANCING, CoverageFrom.BIRTH, born, LateCaseKind.NEWBORN, None, date(2023, 12, 31)
    )
    assert rules.price(JING, NO_HELD, found.charge).personal_due_fen == 96000


def test_a_subsidised_newborn_within_3_months_pays_its_share() -> None:
    found = terms(JING, LATE, born=date(2023, 4, 1), held=("minimum_living",), late=LateCaseKind.NEWBORN)
    assert rules.price(JING, ("minimum_living",), found.charge).personal_due_fen == 3500


@pytest.mark.parametrize(
    ("born", "today", "charge"),
    [
        (date(2023, 1, 31), date(2023, 4, 30), Charge.PERSONAL),  # month end clamped: 31 Jan + 3 months
        (date(2023, 1, 31), date(2023, 5, 1), Charge.TOTAL_FINANCING),
        (date(2023, 3, 31), date(2023, 6, 30), Charge.PERSONAL),
        (date(2023, 3, 31), date(2023, 7, 1), Charge.TOTAL_FINANCING),
    ],
)
def test_three_months_from_birth_count_to_the_month_end(born: date, today: date, charge: Charge) -> None:
    assert terms(JING, today, born=born, late=LateCaseKind.NEWBORN).charge is charge


def test_a_jing_newborn_enrolls_only_for_its_year_of_birth() -> None:
    error = refused(
        NewbornYearNotAllowed, JING, date(2023, 1, 10), born=date(2022, 12, 20), late=LateCaseKind.NEWBORN
    )
    assert error.details == {"birth_year": 2022, "may_enroll_for": ["birth_year"], "coverage_years": [2022]}


def test_a_veteran_discharged_this_year_pays_350_covered_from_the_day_after_payment() -> None:
    found = terms(
        JING, LATE, late=LateCaseKind.DISCHARGED_VETERAN, event=date(2023, 3, 1), evidence="退役证 2023-001"
    )
    assert found == T(
        Charge.PERSONAL,
        CoverageFrom.DAY_AFTER_PAYMENT,
        None,
        LateCaseKind.DISCHARGED_VETERAN,
        None,
        date(2023, 12, 31),
    )
    assert rules.price(JING, NO_HELD, found.charge).personal_due_fen == 35000


def test_a_veteran_discharged_last_year_is_not_this_years_case() -> None:
    error = refused(
        LateCaseEvidenceInvalid,
        JING,
        LATE,
        late=LateCaseKind.DISCHARGED_VETERAN,
        event=date(2022, 11, 30),
        evidence="退役证 2022-009",
    )
    assert error.details == {"late_case": "discharged_veteran", "reason": "not_discharged_this_year"}


@pytest.mark.parametrize(
    ("kind", "event", "evidence", "missing"),
    [
        (LateCaseKind.DISCHARGED_VETERAN, None, "退役证 1", ["event_date"]),
        (LateCaseKind.RELEASED_PRISONER, date(2023, 5, 1), None, ["evidence_ref"]),
        (LateCaseKind.EMPLOYEE_INSURANCE_INTERRUPTED, None, None, ["event_date", "evidence_ref"]),
    ],
)
def test_cases_with_an_event_need_its_date_and_evidence(
    kind: LateCaseKind, event: date | None, evidence: str | None, missing: list[str]
) -> None:
    error = refused(LateCaseEvidenceMissing, JING, LATE, late=kind, event=event, evidence=evidence)
    assert error.details == {"late_case": kind.value, "missing": missing}


def test_an_event_in_the_future_is_refused() -> None:
    error = refused(
        LateCaseEvidenceInvalid,
        JING,
        LATE,
        late=LateCaseKind.RELEASED_PRISONER,
        event=date(2023, 6, 16),
        evidence="释放证明 7",
    )
    assert error.details == {"late_case": "released_prisoner", "reason": "event_date_in_future"}


def test_someone_newly_subsidised_pays_their_share_covered_from_the_day_after_payment() -> None:
    held = ("low_income_monitoring",)
    found = terms(JING, LATE, held=held, late=LateCaseKind.NEWLY_SUBSIDISED)
    assert found == T(
        Charge.PERSONAL,
        CoverageFrom.DAY_AFTER_PAYMENT,
        None,
        LateCaseKind.NEWLY_SUBSIDISED,
        None,
        date(2023, 12, 31),
    )
    assert rules.price(JING, held, found.charge).personal_due_fen == 17500


def test_newly_subsidised_needs_a_category() -> None:
    error = refused(LateCaseEvidenceInvalid, JING, LATE, late=LateCaseKind.NEWLY_SUBSIDISED)
    assert error.details == {"late_case": "newly_subsidised", "reason": "no_subsidy_category"}


def test_employee_insurance_interrupted_up_to_3_months_pays_960_from_the_day_after_payment() -> None:
    ended = date(2023, 3, 15)
    found = terms(
        JING, LATE, late=LateCaseKind.EMPLOYEE_INSURANCE_INTERRUPTED, event=ended, evidence="停保证明 5"
    )
    assert found == T(
        Charge.TOTAL_FINANCING,
        CoverageFrom.DAY_AFTER_PAYMENT,
        None,
        LateCaseKind.EMPLOYEE_INSURANCE_INTERRUPTED,
        None,
        LATE,  # the case lasts only 3 months
    )
    assert rules.price(JING, ("minimum_living",), found.charge) == P(96000, (), 0, 96000)


def test_employee_insurance_interrupted_longer_than_3_months_is_no_case() -> None:
    error = refused(
        LateCaseExpired,
        JING,
        LATE,
        late=LateCaseKind.EMPLOYEE_INSURANCE_INTERRUPTED,
        event=date(2023, 3, 14),
        evidence="停保证明 5",
    )
    assert error.details == {"late_case": "employee_insurance_interrupted", "within_months": 3}


def test_a_prisoner_released_within_3_months_pays_350_until_the_third_month_ends() -> None:
    found = terms(
        JING, LATE, late=LateCaseKind.RELEASED_PRISONER, event=date(2023, 3, 15), evidence="释放证明 7"
    )
    assert found == T(
        Charge.PERSONAL, CoverageFrom.DAY_AFTER_PAYMENT, None, LateCaseKind.RELEASED_PRISONER, None, LATE
    )
    assert rules.price(JING, NO_HELD, found.charge).personal_due_fen == 35000


def test_a_prisoner_released_longer_ago_pays_960() -> None:
    found = terms(
        JING, LATE, late=LateCaseKind.RELEASED_PRISONER, event=date(2023, 3, 14), evidence="释放证明 7"
    )
    assert found == T(
        Charge.TOTAL_FINANCING,
        CoverageFrom.DAY_AFTER_PAYMENT,
        None,
        LateCaseKind.RELEASED_PRISONER,
        None,
        date(2023, 12, 31),
    )
    assert rules.price(JING, NO_HELD, found.charge).personal_due_fen == 96000


# --- 补办 and 新生儿: Hefei --------------------------------------------------------------------------


def test_hefei_allows_only_newborns_and_the_newly_subsidised_late() -> None:
    assert [c.kind for c in HEFEI.late_cases] == [LateCaseKind.NEWBORN, LateCaseKind.NEWLY_SUBSIDISED]


@pytest.mark.parametrize(
    "kind",
    [
        LateCaseKind.DISCHARGED_VETERAN,
        LateCaseKind.EMPLOYEE_INSURANCE_INTERRUPTED,
        LateCaseKind.RELEASED_PRISONER,
    ],
)
def test_hefeis_notice_has_no_other_late_case(kind: LateCaseKind) -> None:
    error = refused(
        LateCaseNotInPolicy, HEFEI, date(2024, 3, 1), late=kind, event=date(2024, 2, 1), evidence="x"
    )
    assert error.details == {
        "late_case": kind.value,
        "late_cases": [
            {"kind": "newborn", "name": "新生儿"},
            {"kind": "newly_subsidised", "name": "集中参保期后动态新增的资助参保对象"},
        ],
    }


def test_a_hefei_newborn_of_2024_within_3_months_pays_380_from_birth() -> None:
    born = date(2024, 2, 10)
    found = terms(HEFEI, date(2024, 5, 10), born=born, late=LateCaseKind.NEWBORN)
    assert found == T(
        Charge.PERSONAL, CoverageFrom.BIRTH, born, LateCaseKind.NEWBORN, None, date(2024, 5, 10)
    )
    assert rules.price(HEFEI, NO_HELD, found.charge).personal_due_fen == 38000


def test_a_hefei_newborn_of_2024_after_3_months_pays_1020_from_birth() -> None:
    born = date(2024, 2, 9)
    found = terms(HEFEI, date(2024, 5, 10), born=born, late=LateCaseKind.NEWBORN)
    assert found == T(
        Charge.TOTAL_FINANCING, CoverageFrom.BIRTH, born, LateCaseKind.NEWBORN, None, date(2024, 12, 31)
    )
    assert rules.price(HEFEI, NO_HELD, found.charge).personal_due_fen == 102000


def test_a_hefei_newborn_of_2023_enrolled_for_2024_is_covered_from_1_january() -> None:
    # 新生儿可参加当年度及下一年度: born in 2023, enrolled for 2024 after the window, within 3 months.
    found = terms(HEFEI, date(2024, 1, 15), born=date(2023, 11, 20), late=LateCaseKind.NEWBORN)
    assert found == T(
        Charge.PERSONAL, CoverageFrom.BIRTH, date(2024, 1, 1), LateCaseKind.NEWBORN, None, date(2024, 2, 20)
    )


def test_a_hefei_child_born_two_years_before_is_no_newborn_for_2024() -> None:
    error = refused(
        NewbornYearNotAllowed, HEFEI, date(2024, 1, 15), born=date(2022, 12, 20), late=LateCaseKind.NEWBORN
    )
    assert error.details == {
        "birth_year": 2022,
        "may_enroll_for": ["birth_year", "next_year"],
        "coverage_years": [2022, 2023],
    }


def test_hefeis_newly_subsidised_pay_their_share_from_the_day_after_payment() -> None:
    held = ("returned_to_poverty",)
    found = terms(HEFEI, date(2024, 3, 1), held=held, late=LateCaseKind.NEWLY_SUBSIDISED)
    assert found == T(
        Charge.PERSONAL,
        CoverageFrom.DAY_AFTER_PAYMENT,
        None,
        LateCaseKind.NEWLY_SUBSIDISED,
        None,
        date(2024, 12, 31),
    )
    assert rules.price(HEFEI, held, found.charge).personal_due_fen == 7600


# --- 当年度: Hefei newborns of 2023 enrolled for 2023 -------------------------------------------------


def test_the_current_year_terms_are_the_files_assumptions() -> None:
    policy = HEFEI_NEWBORNS_2023
    assert (policy.coverage_year, policy.coverage.start, policy.coverage.end) == (
        2023,
        date(2023, 1, 1),
        date(2023, 12, 31),
    )
    assert (policy.enrollment_window.start, policy.enrollment_window.end) == (
        date(2023, 9, 1),
        date(2023, 12, 31),
    )


def test_a_2023_newborn_within_3_months_pays_350_for_2023_from_birth() -> None:
    born = date(2023, 8, 10)
    found = terms(HEFEI_NEWBORNS_2023, date(2023, 10, 8), born=born)
    assert found == T(
        Charge.PERSONAL, CoverageFrom.BIRTH, born, LateCaseKind.NEWBORN, None, date(2023, 11, 10)
    )
    assert rules.price(HEFEI_NEWBORNS_2023, NO_HELD, found.charge).personal_due_fen == 35000


def test_a_2023_newborn_after_3_months_pays_960_for_2023() -> None:
    born = date(2023, 5, 1)
    found = terms(HEFEI_NEWBORNS_2023, date(2023, 10, 8), born=born)
    assert found == T(
        Charge.TOTAL_FINANCING, CoverageFrom.BIRTH, born, LateCaseKind.NEWBORN, None, date(2023, 12, 31)
    )
    assert rules.price(HEFEI_NEWBORNS_2023, NO_HELD, found.charge).personal_due_fen == 96000


def test_only_newborns_of_2023_enroll_for_2023() -> None:
    error = refused(NewbornsOnlyYear, HEFEI_NEWBORNS_2023, date(2023, 10, 8), born=date(2022, 12, 1))
    assert error.details == {"coverage_year": 2023, "open_year": 2024}
    refused(
        LateCaseNotInPolicy,
        HEFEI_NEWBORNS_2023,
        date(2023, 10, 8),
        born=date(2023, 8, 1),
        late=LateCaseKind.NEWLY_SUBSIDISED,
    )


@pytest.mark.parametrize(
    ("today", "error"), [(date(2023, 8, 31), EnrollmentWindowNotOpen), (date(2024, 1, 1), CoverageYearOver)]
)
def test_the_current_year_opens_with_this_campaign_and_ends_with_2023(
    today: date, error: type[DomainError]
) -> None:
    refused(error, HEFEI_NEWBORNS_2023, today, born=date(2023, 8, 1))


def test_parents_of_a_2023_newborn_are_shown_both_years() -> None:
    born, today = date(2023, 9, 1), date(2023, 10, 8)
    assert BOOK.newborn_years("340104", born, today) == [2023, 2024]
    assert BOOK.newborn_years("341823", date(2023, 5, 1), date(2023, 6, 15)) == [2023]
    assert rules.newborn_choice(HEFEI_NEWBORNS_2023, today, born) == {
        "coverage_year": 2023,
        "policy": "合肥市2024年度城乡居民基本医疗保险（新生儿参加2023年度）",
        "personal_due": "350.00",
        "coverage_start": "2023-09-01",
        "coverage_end": "2023-12-31",
        "payable_until": "2023-12-01",
    }
    assert rules.newborn_choice(HEFEI, today, born) == {
        "coverage_year": 2024,
        "policy": "合肥市2024年度城乡居民基本医疗保险",
        "personal_due": "380.00",
        "coverage_start": "2024-01-01",
        "coverage_end": "2024-12-31",
        "payable_until": "2023-12-31",
    }


# --- 参保对象, places and months ------------------------------------------------------------------------


def identity(born: date, document: DocumentType = DocumentType.RESIDENT_ID) -> Identity:
    return Identity(document, "340104199003071235", "CHN", born, "male")


@pytest.mark.parametrize(
    ("policy", "accepted"),
    [
        (
            HEFEI,
            {
                EligibilityKind.HOUSEHOLD_REGISTRATION,
                EligibilityKind.STUDENT,
                EligibilityKind.RESIDENCE_PERMIT,
                EligibilityKind.RESIDENCE_PERMIT_MINOR,
                EligibilityKind.MINOR_OF_INSURED_WORKER,
                EligibilityKind.FOREIGN_EXPERT_FAMILY,
                EligibilityKind.FOREIGN_RESIDENT,
            },
        ),
        (
            JING,
            {
                EligibilityKind.HOUSEHOLD_REGISTRATION,
                EligibilityKind.LONG_TERM_RESIDENT,
                EligibilityKind.STUDENT,
            },
        ),
    ],
)
def test_each_document_accepts_its_bases_and_no_other(policy: Policy, accepted: set[EligibilityKind]) -> None:
    today = date(2023, 10, 8)
    for basis in EligibilityKind:
        document = DocumentType.PASSPORT if basis.is_foreign else DocumentType.RESIDENT_ID
        person = identity(date(2010, 1, 1), document)
        if basis in accepted:
            rules.check_eligibility(policy, basis, person, today)
        else:
            with pytest.raises(EligibilityNotInPolicy):
                rules.check_eligibility(policy, basis, person, today)


def test_students_pay_the_ordinary_price_in_both_documents() -> None:
    # 在校学生: the personal contribution, the school or family paying as the policy says.
    for policy, pays in ((HEFEI, 38000), (JING, 35000)):
        rules.check_eligibility(
            policy, EligibilityKind.STUDENT, identity(date(2005, 9, 1)), date(2023, 10, 8)
        )
        assert rules.price(policy, NO_HELD, Charge.PERSONAL).personal_due_fen == pays
        assert (policy.student_rosters.school_payer.value, policy.student_rosters.university_payer.value) == (
            "individual",
            "organisation",
        )


def test_the_minors_bases_end_on_the_18th_birthday() -> None:
    today = date(2023, 10, 8)
    rules.check_eligibility(HEFEI, EligibilityKind.RESIDENCE_PERMIT_MINOR, identity(date(2005, 10, 9)), today)
    with pytest.raises(EligibilityNotMet):
        rules.check_eligibility(
            HEFEI, EligibilityKind.RESIDENCE_PERMIT_MINOR, identity(date(2005, 10, 8)), today
        )


def test_foreigners_bases_need_a_foreign_document() -> None:
    with pytest.raises(EligibilityDocumentMismatch):
        rules.check_eligibility(
            HEFEI, EligibilityKind.FOREIGN_RESIDENT, identity(ADULT_BORN), date(2023, 10, 8)
        )
    with pytest.raises(EligibilityDocumentMismatch):
        rules.check_eligibility(
            HEFEI,
            EligibilityKind.HOUSEHOLD_REGISTRATION,
            identity(ADULT_BORN, DocumentType.PASSPORT),
            date(2023, 10, 8),
        )


def test_jing_townships_are_checked_and_hefeis_kept_as_given() -> None:
    rules.check_place(JING, "341823", "云岭镇")
    with pytest.raises(UnknownTownship):
        rules.check_place(JING, "341823", "宣州镇")
    rules.check_place(HEFEI, "340104", "任何街道")
    assert len([t for t in JING.townships if t.region_code == "341823"]) == 11


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2023, 1, 31), 3, date(2023, 4, 30)),
        (date(2023, 11, 30), 3, date(2024, 2, 29)),
        (date(2022, 11, 30), 3, date(2023, 2, 28)),
        (date(2023, 3, 15), 3, date(2023, 6, 15)),
        (date(2005, 10, 8), 12 * 18, date(2023, 10, 8)),
    ],
)
def test_months_are_added_with_month_ends_clamped(day: date, months: int, expected: date) -> None:
    assert rules.add_months(day, months) == expected


# --- Subsidy rosters and refunds --------------------------------------------------------------------


def test_jings_roster_cut_off_is_30_september_and_additions_run_to_31_december() -> None:
    rosters = JING.subsidy_rosters
    assert rosters.cut_off == date(2022, 9, 30)
    assert rosters.main_roster_period(JING) == (None, date(2022, 9, 30))
    assert rosters.additions_period(JING) == (date(2022, 10, 1), date(2022, 12, 31))


def test_hefeis_lists_are_due_25_august_and_additions_follow_without_a_gap() -> None:
    rosters = HEFEI.subsidy_rosters
    assert rosters.cut_off == date(2023, 8, 25)
    assert rosters.main_roster_period(HEFEI) == (None, date(2023, 8, 25))
    assert rosters.additions_period(HEFEI) == (date(2023, 8, 26), date(2024, 12, 31))
    assert (rosters.dynamic_additions_due, rosters.monthly_comparison_day) == (date(2023, 12, 25), 5)


@pytest.mark.parametrize("policy", [HEFEI, JING])
def test_paid_contributions_are_refunded_only_for_erroneous_payment_or_death(policy: Policy) -> None:
    assert policy.refunds.refundable_reasons == ["erroneous_payment", "death"]
    assert policy.refunds.refund_otherwise_within_coverage is False


@pytest.mark.parametrize("policy", [HEFEI, HEFEI_NEWBORNS_2023, JING], ids=lambda p: p.policy_id)
def test_the_terms_a_batch_takes_once_for_everyone_are_everyones_terms(policy: Policy) -> None:
    """`within_window` (a roster chunk's terms, worked out once) gives what `terms` gives each person,
    whatever their birth date, categories or claim, on every day it gives any; the days it gives none are
    left to `terms`, person by person."""
    people = [(ADULT_BORN, ()), (date(policy.coverage_year, 1, 2), ()), (ADULT_BORN, ("minimum_living",))]
    claims = [None, rules.LateClaim(LateCaseKind.NEWBORN), rules.LateClaim(LateCaseKind.NEWLY_SUBSIDISED)]
    extensions = [None, "no_such_group", *(e.group for e in policy.enrollment_window.extensions)]
    day, given = policy.enrollment_window.start.replace(day=1, month=1), 0
    while day <= policy.coverage.end:
        for extension in extensions:
            common = rules.within_window(policy, day, extension)
            if common is None:
                continue
            given += 1
            for (born, held), claim in ((person, claim) for person in people for claim in claims):
                assert rules.terms(policy, day, born, held, extension, claim) == common
        day = date.fromordinal(day.toordinal() + 7)
    assert given > 0 or policy.newborns_only
