from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from collection.billing.errors import BillNotFound
from collection.idempotency.service import IdempotencyKeyReused
from collection.notifications import repository, service
from collection.notifications.errors import (
    ChannelNotNotifying,
    NotificationExpired,
    NotificationInvalid,
    NotificationSignatureInvalid,
)
from collection.notifications.schemas import ChannelNotification, RejectionList, RejectionOut
from collection.orders.errors import (
    OrderCancelled,
    OrderChannelMismatch,
    OrderCompleted,
    OrderExpired,
    OrderNotFound,
)
from collection.payments.errors import (
    AmountMismatch,
    BillAlreadyPaid,
    BillCancelled,
    ChannelReferenceUsed,
    PaymentWindowClosed,
)
from collection.payments.schemas import PaymentOut
from shared.auth import Role, allow
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import DomainError, error_responses

router = APIRouter(prefix="/v1/channels", tags=["channel notifications"])
rejections_router = APIRouter(prefix="/v1/notification-rejections", tags=["channel notifications"])


@router.post(
    "/{channel}/notifications",
    summary="A channel reports a payment (缴费通知, webhook), signed with HMAC-SHA256",
    description="Headers `X-Canbao-Timestamp` (Unix seconds, within "
    "`COLLECTION_NOTIFICATION_TOLERANCE_S`) and `X-Canbao-Signature: sha256=<hex>` over "
    "`<timestamp>.<raw body>` with the channel's secret. Body: `notification_id` (the channel's "
    "transaction id), `order_reference` (the payment order the resident started) or, without an order, "
    "`bill_id`/`bill_ids`, and `amount`. Nothing is recorded unless the signature verifies; the same "
    "notification again returns the first result with `Idempotent-Replayed: true`. A genuine notification "
    "that cannot be recorded (an expired, cancelled or completed order, another amount, a bill paid "
    "meanwhile) is refused and kept for operators (`GET /v1/notification-rejections`).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ChannelNotification.model_json_schema()}},
        }
    },
    response_model=PaymentOut,
    responses=error_responses(
        ChannelNotNotifying,
        NotificationSignatureInvalid,
        NotificationExpired,
        NotificationInvalid,
        IdempotencyKeyReused,
        OrderNotFound,
        OrderExpired,
        OrderCancelled,
        OrderCompleted,
        OrderChannelMismatch,
        ChannelReferenceUsed,
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
) -> PaymentOut | JSONResponse:
    body = await request.body()  # the exact bytes that were signed
    service.verify(request.app.state.settings, channel, x_canbao_timestamp, x_canbao_signature, body)
    outcome = await service.record(session, clock, channel, body)
    if isinstance(outcome, DomainError):
        # Answered, not raised: the request's transaction commits the rejection kept for operators.
        return JSONResponse(outcome.body().model_dump(), status_code=outcome.status_code)
    result, replayed = outcome
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result


@rejections_router.get(
    "",
    summary="Genuine channel notifications that recorded nothing (money a channel holds for no bill)",
    description="Each was signed by its channel but refused (expired or cancelled order, another amount, a "
    "bill paid meanwhile…): operators return the money through the channel or record it by hand. One row per "
    "channel transaction, with how often the channel tried; `open=false` includes those a later attempt "
    "recorded after all.",
    dependencies=[allow(Role.TAX_OFFICER)],
)
async def list_rejections(
    session: DbSession,
    open: Annotated[bool, Query()] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RejectionList:
    rows = await repository.rejections(session, open_only=open, limit=limit)
    return RejectionList(items=[RejectionOut.of(r) for r in rows])
