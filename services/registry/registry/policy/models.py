"""The shape of a policy file: one region and coverage year. Everything a campaign document decides —
amounts, categories, windows, late cases, refunds, roster dates — is data here, never code.

Amounts are yuan decimal strings in the file and integer fen once loaded.
"""

import enum
import re
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.money import YuanInput
from shared.regions import REGION_CODE_PATTERN


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EligibilityKind(enum.StrEnum):
    """参保对象: the basis on which a person enrolls."""

    HOUSEHOLD_REGISTRATION = "household_registration"  # 本地户籍
    RESIDENCE_PERMIT = "residence_permit"  # 持本地居住证的非户籍人员
    RESIDENCE_PERMIT_MINOR = "residence_permit_minor"  # 及其未成年子女
    STUDENT = "student"  # 在校学生
    MINOR_OF_INSURED_WORKER = "minor_of_insured_worker"  # 随在本地就业参保人员共同生活的未成年子女
    FOREIGN_EXPERT_FAMILY = "foreign_expert_family"  # 外籍专家共同生活的配偶及未成年子女
    FOREIGN_RESIDENT = "foreign_resident"  # 获得居留许可、在本地居住未就业的外国人
    LONG_TERM_RESIDENT = "long_term_resident"  # 长期在本地居住的非本地户籍人员

    @property
    def is_foreign(self) -> bool:
        return self in (EligibilityKind.FOREIGN_EXPERT_FAMILY, EligibilityKind.FOREIGN_RESIDENT)

    @property
    def is_for_minors(self) -> bool:
        return self in (EligibilityKind.RESIDENCE_PERMIT_MINOR, EligibilityKind.MINOR_OF_INSURED_WORKER)


class SubsidyKind(enum.StrEnum):
    FULL = "full"  # 全额资助
    PERCENTAGE = "percentage"  # 定额资助 at a share of the personal contribution
    FIXED = "fixed"  # 定额资助 of a fixed amount
    TO_BE_SET = "to_be_set"  # decided by a separate notice (Jing's village cadres)


