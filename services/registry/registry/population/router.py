from fastapi import APIRouter

from registry.context import RegistryContext
from registry.policy.errors import PolicyNotFound
from registry.population import service
from registry.population.schemas import PopulationSummary
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.db import DbSession
from shared.errors import error_responses
from shared.fields import CoverageYearQuery, RegionCodeQuery

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
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
) -> PopulationSummary:
    access.require_region(region_code)
    return await service.summary(session, registry, region_code, coverage_year)
