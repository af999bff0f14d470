"""The enrollment decision, over plain data: which requests become enrollments, on what terms and at what
price, and which unpayable enrollments give way to them. The service gathers the facts (the person, their
live enrollment for the year, the subsidy categories they hold) and writes what this decides."""

from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

from registry.enrollment.errors import AlreadyEnrolled
from registry.enrollment.models import EnrollmentStatus
from registry.enrollment.schemas import EnrollmentCreate
from registry.policy import rules
from registry.policy.models import Charge, Policy
from shared.errors import DomainError

# Named tuples rather than frozen dataclasses: a roster chunk makes thousands of each, and a frozen dataclass
# sets each field through object.__setattr__ (about three times the cost).


class Live(NamedTuple):
    """A person's live enrollment for the year (pending payment or active)."""

    enrollment_id: str
    status: EnrollmentStatus
    payable_until: date

    def unpayable(self, today: date) -> bool:
        """Unpaid past its last day to pay: a new enrollment may replace it."""
        return self.status is EnrollmentStatus.PENDING_PAYMENT and self.payable_until < today


class Applicant(NamedTuple):
    """A request that passed the checks of its own, for a registered person, with what the data says of them
    for the policy's year."""

    request: EnrollmentCreate
    policy: Policy
    person_id: str
    birth_date: date
    live: Live | None = None
    held: tuple[str, ...] = ()  # subsidy category codes held for the year


class Plan(NamedTuple):
    """An enrollment to make: its terms and price, and the unpayable enrollment it replaces (which lapses)."""

    terms: rules.Terms
    price: rules.Price
    replaces: str | None


def decide(applicants: Sequence[Applicant], today: date) -> list[Plan | DomainError]:
    """One live enrollment per person and year: someone already enrolled on a price they can still pay, or
    named twice in the batch, is refused; the rest are priced by the policy engine (a refusal of its own,
    e.g. a late case out of time, still counts as the person's one try in the batch)."""
    taken: set[tuple[str, int]] = set()
    prices: _Prices = {}
    windows: _Windows = {}
    decided: list[Plan | DomainError] = []
    for applicant in applicants:
        year, live = applicant.policy.coverage_year, applicant.live
        key = (applicant.person_id, year)
        if key in taken or (live is not None and not live.unpayable(today)):
            decided.append(
                AlreadyEnrolled(
                    {"coverage_year": year, "enrollment_id": live.enrollment_id if live else None}
                )
            )
            continue
        taken.add(key)
        try:
            decided.append(_plan(applicant, today, prices, windows))
        except DomainError as exc:
            decided.append(exc)
    return decided


# A price depends on the policy, the categories held and the charge alone: a batch (a roster chunk of
# thousands) works each distinct one out once. Keyed by the categories as the applicant lists them (a tuple
# hashes for a fraction of a frozenset's making): the same set listed in two orders is priced twice, alike.
_Prices = dict[tuple[str, tuple[str, ...], Charge], rules.Price]
# The terms inside the window are everyone's (`rules.within_window`): worked out once per policy, extension.
_Windows = dict[tuple[str, str | None], rules.Terms | None]


def _plan(applicant: Applicant, today: date, prices: _Prices, windows: _Windows) -> Plan:
    request, policy = applicant.request, applicant.policy
    window_key = (policy.policy_id, request.window_extension)
    if window_key in windows:
        terms = windows[window_key]
    else:
        terms = windows[window_key] = rules.within_window(policy, today, request.window_extension)
    if terms is None:
        claim = (
            rules.LateClaim(
                request.late_case.kind, request.late_case.event_date, request.late_case.evidence_ref
            )
            if request.late_case
            else None
        )
        terms = rules.terms(
            policy, today, applicant.birth_date, applicant.held, request.window_extension, claim
        )
    key = (policy.policy_id, applicant.held, terms.charge)
    price = prices.get(key)
    if price is None:
        price = prices[key] = rules.price(policy, applicant.held, terms.charge)
    return Plan(terms, price, applicant.live.enrollment_id if applicant.live else None)
