"""Judging roster rows: each problem gets the column, a machine code and a Chinese and English message."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from registry.people.errors import PersonNameMismatch
from registry.people.identity import checked_resident_id
from registry.policy.errors import UnknownSubsidyCategory, UnknownTownship, UnknownVillage
from registry.policy.models import Policy, SubsidyCategory
from registry.roster.models import RosterKind, RowStatus
from shared.errors import DomainError
from shared.fields import has_invisible_characters
from shared.logging import mask_id_number
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
_REQUIRED_IN_ORDER = {kind: tuple(sorted(fields)) for kind, fields in REQUIRED.items()}
SUBSIDY_KINDS = {RosterKind.SUBSIDY, RosterKind.SUBSIDY_ADDITION, RosterKind.SUBSIDY_REDUCTION}
STUDENT_KINDS = {RosterKind.STUDENT, RosterKind.UNIVERSITY}
HOUSEHOLD_NO_MAX = 32  # registered_residents.household_no
SCHOOL_NAME_MAX = 64
# What applying a row stores of its cells, at most as long as the columns that keep them: the person's name,
# where they live (assignments, enrollments, registered residence), the note and reason (assignments).
_SEEN_MAX = 10_000
CELL_MAX = {"name": 64, "township": 32, "village": 64, "group": 32, "note": 256, "reason": 256}
_SHORT = min(*CELL_MAX.values(), HOUSEHOLD_NO_MAX, SCHOOL_NAME_MAX)


def problem(column: str, code: str, zh: str, en: str) -> dict[str, str]:
    return {"column": column, "code": code, "message_zh": zh, "message_en": en}


def from_error(column: str, error: type[DomainError] | DomainError) -> dict[str, str]:
    return problem(column, error.code, error.message_zh, error.message_en)


def find_category(policy: Policy, text: str) -> SubsidyCategory | None:
    """A category named by its code, its name, an alias or a group it includes (孤儿 counts as 特困人员):
    the policy's one resolver."""
    return policy.find_category(text)


@dataclass
class Judged:
    id_number: str | None
    values: dict[str, Any]
    problems: list[dict[str, str]]
    birth_date: date | None = None  # as the ID number gives it, when it is valid


