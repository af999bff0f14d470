from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from collection import access as area
from collection.billing import repository, service
from collection.billing.errors import BillNotFound, TooManyLookups, TooManyWaiting, WaitNeedsOneEnrollment
from collection.billing.models import Bill
from collection.billing.schemas import BillList, BillOut, OrganisationDue
from collection.billing.watch import Watch
from collection.settings import CollectionSettings
from shared.auth import AREA_ERRORS, Access, CurrentAccess, Role, allow, authenticate_again
from shared.clock import AppClock
from shared.crosscheck import StandingFilter, StandingPage, add_repair_routes
from shared.db import DbSession, ReadSession
from shared.errors import error_responses
from shared.fields import CoverageYearQuery, RegionCodeQuery

router = APIRouter(prefix="/v1/bills", tags=["bills"])

MAX_WAIT_S = 30


@router.get(
    "",
    summary="Bills, optionally for given enrollments; or wait for an enrollment's bill (long-poll)",
    description="Repeat `enrollment_id` for several (a household's members, to pay them at once). A resident "
    "gets their own bills; naming someone else's enrollment is refused. With `wait_s` and one "
    "`enrollment_id`, a front-end that just enrolled someone need not ask again and again: the answer comes "
    "as soon as the enrollment has a bill (collection issues it when the registry's event arrives), or after "
    "`wait_s` seconds with no items. The same checks of who may see it apply, again after the wait (401 for "
    "a caller signed out, disabled or expired meanwhile). A process serves a bounded number of waiting "
    "requests: when all are taken, the oldest wait of a caller holding several is answered at once as it "
    "stands; when every caller holds one, 429 `too_many_waiting` with Retry-After.",
    responses=error_responses(TooManyWaiting, WaitNeedsOneEnrollment, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.TAX_OFFICER)],
)
async def list_bills(
    request: Request,
    session: ReadSession,
    access: CurrentAccess,
    watch: Watch,
    enrollment_id: Annotated[list[str] | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    wait_s: Annotated[
        int,
        Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for the enrollment's bill; 0: at once"),
    ] = 0,
) -> BillList:
    async def read(caller: Access) -> list[Bill]:
        if caller.is_resident and not enrollment_id:
            bills = await repository.for_person(session, caller.principal.id_number or "", limit)
        else:
            bills = await repository.list_bills(session, enrollment_id or [], limit)
        for bill in bills:
            area.bill(caller, bill)
        return bills

    async def read_again() -> list[Bill]:
        # After a wait the caller is who they are now (a token expired meanwhile: refused).
        return await read(await authenticate_again(request, access))

    if wait_s == 0:
        return BillList(items=[BillOut.of(b) for b in await read(access)])
    if enrollment_id is None or len(enrollment_id) != 1:
        raise WaitNeedsOneEnrollment({"enrollment_ids": len(enrollment_id or [])})
    bills = await service.wait_for_bills(
        session, watch, read_again, enrollment_id[0], wait_s=wait_s, caller=access.principal.subject
    )
    return BillList(items=[BillOut.of(b) for b in bills])


@router.get(
    "/lookup",
    summary="Find someone's bills to pay for them (代缴), by ID number and name together",
    description="Both must match; a lookup matching nothing returns no items and counts against the caller: "
    "after COLLECTION_LOOKUP_FAILURES_ALLOWED of them within COLLECTION_LOOKUP_FAILURE_WINDOW_S, lookups are "
    "refused with 429 and a Retry-After. ID numbers in the answer are masked.",
    responses=error_responses(TooManyLookups),
    dependencies=[allow(Role.RESIDENT, Role.TAX_OFFICER)],
)
async def lookup_bills(
    request: Request,
    session: DbSession,
    clock: AppClock,
    access: CurrentAccess,
    id_number: Annotated[str, Query(min_length=1, max_length=32)],
    name: Annotated[str, Query(min_length=1, max_length=64)],
) -> BillList:
    settings: CollectionSettings = request.app.state.settings
    found = await service.lookup(
        session,
        access.principal.subject,
        id_number,
        name,
        clock.now(),
        allowed_failures=settings.lookup_failures_allowed,
        window=timedelta(seconds=settings.lookup_failure_window_s),
    )
    for bill in found:
        access.touch(bill.id_number, f"bill:{bill.id}")
    return BillList(items=[BillOut.of(b) for b in found])


@router.get(
    "/organisation-due",
    summary="What a school owes for its students' open bills",
    description="A university pays for its batch as one payer (when the policy says so): this is the amount "
    "to pay with `organisation` in POST /v1/payments.",
    dependencies=[allow(Role.TAX_OFFICER)],
)
async def organisation_due(
    session: DbSession,
    organisation: Annotated[str, Query(min_length=1, max_length=64)],
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
) -> OrganisationDue:
    bills = await repository.open_for_organisation(session, organisation, region_code, coverage_year)
    return OrganisationDue(
        organisation=organisation,
        region_code=region_code,
        coverage_year=coverage_year,
        open_bills=len(bills),
        amount_due=sum(b.amount_due_fen for b in bills),
    )


@router.get(
    "/standings",
    summary="Where every bill of a region's coverage year stands, as collection holds it (核对)",
    description="Every status, by enrollment id; the cross-service check (`canbao check`) compares them with "
    "the registry's `GET /v1/enrollments/standings`.",
    dependencies=[allow(Role.TAX_OFFICER)],
)
async def list_standings(session: DbSession, query: StandingFilter) -> StandingPage:
    return await service.standings(session, query)


add_repair_routes(router, records="bills", changed=service.changes, of=service.standings_of)


@router.get(
    "/{bill_id}",
    summary="One bill",
    responses=error_responses(BillNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.TAX_OFFICER)],
)
async def get_bill(bill_id: str, session: DbSession, access: CurrentAccess) -> BillOut:
    bill = await repository.get(session, bill_id)
    if bill is None:
        raise BillNotFound({"bill_id": bill_id})
    area.bill(access, bill)
    return BillOut.of(bill)
