from typing import Annotated

from fastapi import APIRouter, Query, status

from registry.enrollment.dependencies import RegistryContext
from registry.enrollment.router import ENROLLMENT_ERRORS
from registry.household import service
from registry.household.errors import (
    AlreadyInHousehold,
    DuplicateMember,
    HouseholdNeedsOneHead,
    HouseholdNotFound,
    NotAHouseholdMember,
)
from registry.household.schemas import (
    HouseholdCreate,
    HouseholdEnrollmentCreate,
    HouseholdEnrollments,
    HouseholdOut,
)
from registry.people.errors import IDENTITY_ERRORS
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/households", tags=["households"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a household (户) and its members",
    responses=error_responses(*IDENTITY_ERRORS, HouseholdNeedsOneHead, AlreadyInHousehold, DuplicateMember),
)
async def create_household(
    body: HouseholdCreate, session: DbSession, registry: RegistryContext
) -> HouseholdOut:
    return HouseholdOut.of(await service.register(session, registry, body))


@router.get(
    "/{household_id}", summary="A household and its members", responses=error_responses(HouseholdNotFound)
)
async def get_household(household_id: str, session: DbSession) -> HouseholdOut:
    return HouseholdOut.of(await service.get(session, household_id))


@router.post(
    "/{household_id}/enrollments",
    status_code=status.HTTP_201_CREATED,
    summary="Enroll several members at once (为家人参保)",
    description="All listed members are enrolled, or none: a refusal names the member in `details.member`.",
    responses=error_responses(*ENROLLMENT_ERRORS, HouseholdNotFound, NotAHouseholdMember, DuplicateMember),
)
async def enroll_members(
    household_id: str, body: HouseholdEnrollmentCreate, session: DbSession, registry: RegistryContext
) -> HouseholdEnrollments:
    return await service.enroll_members(session, registry, household_id, body)


@router.get(
    "/{household_id}/enrollments",
    summary="The members' enrollments for a year, with one total to pay",
    responses=error_responses(HouseholdNotFound),
)
async def household_enrollments(
    household_id: str, session: DbSession, coverage_year: Annotated[int, Query(ge=2000, le=2100)]
) -> HouseholdEnrollments:
    return await service.summary(session, household_id, coverage_year)
