"""Enrollment rules: who may enroll for which year, at what price, and when an enrollment becomes active.
The figures and dates come from the policy engine (registry.policy.rules); this module applies them."""

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.database import OutboxMessage
from registry.enrollment import decision, repository
from registry.enrollment.errors import (
    AlreadyEnrolled,
    CancellationNotAllowed,
    EnrollmentEnded,
    EnrollmentNotFound,
)
from registry.enrollment.models import (
    ENDED,
    Enrollment,
    EnrollmentRecord,
    EnrollmentStatus,
    EnrollmentSubsidyLine,
    LineRecord,
    Shown,
)
from registry.enrollment.schemas import CancellationCreate, EnrollmentCreate, Notice, RepriceOutcome
from registry.enrollment.watch import EnrollmentWatch, changed_on_commit
from registry.exclusion.models import ExclusionKind
from registry.exclusion.service import RegistryExclusionList, refusal
from registry.people import service as people
from registry.people.models import Person, PersonShown
from registry.people.service import Identity
from registry.policy import rules
from registry.policy.book import PolicyBook
from registry.policy.errors import NewbornCoverageYearRequired
from registry.policy.models import LateCaseKind, Policy
from registry.subsidy import repository as subsidies
from shared import tracing
from shared.crosscheck import EnrollmentStanding, Standing, StandingReader
from shared.db import release, unique_violation
from shared.errors import DomainError
from shared.events import (
    REGISTRY_ENROLLMENTS,
    EnrollmentCancelled,
    EnrollmentCreated,
    EnrollmentLapsed,
    EnrollmentRepriced,
    Envelope,
    SubsidyLineData,
    new_envelope,
)
from shared.money import format_fen
from shared.outbox import enqueue

SOURCE = "/canbao/registry"


async def enroll(
    session: AsyncSession,
    registry: Registry,
    request: EnrollmentCreate,
    *,
    household_id: str | None = None,
    claimant: people.Claimant = people.OFFICIAL,
) -> Enrollment:
    (result,) = await enroll_many(session, registry, [request], household_id=household_id, claimant=claimant)
    if isinstance(result, DomainError):
        raise result
    return result


async def enroll_many(
    session: AsyncSession,
    registry: Registry,
    requests: Sequence[EnrollmentCreate],
    *,
    household_id: str | None = None,
    payer_organisation: str | None = None,
    claimant: people.Claimant = people.OFFICIAL,
) -> list[Enrollment | DomainError]:
    """Enroll each request, or say why not, with a handful of queries for the lot: one person alone and a
    roster of thousands go through the same rules. A concurrent enrollment of the same person makes the
    flush fail with AlreadyEnrolled for the whole batch (the unique index decides)."""
    today = registry.clock.today()
    results: list[Enrollment | DomainError | None] = [None] * len(requests)
    checked: list[_Candidate] = []
    for i, request in enumerate(requests):
        try:
            checked.append(_check(registry.policies, i, request, today))
        except DomainError as exc:
            results[i] = exc
    allowed = await _not_excluded(session, registry, checked, results)
    registered = await _registered(session, registry, allowed, results, claimant)
    applicants, live = await _applicants(session, registered)
    new: list[Enrollment] = []
    lapsing: list[tuple[Enrollment, str]] = []
    for (candidate, person, _), plan in zip(
        applicants, decision.decide([a for *_, a in applicants], today), strict=True
    ):
        if isinstance(plan, DomainError):
            results[candidate.index] = plan
            continue
        enrollment = _new_enrollment(registry, candidate, person, plan, household_id, payer_organisation)
        if plan.replaces is not None:
            lapsing.append((live[plan.replaces], enrollment.id))
        new.append(enrollment)
        results[candidate.index] = enrollment
    await _write(session, registry, new, lapsing)
    return [r for r in results if r is not None]


