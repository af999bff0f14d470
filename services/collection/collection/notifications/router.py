from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from collection.billing.errors import BillNotFound
from collection.idempotency.service import IdempotencyKeyReused
from collection.notifications import service
from collection.notifications.errors import (
    ChannelNotNotifying,
    NotificationExpired,
    NotificationInvalid,
    NotificationSignatureInvalid,
)
from collection.notifications.schemas import ChannelNotification
from collection.payments.errors import AmountMismatch, BillAlreadyPaid, BillCancelled, PaymentWindowClosed
from collection.payments.schemas import PaymentOut
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/channels", tags=["channel notifications"])


@router.post(
    "/{channel}/notifications",
    summary="A channel reports a payment (缴费通知, webhook), signed with HMAC-SHA256",
    description="Headers `X-Canbao-Timestamp` (Unix seconds, within "
    "`COLLECTION_NOTIFICATION_TOLERANCE_S`) and `X-Canbao-Signature: sha256=<hex>` over "
    "`<timestamp>.<raw body>` with the channel's secret. Body: `notification_id` (the channel's "
    "transaction id), `bill_id` or `bill_ids`, `amount`. Nothing is recorded unless the signature "
    "verifies; the same notification again returns the first result with `Idempotent-Replayed: true`.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ChannelNotification.model_json_schema()}},
        }
    },
    responses=error_responses(
        ChannelNotNotifying,
        NotificationSignatureInvalid,
        NotificationExpired,
        NotificationInvalid,
        IdempotencyKeyReused,
        BillNotFound,
        BillAlreadyPaid,
        BillCancelled,
        AmountMismatch,
        PaymentWindowClosed,
    ),
)
async def channel_notification(
    channel: str,
    request: Request,
    session: DbSession,
    clock: AppClock,
    response: Response,
    x_canbao_timestamp: Annotated[str | None, Header()] = None,
    x_canbao_signature: Annotated[str | None, Header()] = None,
) -> PaymentOut:
    body = await request.body()  # the exact bytes that were signed
    service.verify(request.app.state.settings, channel, x_canbao_timestamp, x_canbao_signature, body)
    result, replayed = await service.record(session, clock, channel, body)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result
