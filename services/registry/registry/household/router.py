from fastapi import APIRouter, status

from registry import access as area
from registry.context import RegistryContext
from registry.household import service
from registry.household.errors import (
    ENROLL_MEMBERS_ERRORS,
    AlreadyInHousehold,
    DuplicateMember,
    HouseholdNeedsOneHead,
    HouseholdNotFound,
    NoInvitation,
)
from registry.household.models import Household
from registry.household.schemas import (
    HouseholdCreate,
    HouseholdEnrollmentCreate,
    HouseholdEnrollments,
    HouseholdOut,
)
from registry.people.errors import IDENTITY_ERRORS
from shared.auth import AREA_ERRORS, Access, CurrentAccess, Role, allow
from shared.db import DbSession
from shared.errors import error_responses
from shared.fields import CoverageYearQuery

router = APIRouter(prefix="/v1/households", tags=["households"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a household (户) and its members",
    description="Staff register a household they verified. A resident registers a household they are a "
    "member of: each other member is `invited` (their records neither shown nor changed) until they accept "
    "from their own account (`POST /v1/households/{id}/acceptance`), unless public security's "
    "household-registration data (户籍人口, with 户号) puts both in one 户. The answer is the same "
    "whether or not a named person is known to the registry, under whatever name.",
    responses=error_responses(
        *IDENTITY_ERRORS, HouseholdNeedsOneHead, AlreadyInHousehold, DuplicateMember, *AREA_ERRORS
    ),
    dependencies=[allow(Role.RESIDENT, Role.STAFF)],
)
async def create_household(
    body: HouseholdCreate, session: DbSession, registry: RegistryContext, access: CurrentAccess
) -> HouseholdOut:
    await area.new_household(session, access, [m.id_number.strip().upper() for m in body.members])
    return HouseholdOut.of(await service.register(session, registry, body, claimant=area.claimant(access)))


@router.get(
    "/{household_id}",
    summary="A household and its members",
    responses=error_responses(HouseholdNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.STAFF)],
)
async def get_household(household_id: str, session: DbSession, access: CurrentAccess) -> HouseholdOut:
    return HouseholdOut.of(await _household(session, access, household_id, established=False))


async def _household(
    session: DbSession, access: Access, household_id: str, *, established: bool = True
) -> Household:
    household = await service.get(session, household_id)
    await area.household(session, access, household, established=established)
    return household


@router.post(
    "/{household_id}/acceptance",
    summary="Accept an invitation to a household, from one's own account",
    description="From then on the household's members may enroll, see and pay for each other.",
    responses=error_responses(HouseholdNotFound, NoInvitation, AlreadyInHousehold, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT)],
)
async def accept_invitation(
    household_id: str, session: DbSession, registry: RegistryContext, access: CurrentAccess
) -> HouseholdOut:
    await _household(session, access, household_id, established=False)
    own = access.principal.id_number or ""
    return HouseholdOut.of(await service.accept(session, registry, household_id, own))


@router.post(
    "/{household_id}/refusal",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Decline an invitation to a household",
    responses=error_responses(HouseholdNotFound, NoInvitation, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT)],
)
async def refuse_invitation(household_id: str, session: DbSession, access: CurrentAccess) -> None:
    await _household(session, access, household_id, established=False)
    await service.refuse(session, household_id, access.principal.id_number or "")


@router.post(
    "/{household_id}/enrollments",
    status_code=status.HTTP_201_CREATED,
    summary="Enroll several members at once (为家人参保)",
    description="All listed members are enrolled, or none: a refusal names the member in `details.member`.",
    responses=error_responses(*ENROLL_MEMBERS_ERRORS, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.STAFF)],
)
async def enroll_members(
    household_id: str,
    body: HouseholdEnrollmentCreate,
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
) -> HouseholdEnrollments:
    await _household(session, access, household_id)
    if not access.is_resident:
        access.require_region(body.region_code)
    return await service.enroll_members(session, registry, household_id, body)


@router.get(
    "/{household_id}/enrollments",
    summary="The members' enrollments for a year, with one total to pay",
    responses=error_responses(HouseholdNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.RESIDENT, Role.STAFF)],
)
async def household_enrollments(
    household_id: str,
    session: DbSession,
    access: CurrentAccess,
    coverage_year: CoverageYearQuery,
) -> HouseholdEnrollments:
    await _household(session, access, household_id)
    return await service.summary(session, household_id, coverage_year)