async def enroll_one(
    session: AsyncSession,
    registry: Registry,
    request: EnrollmentCreate,
    *,
    claimant: people.Claimant,
    audit: list[dict[str, Any]],
) -> Shown:
    """`enroll` for one request through the API, with the request's audit rows (written with it), in two
    round trips for the usual case: one statement reads every fact the decision needs, one writes the
    person if new, the enrollment, its lines, its event and the audit rows. Anything else (a live enrollment
    for the year, a record the naming would change, the same person registered by a concurrent request)
    goes through `enroll`, whose rules decide it. A concurrent enrollment of the same person fails with
    AlreadyEnrolled (the unique index decides)."""
    today = registry.clock.today()
    candidate = _check(registry.policies, 0, request, today)
    identity, policy = candidate.identity, candidate.policy
    year = policy.coverage_year
    facts = await repository.facts(session, identity.document_type, identity.document_number, year)
    if isinstance(registry.exclusions, RegistryExclusionList):  # its list was read with the facts
        kinds = sorted(ExclusionKind(kind) for kind in facts.exclusions)
    else:
        (kinds,) = await registry.exclusions.exclusions(session, [identity], year)
    if (refused := refusal(kinds, year)) is not None:
        raise refused
    simple = facts.live_id is None and (
        facts.person_id is None
        or people.named_as_recorded(
            facts.name, facts.source, facts.phone, request.name, request.phone, claimant, identity
        )
    )
    if simple:
        written = await _enroll_simply(session, registry, candidate, facts, claimant, audit)
        if written is not None:
            return written
    enrollment = await enroll(session, registry, request, claimant=claimant)
    await repository.insert_audit(session, audit)
    return enrollment


async def _enroll_simply(
    session: AsyncSession,
    registry: Registry,
    candidate: "_Candidate",
    facts: repository.Facts,
    claimant: people.Claimant,
    audit: list[dict[str, Any]],
) -> EnrollmentRecord | None:
    """The enrollment of someone with no live enrollment for the year whom the request names as recorded (or
    who is new), written with one statement; None when the person was registered meanwhile or their
    categories were taken since the facts were read."""
    request, identity, policy = candidate.request, candidate.identity, candidate.policy
    if facts.person_id is None:
        registering = people.new_person_row(identity, request.name, request.phone, claimant)
        person = PersonShown.of(registering)
    else:
        registering = None
        person = people.as_recorded(identity, facts.person_id, facts.name or request.name)
    applicant = decision.Applicant(
        request=request,
        policy=policy,
        person_id=person.id,
        birth_date=identity.birth_date,
        held=tuple(facts.held),
    )
    (plan,) = decision.decide([applicant], registry.clock.today())
    if isinstance(plan, DomainError):
        raise plan
    columns = _columns(registry, candidate, person.id, plan, None, None)
    enrollment = EnrollmentRecord(
        **columns,
        person=person,
        updated_at=datetime.now(UTC),
        subsidy_lines=[
            LineRecord(line.category, line.category_name, line.funder, line.amount_fen)
            for line in plan.price.subsidy_lines
        ],
    )
    envelope = _created(enrollment, policy).model_copy(update=tracing.trace_fields())
    rows = repository.NewEnrollment(
        person=registering,
        enrollment={column: getattr(enrollment, column) for column in repository.ENROLLMENT_COLUMNS},
        lines=[
            {
                "category_code": line.category_code,
                "category_name": line.category_name,
                "funder": line.funder,
                "amount_fen": line.amount_fen,
            }
            for line in enrollment.subsidy_lines
        ],
        event={
            "event_id": envelope.id,
            "event_type": envelope.type,
            "topic": REGISTRY_ENROLLMENTS,
            "key": enrollment.id,
            "payload": envelope.to_bytes(),
            "created_at": enrollment.updated_at,
        },
        audit=audit,
        category_epoch=facts.category_epoch,
    )
    try:
        written = await repository.write_new(session, rows)
    except IntegrityError as exc:
        if not unique_violation(exc):
            raise
        # A concurrent request enrolled this person first; the unique index decided.
        raise AlreadyEnrolled({"coverage_year": policy.coverage_year}) from exc
    return enrollment if written else None


