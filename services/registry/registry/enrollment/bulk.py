"""Enrolling the people of a roster (花名册), thousands at once.

The rules are `service.enroll_many`'s: the place, eligibility, the exclusion lists (不得重复参保), one live
enrollment per person and year and the price (`decision.decide`, each distinct price worked out once). What
differs is the writing: the people come registered, and the enrollments, their subsidy lines and one
EnrollmentCreated event each go in with bulk inserts (COPY on PostgreSQL) in the caller's transaction, the
events rendered from one model-made template per kind of enrollment rather than one model per event. A
concurrent enrollment of one of the people fails the insert on the one-live-enrollment index: AlreadyEnrolled
for the batch, as in `enroll_many`, and the caller redoes it row by row.
"""

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.enrollment import decision, repository
from registry.enrollment.errors import AlreadyEnrolled
from registry.enrollment.models import EnrollmentStatus
from registry.enrollment.schemas import EnrollmentCreate, LateCaseIn
from registry.exclusion.service import refusal
from registry.people import service as people
from registry.people.models import DocumentType
from registry.people.service import Identity
from registry.policy import rules
from registry.policy.models import EligibilityKind, LateCaseKind, Policy
from registry.subsidy import repository as subsidies
from shared import bulk, tracing
from shared.db import unique_violation
from shared.errors import DomainError
from shared.events import (
    REGISTRY_ENROLLMENTS,
    EnrollmentCreated,
    EnrollmentLapsed,
    SubsidyLineData,
    new_envelope,
)

SOURCE = "/canbao/registry"


@dataclass(frozen=True)
class RosterTerms:
    """What everyone a roster enrolls enrolls on: the campaign, the basis, the late case (after the window),
    who pays (a school for its students) and the university that sends them."""

    policy: Policy
    region_code: str
    basis: EligibilityKind
    late_case: LateCaseKind | None = None
    payer_organisation: str | None = None
    university: str | None = None


class Entrant(NamedTuple):
    """A registered person a roster names, with the township it gives."""

    person_id: str
    identity: Identity
    name: str
    township: str | None


@dataclass
class Standing:
    """What the registry holds of a batch's people for the year: their live enrollments (locked, since they
    may be repriced or lapse) and the subsidy categories they hold. Gathered once for the batch, and kept
    current by the batch's own writes (`holds`)."""

    live: dict[str, repository.LiveRef]
    held: dict[str, list[str]]

    def holds(self, person_id: str, code: str) -> None:
        self.held.setdefault(person_id, []).append(code)


async def standing_of(session: AsyncSession, person_ids: Sequence[str], year: int) -> Standing:
    """The standing of registered people; someone registered in this transaction has none to look up."""
    if not person_ids:
        return Standing({}, {})
    await people.take_categories(session, person_ids)
    live = await repository.live_refs(session, person_ids, year, for_update=True)
    return Standing(live, await subsidies.active_codes_many(session, person_ids, year))


# One per enrollment of a roster chunk: a named tuple is cheaper to make than a frozen dataclass.
class Enrolled(NamedTuple):
    enrollment_id: str
    personal_due_fen: int


async def enroll_roster(
    session: AsyncSession,
    registry: Registry,
    terms: RosterTerms,
    entrants: Sequence[Entrant],
    *,
    standing: Standing | None = None,
) -> list[Enrolled | DomainError]:
    """Enroll each entrant, or say why not. `standing`: the entrants' standing for the year, when the caller
    gathered it in this transaction already."""
    today = registry.clock.today()
    year = terms.policy.coverage_year
    results: list[Enrolled | DomainError | None] = [None] * len(entrants)
    checked = _checked(terms, entrants, today, results)
    allowed = await _not_excluded(session, registry, year, entrants, checked, results)
    if not allowed:
        return [r for r in results if r is not None]
    if standing is None:
        standing = await standing_of(session, [entrants[i].person_id for i in allowed], year)
    plans = _plans(terms, [entrants[i] for i in allowed], standing, today)
    writing = _Writing(terms, registry.clock.now())
    for i, plan in zip(allowed, plans, strict=True):
        results[i] = plan if isinstance(plan, DomainError) else writing.add(entrants[i], plan)
    await writing.write(session)
    return [r for r in results if r is not None]


