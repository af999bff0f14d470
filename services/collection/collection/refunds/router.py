from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from collection.billing.errors import BillNotFound
from collection.idempotency.service import IdempotencyKey, IdempotencyKeyRequired, IdempotencyKeyReused
from collection.refunds import repository, service
from collection.refunds.errors import AlreadyRefunded, BillNotPaid, RefundNotAllowed
from collection.refunds.schemas import RefundCreate, RefundList, RefundOut
from shared.auth import Role, allow
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/refunds", tags=["refunds"], dependencies=[allow(Role.TAX_OFFICER)])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Refund a paid bill for a reason the policy names (退费)",
    description="`erroneous_payment` (错误缴费) or `death` (自然减员), when the bill's policy refunds "
    "them: the whole payment goes back through its channel, the enrollment ends, and the registry is "
    "told. Any other request is refused with the rule (待遇享受期内已缴纳的医保费不予退还). Requires an "
    "Idempotency-Key.",
    responses=error_responses(
        IdempotencyKeyRequired,
        IdempotencyKeyReused,
        BillNotFound,
        BillNotPaid,
        AlreadyRefunded,
        RefundNotAllowed,
    ),
)
async def request_refund(
    body: RefundCreate, key: IdempotencyKey, session: DbSession, clock: AppClock, response: Response
) -> RefundOut:
    result, replayed = await service.request(session, clock, body, key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result


@router.get("", summary="A bill's refunds")
async def list_refunds(
    session: DbSession, bill_id: Annotated[str, Query(min_length=1, max_length=64)]
) -> RefundList:
    return RefundList(items=[RefundOut.of(r) for r in await repository.for_bill(session, bill_id)])
