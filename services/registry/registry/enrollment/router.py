from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from registry import access as area
from registry.context import RegistryContext, get_registry_of
from registry.enrollment import repository, service
from registry.enrollment.errors import (
    ENROLLMENT_ERRORS,
    CancellationNotAllowed,
    EnrollmentEnded,
    EnrollmentNotFound,
    TooManyWaiting,
)
from registry.enrollment.models import Enrollment, EnrollmentStatus
from registry.enrollment.schemas import CancellationCreate, EnrollmentCreate, EnrollmentOut
from registry.enrollment.watch import Watch
from shared.auth import AREA_ERRORS, Call, CurrentAccess, Role, allow, authenticate_again
from shared.crosscheck import StandingFilter, StandingPage, add_repair_routes
from shared.db import INT_MAX, DbSession, ReadSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/enrollments", tags=["enrollments"])

# A long-poll ends well within the usual proxy and client timeouts (60 s).
MAX_WAIT_S = 30


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a person for a coverage year (参保登记)",
    description="Priced by the region's policy for the year: the most generous subsidy category the person "
    "holds applies; after the window only the policy's late cases may enroll, with their evidence. "
    "Without `coverage_year`, the region's open campaign; a newborn whose parents may choose the year of "
    "birth or the next (Hefei) must name it. `notices` says what was done with a part of the request not "
    "used as given.",
    responses=error_responses(*ENROLLMENT_ERRORS, *AREA_ERRORS),
    response_model=EnrollmentOut,
)
async def create_enrollment(
    body: EnrollmentCreate, call: Annotated[Call, allow(Role.RESIDENT, Role.STAFF)], request: Request
) -> Response:
    # The hottest write: its caller, session and context come without a dependency each (shared.auth.Call),
    # and its answer as the bytes FastAPI would write for the model, without validating the model again.
    access, registry = call.access, get_registry_of(request.app)
    area.new_record(access, body.id_number, body.region_code)
    claimant = area.claimant(access, region_code=body.region_code)
    audit = request.app.state.audit_trail.claim(access)
    enrollment = await service.enroll_one(call.session, registry, body, claimant=claimant, audit=audit)
    out = EnrollmentOut.of(enrollment, service.notices(registry, body, enrollment))
    return Response(_JSON(out), status.HTTP_201_CREATED, media_type="application/json")


# FastAPI's own serialization of a response model (a TypeAdapter's dump_json), as bytes.
_JSON = TypeAdapter(EnrollmentOut).dump_json


@router.post(
    "/{enrollment_id}/cancellation",
    summary="End an enrollment: a death (自然减员) or an erroneous enrollment",
    description="Unpaid: cancelled now, and collection cancels the bill. Paid: collection refunds it in full "
    "where the policy refunds the reason, and the enrollment is `cancelled` when the refund comes back "
    "(until then it stays `active`); otherwise refused.",
    responses=error_responses(EnrollmentNotFound, EnrollmentEnded, CancellationNotAllowed, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def cancel_enrollment(
    enrollment_id: str,
    body: CancellationCreate,
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
) -> EnrollmentOut:
    await _enrollment(session, access, enrollment_id)
    return EnrollmentOut.of(await service.cancel(session, registry, enrollment_id, body))


@router.get(
    "/standings",
    summary="Where every enrollment of a region's coverage year stands, as the registry holds it (核对)",
    description="Every status, by enrollment id; the cross-service check (`canbao check`) compares them with "
    "collection's `GET /v1/bills/standings`.",
    responses=error_responses(*AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def list_standings(session: DbSession, query: StandingFilter, access: CurrentAccess) -> StandingPage:
    access.require_region(query.region_code)
    return await service.standings(session, query)


add_repair_routes(router, records="enrollments", changed=service.changes, of=service.standings_of)


@router.get(
    "/{enrollment_id}",
    summary="An enrollment's current state, at once or once it changes (long-poll)",
    description="With `wait_s`, a front-end waiting for the payment need not ask again and again: the "
    "answer comes as soon as the enrollment's status or price version differs from `known_status` and "
    "`known_price_version` (those not given: as the request found it), e.g. the moment the payment's "
    "confirmation is applied, or after `wait_s` seconds with the enrollment as it stands (unchanged). The "
    "The same checks of who may see it apply, again after the wait (401 for a caller "
    "signed out, disabled or expired meanwhile). A process serves a bounded number of waiting requests: when "
    "all are taken, the oldest wait of a caller holding several is answered at once as it stands; when every "
    "caller holds one, 429 `too_many_waiting` with Retry-After.",
    responses=error_responses(EnrollmentNotFound, TooManyWaiting, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.STAFF)],
)
async def get_enrollment(
    request: Request,
    enrollment_id: str,
    session: ReadSession,
    access: CurrentAccess,
    watch: Watch,
    wait_s: Annotated[
        int, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for a change; 0: answer at once")
    ] = 0,
    known_status: Annotated[EnrollmentStatus | None, Query(description="The status the caller has")] = None,
    known_price_version: Annotated[
        int | None, Query(ge=1, le=INT_MAX, description="The price version the caller has")
    ] = None,
) -> EnrollmentOut:
    if wait_s == 0:
        return EnrollmentOut.of(await _enrollment(session, access, enrollment_id))

    async def read_again() -> Enrollment:
        # After a wait the caller is who they are now (signed out, disabled, token expired: refused).
        return await _enrollment(session, await authenticate_again(request, access), enrollment_id)

    enrollment = await service.wait_for_change(
        session,
        watch,
        read_again,
        service.Known(known_status, known_price_version),
        wait_s=wait_s,
        caller=access.principal.subject,
    )
    return EnrollmentOut.of(enrollment)


async def _enrollment(session: AsyncSession, access: CurrentAccess, enrollment_id: str) -> Enrollment:
    enrollment = await repository.get(session, enrollment_id)
    if enrollment is None:
        raise EnrollmentNotFound({"enrollment_id": enrollment_id})
    await area.enrollment(session, access, enrollment)
    return enrollment
