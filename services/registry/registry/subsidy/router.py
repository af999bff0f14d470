from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from registry.context import Registry, RegistryContext
from registry.people import repository as people_repository
from registry.people import service as people
from registry.people.errors import IDENTITY_ERRORS, PersonNameMismatch, PersonNotFound
from registry.people.models import DocumentType
from registry.policy.errors import PolicyNotFound, UnknownSubsidyCategory, UnknownTownship, UnknownVillage
from registry.subsidy import repository, service
from registry.subsidy.errors import (
    SubsidyAlreadyAssigned,
    SubsidyAssignmentAlreadyRemoved,
    SubsidyAssignmentNotFound,
)
from registry.subsidy.models import SubsidyAssignment
from registry.subsidy.report import mobilisation_workbook, roster_workbook, summary_workbook
from registry.subsidy.schemas import (
    AdjustmentResult,
    AdjustmentRun,
    AssignmentCreate,
    AssignmentList,
    AssignmentOut,
    AssignmentRemove,
    MobilisationList,
    RosterLayout,
    TownshipSummary,
)
from shared.auth import AREA_ERRORS, Access, CurrentAccess, Role, allow
from shared.db import DbSession
from shared.errors import error_responses
from shared.fields import CoverageYearQuery, RegionCodeQuery
from shared.tabular import XLSX, xlsx_response

