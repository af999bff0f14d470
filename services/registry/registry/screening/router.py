from typing import Annotated

from fastapi import APIRouter, Query, Response

from registry import access as registry_access
from registry.context import RegistryContext
from registry.policy.errors import PolicyNotFound
from registry.screening import report, repository, service
from registry.screening.errors import NotEnrolledYet, ScreeningCaseClosed, ScreeningCaseNotFound
from registry.screening.models import OPEN, FollowUpState
from registry.screening.schemas import (
    CaseDetail,
    CaseOut,
    CasePage,
    FollowUpSummary,
    FollowUpUpdate,
    ScreeningResult,
    ScreeningRun,
)
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.db import INT_MAX, DbSession, RowId
from shared.errors import error_responses
from shared.fields import CoverageYearQuery, RegionCodeQuery
from shared.tabular import XLSX, xlsx_response

router = APIRouter(tags=["screening"])

Township = Annotated[str | None, Query(min_length=1, max_length=32)]
Village = Annotated[str | None, Query(min_length=1, max_length=64)]
States = Annotated[
    list[FollowUpState] | None, Query(description="Any of these states (repeat the parameter)")
]


@router.post(
    "/v1/screenings",
    summary="Screen the region for people who have not enrolled (排查)",
    description="Compares the last two years' paid enrollees of the region and this year's household-"
    "registration population with this year's enrollees. Lists who has not paid (flags: aged 60 and over, "
    "students, enrolled but unpaid); leaves out people in employee insurance, enrolled elsewhere, "
    "deceased, or registered in another region this year. Running it again adds new people, closes the "
    "cases of people who since enrolled or need not, and keeps staff's follow-up.",
    responses=error_responses(PolicyNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def run_screening(
    body: ScreeningRun, session: DbSession, registry: RegistryContext, access: CurrentAccess
) -> ScreeningResult:
    access.require_region(body.region_code)
    return await service.screen(session, registry, body.region_code, body.coverage_year, body.run_by)


@router.get(
    "/v1/screening-cases",
    summary="The people screening listed, for community follow-up (ID and phone numbers masked)",
    responses=error_responses(PolicyNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def list_cases(
    session: DbSession,
    access: CurrentAccess,
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
    township: Township = None,
    village: Village = None,
    state: States = None,
    aged_60_plus: bool | None = None,
    student: bool | None = None,
    after: Annotated[
        int | None, Query(ge=0, le=INT_MAX, description="next_after of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> CasePage:
    access.require_region(region_code)
    cases = await repository.listing(
        session,
        region_code,
        coverage_year,
        township=township,
        village=village,
        states=state or [],
        aged_60_plus=aged_60_plus,
        student=student,
        after=after,
        limit=limit + 1,
    )
    page = cases[:limit]
    return CasePage(
        items=[CaseOut.of(c) for c in page], next_after=page[-1].id if len(cases) > limit else None
    )


@router.get(
    "/v1/screening-cases/summary",
    summary="Follow-up state per township (排查跟进情况)",
    responses=error_responses(PolicyNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def follow_up_summary(
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
) -> FollowUpSummary:
    access.require_region(region_code)
    return await service.summary(session, registry, region_code, coverage_year)


@router.get(
    "/v1/screening-cases/list.xlsx",
    summary="The open cases of a township (or village) as a door-to-door list (入户摸排名单)",
    response_class=Response,
    responses=error_responses(PolicyNotFound, *AREA_ERRORS, extra={200: {"content": {XLSX: {}}}}),
    dependencies=[allow(Role.STAFF)],
)
async def door_to_door_list(
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
    township: Township = None,
    village: Village = None,
) -> Response:
    access.require_region(region_code)
    policy = registry.policies.find(region_code, coverage_year)
    cases = await repository.listing(
        session,
        region_code,
        policy.coverage_year,
        township=township,
        village=village,
        states=sorted(OPEN),
        aged_60_plus=None,
        student=None,
        after=None,
        limit=None,
    )
    content = report.door_to_door(policy.name, township, cases)
    return xlsx_response(content, f"{policy.name}未参保人员入户摸排名单-{township or '全部'}.xlsx")


@router.get(
    "/v1/screening-cases/{case_id}",
    summary="One case with its follow-up history",
    responses=error_responses(ScreeningCaseNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def get_case(case_id: RowId, session: DbSession, access: CurrentAccess) -> CaseDetail:
    await registry_access.screening_case(session, access, case_id)
    return await service.detail(session, case_id)


@router.post(
    "/v1/screening-cases/{case_id}/follow-up",
    summary="Record a follow-up (提醒、入户、拒绝、迁出、外地参保、已参保)",
    responses=error_responses(ScreeningCaseNotFound, ScreeningCaseClosed, NotEnrolledYet, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def follow_up(
    case_id: RowId, body: FollowUpUpdate, session: DbSession, registry: RegistryContext, access: CurrentAccess
) -> CaseDetail:
    await registry_access.screening_case(session, access, case_id)
    return await service.follow_up(session, registry, case_id, body)