@dataclass(frozen=True)
class Known:
    """What a caller waiting for an enrollment to change has of it; unset, as the waiting request first
    reads it."""

    status: EnrollmentStatus | None = None
    price_version: int | None = None


async def wait_for_change(
    session: AsyncSession,
    watch: EnrollmentWatch,
    read: Callable[[], Awaitable[Enrollment]],
    known: Known,
    *,
    wait_s: float,
    caller: str,
) -> Enrollment:
    """The enrollment once its status or price version is not what the caller has, or as it stands after
    `wait_s` seconds. Read again (`read` checks who may see it) at each wake-up; no connection is held while
    waiting."""
    enrollment = await read()
    expected = (known.status or enrollment.status, known.price_version or enrollment.price_version)
    deadline = time.monotonic() + wait_s
    while (enrollment.status, enrollment.price_version) == expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        seen = enrollment.updated_at
        await release(session)
        if not await watch.wait(enrollment.id, seen, remaining, caller=caller):
            return await read()  # the place was given to another caller: as it stands now
        enrollment = await read()
    return enrollment


def campaign_for(book: PolicyBook, request: EnrollmentCreate, identity: Identity, today: date) -> Policy:
    """The policy an enrollment falls under: the year asked for, else the region's open campaign. A newborn
    whose parents may choose the year of birth or the next must say which (新生儿父母办理参保时应明确
    新生儿参保年度)."""
    if request.coverage_year is not None:
        return book.find(request.region_code, request.coverage_year)
    choices = []
    for year in book.newborn_years(request.region_code, identity.birth_date, today):
        try:
            choices.append(
                rules.newborn_choice(book.find(request.region_code, year), today, identity.birth_date)
            )
        except DomainError:
            continue  # not open to this child today after all
    if len(choices) > 1:
        raise NewbornCoverageYearRequired(
            {
                "birth_date": identity.birth_date.isoformat(),
                "coverage_years": [c["coverage_year"] for c in choices],
                "choices": choices,
            }
        )
    return book.open_campaign(request.region_code, today, request.window_extension)


def notices(registry: Registry, request: EnrollmentCreate, enrollment: Shown) -> list[Notice]:
    """What was done with the parts of a request that were not used as given: the year chosen for the caller,
    a late case that the open window made unnecessary."""
    found: list[Notice] = []
    year = enrollment.coverage_year
    if request.coverage_year is None:
        found.append(
            Notice(
                code="coverage_year_defaulted",
                message_zh=f"未填写参保年度：按本地区正在办理的 {year} 年度参保登记",
                message_en=f"No coverage year given: enrolled for {year}, the region's open campaign",
            )
        )
    if request.late_case is not None and enrollment.late_case is None:
        policy = registry.policies.by_id(enrollment.policy_id)
        case = policy.late_case(request.late_case.kind)
        name = case.name if case else request.late_case.kind.value
        due = format_fen(enrollment.personal_due_fen)
        zh = (
            f"集中参保缴费期内按普通参保办理，所报补办情形（{name}）未使用：按 {year} 年度标准缴费"
            f"（本人应缴 {due} 元，缴费期限至 {enrollment.payable_until}），"
            f"待遇自 {enrollment.coverage_start} 起"
        )
        en = (
            f"Inside the enrollment window this is an ordinary enrollment and the late case "
            f"({request.late_case.kind}) was not used: {year} terms ({due} yuan due by "
            f"{enrollment.payable_until}), covered from {enrollment.coverage_start}"
        )
        earlier = _current_year_for_newborn(
            registry.policies, enrollment, request.late_case.kind, registry.clock.today()
        )
        if earlier is not None:
            zh += f"；如需参加 {earlier} 年度（自出生之日起享受待遇），可另以 coverage_year={earlier} 办理"
            en += f"; for {earlier} as well (covered from birth), enroll again with coverage_year={earlier}"
        found.append(Notice(code="late_case_not_used", message_zh=zh, message_en=en))
    return found