router = APIRouter(prefix="/v1/subsidy-assignments", tags=["subsidies"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Give a person a subsidy category for a year (资助参保认定)",
    description="Reprices the person's unpaid enrollment for the year (the most generous category "
    "applies) and tells collection; a paid enrollment keeps its price.",
    responses=error_responses(
        *IDENTITY_ERRORS,
        PolicyNotFound,
        UnknownSubsidyCategory,
        UnknownTownship,
        UnknownVillage,
        SubsidyAlreadyAssigned,
        PersonNameMismatch,
        *AREA_ERRORS,
    ),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def assign_category(
    body: AssignmentCreate, session: DbSession, registry: RegistryContext, access: CurrentAccess
) -> AssignmentOut:
    code = _category_in_area(access, registry, body.region_code, body.coverage_year, body.category)
    access.touch(body.person.id_number.strip().upper(), "subsidy-assignment")
    request = body.model_copy(update={"category": code})
    assignment, outcome = await service.assign(session, registry, request, within=access.regions_filter())
    return AssignmentOut.of(assignment, outcome, named_as=body.category)


@router.post(
    "/{assignment_id}/removal",
    summary="Remove a subsidy category (kept as history)",
    responses=error_responses(SubsidyAssignmentNotFound, SubsidyAssignmentAlreadyRemoved, *AREA_ERRORS),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def remove_category(
    assignment_id: str,
    body: AssignmentRemove,
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
) -> AssignmentOut:
    found = await repository.get(session, assignment_id)
    if found is not None:
        _in_area(access, found.region_code, found.category_code)
        person = await people_repository.get(session, found.person_id)
        access.touch(person.document_number if person else None, f"subsidy-assignment:{found.id}")
    assignment, outcome = await service.remove(
        session, registry, assignment_id, body.removed_by, body.reason, within=access.regions_filter()
    )
    return AssignmentOut.of(assignment, outcome)


@router.get(
    "/summary",
    summary="People of a category enrolled, per township (资助参保人员汇总表)",
    responses=error_responses(PolicyNotFound, UnknownSubsidyCategory, *AREA_ERRORS),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def township_summary(
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
    category: Annotated[str, Query(min_length=1, max_length=64)],
) -> TownshipSummary:
    category = _category_in_area(access, registry, region_code, coverage_year, category)
    return await service.township_summary(session, registry, region_code, coverage_year, category)


@router.get(
    "/summary.xlsx",
    summary="The same summary laid out as attachment 5",
    response_class=Response,
    responses=error_responses(
        PolicyNotFound, UnknownSubsidyCategory, *AREA_ERRORS, extra={200: {"content": {XLSX: {}}}}
    ),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def township_summaryxlsx_response(
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
    category: Annotated[str, Query(min_length=1, max_length=64)],
) -> Response:
    category = _category_in_area(access, registry, region_code, coverage_year, category)
    summary = await service.township_summary(session, registry, region_code, coverage_year, category)
    policy = registry.policies.find(region_code, coverage_year)
    return xlsx_response(
        summary_workbook(summary, policy.name),
        f"{policy.name}资助参保人员汇总表-{summary.category_name}.xlsx",
    )


@router.get(
    "/roster.xlsx",
    summary="The people of a category as a roster in the attachments' layouts (附件4, 6, 7)",
    description="`main`: who qualified by the cut-off (the identification date, or the main roster's due "
    "date); `additions`: who qualified after it, with the reason and date; `reductions`: who was removed, "
    "with the reason. The file uploads back as a roster as it is.",
    response_class=Response,
    responses=error_responses(
        PolicyNotFound, UnknownSubsidyCategory, *AREA_ERRORS, extra={200: {"content": {XLSX: {}}}}
    ),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def rosterxlsx_response(
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
    category: Annotated[str, Query(min_length=1, max_length=64)],
    layout: RosterLayout = RosterLayout.MAIN,
) -> Response:
    category = _category_in_area(access, registry, region_code, coverage_year, category)
    policy, found, entries = await service.roster(
        session, registry, region_code, coverage_year, category, layout=layout
    )
    content = roster_workbook(layout, policy.name, found.label, entries, registry.clock.today())
    return xlsx_response(content, f"{policy.name}-{found.name}-{layout.value}.xlsx")


@router.post(
    "/monthly-adjustment",
    summary="Monthly adjustment run (动态调整): enroll newly qualified full-subsidy people, list the others",
    description="Everyone holding a category for the region and year who is not enrolled: in the window "
    "all are enrolled at their share; after it, people with a full subsidy are enrolled as the policy's late "
    "case and people with a partial subsidy are listed for their township (GET …/mobilisation). Running it "
    "again enrolls nobody twice.",
    responses=error_responses(PolicyNotFound, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def monthly_adjustment(
    body: AdjustmentRun, session: DbSession, registry: RegistryContext, access: CurrentAccess
) -> AdjustmentResult:
    access.require_region(body.region_code)
    return await service.monthly_adjustment(session, registry, body.region_code, body.coverage_year)


@router.get(
    "/mobilisation",
    summary="People with a partial subsidy who have not enrolled, by township (动员名单)",
    responses=error_responses(PolicyNotFound, UnknownTownship, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def mobilisation(
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
    township: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
) -> MobilisationList:
    access.require_region(region_code)
    return await service.mobilisation_list(session, registry, region_code, coverage_year, township=township)


@router.get(
    "/mobilisation.xlsx",
    summary="The same list as a spreadsheet for the township",
    response_class=Response,
    responses=error_responses(
        PolicyNotFound, UnknownTownship, *AREA_ERRORS, extra={200: {"content": {XLSX: {}}}}
    ),
    dependencies=[allow(Role.STAFF)],
)
async def mobilisationxlsx_response(
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
    region_code: RegionCodeQuery,
    coverage_year: CoverageYearQuery,
    township: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
) -> Response:
    access.require_region(region_code)
    listing = await service.mobilisation_list(
        session, registry, region_code, coverage_year, township=township
    )
    policy = registry.policies.find(region_code, coverage_year)
    return xlsx_response(
        mobilisation_workbook(listing, policy.name), f"{policy.name}动员名单-{township or '全部'}.xlsx"
    )


@router.get(
    "",
    summary="A person's subsidy categories, with their history",
    description="The person is named by document number and name together, so numbers alone reveal nothing.",
    responses=error_responses(PersonNotFound),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def list_categories(
    session: DbSession,
    access: CurrentAccess,
    id_number: Annotated[str, Query(min_length=1, max_length=32)],
    name: Annotated[str, Query(min_length=1, max_length=64)],
    document_type: DocumentType = DocumentType.RESIDENT_ID,
    coverage_year: CoverageYearQuery | None = None,
) -> AssignmentList:
    person = await people.find_known(session, document_type, id_number, name)
    assignments = await repository.for_person(session, person.id, coverage_year=coverage_year)
    access.touch(person.document_number, "subsidy-assignments")
    return AssignmentList(items=[AssignmentOut.of(a) for a in assignments if _within(access, a)])


def _category_in_area(
    access: Access, registry: Registry, region_code: str, coverage_year: int, category: str
) -> str:
    """The code of the category a request names (by code, document name, alias or included group), once the
    caller is known to act for the region and, a department, for that category."""
    access.require_region(region_code)
    policy = registry.policies.find(region_code, coverage_year)
    code = service.resolve_category(policy, category).code
    access.require_category(code)
    return code


def _in_area(access: Access, region_code: str, category: str | None) -> None:
    access.require_region(region_code)
    access.require_category(category)


def _within(access: Access, assignment: SubsidyAssignment) -> bool:
    """Whether a listed assignment is one the caller may see (their regions; a department's categories)."""
    regions = access.regions_filter()
    if regions is not None and assignment.region_code not in regions:
        return False
    return access.role is not Role.DEPARTMENT or assignment.category_code in access.principal.categories
