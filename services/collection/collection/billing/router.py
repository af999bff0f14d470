from typing import Annotated

from fastapi import APIRouter, Query

from collection.billing import repository
from collection.billing.errors import BillNotFound
from collection.billing.schemas import BillList, BillOut
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/bills", tags=["bills"])


@router.get(
    "",
    summary="Bills, optionally for given enrollments",
    description="Repeat `enrollment_id` for several (a household's members, to pay them at once).",
)
async def list_bills(
    session: DbSession,
    enrollment_id: Annotated[list[str] | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> BillList:
    bills = await repository.list_bills(session, enrollment_id or [], limit)
    return BillList(items=[BillOut.of(b) for b in bills])


@router.get("/{bill_id}", summary="One bill", responses=error_responses(BillNotFound))
async def get_bill(bill_id: str, session: DbSession) -> BillOut:
    bill = await repository.get(session, bill_id)
    if bill is None:
        raise BillNotFound({"bill_id": bill_id})
    return BillOut.of(bill)