def _current_year_for_newborn(
    book: PolicyBook, enrollment: Shown, kind: LateCaseKind, today: date
) -> int | None:
    """The year of birth, when a newborn enrolled for the next year may be enrolled for it as well today."""
    year = enrollment.coverage_year - 1
    if kind is not LateCaseKind.NEWBORN:
        return None
    return (
        year
        if year in book.newborn_years(enrollment.region_code, enrollment.person.birth_date, today)
        else None
    )


@dataclass(frozen=True)
class _Candidate:
    index: int
    request: EnrollmentCreate
    identity: Identity
    policy: Policy


def _check(book: PolicyBook, index: int, request: EnrollmentCreate, today: date) -> _Candidate:
    """A request's checks of its own: the identity, the campaign it falls under, the place, the basis."""
    identity = people.identify(request, today)
    policy = campaign_for(book, request, identity, today)
    rules.check_place(policy, request.region_code, request.township)
    rules.check_eligibility(policy, request.basis, identity, today)
    return _Candidate(index, request, identity, policy)


async def _not_excluded(
    session: AsyncSession,
    registry: Registry,
    checked: list[_Candidate],
    results: list[Enrollment | DomainError | None],
) -> list[_Candidate]:
    """不得重复参保: the candidates no exclusion list refuses, in request order; the others' refusals go
    into `results`."""
    allowed: list[_Candidate] = []
    for year in sorted({c.policy.coverage_year for c in checked}):
        of_year = [c for c in checked if c.policy.coverage_year == year]
        kinds = await registry.exclusions.exclusions(session, [c.identity for c in of_year], year)
        for candidate, found in zip(of_year, kinds, strict=True):
            refused = refusal(found, year)
            if refused is None:
                allowed.append(candidate)
            else:
                results[candidate.index] = refused
    allowed.sort(key=lambda c: c.index)
    return allowed


async def _registered(
    session: AsyncSession,
    registry: Registry,
    allowed: list[_Candidate],
    results: list[Enrollment | DomainError | None],
    claimant: people.Claimant,
) -> list[tuple[_Candidate, Person]]:
    """Each candidate's person, found or registered; a refusal (a name that does not match the ID number
    already held) goes into `results`."""
    found = await people.find_or_register_many(
        session,
        [(c.identity, c.request.name, c.request.phone) for c in allowed],
        claimant=claimant,
        now=registry.clock.now(),
    )
    registered: list[tuple[_Candidate, Person]] = []
    for candidate, person in zip(allowed, found, strict=True):
        if isinstance(person, DomainError):
            results[candidate.index] = person
        else:
            registered.append((candidate, person))
    return registered


async def _applicants(
    session: AsyncSession, registered: list[tuple[_Candidate, Person]]
) -> tuple[list[tuple[_Candidate, Person, decision.Applicant]], dict[str, Enrollment]]:
    """Year by year, what the decision needs of each person: their live enrollment (locked, since it may
    lapse) and the subsidy categories they hold; and those enrollments by id. Someone registered by this
    very request has neither, so only people already on record are looked up."""
    applicants: list[tuple[_Candidate, Person, decision.Applicant]] = []
    live: dict[str, Enrollment] = {}
    for year in sorted({c.policy.coverage_year for c, _ in registered}):
        of_year = [(c, p) for c, p in registered if c.policy.coverage_year == year]
        person_ids = [p.id for _, p in of_year if not people.registered_now(session, p)]
        await people.take_categories(session, person_ids)
        existing = await repository.live_for_people(session, person_ids, year, for_update=True)
        held = await subsidies.active_codes_many(session, person_ids, year)
        live.update({e.id: e for e in existing.values()})
        for candidate, person in of_year:
            current = existing.get(person.id)
            applicant = decision.Applicant(
                request=candidate.request,
                policy=candidate.policy,
                person_id=person.id,
                birth_date=candidate.identity.birth_date,
                live=decision.Live(current.id, current.status, current.payable_until) if current else None,
                held=tuple(held.get(person.id, [])),
            )
            applicants.append((candidate, person, applicant))
    return applicants, live


