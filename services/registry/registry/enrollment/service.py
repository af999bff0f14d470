"""Enrollment rules: who may enroll for which year, at what price, and when an enrollment becomes active."""

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.database import OutboxMessage
from registry.enrollment import repository
from registry.enrollment.errors import AlreadyEnrolled, PaymentDoesNotMatch
from registry.enrollment.models import Enrollment, EnrollmentStatus
from registry.enrollment.schemas import EnrollmentCreate
from registry.people import service as people
from registry.people.identity import parse_resident_id
from registry.policy.book import PolicyBook
from shared.clock import business_date, utc_now
from shared.events import REGISTRY_ENROLLMENTS, EnrollmentCreated, PaymentConfirmed, new_envelope
from shared.outbox import enqueue

SOURCE = "/canbao/registry"


async def enroll(session: AsyncSession, policies: PolicyBook, request: EnrollmentCreate) -> Enrollment:
    identity = parse_resident_id(request.id_number, today=business_date(utc_now()))
    policy = policies.find(request.region_code, request.coverage_year)
    person = await people.find_or_register(session, identity, request.name, request.phone)
    if await repository.find_for_person_year(session, person.id, request.coverage_year) is not None:
        raise AlreadyEnrolled({"coverage_year": request.coverage_year})

    contribution = policy.contribution
    enrollment = Enrollment(
        id=str(uuid.uuid4()),
        person_id=person.id,
        policy_id=policy.policy_id,
        region_code=request.region_code,
        coverage_year=policy.coverage_year,
        status=EnrollmentStatus.PENDING_PAYMENT,
        personal_due_fen=contribution.personal,
        fiscal_subsidy_fen=contribution.fiscal_subsidy,
        total_financing_fen=contribution.total_financing,
        coverage_start=policy.coverage.start,
        coverage_end=policy.coverage.end,
    )
    enrollment.person = person
    repository.add(session, enrollment)
    try:
        await session.flush()
    except IntegrityError as exc:
        # A concurrent request enrolled the same person first; the unique constraints decided.
        raise AlreadyEnrolled({"coverage_year": request.coverage_year}) from exc

    created = EnrollmentCreated(
        enrollment_id=enrollment.id,
        id_number=person.id_number,
        name=person.name,
        region_code=enrollment.region_code,
        coverage_year=enrollment.coverage_year,
        personal_due_fen=enrollment.personal_due_fen,
        total_financing_fen=enrollment.total_financing_fen,
        coverage_start=enrollment.coverage_start,
        coverage_end=enrollment.coverage_end,
    )
    enqueue(session, OutboxMessage, REGISTRY_ENROLLMENTS, new_envelope(SOURCE, enrollment.id, created))
    return enrollment


async def apply_payment(session: AsyncSession, confirmation: PaymentConfirmed) -> None:
    """A confirmed payment activates the enrollment it pays for."""
    enrollment = await repository.get(session, confirmation.enrollment_id, for_update=True)
    if enrollment is None:
        raise PaymentDoesNotMatch(f"no enrollment {confirmation.enrollment_id}")
    if enrollment.status is EnrollmentStatus.ACTIVE:
        if enrollment.payment_id == confirmation.payment_id:
            return
        raise PaymentDoesNotMatch(f"enrollment {enrollment.id} already paid by {enrollment.payment_id}")
    if confirmation.amount_fen != enrollment.personal_due_fen:
        raise PaymentDoesNotMatch(
            f"paid {confirmation.amount_fen} fen, due {enrollment.personal_due_fen} fen on {enrollment.id}"
        )
    enrollment.status = EnrollmentStatus.ACTIVE
    enrollment.paid_fen = confirmation.amount_fen
    enrollment.paid_at = confirmation.paid_at
    enrollment.payment_id = confirmation.payment_id
    enrollment.receipt_no = confirmation.receipt_no
