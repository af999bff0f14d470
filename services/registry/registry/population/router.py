from typing import Annotated

from fastapi import APIRouter, Query

from registry.enrollment.dependencies import RegistryContext
from registry.policy.errors import PolicyNotFound
from registry.population import service
from registry.population.schemas import PopulationSummary
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.db import DbSession
from shared.errors import error_responses
from shared.regions import REGION_CODE_PATTERN

router = APIRouter(prefix="/v1/population", tags=["population"])


@router.get(
    "/summary",
    summary="Registered population (户籍人口) per township",
    description="Counted from the household-registration data loaded as rosters of kind "
    "`household_registration`; every township of the policy listed, the total computed from the rows.",
    responses=error_responses(PolicyNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def population_summary(
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: Annotated[str, Query(pattern=REGION_CODE_PATTERN)],
    coverage_year: Annotated[int, Query(ge=2000, le=2100)],
) -> PopulationSummary:
    access.require_region(region_code)
    return await service.summary(session, registry, region_code, coverage_year)
