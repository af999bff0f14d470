from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from collection import access as area
from collection.notifications import service as notifications
from collection.orders import service as orders
from collection.orders.errors import OrderCancelled, OrderCompleted, OrderExpired, OrderNotFound
from collection.orders.schemas import OrderId
from collection.payments.errors import AmountMismatch, BillAlreadyPaid, BillCancelled, PaymentWindowClosed
from collection.payments.schemas import PaymentOut
from collection.sandbox.service import notification_for
from collection.settings import CollectionSettings
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import DomainError, error_responses

router = APIRouter(prefix="/v1/sandbox", tags=["payment sandbox (not in production)"])


@router.post(
    "/payment-orders/{order_id}/payment",
    summary="Sandbox: the channel takes the order's money and notifies (development and tests only)",
    description="Plays the order's channel for front-end developers: builds the notification the channel "
    "would send, signs it with the channel's secret and hands it to the same verification and recording as "
    "`POST /v1/channels/{channel}/notifications`. Mounted only when COLLECTION_PAYMENT_SANDBOX is on, which "
    "production refuses.",
    response_model=PaymentOut,
    responses=error_responses(
        OrderNotFound,
        OrderExpired,
        OrderCancelled,
        OrderCompleted,
        BillAlreadyPaid,
        BillCancelled,
        AmountMismatch,
        PaymentWindowClosed,
        *AREA_ERRORS,
    ),
    dependencies=[allow(Role.RESIDENT)],
)
async def pay_in_sandbox(
    order_id: OrderId,
    request: Request,
    session: DbSession,
    clock: AppClock,
    access: CurrentAccess,
    response: Response,
) -> PaymentOut | JSONResponse:
    settings: CollectionSettings = request.app.state.settings
    # Locked now, as the notification's recording would lock it (which then takes it from here).
    order = await orders.get(session, order_id, for_update=True)
    area.order(access, order)
    orders.require_open(order, clock.now())  # a channel charges nobody for a closed order
    sent = notification_for(
        settings, channel=order.channel.value, reference=order.reference, amount_fen=order.amount_fen
    )
    headers = sent.headers
    notifications.verify(
        settings, sent.channel, headers["X-Canbao-Timestamp"], headers["X-Canbao-Signature"], sent.body
    )
    outcome = await notifications.record(session, clock, sent.channel, sent.body, held=order)
    if isinstance(outcome, DomainError):
        return JSONResponse(outcome.body().model_dump(), status_code=outcome.status_code)
    result, replayed = outcome
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result
