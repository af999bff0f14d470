"""The policy engine: what an enrollment costs and when it is covered, computed from a Policy alone.

Pure functions, no I/O: the enrollment service gathers the facts (today's business date, the person's birth
date, the subsidy categories they hold, the late case they claim) and asks these for the terms.
"""

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from registry.people.models import DocumentType
from registry.people.service import Identity
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
    UnknownVillage,
    UnknownWindowExtension,
)
from registry.policy.models import (
    Charge,
    CoverageFrom,
    EligibilityKind,
    LateCaseKind,
    Policy,
    SubsidyCategory,
    SubsidyKind,
)
from shared.money import format_fen


@dataclass(frozen=True)
class SubsidyLine:
    category: str
    category_name: str
    funder: str
    amount_fen: int


@dataclass(frozen=True)
class Price:
    personal_due_fen: int
    subsidy_lines: tuple[SubsidyLine, ...]
    fiscal_subsidy_fen: int
    total_financing_fen: int


@dataclass(frozen=True)
class LateClaim:
    """What a person says about themselves to enroll late, with the evidence the case needs."""

    kind: LateCaseKind
    event_date: date | None = None  # discharge, release, or end of employee insurance
    evidence_ref: str | None = None  # the certificate's number (退役证, 释放证明, 停保证明 …)


@dataclass(frozen=True)
class Terms:
    """When and at what charge an enrollment is made: the window it falls in or the late case it uses."""

    charge: Charge
    coverage_from: CoverageFrom
    coverage_start: date | None  # None until paid, for cases covered from the day after payment
    late_case: LateCaseKind | None
    window_extension: str | None
    payable_until: date  # the last Beijing business day this price may be paid


ADULT_AGE = 18


def check_eligibility(policy: Policy, basis: EligibilityKind, identity: Identity, today: date) -> None:
    """参保对象: the policy must accept the basis, foreigners' bases need a foreign document (and the
    others a resident ID), and the bases for minor children need someone under 18."""
    if basis not in policy.eligibility:
        raise EligibilityNotInPolicy(
            {"basis": basis.value, "accepted": [k.value for k in policy.eligibility]}
        )
    if basis.is_foreign != (identity.document_type is not DocumentType.RESIDENT_ID):
        raise EligibilityDocumentMismatch(
            {"basis": basis.value, "document_type": identity.document_type.value}
        )
    if basis.is_for_minors and add_months(identity.birth_date, 12 * ADULT_AGE) <= today:
        raise EligibilityNotMet({"basis": basis.value, "reason": "not_a_minor"})


def eligibility_facts(basis: EligibilityKind, identity: Identity) -> tuple[DocumentType, date | None]:
    """What of a person `check_eligibility` looks at for `basis` (their document type, and their birth date
    where the basis is for minors): a batch judges each distinct one once."""
    return identity.document_type, identity.birth_date if basis.is_for_minors else None


def check_place(policy: Policy, region_code: str, township: str | None, village: str | None = None) -> None:
    """A township, when one is named, must be one the policy lists for the region, and a village one it lists
    for the township (where it lists them)."""
    if township is not None and not policy.has_township(region_code, township):
        raise UnknownTownship({"township": township, "region_code": region_code})
    if (
        township is not None
        and village is not None
        and not policy.has_village(region_code, township, village)
    ):
        raise UnknownVillage({"village": village, "township": township})


