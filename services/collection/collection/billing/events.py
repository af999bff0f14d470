"""Handlers for the events collection consumes."""

from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing import service
from shared.events import (
    EnrollmentCancelled,
    EnrollmentCreated,
    EnrollmentLapsed,
    EnrollmentRepriced,
    Envelope,
)
from shared.inbox import Handler


async def on_enrollment_created(session: AsyncSession, envelope: Envelope) -> None:
    await service.issue_for_enrollment(session, envelope.payload(EnrollmentCreated), envelope.time)


async def on_enrollment_repriced(session: AsyncSession, envelope: Envelope) -> None:
    await service.follow_repricing(session, envelope.payload(EnrollmentRepriced), envelope.time)


async def on_enrollment_lapsed(session: AsyncSession, envelope: Envelope) -> None:
    await service.cancel_for_lapse(session, envelope.payload(EnrollmentLapsed), envelope.time)


async def on_enrollment_cancelled(session: AsyncSession, envelope: Envelope) -> None:
    await service.end_for_registry(session, envelope.payload(EnrollmentCancelled), envelope.time)


HANDLERS: dict[str, Handler] = {
    EnrollmentCancelled.event_type: on_enrollment_cancelled,
    EnrollmentCreated.event_type: on_enrollment_created,
    EnrollmentRepriced.event_type: on_enrollment_repriced,
    EnrollmentLapsed.event_type: on_enrollment_lapsed,
}
