"""Channel notifications (webhooks): a channel tells collection a resident paid. Nothing is read from the body
until its HMAC signature verifies with the channel's secret; the channel's transaction id is the idempotency
key, so a notification delivered again records nothing new."""

import hashlib
import hmac

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from collection.notifications.errors import (
    ChannelNotNotifying,
    NotificationExpired,
    NotificationInvalid,
    NotificationSignatureInvalid,
)
from collection.notifications.schemas import ChannelNotification
from collection.payments import service as payments
from collection.payments.models import PaymentOrigin
from collection.payments.schemas import PaymentCreate, PaymentOut
from collection.settings import CollectionSettings
from shared.clock import Clock, utc_now
from shared.money import format_fen

SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify(
    settings: CollectionSettings,
    channel: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
) -> None:
    secret = settings.channel_secrets.get(channel)
    if secret is None:
        raise ChannelNotNotifying({"channel": channel})
    if not timestamp or not timestamp.isdigit():
        raise NotificationExpired()
    # Real time, not the business clock (which development may start elsewhere): this guards against replays.
    age = utc_now().timestamp() - int(timestamp)
    if abs(age) > settings.notification_tolerance_s:
        raise NotificationExpired({"tolerance_s": settings.notification_tolerance_s})
    expected = sign(secret.get_secret_value(), timestamp, body)
    if not signature or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise NotificationSignatureInvalid()


async def record(session: AsyncSession, clock: Clock, channel: str, body: bytes) -> tuple[PaymentOut, bool]:
    """Record the payment a verified notification reports, through the same path as any payment."""
    try:
        notification = ChannelNotification.model_validate_json(body)
        payment = PaymentCreate.model_validate(
            {
                "bill_id": notification.bill_id,
                "bill_ids": notification.bill_ids,
                "amount": format_fen(notification.amount),
                "channel": channel,
                "channel_reference": notification.notification_id,
            }
        )
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise NotificationInvalid({"errors": errors}) from exc
    key = f"notification:{channel}:{notification.notification_id}"
    return await payments.pay(session, clock, payment, key, PaymentOrigin.NOTIFICATION)