async def _write(
    session: AsyncSession, registry: Registry, new: list[Enrollment], lapsing: list[tuple[Enrollment, str]]
) -> None:
    if lapsing:
        for enrollment, replaced_by in lapsing:
            _lapse(session, registry, enrollment, replaced_by)
        await session.flush()  # the old ones leave the one-live-enrollment index before the new ones enter
    session.add_all(new)
    for enrollment in new:  # queued before the flush: the enrollments and their events go in one flush
        _publish_created(session, enrollment, registry.policies.by_id(enrollment.policy_id))
    try:
        await session.flush()
    except IntegrityError as exc:
        # A concurrent request enrolled one of these people first; the unique constraints decided.
        raise AlreadyEnrolled({"coverage_year": new[0].coverage_year}) from exc


def _new_enrollment(
    registry: Registry,
    candidate: _Candidate,
    person: Person,
    plan: decision.Plan,
    household_id: str | None,
    payer_organisation: str | None,
) -> Enrollment:
    columns = _columns(registry, candidate, person.id, plan, household_id, payer_organisation)
    enrollment = Enrollment(**columns)
    enrollment.person = person
    _set_price(enrollment, plan.price)
    return enrollment


def _columns(
    registry: Registry,
    candidate: _Candidate,
    person_id: str,
    plan: decision.Plan,
    household_id: str | None,
    payer_organisation: str | None,
) -> dict[str, Any]:
    """A new enrollment's values, as a mapped Enrollment or an EnrollmentRecord takes them."""
    request, policy, terms, price = candidate.request, candidate.policy, plan.terms, plan.price
    return {
        "id": str(uuid.uuid4()),
        "person_id": person_id,
        "household_id": household_id,
        "policy_id": policy.policy_id,
        "region_code": request.region_code,
        "township": request.township,
        "coverage_year": policy.coverage_year,
        "basis": request.basis,
        "status": EnrollmentStatus.PENDING_PAYMENT,
        "charge": terms.charge,
        "late_case": terms.late_case,
        "window_extension": terms.window_extension,
        "payable_until": terms.payable_until,
        "personal_due_fen": price.personal_due_fen,
        "fiscal_subsidy_fen": price.fiscal_subsidy_fen,
        "total_financing_fen": price.total_financing_fen,
        "price_version": 1,
        "coverage_from": terms.coverage_from,
        "coverage_start": terms.coverage_start,
        "coverage_end": policy.coverage.end,
        "created_at": registry.clock.now(),
        "payer_organisation": payer_organisation,
    }


def _publish_created(session: AsyncSession, enrollment: Enrollment, policy: Policy) -> None:
    enqueue(session, OutboxMessage, REGISTRY_ENROLLMENTS, _created(enrollment, policy))


def _created(enrollment: Shown, policy: Policy) -> Envelope:
    person = enrollment.person
    created = EnrollmentCreated(
        enrollment_id=enrollment.id,
        document_type=person.document_type.value,
        id_number=person.document_number,
        name=person.name,
        region_code=enrollment.region_code,
        coverage_year=enrollment.coverage_year,
        basis=enrollment.basis.value,
        late_case=enrollment.late_case.value if enrollment.late_case else None,
        personal_due_fen=enrollment.personal_due_fen,
        subsidy_lines=_lines_data(enrollment),
        fiscal_subsidy_fen=enrollment.fiscal_subsidy_fen,
        total_financing_fen=enrollment.total_financing_fen,
        price_version=enrollment.price_version,
        payable_until=enrollment.payable_until,
        coverage_start=enrollment.coverage_start,
        coverage_end=enrollment.coverage_end,
        payer_organisation=enrollment.payer_organisation,
        refundable_reasons=list(policy.refunds.refundable_reasons),
    )
    return new_envelope(SOURCE, enrollment.id, created, time=enrollment.created_at)


