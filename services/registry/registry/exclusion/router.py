from fastapi import APIRouter, status

from registry.exclusion import service
from registry.exclusion.errors import ExclusionAlreadyRecorded, ExclusionNotFound
from registry.exclusion.schemas import ExclusionCreate, ExclusionOut, ExclusionRemove
from registry.people.errors import IDENTITY_ERRORS
from registry.people.service import identify
from shared.auth import allow
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import error_responses

# Exclusions come from other systems' data (employee insurance, other provinces) and carry no region:
# recorded by administrators, the data exchange's accounts.
router = APIRouter(prefix="/v1/exclusions", tags=["exclusions"], dependencies=[allow()])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Record that a person may not enroll for a year (职工医保 / 异地参保)",
    responses=error_responses(*IDENTITY_ERRORS, ExclusionAlreadyRecorded),
)
async def record_exclusion(body: ExclusionCreate, session: DbSession, clock: AppClock) -> ExclusionOut:
    identity = identify(body.person, clock.today())
    exclusion = await service.record(
        session, clock, identity, body.coverage_year, body.kind, body.source, body.recorded_by
    )
    return ExclusionOut.of(exclusion)


@router.post(
    "/{exclusion_id}/removal",
    summary="Lift an exclusion (kept as history)",
    responses=error_responses(ExclusionNotFound),
)
async def remove_exclusion(
    exclusion_id: str, body: ExclusionRemove, session: DbSession, clock: AppClock
) -> ExclusionOut:
    return ExclusionOut.of(await service.remove(session, clock, exclusion_id, body.removed_by))
