from fastapi import APIRouter, status

from registry import access as area
from registry.context import RegistryContext
from registry.enrollment import repository, service
from registry.enrollment.errors import (
    ENROLLMENT_ERRORS,
    CancellationNotAllowed,
    EnrollmentEnded,
    EnrollmentNotFound,
)
from registry.enrollment.models import Enrollment
from registry.enrollment.schemas import CancellationCreate, EnrollmentCreate, EnrollmentOut
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.crosscheck import StandingFilter, StandingPage, add_repair_routes
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/enrollments", tags=["enrollments"])


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
    dependencies=[allow(Role.RESIDENT, Role.STAFF)],
)
async def create_enrollment(
    body: EnrollmentCreate, session: DbSession, registry: RegistryContext, access: CurrentAccess
) -> EnrollmentOut:
    area.new_record(access, body.id_number, body.region_code)
    claimant = area.claimant(access, region_code=body.region_code)
    enrollment = await service.enroll(session, registry, body, claimant=claimant)
    return EnrollmentOut.of(enrollment, service.notices(registry, body, enrollment))


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
    summary="An enrollment's current state",
    responses=error_responses(EnrollmentNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.STAFF)],
)
async def get_enrollment(enrollment_id: str, session: DbSession, access: CurrentAccess) -> EnrollmentOut:
    return EnrollmentOut.of(await _enrollment(session, access, enrollment_id))


async def _enrollment(session: DbSession, access: CurrentAccess, enrollment_id: str) -> Enrollment:
    enrollment = await repository.get(session, enrollment_id)
    if enrollment is None:
        raise EnrollmentNotFound({"enrollment_id": enrollment_id})
    await area.enrollment(session, access, enrollment)
    return enrollment