@dataclass(frozen=True)
class RowRules:
    kind: RosterKind
    policy: Policy
    region_code: str
    category: SubsidyCategory | None  # for the whole upload, when one is given
    headers: dict[str, str]
    today: date
    # What was judged of a cell text (a place, a category, a date) that rows repeat: judged once.
    _seen: dict[tuple[str, str, str | None], Any] = field(default_factory=dict, compare=False, repr=False)

    def column(self, field: str) -> str:
        return self.headers.get(field, field)

    def judge(self, values: dict[str, str]) -> Judged:
        """Checks that need no database: presence, ID number, township, category, dates."""
        problems: list[dict[str, str]] = []
        for name in _REQUIRED_IN_ORDER[self.kind]:
            if not values.get(name):
                problems.append(
                    problem(self.column(name), "missing_value", "此项不能为空", "This cell must not be empty")
                )
        if has_invisible_characters(values.get("name", "")):
            problems.append(
                problem(
                    self.column("name"),
                    "name_invalid_characters",
                    "姓名含有控制字符、零宽字符或文字方向控制符",
                    "The name contains control, zero-width or bidirectional-override characters",
                )
            )
        id_number, born = None, None
        if values.get("id_number"):
            try:
                id_number, born = checked_resident_id(values["id_number"], self.today)
            except DomainError as exc:
                problems.append(from_error(self.column("id_number"), exc))
        township, village = values.get("township") or "", values.get("village")
        problems.extend(
            self._once(("place", township, village), lambda: self._judge_place(township, village))
        )
        out: dict[str, Any] = dict(values)
        if self.kind in SUBSIDY_KINDS:
            problems.extend(self._judge_category(values, out))
        if values.get("event_date"):
            problems.extend(self._judge_date(values["event_date"], out))
        elif self.kind is RosterKind.SUBSIDY_ADDITION:
            problems.extend(self._judge_date(self.today.isoformat(), out))
        problems.extend(self._judge_lengths(values))
        return Judged(id_number, out, problems, born)

    def _once(self, key: tuple[str, str, str | None], judge: Callable[[], Any]) -> Any:
        """What `judge` says of a cell text, judged once for all the rows that repeat it."""
        if key in self._seen:
            return self._seen[key]
        if len(self._seen) >= _SEEN_MAX:
            self._seen.clear()  # a file of endless distinct texts keeps no more than this
        found = self._seen[key] = judge()
        return found

    def _judge_place(self, township: str | None, village: str | None) -> list[dict[str, str]]:
        if township and not self.policy.has_township(self.region_code, township):
            return [from_error(self.column("township"), UnknownTownship)]
        if township and village and not self.policy.has_village(self.region_code, township, village):
            return [from_error(self.column("village"), UnknownVillage)]
        return []

    def _judge_category(self, values: dict[str, str], out: dict[str, Any]) -> list[dict[str, str]]:
        text = values.get("category")
        category = (
            self._once(("category", text, None), lambda: find_category(self.policy, text))
            if text
            else self.category
        )
        if category is None:
            return [from_error(self.column("category"), UnknownSubsidyCategory)]
        out["category_code"] = category.code
        return []

    def _judge_lengths(self, values: dict[str, str]) -> list[dict[str, str]]:
        if max(map(len, values.values()), default=0) <= _SHORT:
            return []  # most rows: nothing near any limit
        problems = [
            problem(
                self.column(name),
                "value_too_long",
                f"此项不能超过 {limit} 个字符",
                f"This cell holds at most {limit} characters",
            )
            for name, limit in CELL_MAX.items()
            if len(values.get(name, "")) > limit
        ]
        if len(values.get("household_no", "")) > HOUSEHOLD_NO_MAX:
            problems.append(
                problem(
                    self.column("household_no"),
                    "value_too_long",
                    f"户号不能超过 {HOUSEHOLD_NO_MAX} 个字符",
                    f"A household number has at most {HOUSEHOLD_NO_MAX} characters",
                )
            )
        if len(values.get("school", "")) > SCHOOL_NAME_MAX:
            problems.append(
                problem(
                    self.column("school"),
                    "value_too_long",
                    f"学校名称不能超过 {SCHOOL_NAME_MAX} 个字",
                    f"A school name has at most {SCHOOL_NAME_MAX} characters",
                )
            )
        return problems

    def _judge_date(self, text: str, out: dict[str, Any]) -> list[dict[str, str]]:
        column = self.column("event_date")
        day = self._once(("date", text, None), lambda: parse_date(text))
        if day is None:
            return [
                problem(
                    column, "date_invalid", "日期格式不正确（如 2022-10-15）", "Not a date (e.g. 2022-10-15)"
                )
            ]
        out["event_date"] = day.isoformat()
        if day > self.today:
            return [
                problem(
                    column,
                    "date_outside_cutoff",
                    f"认定日期 {day} 晚于今天（{self.today}），请填写已认定的日期",
                    f"The date {day} is after today ({self.today}): give the day the person was identified",
                )
            ]
        rosters = self.policy.subsidy_rosters
        if self.kind is RosterKind.SUBSIDY_ADDITION:
            start, end = rosters.additions_period(self.policy)
            if day < start:
                return [
                    problem(
                        column,
                        "date_outside_cutoff",
                        f"新增资助参保人员的认定时间须在 {start} 至 {end} 之间；{start} 以前认定的人员"
                        "请报资助参保人员花名册（kind=subsidy）",
                        f"Additions are people identified from {start} to {end}; people identified before "
                        f"{start} belong on the main roster (kind=subsidy)",
                    )
                ]
            if day > end:
                return [_after_the_year(column, start, end)]
            return []
        _, end = rosters.main_roster_period(self.policy)
        if day <= end:
            return []
        if self.kind is RosterKind.SUBSIDY and rosters.cut_off is not None:
            return [
                problem(
                    column,
                    "date_outside_cutoff",
                    f"资助参保人员的认定时间以 {end} 为准：本花名册只收 {end} 及以前认定的人员；"
                    "其后新认定的请报新增资助参保人员花名册（kind=subsidy_addition）",
                    f"The main roster holds people identified up to {end}, inclusive; people identified "
                    "after it belong on the additions roster (kind=subsidy_addition)",
                )
            ]
        return [_after_the_year(column, None, end)]


