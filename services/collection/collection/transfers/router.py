from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from collection.idempotency.service import IdempotencyKey, IdempotencyKeyRequired, IdempotencyKeyReused
from collection.transfers import service
from collection.transfers.errors import NothingOwedByFunder, TransferReferenceUsed
from collection.transfers.schemas import FunderStatement, TransferCreate, TransferOut
from shared.auth import Role, allow
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import error_responses
from shared.fields import CoverageYearQuery, RegionCodeQuery

router = APIRouter(
    prefix="/v1/subsidy-transfers", tags=["subsidy transfers"], dependencies=[allow(Role.TAX_OFFICER)]
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Record a department's subsidy transfer (资助资金拨付)",
    description="Matched against what the funder owes for the region and year: `result` is `exact`, "
    "`underpaid` or `overpaid`, with `outstanding_after`. Requires an Idempotency-Key; a transfer "
    "reference is recorded once per funder.",
    responses=error_responses(
        IdempotencyKeyRequired, IdempotencyKeyReused, TransferReferenceUsed, NothingOwedByFunder
    ),
)
async def record_transfer(
    body: TransferCreate, key: IdempotencyKey, session: DbSession, clock: AppClock, response: Response
) -> TransferOut:
    result, replayed = await service.record(session, clock, body, key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result


@router.get(
    "/statement",
    summary="What a funder owes, has transferred and still owes, for a region and year",
)
async def funder_statement(
    session: DbSession,
    funder: Annotated[str, Query(min_length=1, max_length=64)],
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
) -> FunderStatement:
    return await service.statement(session, funder, region_code, coverage_year)