def add_months(day: date, months: int) -> date:
    """Same day `months` later, or the month's last day (3 months after 30 Nov is 29 Feb in a leap year)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def subsidy_amount(category: SubsidyCategory, personal_fen: int) -> int | None:
    """What the category pays of the personal contribution; None while its amount is still to be set."""
    match category.kind:
        case SubsidyKind.FULL:
            return personal_fen
        case SubsidyKind.PERCENTAGE:
            assert category.percent is not None
            return (personal_fen * category.percent + 50) // 100  # to the fen, half up
        case SubsidyKind.FIXED:
            assert category.amount is not None
            return min(category.amount, personal_fen)
        case SubsidyKind.TO_BE_SET:
            return None


def most_generous(policy: Policy, held: Iterable[str]) -> SubsidyCategory | None:
    """就高不就低: of the categories a person holds, the one paying most; on a tie, the policy's first."""
    held = set(held)
    best: tuple[int, SubsidyCategory] | None = None
    for category in policy.subsidy_categories:
        amount = subsidy_amount(category, policy.contribution.personal) if category.code in held else None
        if amount is not None and (best is None or amount > best[0]):
            best = (amount, category)
    return best[1] if best else None


def price(policy: Policy, held: Iterable[str], charge: Charge) -> Price:
    contribution = policy.contribution
    if charge is Charge.TOTAL_FINANCING:
        # 按当年筹资总额缴纳: the person pays all of it, with no subsidy and no fiscal share.
        return Price(contribution.total_financing, (), 0, contribution.total_financing)
    category = most_generous(policy, held)
    lines: tuple[SubsidyLine, ...] = ()
    if category is not None:
        amount = subsidy_amount(category, contribution.personal) or 0
        lines = (SubsidyLine(category.code, category.name, category.funder, amount),)
    return Price(
        personal_due_fen=contribution.personal - sum(line.amount_fen for line in lines),
        subsidy_lines=lines,
        fiscal_subsidy_fen=contribution.fiscal_subsidy,
        total_financing_fen=contribution.total_financing,
    )


def terms(
    policy: Policy,
    today: date,
    birth_date: date,
    held: Iterable[str],
    window_extension: str | None,
    claim: LateClaim | None,
) -> Terms:
    """The window rules and late cases of the policy, applied on the business date `today`."""
    window = policy.enrollment_window
    if window_extension is not None and window_extension not in {e.group for e in window.extensions}:
        raise UnknownWindowExtension(
            {"window_extension": window_extension, "accepted": [e.group for e in window.extensions]}
        )
    if today < window.start:
        raise EnrollmentWindowNotOpen({"opens": window.start.isoformat()})
    if policy.newborns_only:
        # 当年度 for newborns: no window of its own, the newborn rule from the day it opens.
        if birth_date.year != policy.coverage_year:
            raise NewbornsOnlyYear(
                {"coverage_year": policy.coverage_year, "open_year": policy.coverage_year + 1}
            )
        if today > policy.coverage.end:
            raise CoverageYearOver({"coverage_end": policy.coverage.end.isoformat()})
        if claim is not None and claim.kind is not LateCaseKind.NEWBORN:
            raise LateCaseNotInPolicy({"late_case": claim.kind.value, "late_cases": late_cases_of(policy)})
        return _late_terms(policy, today, birth_date, set(held), claim or LateClaim(LateCaseKind.NEWBORN))
    window_end = window.end_for(window_extension)
    if today <= window_end:
        return _window_terms(policy, window_extension, window_end)
    if today > policy.coverage.end:
        raise CoverageYearOver({"coverage_end": policy.coverage.end.isoformat()})
    if claim is None:
        raise EnrollmentWindowClosed({"closed": window_end.isoformat(), "late_cases": late_cases_of(policy)})
    return _late_terms(policy, today, birth_date, set(held), claim)


def within_window(policy: Policy, today: date, window_extension: str | None) -> Terms | None:
    """The terms `terms` gives everyone enrolling on `today` inside the (extended) window, whoever they are
    and whatever they hold or claim, so that a batch works them out once; None where they depend on the
    person (a newborns-only year, after the window) or `terms` refuses."""
    window = policy.enrollment_window
    if policy.newborns_only or today < window.start:
        return None
    if window_extension is not None and window_extension not in {e.group for e in window.extensions}:
        return None
    window_end = window.end_for(window_extension)
    return _window_terms(policy, window_extension, window_end) if today <= window_end else None


