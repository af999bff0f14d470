from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Query, Response, UploadFile

from registry.context import RegistryContext
from registry.policy.errors import PolicyNotFound
from registry.progress import report, service
from registry.progress.errors import ProgressBaselineInvalid, ProgressBaselineTooLarge
from registry.progress.schemas import BaselineOut, DailyPayments, ProgressReport
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.db import DbSession
from shared.errors import error_responses
from shared.fields import CoverageYearQuery, RegionCodeQuery
from shared.regions import REGION_CODE_PATTERN
from shared.tabular import XLSX, xlsx_response

router = APIRouter(prefix="/v1/progress", tags=["progress"])

RegionCode = Annotated[RegionCodeQuery, Query(description="Any region of the policy")]
AsOf = Annotated[date | None, Query(description="截止日期 (Beijing date); today when left out")]


@router.get(
    "",
    summary="Enrollment progress (参保进度) per district or township as of a day",
    description="This year's enrollees (paid by the end of `as_of` and not ended by then) per row of the "
    "policy's reference table, against registered population and against the target (the table's task "
    "counts, or last year's enrollees where it sets none), and the same for each subsidy category. "
    "Enrollments outside the table's rows get rows of their own; the total is the sum of the rows.",
    responses=error_responses(*AREA_ERRORS, PolicyNotFound),
    dependencies=[allow(Role.STAFF)],
)
async def progress(
    session: DbSession,
    access: CurrentAccess,
    registry: RegistryContext,
    region_code: RegionCode,
    coverage_year: CoverageYearQuery,
    as_of: AsOf = None,
) -> ProgressReport:
    access.require_region(region_code)
    return await service.progress(session, registry, region_code, coverage_year, as_of=as_of)


@router.get(
    "/report.xlsx",
    summary="The same report laid out as Hefei's attachment 2 (参保进度统计表)",
    response_class=Response,
    responses=error_responses(*AREA_ERRORS, PolicyNotFound, extra={200: {"content": {XLSX: {}}}}),
    dependencies=[allow(Role.STAFF)],
)
async def progress_xlsx(
    session: DbSession,
    access: CurrentAccess,
    registry: RegistryContext,
    region_code: RegionCode,
    coverage_year: CoverageYearQuery,
    as_of: AsOf = None,
) -> Response:
    access.require_region(region_code)
    found = await service.progress(session, registry, region_code, coverage_year, as_of=as_of)
    return xlsx_response(report.workbook(found), f"{found.policy_name}参保进度统计表-{found.as_of}.xlsx")


@router.get(
    "/daily-payments",
    summary="Enrollments paid per day since the window opened",
    responses=error_responses(*AREA_ERRORS, PolicyNotFound),
    dependencies=[allow(Role.STAFF)],
)
async def daily_payments(
    session: DbSession,
    access: CurrentAccess,
    registry: RegistryContext,
    region_code: RegionCode,
    coverage_year: CoverageYearQuery,
    as_of: AsOf = None,
) -> list[DailyPayments]:
    access.require_region(region_code)
    return await service.daily_payments(session, registry, region_code, coverage_year, as_of=as_of)


@router.get(
    "/baseline",
    summary="The reference figures the report uses (常住人口, 户籍人口, 上年度参保人数, 目标任务数)",
    responses=error_responses(*AREA_ERRORS, PolicyNotFound),
    dependencies=[allow(Role.STAFF)],
)
async def baseline(
    session: DbSession,
    access: CurrentAccess,
    registry: RegistryContext,
    region_code: RegionCode,
    coverage_year: CoverageYearQuery,
) -> BaselineOut:
    access.require_region(region_code)
    _, described = await service.baseline(session, registry.policies.find(region_code, coverage_year))
    return described


@router.put(
    "/baseline",
    summary="Replace the reference figures with an updated table (.csv or .xlsx)",
    description="Columns: a unit (`district`, `township`, 统筹区 or 乡镇), `region_code` for districts, "
    "and any of `resident_population`, `registered_population`, `enrolled_last_year` (or `enrolled_2022`), "
    "`target` (or `target_2023`), in people, or in 万人 with a `_10k` / `(万人)` suffix. A row without a "
    "region code is a township of the policy or 大学生. Any bad row refuses the whole table.",
    responses=error_responses(PolicyNotFound, ProgressBaselineInvalid, ProgressBaselineTooLarge),
    dependencies=[allow()],
)
async def replace_baseline(
    session: DbSession,
    access: CurrentAccess,
    registry: RegistryContext,
    file: UploadFile,
    region_code: Annotated[str, Form(pattern=REGION_CODE_PATTERN)],
    coverage_year: Annotated[int, Form(ge=2000, le=2100)],
    loaded_by: Annotated[str, Form(min_length=1, max_length=64)],
) -> BaselineOut:
    policy = registry.policies.find(region_code, coverage_year)
    return await service.replace_baseline(
        session, registry, policy, file.filename or "baseline.csv", file.file, loaded_by
    )
