"""The registry's reactions to collection's events: a confirmed payment activates the enrollment it paid, a
refund may end it. Each takes the enrollment's row lock."""

from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment import repository
from registry.enrollment.errors import PaymentDoesNotMatch
from registry.enrollment.models import ENDED, Enrollment, EnrollmentStatus
from registry.enrollment.watch import changed_on_commit
from registry.policy.models import CoverageFrom
from shared.clock import business_date
from shared.events import Envelope, PaymentConfirmed, PaymentRefunded
from shared.inbox import BatchHandler, Handler

log = structlog.get_logger(__name__)


async def apply_payments(session: AsyncSession, confirmations: Sequence[PaymentConfirmed]) -> None:
    """Settled bills activate the enrollments they are for, in order, if each paid what its enrollment was
    priced at; coverage that starts the day after payment starts on the Beijing business day after the
    payment. A payment that crossed the enrollment's end (a cancellation, a lapse) is kept, not activated:
    collection refunds it when the end reaches it. A run of confirmations (the consumer applies a batch's
    together) takes one locking read of their enrollments, in id order, and one flush."""
    enrollments = await repository.locked(session, [c.enrollment_id for c in confirmations])
    for confirmation in confirmations:
        enrollment = enrollments.get(confirmation.enrollment_id)
        if enrollment is None:
            raise PaymentDoesNotMatch(f"no enrollment {confirmation.enrollment_id}")
        _apply_payment(session, enrollment, confirmation)
    await session.flush()


def _apply_payment(session: AsyncSession, enrollment: Enrollment, confirmation: PaymentConfirmed) -> None:
    if enrollment.payment_id is not None:
        if enrollment.payment_id == confirmation.payment_id:
            return  # the same payment told again (a repair republished it)
        raise PaymentDoesNotMatch(f"enrollment {enrollment.id} already paid by {enrollment.payment_id}")
    # A payment of an earlier price version (the price changed while it was under way) is still a payment
    # of this enrollment; the difference between paid and due is collection's to settle.
    priced = _due_at_version(enrollment, confirmation.price_version)
    if priced is None or confirmation.amount_fen != priced:
        raise PaymentDoesNotMatch(
            f"paid {confirmation.amount_fen} fen at price version {confirmation.price_version}, "
            f"priced {priced} fen on {enrollment.id}"
        )
    changed_on_commit(session, enrollment.id)  # a front-end waiting for "paid" hears it at once
    enrollment.paid_fen = confirmation.amount_fen
    enrollment.paid_at = confirmation.paid_at
    enrollment.payment_id = confirmation.payment_id
    enrollment.receipt_no = confirmation.receipt_no
    if enrollment.status is not EnrollmentStatus.PENDING_PAYMENT:
        log.warning("payment_after_end", enrollment_id=enrollment.id, status=enrollment.status.value)
        # Counted in no progress figure: it ended before it was paid.
        enrollment.cancelled_at = enrollment.cancelled_at or confirmation.paid_at
        return
    enrollment.status = EnrollmentStatus.ACTIVE
    if enrollment.coverage_from is CoverageFrom.DAY_AFTER_PAYMENT:
        enrollment.coverage_start = business_date(confirmation.paid_at) + timedelta(days=1)


def _due_at_version(enrollment: Enrollment, version: int) -> int | None:
    if version == enrollment.price_version:
        return enrollment.personal_due_fen
    return enrollment.earlier_dues.get(str(version))


async def apply_refund(session: AsyncSession, refund: PaymentRefunded) -> None:
    """Collection gave paid money back: all of it ends the enrollment (the person may enroll again for the
    year, e.g. after an erroneous payment); what a lower price left over leaves it standing."""
    enrollment = await repository.get(session, refund.enrollment_id, for_update=True)
    if enrollment is None:
        raise PaymentDoesNotMatch(f"no enrollment {refund.enrollment_id}")
    if enrollment.payment_id != refund.payment_id:
        raise PaymentDoesNotMatch(
            f"refund of {refund.payment_id}, enrollment paid by {enrollment.payment_id}"
        )
    changed_on_commit(session, enrollment.id)
    enrollment.refunded_fen += refund.amount_fen
    if refund.ends_enrollment and enrollment.status not in ENDED:
        enrollment.status = EnrollmentStatus.CANCELLED
        enrollment.cancelled_at = refund.refunded_at
        enrollment.cancellation_reason = refund.reason


async def on_payments_confirmed(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    await apply_payments(session, [e.payload(PaymentConfirmed) for e in envelopes])


async def on_payment_refunded(session: AsyncSession, envelope: Envelope) -> None:
    await apply_refund(session, envelope.payload(PaymentRefunded))


async def lock_enrollments(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """A consumer batch's locks (shared.inbox.BatchLocks): its events' enrollments, in id order before any is
    applied (a household's confirmations come in one batch, in no particular order). The enrollments read
    with the locks serve the batch's payment confirmations without a second read (`repository.locked`)."""
    await repository.lock_many(session, [e.subject for e in envelopes])


HANDLERS: dict[str, Handler] = {
    PaymentConfirmed.event_type: BatchHandler(on_payments_confirmed),
    PaymentRefunded.event_type: on_payment_refunded,
}
