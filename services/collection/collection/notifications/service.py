"""Channel notifications (webhooks): a channel tells collection a resident paid. Nothing is read from the body
until its HMAC signature verifies with the channel's secret; the channel's transaction id is the idempotency
key, so a notification delivered again records nothing new."""

import hashlib
import hmac
from typing import NamedTuple

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from collection.idempotency import service as idempotency
from collection.ledger.accounts import Channel
from collection.notifications import repository
from collection.notifications.errors import (
    ChannelNotNotifying,
    NotificationExpired,
    NotificationInvalid,
    NotificationSignatureInvalid,
)
from collection.notifications.models import NotificationRejection
from collection.notifications.schemas import ChannelNotification
from collection.orders import service as orders
from collection.orders.models import PaymentOrder
from collection.payments import repository as payments_repository
from collection.payments import service as payments
from collection.payments.errors import ChannelReferenceUsed
from collection.payments.models import Payment
from collection.payments.schemas import PaymentOut
from collection.settings import CollectionSettings
from shared.clock import Clock, utc_now
from shared.errors import DomainError

log = structlog.get_logger(__name__)

SIGNATURE_PREFIX = "sha256="
_TIMESTAMP_DIGITS = 12


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
    # ASCII digits of a plausible length only: int() would take "²" or thousands of digits.
    if (
        not timestamp
        or not (timestamp.isascii() and timestamp.isdigit())
        or len(timestamp) > _TIMESTAMP_DIGITS
    ):
        raise NotificationExpired()
    # Real time, not the business clock (which development may start elsewhere): this guards against replays.
    age = utc_now().timestamp() - int(timestamp)
    if abs(age) > settings.notification_tolerance_s:
        raise NotificationExpired({"tolerance_s": settings.notification_tolerance_s})
    expected = sign(secret.get_secret_value(), timestamp, body)
    if not signature or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise NotificationSignatureInvalid()


async def record(
    session: AsyncSession, clock: Clock, channel: str, body: bytes, *, held: PaymentOrder | None = None
) -> tuple[PaymentOut, bool] | DomainError:
    """Record the payment a verified notification reports: it completes the payment order it quotes, or
    settles the bills it names. Returns the payment and whether it was recorded before; or the refusal,
    which is kept for operators (the channel holds money no bill took) and answered to the channel.
    `held`: the order this transaction already locked (the sandbox, playing its channel), not read again."""
    try:
        notification = ChannelNotification.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise NotificationInvalid({"errors": errors}) from exc
    paid_through = Channel(channel)
    request = idempotency.Request.of(
        "notifications", f"{channel}:{notification.notification_id}", notification
    )
    stored = await idempotency.stored_response(session, request)
    if stored is not None:
        return PaymentOut.model_validate(stored), True
    try:
        applied = await _apply(session, clock, paid_through, notification, request, held)
    except DomainError as refusal:
        # Nothing of the attempt stays; the rejection is kept in the request's next transaction. (Not a
        # savepoint: on SQLite it would pin a read snapshot that a concurrent commit makes unwritable.)
        await session.rollback()
        await _keep_rejection(session, clock, paid_through, notification, refusal)
        return refusal
    result = PaymentOut.of(applied.payment)
    if not applied.remembered:
        idempotency.remember(session, request, 200, result)
        # An earlier delivery of it refused (say, before its order existed) is settled by this payment.
        await repository.settle_rejection(session, channel, notification.notification_id, applied.payment.id)
    return result, applied.earlier


class _Applied(NamedTuple):
    payment: Payment
    earlier: bool  # recorded before this notification
    remembered: bool  # the idempotency record and an earlier rejection's link written with the payment


async def _apply(
    session: AsyncSession,
    clock: Clock,
    channel: Channel,
    notification: ChannelNotification,
    request: idempotency.Request,
    held: PaymentOrder | None,
) -> _Applied:
    earlier = await payments_repository.by_channel_reference(session, channel, notification.notification_id)
    if earlier is not None:
        # The same transaction, recorded first from the channel's daily file (only a channel's own
        # notification or file may carry its transaction ids): it adds nothing if it took the same money for
        # the same bills, and completes the order it quotes.
        order = (
            await orders.awaiting(
                session, clock, channel=channel, reference=notification.order_reference, held=held
            )
            if notification.order_reference is not None
            else None
        )
        named = order.bill_ids if order is not None else notification.bills
        if earlier.amount_fen != notification.amount or sorted(named) != sorted(
            i.bill_id for i in earlier.items
        ):
            raise ChannelReferenceUsed(
                {"channel_reference": notification.notification_id, "payment_id": earlier.id}
            )
        if order is not None:
            orders.completed_by(order, earlier, clock.now())
        return _Applied(earlier, earlier=True, remembered=False)
    if notification.order_reference is not None:
        payment, remembered = await orders.complete(
            session,
            clock,
            channel=channel,
            reference=notification.order_reference,
            amount_fen=notification.amount,
            transaction_id=notification.notification_id,
            remembered=request,
            held=held,
        )
        return _Applied(payment, earlier=False, remembered=remembered)
    else:
        payment = await payments.record_notified(
            session,
            clock,
            channel=channel,
            bill_ids=notification.bills,
            amount_fen=notification.amount,
            reference=notification.notification_id,
        )
    return _Applied(payment, earlier=False, remembered=False)


async def _keep_rejection(
    session: AsyncSession,
    clock: Clock,
    channel: Channel,
    notification: ChannelNotification,
    refusal: DomainError,
) -> None:
    log.warning(
        "notification_rejected",
        channel=channel.value,
        transaction_id=notification.notification_id,
        order_reference=notification.order_reference,
        code=refusal.code,
    )
    kept = await repository.rejection_of(session, channel.value, notification.notification_id)
    if kept is not None:  # the channel retries until answered 2xx: one row, counted
        kept.attempts += 1
        kept.code, kept.received_at = refusal.code, clock.now()
        return
    repository.add(
        session,
        NotificationRejection(
            channel=channel.value,
            transaction_id=notification.notification_id,
            order_reference=notification.order_reference,
            bill_ids=",".join(notification.bills) or None,
            amount_fen=notification.amount,
            code=refusal.code,
            received_at=clock.now(),
        ),
    )
