"""Judging roster rows: each problem gets the column, a machine code and a Chinese and English message."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from registry.people.errors import PersonNameMismatch
from registry.people.identity import parse_resident_id
from registry.policy.errors import UnknownSubsidyCategory, UnknownTownship, UnknownVillage
from registry.policy.models import Policy, SubsidyCategory
from registry.roster.models import RosterKind
from shared.errors import DomainError
from shared.tabular import parse_date

REQUIRED: dict[RosterKind, set[str]] = {
    RosterKind.SUBSIDY: {"name", "id_number"},
    # Attachment 6 has no date column: without one, an addition dates from the day it is loaded.
    RosterKind.SUBSIDY_ADDITION: {"name", "id_number", "reason"},
    RosterKind.SUBSIDY_REDUCTION: {"name", "id_number", "reason"},
    RosterKind.EMPLOYEE_INSURANCE: {"name", "id_number"},
    RosterKind.STUDENT: {"name", "id_number", "school"},
    RosterKind.UNIVERSITY: {"name", "id_number"},  # the uploading university, unless a 学校 column says
    RosterKind.HOUSEHOLD_REGISTRATION: {"name", "id_number"},
}
SUBSIDY_KINDS = {RosterKind.SUBSIDY, RosterKind.SUBSIDY_ADDITION, RosterKind.SUBSIDY_REDUCTION}
STUDENT_KINDS = {RosterKind.STUDENT, RosterKind.UNIVERSITY}
SCHOOL_NAME_MAX = 64


def problem(column: str, code: str, zh: str, en: str) -> dict[str, str]:
    return {"column": column, "code": code, "message_zh": zh, "message_en": en}


def from_error(column: str, error: type[DomainError] | DomainError) -> dict[str, str]:
    return problem(column, error.code, error.message_zh, error.message_en)


def find_category(policy: Policy, text: str) -> SubsidyCategory | None:
    """A category named by its code, its name, or a group it includes (孤儿 counts as 特困人员)."""
    for category in policy.subsidy_categories:
        if text in (category.code, category.name) or text in category.includes:
            return category
    return None


@dataclass
class Judged:
    id_number: str | None
    values: dict[str, Any]
    problems: list[dict[str, str]]


@dataclass(frozen=True)
class RowRules:
    kind: RosterKind
    policy: Policy
    region_code: str
    category: SubsidyCategory | None  # for the whole upload, when one is given
    headers: dict[str, str]
    today: date

    def column(self, field: str) -> str:
        return self.headers.get(field, field)

    def judge(self, values: dict[str, str]) -> Judged:
        """Checks that need no database: presence, ID number, township, category, dates."""
        problems: list[dict[str, str]] = []
        for field in sorted(REQUIRED[self.kind]):
            if not values.get(field):
                problems.append(
                    problem(
                        self.column(field), "missing_value", "此项不能为空", "This cell must not be empty"
                    )
                )
        id_number: str | None = None
        if values.get("id_number"):
            try:
                id_number = parse_resident_id(values["id_number"], self.today).id_number
            except DomainError as exc:
                problems.append(from_error(self.column("id_number"), exc))
        township, village = values.get("township"), values.get("village")
        if township and not self.policy.has_township(self.region_code, township):
            problems.append(from_error(self.column("township"), UnknownTownship))
        elif township and village and not self.policy.has_village(self.region_code, township, village):
            problems.append(from_error(self.column("village"), UnknownVillage))
        out: dict[str, Any] = dict(values)
        if self.kind in SUBSIDY_KINDS:
            category = (
                find_category(self.policy, values["category"]) if values.get("category") else self.category
            )
            if category is None:
                problems.append(from_error(self.column("category"), UnknownSubsidyCategory))
            else:
                out["category_code"] = category.code
        if values.get("event_date"):
            problems.extend(self._judge_date(values["event_date"], out))
        elif self.kind is RosterKind.SUBSIDY_ADDITION:
            problems.extend(self._judge_date(self.today.isoformat(), out))
        if len(values.get("school", "")) > SCHOOL_NAME_MAX:
            problems.append(
                problem(
                    self.column("school"),
                    "value_too_long",
                    f"学校名称不能超过 {SCHOOL_NAME_MAX} 个字",
                    f"A school name has at most {SCHOOL_NAME_MAX} characters",
                )
            )
        return Judged(id_number, out, problems)

    def _judge_date(self, text: str, out: dict[str, Any]) -> list[dict[str, str]]:
        column = self.column("event_date")
        day = parse_date(text)
        if day is None:
            return [
                problem(
                    column, "date_invalid", "日期格式不正确（如 2022-10-15）", "Not a date (e.g. 2022-10-15)"
                )
            ]
        out["event_date"] = day.isoformat()
        window = self._allowed_period()
        if day > self.today or not window[0] <= day <= window[1]:
            return [
                problem(
                    column,
                    "date_outside_cutoff",
                    f"日期须在 {window[0]} 至 {min(window[1], self.today)} 之间",
                    f"The date must fall between {window[0]} and {min(window[1], self.today)}",
                )
            ]
        return []

    def _allowed_period(self) -> tuple[date, date]:
        rosters = self.policy.subsidy_rosters
        if self.kind is RosterKind.SUBSIDY_ADDITION and rosters.dynamic_additions is not None:
            return rosters.dynamic_additions.start, rosters.dynamic_additions.end  # Jing: 10-01 .. 12-31
        return self.policy.enrollment_window.start, self.policy.coverage.end  # Hefei: monthly, all year


def name_mismatch(column: str) -> dict[str, str]:
    return from_error(column, PersonNameMismatch)


def same_name_and_birth(column: str) -> dict[str, str]:
    return problem(
        column,
        "suspected_duplicate_person",
        "已有同名、同出生日期但身份证号码不同的人员，待人工核实",
        "Someone with the same name and birth date is registered under another ID number; to be checked",
    )


def on_employee_insurance(column: str) -> dict[str, str]:
    return problem(
        column,
        "listed_in_employee_insurance",
        "该人员在职工医保名单中，待人工核实",
        "This person is on the employee-insurance list; to be checked",
    )


def duplicate_row(column: str, first_row: int) -> dict[str, str]:
    return problem(
        column,
        "duplicate_row",
        f"与第 {first_row} 行身份证号码重复",
        f"The same ID number as row {first_row}",
    )


def not_held(column: str) -> dict[str, str]:
    return problem(
        column,
        "category_not_held",
        "该人员本年度没有此资助类别，无法减少",
        "This person does not hold this category for the year, so it cannot be reduced",
    )


# Problems that hold a row for review with its evidence, instead of rejecting it outright.
REVIEWABLE = {PersonNameMismatch.code, "suspected_duplicate_person", "listed_in_employee_insurance"}