def _checked(
    terms: RosterTerms,
    entrants: Sequence[Entrant],
    today: date,
    results: list[Enrolled | DomainError | None],
) -> list[int]:
    """The entrants whose own checks pass (the township named, eligibility on the basis); the others' refusals
    go into `results`."""
    places: dict[str | None, DomainError | None] = {}
    eligible: dict[tuple[DocumentType, date | None], DomainError | None] = {}
    passed: list[int] = []
    for i, entrant in enumerate(entrants):
        township = entrant.township
        if township not in places:
            places[township] = _refusal_of(rules.check_place, terms.policy, terms.region_code, township)
        facts = rules.eligibility_facts(terms.basis, entrant.identity)
        if facts not in eligible:
            eligible[facts] = _refusal_of(
                rules.check_eligibility, terms.policy, terms.basis, entrant.identity, today
            )
        refused = places[township] or eligible[facts]
        if refused is None:
            passed.append(i)
        else:
            results[i] = refused
    return passed


def _refusal_of(check: Callable[..., None], *args: Any) -> DomainError | None:
    try:
        check(*args)
    except DomainError as exc:
        return exc
    return None


async def _not_excluded(
    session: AsyncSession,
    registry: Registry,
    year: int,
    entrants: Sequence[Entrant],
    checked: list[int],
    results: list[Enrolled | DomainError | None],
) -> list[int]:
    """不得重复参保: the checked entrants no exclusion list refuses."""
    kinds = await registry.exclusions.exclusions(session, [entrants[i].identity for i in checked], year)
    allowed: list[int] = []
    for i, found in zip(checked, kinds, strict=True):
        refused = refusal(found, year) if found else None
        if refused is None:
            allowed.append(i)
        else:
            results[i] = refused
    return allowed


def _plans(
    terms: RosterTerms, entrants: list[Entrant], standing: Standing, today: date
) -> list[decision.Plan | DomainError]:
    """The enrollment decision for each entrant, on their live enrollment and the categories they hold."""
    # Everyone on a roster makes the same request but for who they are, which the applicant carries apart.
    first = entrants[0]
    request = EnrollmentCreate(
        id_number=first.identity.document_number,
        name=first.name,
        region_code=terms.region_code,
        coverage_year=terms.policy.coverage_year,
        basis=terms.basis,
        late_case=LateCaseIn(kind=terms.late_case) if terms.late_case else None,
    )
    applicants = []
    for entrant in entrants:
        current = standing.live.get(entrant.person_id)
        # Positional: a named tuple's fields given by keyword take twice as long to bind (0.78 us, not 0.40).
        applicants.append(
            decision.Applicant(
                request,
                terms.policy,
                entrant.person_id,
                entrant.identity.birth_date,
                decision.Live(current.id, current.status, current.payable_until) if current else None,
                tuple(standing.held.get(entrant.person_id, ())),
            )
        )
    return decision.decide(applicants, today)


class _Writing:
    """A batch's new enrollments as rows for the bulk inserts, with their events; lapsing ones apart."""

    def __init__(self, terms: RosterTerms, now: datetime):
        self._terms, self._now, self._wall = terms, now, datetime.now(UTC)
        self._ids = bulk.new_ids()
        self._templates: dict[tuple[DocumentType, rules.Terms, rules.Price], _Template] = {}
        self._last_key: object = None
        self._last_template: _Template | None = None
        self.enrollments: list[tuple[object, ...]] = []
        self.lines: list[tuple[object, ...]] = []
        self.events: list[tuple[object, ...]] = []
        self.lapsing: list[tuple[str, str]] = []  # (the enrollment that lapses, the one replacing it)

    def add(self, entrant: Entrant, plan: decision.Plan) -> Enrolled:
        key = (entrant.identity.document_type, plan.terms, plan.price)
        # Most of a batch is one kind: comparing with the last kind's key costs a fraction of hashing it (the
        # terms' and the document type's enums hash in Python).
        template = self._last_template
        if template is None or key != self._last_key:
            template = self._templates.get(key)
            if template is None:
                template = self._templates[key] = _Template(self._terms, *key, self._now, self._wall)
            self._last_key, self._last_template = key, template
        enrollment_id = next(self._ids)
        if plan.replaces is not None:
            self.lapsing.append((plan.replaces, enrollment_id))
        self.enrollments.append((enrollment_id, entrant.person_id, entrant.township, *template.row))
        for line in template.lines:
            self.lines.append((enrollment_id, *line))
        self.events.append(
            template.event(next(self._ids), enrollment_id, entrant.identity.document_number, entrant.name)
        )
        return Enrolled(enrollment_id, plan.price.personal_due_fen)

    async def write(self, session: AsyncSession) -> None:
        if self.lapsing:
            # The old ones leave the one-live-enrollment index before the new ones enter; collection hears of
            # them first.
            await repository.lapse_many(session, [old for old, _ in self.lapsing])
            await repository.insert_events(session, [self._lapsed(old, new) for old, new in self.lapsing])
        try:
            await repository.insert_many(session, self.enrollments, self.lines)
        except IntegrityError as exc:
            if not unique_violation(exc):
                raise
            # A concurrent request enrolled one of these people first; the unique index decided.
            raise AlreadyEnrolled({"coverage_year": self._terms.policy.coverage_year}) from exc
        await repository.insert_events(session, self.events)

    def _lapsed(self, old: str, new: str) -> tuple[object, ...]:
        envelope = new_envelope(
            SOURCE, old, EnrollmentLapsed(enrollment_id=old, replaced_by=new), time=self._now
        )
        traced = envelope.model_copy(update=tracing.trace_fields())
        return (traced.id, traced.type, REGISTRY_ENROLLMENTS, old, traced.to_bytes(), self._wall)


