from fastapi import APIRouter, Response, status

from collection import access as area
from collection.agents.errors import AgentNotFound
from collection.billing.errors import BillNotFound
from collection.idempotency.service import IdempotencyKey, IdempotencyKeyRequired, IdempotencyKeyReused
from collection.payments import repository, service
from collection.payments.errors import (
    AmountMismatch,
    BillAlreadyPaid,
    BillCancelled,
    ChannelRecordsItself,
    ChannelReferenceUsed,
    NoOpenBills,
    PaymentNotFound,
    PaymentWindowClosed,
)
from collection.payments.schemas import PaymentCreate, PaymentOut
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/payments", tags=["payments"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Record money handed over at the counter (柜台缴费): tax hall, cash, or an agent's collection",
    description="For tax officers: whoever holds the money records the payment. Online channels (WeChat, "
    "Alipay, the provincial app, banks) are refused here: a resident starts a payment order "
    "(`POST /v1/payment-orders`) and the channel's signed notification records it. Requires an "
    "Idempotency-Key header. Replaying the same key and body returns the first result (with "
    "`Idempotent-Replayed: true`) and records nothing new; the same key with another body is refused.",
    responses=error_responses(
        IdempotencyKeyRequired,
        IdempotencyKeyReused,
        BillNotFound,
        NoOpenBills,
        AgentNotFound,
        BillAlreadyPaid,
        BillCancelled,
        AmountMismatch,
        PaymentWindowClosed,
        ChannelReferenceUsed,
        ChannelRecordsItself,
    ),
    dependencies=[allow(Role.TAX_OFFICER)],
)
async def create_payment(
    body: PaymentCreate,
    key: IdempotencyKey,
    session: DbSession,
    clock: AppClock,
    response: Response,
    access: CurrentAccess,
) -> PaymentOut:
    result, replayed = await service.pay(session, clock, body, key, recorded_by=access.principal.subject)
    payment = await repository.get(session, result.payment_id)
    if payment is not None:  # the audit trail names whose bills were paid
        await area.payment(session, access, payment)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result


@router.get(
    "/{payment_id}",
    summary="One payment and its receipt number",
    responses=error_responses(PaymentNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.TAX_OFFICER)],
)
async def get_payment(payment_id: str, session: DbSession, access: CurrentAccess) -> PaymentOut:
    payment = await repository.get(session, payment_id)
    if payment is None:
        raise PaymentNotFound({"payment_id": payment_id})
    await area.payment(session, access, payment)
    return PaymentOut.of(payment)
