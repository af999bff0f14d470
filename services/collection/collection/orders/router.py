from fastapi import APIRouter, Request, Response, status

from collection import access as area
from collection.billing.errors import BillNotFound
from collection.idempotency.service import IdempotencyKey, IdempotencyKeyRequired, IdempotencyKeyReused
from collection.orders import service
from collection.orders.errors import (
    ChannelNotOrderable,
    OrderCancelled,
    OrderCompleted,
    OrderExpired,
    OrderNotFound,
)
from collection.orders.schemas import OrderId, PaymentOrderCreate, PaymentOrderOut
from collection.payments.errors import BillAlreadyPaid, BillCancelled, PaymentWindowClosed
from collection.settings import CollectionSettings
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/payment-orders", tags=["payment orders"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Start paying bills through an online channel (发起缴费)",
    description="A resident pays their own bill, or family members' bills found by `GET /v1/bills/lookup` "
    "(为家人缴费), through WeChat, Alipay, the provincial app or a bank. The order fixes the bills and the "
    "amount, and waits for the channel until `expires_at` (COLLECTION_PAYMENT_ORDER_TTL_S); the front-end "
    "hands `reference` and `amount` to the channel, and the channel's signed notification quoting them "
    "records the payment. Nothing is paid by this call. Requires an Idempotency-Key (per caller).",
    responses=error_responses(
        IdempotencyKeyRequired,
        IdempotencyKeyReused,
        ChannelNotOrderable,
        BillNotFound,
        BillAlreadyPaid,
        BillCancelled,
        PaymentWindowClosed,
    ),
    dependencies=[allow(Role.RESIDENT)],
)
async def start_order(
    body: PaymentOrderCreate,
    key: IdempotencyKey,
    request: Request,
    session: DbSession,
    clock: AppClock,
    response: Response,
    access: CurrentAccess,
) -> PaymentOrderOut:
    settings: CollectionSettings = request.app.state.settings
    order, replayed, bills = await service.start(
        session,
        clock,
        body,
        key,
        subject=access.principal.subject,
        ttl=settings.payment_order_ttl,
    )
    await area.order_bills(session, access, order.bill_ids, read=bills)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return PaymentOrderOut.of(order, clock.now())


@router.get(
    "/{order_id}",
    summary="A payment order and where it stands",
    description="`awaiting_channel`, `completed` (with `payment_id`), `expired` or `cancelled`.",
    responses=error_responses(OrderNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.TAX_OFFICER)],
)
async def get_order(
    order_id: OrderId, session: DbSession, clock: AppClock, access: CurrentAccess
) -> PaymentOrderOut:
    order = await service.get(session, order_id)
    area.order(access, order)
    return PaymentOrderOut.of(order, clock.now())


@router.post(
    "/{order_id}/cancellation",
    summary="Give up a payment order before paying it",
    description="A notification quoting it afterwards is refused and kept for operators.",
    responses=error_responses(OrderNotFound, OrderCompleted, OrderExpired, OrderCancelled, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT)],
)
async def cancel_order(
    order_id: OrderId, session: DbSession, clock: AppClock, access: CurrentAccess
) -> PaymentOrderOut:
    area.order(access, await service.get(session, order_id))
    order = await service.cancel(session, clock, order_id)
    return PaymentOrderOut.of(order, clock.now())
