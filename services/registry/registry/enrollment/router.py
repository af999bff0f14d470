from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from registry.enrollment import repository, service
from registry.enrollment.errors import AlreadyEnrolled, EnrollmentNotFound
from registry.enrollment.schemas import EnrollmentCreate, EnrollmentOut
from registry.people.errors import (
    IdNumberBadBirthDate,
    IdNumberBadChecksum,
    IdNumberBadFormat,
    IdNumberBadRegion,
    PersonNameMismatch,
)
from registry.policy.book import PolicyBook
from registry.policy.errors import PolicyNotFound
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/enrollments", tags=["enrollments"])


def get_policies(request: Request) -> PolicyBook:
    policies: PolicyBook = request.app.state.policies
    return policies


Policies = Annotated[PolicyBook, Depends(get_policies)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a person for a coverage year (参保登记)",
    responses=error_responses(
        IdNumberBadFormat,
        IdNumberBadChecksum,
        IdNumberBadBirthDate,
        IdNumberBadRegion,
        PolicyNotFound,
        AlreadyEnrolled,
        PersonNameMismatch,
    ),
)
async def create_enrollment(body: EnrollmentCreate, session: DbSession, policies: Policies) -> EnrollmentOut:
    return EnrollmentOut.of(await service.enroll(session, policies, body))


@router.get(
    "/{enrollment_id}", summary="An enrollment's current state", responses=error_responses(EnrollmentNotFound)
)
async def get_enrollment(enrollment_id: str, session: DbSession) -> EnrollmentOut:
    enrollment = await repository.get(session, enrollment_id)
    if enrollment is None:
        raise EnrollmentNotFound({"enrollment_id": enrollment_id})
    return EnrollmentOut.of(enrollment)