class _Template:
    """Enrollments alike but for who and which: their columns from `policy_id` on, their subsidy lines, and
    their EnrollmentCreated event as the model writes it, with markers where the event's id, the enrollment's
    id and the person go, filled in per enrollment by joining the bytes around them (formatting the text and
    encoding it took twice as long: a Chinese name makes the whole text wide before it is encoded)."""

    _MARKERS = ("event", "enrollment", "number", "name")

    def __init__(
        self,
        roster: RosterTerms,
        document_type: DocumentType,
        terms: rules.Terms,
        price: rules.Price,
        now: datetime,
        wall: datetime,
    ):
        policy = roster.policy
        self.row: tuple[object, ...] = (
            None,  # household_id
            policy.policy_id,
            roster.region_code,
            roster.payer_organisation,
            roster.university,
            policy.coverage_year,
            roster.basis.value,
            EnrollmentStatus.PENDING_PAYMENT.value,
            terms.charge.value,
            terms.late_case.value if terms.late_case else None,
            terms.window_extension,
            terms.payable_until,
            price.personal_due_fen,
            price.fiscal_subsidy_fen,
            price.total_financing_fen,
            1,  # price_version
            terms.coverage_from.value,
            terms.coverage_start,
            policy.coverage.end,
            now,
            0,  # refunded_fen
            wall,
        )
        self.lines = [
            (line.category, line.category_name, line.funder, line.amount_fen) for line in price.subsidy_lines
        ]
        marks = {name: f"{name}-{uuid.uuid4().hex}" for name in self._MARKERS}
        created = EnrollmentCreated(
            enrollment_id=marks["enrollment"],
            document_type=document_type.value,
            id_number=marks["number"],
            name=marks["name"],
            region_code=roster.region_code,
            coverage_year=policy.coverage_year,
            basis=roster.basis.value,
            late_case=terms.late_case.value if terms.late_case else None,
            personal_due_fen=price.personal_due_fen,
            subsidy_lines=[
                SubsidyLineData(category=line.category, funder=line.funder, amount_fen=line.amount_fen)
                for line in price.subsidy_lines
            ],
            fiscal_subsidy_fen=price.fiscal_subsidy_fen,
            total_financing_fen=price.total_financing_fen,
            price_version=1,
            payable_until=terms.payable_until,
            coverage_start=terms.coverage_start,
            coverage_end=policy.coverage.end,
            payer_organisation=roster.payer_organisation,
            refundable_reasons=list(policy.refunds.refundable_reasons),
        )
        envelope = new_envelope(SOURCE, marks["enrollment"], created, time=now)
        envelope = envelope.model_copy(update={"id": marks["event"], **tracing.trace_fields()})
        # The event's bytes split at the markers: those before the first, then (which value, the bytes after).
        pieces = re.split(f"({'|'.join(marks.values())})", envelope.to_bytes().decode())
        position = {mark: i for i, mark in enumerate(marks.values())}
        self._head = pieces[0].encode()
        self._after = [
            (position[mark], text.encode()) for mark, text in zip(pieces[1::2], pieces[2::2], strict=True)
        ]
        self._type, self._wall = envelope.type, wall

    def event(self, event_id: str, enrollment_id: str, number: str, name: str) -> tuple[object, ...]:
        values = (
            event_id.encode(),
            enrollment_id.encode(),
            _json_text(number).encode(),
            _json_text(name).encode(),
        )
        chunks = [self._head]
        for at, text in self._after:
            chunks += (values[at], text)
        payload = b"".join(chunks)
        return (event_id, self._type, REGISTRY_ENROLLMENTS, enrollment_id, payload, self._wall)


def _json_text(value: str) -> str:
    """A string as it stands between the quotes of a JSON document (most need no escape at all)."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)[1:-1]
