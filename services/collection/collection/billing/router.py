from typing import Annotated

from fastapi import APIRouter, Query

from collection.billing import repository
from collection.billing.errors import BillNotFound
from collection.billing.schemas import BillList, BillOut, OrganisationDue
from shared.db import DbSession
from shared.errors import error_responses
from shared.regions import REGION_CODE_PATTERN

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


@router.get(
    "/organisation-due",
    summary="What a school owes for its students' open bills",
    description="A university pays for its batch as one payer (when the policy says so): this is the amount "
    "to pay with `organisation` in POST /v1/payments.",
)
async def organisation_due(
    session: DbSession,
    organisation: Annotated[str, Query(min_length=1, max_length=64)],
    region_code: Annotated[str, Query(pattern=REGION_CODE_PATTERN)],
    coverage_year: Annotated[int, Query(ge=2000, le=2100)],
) -> OrganisationDue:
    bills = await repository.open_for_organisation(session, organisation, region_code, coverage_year)
    return OrganisationDue(
        organisation=organisation,
        region_code=region_code,
        coverage_year=coverage_year,
        open_bills=len(bills),
        amount_due=sum(b.amount_due_fen for b in bills),
    )


@router.get("/{bill_id}", summary="One bill", responses=error_responses(BillNotFound))
async def get_bill(bill_id: str, session: DbSession) -> BillOut:
    bill = await repository.get(session, bill_id)
    if bill is None:
        raise BillNotFound({"bill_id": bill_id})
    return BillOut.of(bill)
