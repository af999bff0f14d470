"""Handlers for the events the registry consumes."""

from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment import service
from shared.events import Envelope, PaymentConfirmed
from shared.inbox import Handler


async def on_payment_confirmed(session: AsyncSession, envelope: Envelope) -> None:
    await service.apply_payment(session, envelope.payload(PaymentConfirmed))


HANDLERS: dict[str, Handler] = {PaymentConfirmed.event_type: on_payment_confirmed}