async def reprice(
    session: AsyncSession, registry: Registry, person_id: str, coverage_year: int, reason: str
) -> RepriceOutcome:
    """After a person's subsidy categories changed: reprice their enrollment for the year and tell collection.
    A paid one keeps its price unless the policy refunds paid contributions within the coverage period."""
    return (await reprice_many(session, registry, {person_id: reason}, coverage_year))[person_id]


async def reprice_many(
    session: AsyncSession, registry: Registry, reasons: Mapping[str, str], coverage_year: int
) -> dict[str, RepriceOutcome]:
    """`reprice` for many people (person id -> why) in a couple of queries."""
    await people.take_categories(session, list(reasons))
    enrollments = await repository.live_for_people(session, list(reasons), coverage_year, for_update=True)
    held_by_person = await subsidies.active_codes_many(session, list(enrollments), coverage_year)
    return {
        person_id: (
            _reprice(session, registry, enrollments[person_id], held_by_person.get(person_id, []), reason)
            if person_id in enrollments
            else "no_enrollment"
        )
        for person_id, reason in reasons.items()
    }


def _reprice(
    session: AsyncSession, registry: Registry, enrollment: Enrollment, held: list[str], reason: str
) -> RepriceOutcome:
    policy = registry.policies.by_id(enrollment.policy_id)
    price = rules.price(policy, held, enrollment.charge)
    if price == _price_of(enrollment):
        return "unchanged"
    outcome: RepriceOutcome = "repriced"
    if enrollment.status is not EnrollmentStatus.PENDING_PAYMENT:
        if not policy.refunds.refund_otherwise_within_coverage:
            return "paid_not_repriced"  # 待遇享受期内已缴纳的医保费不予退还
        outcome = "paid_refund_due"  # the new price stands; collection refunds what was paid beyond it
    enrollment.earlier_dues = enrollment.earlier_dues | {
        str(enrollment.price_version): enrollment.personal_due_fen
    }
    _set_price(enrollment, price)
    enrollment.price_version += 1
    changed_on_commit(session, enrollment.id)
    repriced = EnrollmentRepriced(
        enrollment_id=enrollment.id,
        personal_due_fen=enrollment.personal_due_fen,
        subsidy_lines=_lines_data(enrollment),
        fiscal_subsidy_fen=enrollment.fiscal_subsidy_fen,
        total_financing_fen=enrollment.total_financing_fen,
        price_version=enrollment.price_version,
        reason=reason,
    )
    enqueue(
        session,
        OutboxMessage,
        REGISTRY_ENROLLMENTS,
        new_envelope(SOURCE, enrollment.id, repriced, time=registry.clock.now()),
    )
    return outcome


