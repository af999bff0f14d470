"""Handlers for the events collection consumes."""

from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing import service
from shared.events import EnrollmentCreated, Envelope
from shared.inbox import Handler


async def on_enrollment_created(session: AsyncSession, envelope: Envelope) -> None:
    await service.issue_for_enrollment(session, envelope.payload(EnrollmentCreated))


HANDLERS: dict[str, Handler] = {EnrollmentCreated.event_type: on_enrollment_created}