class SubsidyCategory(_Strict):
    """资助类别: who gets how much of the personal contribution paid, by whom, certified by whom."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    includes: list[str] = Field(default_factory=list, description="Groups counted in (含…)")
    aliases: list[str] = Field(
        default_factory=list,
        description="Other names the documents give the same group (特困供养人员 for 特困人员)",
    )
    kind: SubsidyKind
    percent: int | None = Field(default=None, ge=1, le=100)
    amount: YuanInput | None = None
    funder: str = Field(min_length=1, description="Who pays the subsidy (资金来源)")
    certifier: str = Field(min_length=1, description="Who certifies membership (审核/认定)")
    note: str = ""

    @model_validator(mode="after")
    def _terms_match_kind(self) -> Self:
        wants = {
            SubsidyKind.PERCENTAGE: ("percent",),
            SubsidyKind.FIXED: ("amount",),
            SubsidyKind.FULL: (),
            SubsidyKind.TO_BE_SET: (),
        }[self.kind]
        for term in ("percent", "amount"):
            given = getattr(self, term) is not None
            if given != (term in wants):
                need = "needs" if term in wants else "must not have"
                raise ValueError(f"category {self.code}: kind {self.kind.value} {need} `{term}`")
        return self

    @property
    def names(self) -> list[str]:
        """Every name the category answers to: its code, its name, its aliases and the groups it includes."""
        return [self.code, self.name, *self.aliases, *self.includes]

    @property
    def label(self) -> str:
        """The name as the attachments list it, with the groups it includes:
        特困人员（含孤儿、事实无人抚养的儿童）."""
        return f"{self.name}（含{'、'.join(self.includes)}）" if self.includes else self.name


def normalise_category_text(text: str) -> str:
    """A category as people write it: spaces and half-width brackets aside, and a trailing （含…） dropped."""
    text = "".join(text.split()).replace("(", "（").replace(")", "）")
    return re.sub(r"（含[^（）]*）$", "", text)


class LateCaseKind(enum.StrEnum):
    """Cases that may enroll after the window closes (集中参保期结束后补办)."""

    NEWBORN = "newborn"  # 新生儿
    DISCHARGED_VETERAN = "discharged_veteran"  # 当年退出现役的军人及随军未就业配偶
    NEWLY_SUBSIDISED = "newly_subsidised"  # 当年动态新增的资助参保对象
    EMPLOYEE_INSURANCE_INTERRUPTED = "employee_insurance_interrupted"  # 职工医保中断不超过3个月
    RELEASED_PRISONER = "released_prisoner"  # 刑满释放人员


class Charge(enum.StrEnum):
    PERSONAL = "personal"  # the personal contribution, after any subsidy
    TOTAL_FINANCING = "total_financing"  # 按当年筹资总额缴纳


class CoverageFrom(enum.StrEnum):
    BIRTH = "birth"  # 自出生之日起 (not before the coverage year starts)
    DAY_AFTER_PAYMENT = "day_after_payment"  # 自参保缴费次日起
    COVERAGE_START = "coverage_start"


class LateCase(_Strict):
    kind: LateCaseKind
    name: str
    within_months: int | None = Field(
        default=None, ge=1, description="Months from the case's event date (inclusive) for charge_within"
    )
    charge_within: Charge
    charge_after: Charge | None = Field(default=None, description="Charge past within_months; none: refused")
    coverage_from: CoverageFrom

    @model_validator(mode="after")
    def _after_needs_limit(self) -> Self:
        if self.charge_after is not None and self.within_months is None:
            raise ValueError(f"late case {self.kind.value}: charge_after needs within_months")
        return self


class Region(_Strict):
    code: str = Field(pattern=REGION_CODE_PATTERN)
    name: str = Field(min_length=1)


class Township(_Strict):
    """乡镇 within a region; named, since the documents give no township codes."""

    name: str = Field(min_length=1)
    region_code: str = Field(pattern=REGION_CODE_PATTERN)
    villages: list[str] = Field(
        default_factory=list, description="村(居)委会, where the policy lists them (then names are checked)"
    )


class Contribution(_Strict):
    """筹资标准: what a person pays and what public finance adds per person."""

    personal: YuanInput
    fiscal_subsidy: YuanInput

    @property
    def total_financing(self) -> int:
        return self.personal + self.fiscal_subsidy


class Period(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


class WindowExtension(_Strict):
    """A group whose paying window runs longer, at the normal price and coverage (Jing: 县外务工人员)."""

    group: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    end: date


class EnrollmentWindow(Period):
    """集中参保缴费期."""

    extensions: list[WindowExtension] = Field(default_factory=list)

    def end_for(self, group: str | None) -> date:
        for extension in self.extensions:
            if extension.group == group:
                return extension.end
        return self.end


class CurrentYearTerms(_Strict):
    """当年度: what a newborn of the campaign's own year pays and gets when the parents choose that year
    rather than the campaign's coverage year (Hefei: 新生儿可参加当年度及下一年度城乡居民医保). Used only
    where no policy file of that year is loaded (a policy of the year itself, when there is one, decides)."""

    coverage_year: int = Field(ge=2000, le=2100)
    contribution: Contribution
    coverage: Period
    late_case: LateCase = Field(
        description="The newborn rule of that year: months from birth and the charges"
    )
    assumptions: list[str] = Field(
        min_length=1, description="What the document leaves unsaid and this file assumes, in words"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.late_case.kind is not LateCaseKind.NEWBORN:
            raise ValueError("current_year.late_case: kind must be newborn")
        if self.coverage.start.year != self.coverage_year:
            raise ValueError(f"current_year.coverage.start is not in {self.coverage_year}")
        return self


class Newborns(_Strict):
    """Which coverage years a newborn may enroll for, relative to the year of birth."""

    may_enroll_for: list[Literal["birth_year", "next_year"]] = Field(min_length=1)
    current_year: CurrentYearTerms | None = Field(
        default=None,
        description="当年度 terms for newborns choosing the campaign's own year (next_year only)",
    )

    def allows(self, birth_year: int, coverage_year: int) -> bool:
        offsets = {"birth_year": 0, "next_year": 1}
        return any(coverage_year - birth_year == offsets[choice] for choice in self.may_enroll_for)


class RefundRules(_Strict):
    refundable_reasons: list[Literal["erroneous_payment", "death"]] = Field(
        description="错误缴费, 自然减员: reasons a paid contribution is refunded"
    )
    refund_otherwise_within_coverage: bool = Field(
        description="False: paid contributions are not refunded during the coverage period"
    )


class Payer(enum.StrEnum):
    INDIVIDUAL = "individual"  # each student's family pays their own bill
    ORGANISATION = "organisation"  # the school pays its students' bills as one payer


class StudentRosters(_Strict):
    """Who pays for students enrolled from a school roster (学生花名册) or a university batch (高校批量参保).
    The documents leave it open; policies say it."""

    school_payer: Payer = Payer.INDIVIDUAL
    university_payer: Payer = Payer.ORGANISATION


class SubsidyRosters(_Strict):
    """Dates that govern department rosters (资助参保人员花名册)."""

    identification_date: date | None = Field(
        default=None, description="认定时间: status on this date decides"
    )
    main_roster_due: date | None = None
    dynamic_additions: Period | None = Field(default=None, description="动态新增 accepted in this period")
    dynamic_additions_due: date | None = None
    monthly_comparison_day: int | None = Field(default=None, ge=1, le=28, description="after the window")

    @property
    def cut_off(self) -> date | None:
        """The day the main roster speaks for: the identification date, or else the main roster's due date.
        People qualifying after it are additions (新增)."""
        return self.identification_date or self.main_roster_due

    def main_roster_period(self, policy: "Policy") -> tuple[date | None, date]:
        """认定日期 a main-roster row (附件4) may carry: anyone identified up to the cut-off, inclusive
        (no lower bound: a status held since long ago counts). Without a cut-off, any day up to the coverage's
        end."""
        return None, self.cut_off or policy.coverage.end

    def additions_period(self, policy: "Policy") -> tuple[date, date]:
        """认定日期 an addition (附件6) may carry: the dynamic-additions period the policy gives, else from
        the day after the cut-off (or the window's opening) until the coverage period ends."""
        if self.dynamic_additions is not None:
            return self.dynamic_additions.start, self.dynamic_additions.end
        start = self.cut_off + timedelta(days=1) if self.cut_off else policy.enrollment_window.start
        return start, policy.coverage.end

    @model_validator(mode="after")
    def _main_and_additions_meet(self) -> Self:
        """The main roster and the additions meet without a gap or an overlap."""
        cut_off = self.cut_off
        additions = self.dynamic_additions
        if additions is not None and cut_off is not None and additions.start != cut_off + timedelta(days=1):
            raise ValueError(f"dynamic_additions must start the day after the cut-off {cut_off}")
        return self


class Targets(_Strict):
    """目标任务: the coverage the campaign aims at, and 应保尽保 for subsidised people (percent)."""

    coverage_percent: Decimal = Field(default=Decimal(95), gt=0, le=100)
    subsidised_percent: Decimal = Field(default=Decimal(100), gt=0, le=100)


class Policy(_Strict):
    policy_id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    source_document: str
    coverage_year: int = Field(ge=2000, le=2100)
    regions: list[Region] = Field(
        min_length=1, description="The area and every division enrollments may name"
    )
    townships: list[Township] = Field(default_factory=list, description="乡镇 of the regions, by name")
    eligibility: list[EligibilityKind] = Field(min_length=1)
    contribution: Contribution
    enrollment_window: EnrollmentWindow
    coverage: Period = Field(description="待遇享受期")
    subsidy_categories: list[SubsidyCategory] = Field(default_factory=list)
    late_cases: list[LateCase] = Field(default_factory=list)
    newborns: Newborns
    refunds: RefundRules
    subsidy_rosters: SubsidyRosters = Field(default_factory=SubsidyRosters)
    student_rosters: StudentRosters = Field(default_factory=StudentRosters)
    targets: Targets = Field(default_factory=Targets)
    newborns_only: bool = Field(
        default=False,
        description="Only newborns enroll under it, always as the newborn late case (a current year's terms)",
    )

    @model_validator(mode="after")
    def _no_duplicates(self) -> Self:
        for label, codes in (
            ("regions", [r.code for r in self.regions]),
            ("townships", [t.name for t in self.townships]),
            ("subsidy_categories", [c.code for c in self.subsidy_categories]),
            ("late_cases", [c.kind.value for c in self.late_cases]),
            ("enrollment_window.extensions", [e.group for e in self.enrollment_window.extensions]),
        ):
            duplicates = sorted({c for c in codes if codes.count(c) > 1})
            if duplicates:
                raise ValueError(f"{label}: duplicates {duplicates}")
        names = [n for c in self.subsidy_categories for n in {normalise_category_text(n) for n in c.names}]
        ambiguous = sorted({n for n in names if names.count(n) > 1})
        if ambiguous:
            raise ValueError(f"subsidy_categories: names given to two categories {ambiguous}")
        unknown = sorted({t.region_code for t in self.townships} - {r.code for r in self.regions})
        if unknown:
            raise ValueError(f"townships: region codes {unknown} are not among the regions")
        return self

    @model_validator(mode="after")
    def _dates_agree(self) -> Self:
        if self.coverage.start.year != self.coverage_year:
            raise ValueError(
                f"coverage.start {self.coverage.start} is not in coverage_year {self.coverage_year}"
            )
        if self.enrollment_window.start > self.coverage.end:
            raise ValueError("enrollment_window starts after the coverage period ends")
        for extension in self.enrollment_window.extensions:
            if extension.end < self.enrollment_window.end:
                raise ValueError(f"extension {extension.group} ends before the window does")
        current = self.newborns.current_year
        if current is not None:
            if "next_year" not in self.newborns.may_enroll_for:
                raise ValueError("newborns.current_year needs `next_year` in newborns.may_enroll_for")
            if current.coverage_year != self.coverage_year - 1:
                raise ValueError(f"newborns.current_year.coverage_year must be {self.coverage_year - 1}")
        return self

    @cached_property
    def _places(self) -> dict[str, dict[str, frozenset[str]]]:
        """Region code -> township name -> its villages: a roster checks a million rows against them."""
        places: dict[str, dict[str, frozenset[str]]] = {}
        for t in self.townships:
            villages = places.setdefault(t.region_code, {}).get(t.name, frozenset())
            places[t.region_code][t.name] = villages | frozenset(t.villages)
        return places

    def has_township(self, region_code: str, name: str) -> bool:
        """A township the policy lists for the region; any name, where it lists none to check against."""
        listed = self._places.get(region_code)
        return not listed or name in listed

    def has_village(self, region_code: str, township: str, village: str) -> bool:
        """A village the policy lists for the township; any name, where it lists none to check against."""
        listed = self._places.get(region_code, {}).get(township)
        return not listed or village in listed

    def category(self, code: str) -> SubsidyCategory | None:
        return next((c for c in self.subsidy_categories if c.code == code), None)

    def find_category(self, text: str) -> SubsidyCategory | None:
        """The category a text names: its code, its name, an alias, or a group it includes
        (事实无人抚养儿童 is counted with 特困人员), written with or without spaces and a （含…） tail.
        The one resolver for every place a category is given: assignments, rosters, reports."""
        wanted = normalise_category_text(text)
        for category in self.subsidy_categories:
            if wanted in (normalise_category_text(n) for n in category.names):
                return category
        return None

    def current_year_policy(self) -> "Policy | None":
        """当年度 for newborns: the campaign's own year on the terms `newborns.current_year` gives, as a
        policy of its own that only newborns enroll under (its window opens with this campaign's)."""
        current = self.newborns.current_year
        if current is None:
            return None
        return Policy(
            policy_id=f"{self.policy_id}-newborns-{current.coverage_year}",
            name=f"{self.name}（新生儿参加{current.coverage_year}年度）",
            source_document=self.source_document,
            coverage_year=current.coverage_year,
            regions=self.regions,
            townships=self.townships,
            eligibility=self.eligibility,
            contribution=current.contribution,
            enrollment_window=EnrollmentWindow(
                start=min(self.enrollment_window.start, current.coverage.end), end=current.coverage.end
            ),
            coverage=current.coverage,
            subsidy_categories=self.subsidy_categories,
            late_cases=[current.late_case],
            newborns=Newborns(may_enroll_for=["birth_year"]),
            refunds=self.refunds,
            targets=self.targets,
            newborns_only=True,
        )

    def late_case(self, kind: LateCaseKind) -> LateCase | None:
        return next((c for c in self.late_cases if c.kind == kind), None)