async def cancel(
    session: AsyncSession, registry: Registry, enrollment_id: str, request: CancellationCreate
) -> Enrollment:
    """An enrollment must end (a death, an erroneous enrollment): an unpaid one ends now and collection
    cancels its bill; a paid one ends once collection refunded it, which only the policy's reasons allow."""
    enrollment = await repository.get(session, enrollment_id, for_update=True)
    if enrollment is None:
        raise EnrollmentNotFound({"enrollment_id": enrollment_id})
    if enrollment.status in ENDED:
        raise EnrollmentEnded({"status": enrollment.status.value})
    policy = registry.policies.by_id(enrollment.policy_id)
    if (
        enrollment.status is EnrollmentStatus.ACTIVE
        and request.reason not in policy.refunds.refundable_reasons
    ):
        # 待遇享受期内已缴纳的医保费不予退还: a paid enrollment ends only for a reason its policy refunds.
        raise CancellationNotAllowed(
            {"reason": request.reason, "refundable_reasons": list(policy.refunds.refundable_reasons)}
        )
    if enrollment.status is EnrollmentStatus.PENDING_PAYMENT:
        enrollment.status = EnrollmentStatus.CANCELLED
        enrollment.cancelled_at = registry.clock.now()
        enrollment.cancellation_reason = request.reason
        changed_on_commit(session, enrollment.id)
    cancelled = EnrollmentCancelled(
        enrollment_id=enrollment.id, reason=request.reason, evidence_ref=request.evidence_ref
    )
    envelope = new_envelope(SOURCE, enrollment.id, cancelled, time=registry.clock.now())
    enqueue(session, OutboxMessage, REGISTRY_ENROLLMENTS, envelope)
    return enrollment


def _lapse(session: AsyncSession, registry: Registry, enrollment: Enrollment, replaced_by: str) -> None:
    """An unpaid enrollment whose price could no longer be paid gives way to a new one; collection cancels
    its bill."""
    enrollment.status = EnrollmentStatus.LAPSED
    changed_on_commit(session, enrollment.id)
    lapsed = EnrollmentLapsed(enrollment_id=enrollment.id, replaced_by=replaced_by)
    envelope = new_envelope(SOURCE, enrollment.id, lapsed, time=registry.clock.now())
    enqueue(session, OutboxMessage, REGISTRY_ENROLLMENTS, envelope)


def _price_of(enrollment: Enrollment) -> rules.Price:
    return rules.Price(
        personal_due_fen=enrollment.personal_due_fen,
        subsidy_lines=tuple(
            rules.SubsidyLine(line.category_code, line.category_name, line.funder, line.amount_fen)
            for line in enrollment.subsidy_lines
        ),
        fiscal_subsidy_fen=enrollment.fiscal_subsidy_fen,
        total_financing_fen=enrollment.total_financing_fen,
    )


def _set_price(enrollment: Enrollment, price: rules.Price) -> None:
    enrollment.personal_due_fen = price.personal_due_fen
    enrollment.fiscal_subsidy_fen = price.fiscal_subsidy_fen
    enrollment.total_financing_fen = price.total_financing_fen
    enrollment.subsidy_lines = [
        EnrollmentSubsidyLine(
            category_code=line.category,
            category_name=line.category_name,
            funder=line.funder,
            amount_fen=line.amount_fen,
        )
        for line in price.subsidy_lines
    ]


def _lines_data(enrollment: Shown) -> list[SubsidyLineData]:
    return [
        SubsidyLineData(category=line.category_code, funder=line.funder, amount_fen=line.amount_fen)
        for line in enrollment.subsidy_lines
    ]


# Registry statuses in the check's vocabulary; an ended enrollment stands by whether it was paid.
_STANDING = {
    EnrollmentStatus.PENDING_PAYMENT: Standing.OPEN,
    EnrollmentStatus.ACTIVE: Standing.PAID,
}


def _standing(e: Enrollment) -> EnrollmentStanding:
    return EnrollmentStanding(
        enrollment_id=e.id,
        standing=_STANDING.get(e.status, Standing.REFUNDED if e.paid_fen else Standing.CLOSED_UNPAID),
        amount_due=e.personal_due_fen,
        price_version=e.price_version,
        payment_id=e.payment_id,
        paid=e.paid_fen or 0,
        refunded=e.refunded_fen,
    )


# The check's pages (核对, the repair job) over the registry's enrollments.
_READER = StandingReader(
    of_region_year=repository.of_region_year,
    changed_since=repository.changed_since,
    of_enrollments=repository.get_many,
    standing=_standing,
    changed_at=lambda e: e.updated_at,
)
standings = _READER.standings
changes = _READER.changes
standings_of = _READER.standings_of
