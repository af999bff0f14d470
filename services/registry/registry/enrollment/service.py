"""Enrollment rules: who may enroll for which year, at what price, and when an enrollment becomes active.
The figures and dates come from the policy engine (registry.policy.rules); this module applies them."""

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.database import OutboxMessage
from registry.enrollment import repository
from registry.enrollment.errors import AlreadyEnrolled, PaymentDoesNotMatch
from registry.enrollment.models import Enrollment, EnrollmentStatus, EnrollmentSubsidyLine
from registry.enrollment.schemas import EnrollmentCreate, RepriceOutcome
from registry.exclusion.service import ExclusionLookup, refuse_if_excluded
from registry.people import service as people
from registry.policy import rules
from registry.policy.book import PolicyBook
from registry.policy.errors import UnknownTownship
from registry.policy.models import CoverageFrom
from registry.subsidy import repository as subsidies
from shared.clock import Clock, business_date
from shared.events import (
    REGISTRY_ENROLLMENTS,
    EnrollmentCreated,
    EnrollmentLapsed,
    EnrollmentRepriced,
    PaymentConfirmed,
    SubsidyLineData,
    new_envelope,
)
from shared.outbox import enqueue

SOURCE = "/canbao/registry"


@dataclass(frozen=True)
class Registry:
    """What enrolling consults besides the database: the policies, the exclusion lookup and the clock."""

    policies: PolicyBook
    exclusions: ExclusionLookup
    clock: Clock


async def enroll(
    session: AsyncSession, registry: Registry, request: EnrollmentCreate, household_id: str | None = None
) -> Enrollment:
    today = registry.clock.today()
    identity = people.identify(request, today)
    policy = registry.policies.find(request.region_code, request.coverage_year)
    if request.township is not None and not policy.has_township(request.region_code, request.township):
        raise UnknownTownship({"township": request.township, "region_code": request.region_code})
    rules.check_eligibility(policy, request.basis, identity, today)
    await refuse_if_excluded(registry.exclusions, session, identity, policy.coverage_year)
    person = await people.find_or_register(session, identity, request.name, request.phone)
    existing = await repository.find_for_person_year(
        session, person.id, policy.coverage_year, for_update=True
    )
    if existing is not None and not _unpayable(existing, today):
        raise AlreadyEnrolled({"coverage_year": policy.coverage_year, "enrollment_id": existing.id})

    held = await subsidies.active_codes(session, person.id, policy.coverage_year)
    claim = (
        rules.LateClaim(request.late_case.kind, request.late_case.event_date, request.late_case.evidence_ref)
        if request.late_case
        else None
    )
    terms = rules.terms(policy, today, identity.birth_date, held, request.window_extension, claim)
    price = rules.price(policy, held, terms.charge)
    enrollment = Enrollment(
        id=str(uuid.uuid4()),
        person_id=person.id,
        household_id=household_id,
        policy_id=policy.policy_id,
        region_code=request.region_code,
        township=request.township,
        coverage_year=policy.coverage_year,
        basis=request.basis,
        status=EnrollmentStatus.PENDING_PAYMENT,
        charge=terms.charge,
        late_case=terms.late_case,
        window_extension=terms.window_extension,
        payable_until=terms.payable_until,
        personal_due_fen=0,
        fiscal_subsidy_fen=0,
        total_financing_fen=0,
        price_version=1,
        coverage_from=terms.coverage_from,
        coverage_start=terms.coverage_start,
        coverage_end=policy.coverage.end,
        created_at=registry.clock.now(),
    )
    enrollment.person = person
    _set_price(enrollment, price)
    if existing is not None:
        _lapse(session, registry, existing, replaced_by=enrollment.id)
        await session.flush()  # the old one leaves the one-live-enrollment index before the new one enters
    repository.add(session, enrollment)
    try:
        await session.flush()
    except IntegrityError as exc:
        # A concurrent request enrolled the same person first; the unique constraints decided.
        raise AlreadyEnrolled({"coverage_year": policy.coverage_year}) from exc

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
    )
    enqueue(
        session,
        OutboxMessage,
        REGISTRY_ENROLLMENTS,
        new_envelope(SOURCE, enrollment.id, created, time=enrollment.created_at),
    )
    return enrollment


async def reprice(
    session: AsyncSession, registry: Registry, person_id: str, coverage_year: int, reason: str
) -> RepriceOutcome:
    """After a person's subsidy categories changed: reprice their enrollment for the year and tell collection.
    A paid one keeps its price unless the policy refunds paid contributions within the coverage period."""
    enrollment = await repository.find_for_person_year(session, person_id, coverage_year, for_update=True)
    if enrollment is None:
        return "no_enrollment"
    policy = registry.policies.by_id(enrollment.policy_id)
    held = await subsidies.active_codes(session, person_id, coverage_year)
    price = rules.price(policy, held, enrollment.charge)
    if price == _price_of(enrollment):
        return "unchanged"
    outcome: RepriceOutcome = "repriced"
    if enrollment.status is not EnrollmentStatus.PENDING_PAYMENT:
        if not policy.refunds.refund_otherwise_within_coverage:
            return "paid_not_repriced"  # 待遇享受期内已缴纳的医保费不予退还
        outcome = "paid_refund_due"  # the new price stands; collection refunds what was paid beyond it
    _set_price(enrollment, price)
    enrollment.price_version += 1
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


async def apply_payment(session: AsyncSession, confirmation: PaymentConfirmed) -> None:
    """A settled bill activates the enrollment it is for; coverage that starts the day after payment
    starts on the Beijing business day after the payment."""
    enrollment = await repository.get(session, confirmation.enrollment_id, for_update=True)
    if enrollment is None:
        raise PaymentDoesNotMatch(f"no enrollment {confirmation.enrollment_id}")
    if enrollment.status is EnrollmentStatus.ACTIVE:
        if enrollment.payment_id == confirmation.payment_id:
            return
        raise PaymentDoesNotMatch(f"enrollment {enrollment.id} already paid by {enrollment.payment_id}")
    # A payment of an earlier price version (the price changed while it was under way) still activates the
    # enrollment; the difference between paid and due is collection's to settle.
    if (
        confirmation.price_version == enrollment.price_version
        and confirmation.amount_fen != enrollment.personal_due_fen
    ):
        raise PaymentDoesNotMatch(
            f"paid {confirmation.amount_fen} fen, due {enrollment.personal_due_fen} fen on {enrollment.id}"
        )
    enrollment.status = EnrollmentStatus.ACTIVE
    enrollment.paid_fen = confirmation.amount_fen
    enrollment.paid_at = confirmation.paid_at
    enrollment.payment_id = confirmation.payment_id
    enrollment.receipt_no = confirmation.receipt_no
    if enrollment.coverage_from is CoverageFrom.DAY_AFTER_PAYMENT:
        enrollment.coverage_start = business_date(confirmation.paid_at) + timedelta(days=1)


def _unpayable(enrollment: Enrollment, today: date) -> bool:
    return enrollment.status is EnrollmentStatus.PENDING_PAYMENT and enrollment.payable_until < today


def _lapse(session: AsyncSession, registry: Registry, enrollment: Enrollment, replaced_by: str) -> None:
    """An unpaid enrollment whose price could no longer be paid gives way to a new one; collection cancels
    its bill."""
    enrollment.status = EnrollmentStatus.LAPSED
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


def _lines_data(enrollment: Enrollment) -> list[SubsidyLineData]:
    return [
        SubsidyLineData(category=line.category_code, funder=line.funder, amount_fen=line.amount_fen)
        for line in enrollment.subsidy_lines
    ]