def _after_the_year(column: str, start: date | None, end: date) -> dict[str, str]:
    since = f"{start} 至 " if start else ""
    since_en = f"from {start} " if start else ""
    return problem(
        column,
        "date_outside_cutoff",
        f"认定日期须在 {since}{end} 之间（本参保年度）；之后的变动请按下一年度的花名册报送",
        f"The date must fall {since_en}until {end} (this coverage year); later changes go on next year's "
        "rosters",
    )


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


def _status_of(problems: list[dict[str, str]]) -> RowStatus:
    if not problems:
        return RowStatus.ACCEPTED
    if all(p["code"] in REVIEWABLE for p in problems):
        return RowStatus.HELD
    return RowStatus.REJECTED


def birth_date(id_number: str) -> date:
    """The birth date in a resident ID number that `RowRules.judge` accepted."""
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def namesake_keys(judged: list[tuple[int, Judged]]) -> list[tuple[str, date]]:
    """(name, birth date) of each row with a valid ID number, to look up people registered alike."""
    return [(j.values.get("name", ""), j.birth_date) for _, j in judged if j.birth_date]


@dataclass(frozen=True)
class Registered:
    """What the registry holds about a chunk's ID numbers, gathered before its rows are judged against it."""

    earlier: dict[str, int]  # ID number -> the first row of this upload already stored with it
    names: dict[str, str]  # ID number -> the name it is registered under
    held: set[tuple[str, str]]  # (ID number, category code) held this coverage year
    namesakes: dict[tuple[str, date], list[str]]  # (name, birth date) -> ID numbers registered with them
    insured: dict[str, str]  # ID number -> the employee-insurance list naming it (subsidy rosters only)


class Verdict(NamedTuple):  # a million of them: a frozen dataclass costs twice as much to make
    row_no: int
    status: RowStatus
    id_number: str | None
    values: dict[str, Any]
    problems: list[dict[str, str]]
    evidence: dict[str, Any] | None


def against_registered(
    rules: RowRules, judged: list[tuple[int, Judged]], registered: Registered
) -> list[Verdict]:
    """The checks that need the registry, on what was gathered: a name registered otherwise, someone of the
    same name and birth date under another number, a listing in employee insurance (held for review, with the
    evidence); an ID number an earlier row gave, a reduction of a category not held (rejected)."""
    earlier = dict(registered.earlier)
    verdicts = []
    for row_no, row in judged:
        problems = list(row.problems)
        evidence: dict[str, Any] = {}
        if row.id_number:
            name = row.values.get("name", "")
            registered_name = registered.names.get(row.id_number)
            if registered_name is not None and registered_name != row.values.get("name"):
                problems.append(name_mismatch(rules.column("name")))
                evidence["registered_name"] = registered_name
            namesakes = registered.namesakes.get((name, row.birth_date or birth_date(row.id_number)))
            others = [n for n in namesakes if n != row.id_number] if namesakes else None
            if others:
                problems.append(same_name_and_birth(rules.column("name")))
                evidence["same_name_and_birth_date"] = [mask_id_number(n) for n in others]
            if row.id_number in registered.insured:
                problems.append(on_employee_insurance(rules.column("id_number")))
                evidence["employee_insurance"] = registered.insured[row.id_number]
            if row.id_number in earlier:
                problems.append(duplicate_row(rules.column("id_number"), earlier[row.id_number]))
            else:
                earlier[row.id_number] = row_no
            if (
                rules.kind is RosterKind.SUBSIDY_REDUCTION
                and "category_code" in row.values
                and (row.id_number, row.values["category_code"]) not in registered.held
            ):
                problems.append(not_held(rules.column("name")))
        verdicts.append(
            Verdict(row_no, _status_of(problems), row.id_number, row.values, problems, evidence or None)
        )
    return verdicts