def _window_terms(policy: Policy, window_extension: str | None, window_end: date) -> Terms:
    start = policy.coverage.start
    return Terms(Charge.PERSONAL, CoverageFrom.COVERAGE_START, start, None, window_extension, window_end)


def newborn_choice(policy: Policy, today: date, birth_date: date) -> dict[str, object]:
    """What enrolling a newborn for the policy's year would cost and cover today, before any subsidy: one of
    the choices a refusal lays out for parents who did not say which year."""
    found = terms(policy, today, birth_date, (), None, LateClaim(LateCaseKind.NEWBORN))
    charged = price(policy, (), found.charge)
    return {
        "coverage_year": policy.coverage_year,
        "policy": policy.name,
        "personal_due": format_fen(charged.personal_due_fen),
        "coverage_start": (found.coverage_start or policy.coverage.start).isoformat(),
        "coverage_end": policy.coverage.end.isoformat(),
        "payable_until": found.payable_until.isoformat(),
    }


def late_cases_of(policy: Policy) -> list[dict[str, str]]:
    """The late-enrollment cases a policy allows, as a refusal lists them for the person."""
    return [{"kind": c.kind.value, "name": c.name} for c in policy.late_cases]


def _late_terms(policy: Policy, today: date, birth_date: date, held: set[str], claim: LateClaim) -> Terms:
    case = policy.late_case(claim.kind)
    if case is None:
        raise LateCaseNotInPolicy({"late_case": claim.kind.value, "late_cases": late_cases_of(policy)})
    event_date = _event_date(policy, today, birth_date, held, claim)
    charge = case.charge_within
    payable_until = policy.coverage.end
    if case.within_months is not None:
        limit = add_months(event_date, case.within_months)
        if today > limit:
            if case.charge_after is None:
                raise LateCaseExpired({"late_case": claim.kind.value, "within_months": case.within_months})
            charge = case.charge_after
        else:
            # The price within the limit holds only while the limit lasts.
            payable_until = min(limit, payable_until)
    start: date | None
    match case.coverage_from:
        case CoverageFrom.BIRTH:
            start = max(birth_date, policy.coverage.start)
        case CoverageFrom.COVERAGE_START:
            start = policy.coverage.start
        case CoverageFrom.DAY_AFTER_PAYMENT:
            start = None
    return Terms(charge, case.coverage_from, start, claim.kind, None, payable_until)


def _event_date(policy: Policy, today: date, birth_date: date, held: set[str], claim: LateClaim) -> date:
    """The date a late case counts from, after checking the evidence it needs."""
    if claim.kind is LateCaseKind.NEWBORN:
        if not policy.newborns.allows(birth_date.year, policy.coverage_year):
            offsets = {"birth_year": 0, "next_year": 1}
            raise NewbornYearNotAllowed(
                {
                    "birth_year": birth_date.year,
                    "may_enroll_for": policy.newborns.may_enroll_for,
                    "coverage_years": [birth_date.year + offsets[c] for c in policy.newborns.may_enroll_for],
                }
            )
        return birth_date
    if claim.kind is LateCaseKind.NEWLY_SUBSIDISED:
        if not any(policy.category(code) for code in held):
            raise LateCaseEvidenceInvalid({"late_case": claim.kind.value, "reason": "no_subsidy_category"})
        return today
    missing = [
        name
        for name, value in (("event_date", claim.event_date), ("evidence_ref", claim.evidence_ref))
        if not value
    ]
    if missing:
        raise LateCaseEvidenceMissing({"late_case": claim.kind.value, "missing": missing})
    assert claim.event_date is not None
    if claim.event_date > today:
        raise LateCaseEvidenceInvalid({"late_case": claim.kind.value, "reason": "event_date_in_future"})
    if claim.kind is LateCaseKind.DISCHARGED_VETERAN and claim.event_date.year != policy.coverage_year:
        # 当年退出现役: discharged in the coverage year itself.
        raise LateCaseEvidenceInvalid({"late_case": claim.kind.value, "reason": "not_discharged_this_year"})
    return claim.event_date
