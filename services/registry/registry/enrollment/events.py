"""Handlers for the events the registry consumes."""

from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment import service
from shared.events import Envelope, PaymentConfirmed, PaymentRefunded
from shared.inbox import Handler


async def on_payment_confirmed(session: AsyncSession, envelope: Envelope) -> None:
    await service.apply_payment(session, envelope.payload(PaymentConfirmed))


async def on_payment_refunded(session: AsyncSession, envelope: Envelope) -> None:
    await service.apply_refund(session, envelope.payload(PaymentRefunded))


HANDLERS: dict[str, Handler] = {
    PaymentConfirmed.event_type: on_payment_confirmed,
    PaymentRefunded.event_type: on_payment_refunded,
}
