from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse
from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import RegistryContext
from registry.policy.errors import PolicyNotFound, UnknownSubsidyCategory
from registry.roster import repository, service
from registry.roster.errors import (
    RosterCategoryRequired,
    RosterFileInvalid,
    RosterHasHeldRows,
    RosterNotReviewable,
    RosterRowNotFound,
    RosterRowNotHeld,
    RosterTooLarge,
    RosterUploadNotFound,
)
from registry.roster.models import RosterKind, RosterRow, RowStatus
from registry.roster.report import write_report
from registry.roster.schemas import Decision, Review, RowOut, RowPage, UploadOut
from registry.settings import RegistrySettings
from shared.auth import AREA_ERRORS, Access, CurrentAccess, Role, allow
from shared.db import INT_MAX, DbSession, RowId
from shared.errors import error_responses
from shared.regions import REGION_CODE_PATTERN
from shared.tabular import XLSX, xlsx_download

router = APIRouter(prefix="/v1/rosters", tags=["rosters"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a department roster (花名册): .xlsx or .csv (UTF-8 or GBK/GB18030)",
    description="Validated in the background: poll the upload until `validated`, read the report, then "
    "approve or reject. Sending the same file again for the same purpose returns the first upload (200) and "
    "changes nothing. A department's access is judged by the categories in the file (the `category` field, a "
    "人员类别：… title line, or the 人员类别 column): all must be its own, one per upload.",
    responses=error_responses(
        *AREA_ERRORS,
        RosterFileInvalid,
        RosterCategoryRequired,
        RosterTooLarge,
        PolicyNotFound,
        UnknownSubsidyCategory,
        extra={200: {"model": UploadOut, "description": "The same file was uploaded before"}},
    ),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def upload_roster(
    request: Request,
    response: Response,
    tasks: BackgroundTasks,
    session: DbSession,
    access: CurrentAccess,
    registry: RegistryContext,
    file: UploadFile,
    kind: Annotated[RosterKind, Form()],
    region_code: Annotated[str, Form(pattern=REGION_CODE_PATTERN)],
    coverage_year: Annotated[int, Form(ge=2000, le=2100)],
    department: Annotated[str, Form(min_length=1, max_length=64)],
    uploaded_by: Annotated[str, Form(min_length=1, max_length=64)],
    category: Annotated[str | None, Form(max_length=64)] = None,
) -> UploadOut:
    access.require_region(region_code)
    settings: RegistrySettings = request.app.state.settings
    upload, created = await service.receive(
        session,
        registry,
        settings.roster_dir,
        service.UploadRequest(
            kind=kind,
            region_code=region_code,
            coverage_year=coverage_year,
            category=category or None,
            department=department,
            uploaded_by=uploaded_by,
            filename=file.filename or "roster",
            sender_categories=access.principal.categories if access.role is Role.DEPARTMENT else None,
        ),
        file.file,
        settings.roster_max_bytes,
    )
    if created:
        tasks.add_task(request.app.state.roster_worker.wake)
    else:
        response.status_code = status.HTTP_200_OK
    return UploadOut.of(upload)


@router.get(
    "/{upload_id}",
    summary="An upload's state and counts",
    responses=error_responses(*AREA_ERRORS, RosterUploadNotFound),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def get_upload(upload_id: str, session: DbSession, access: CurrentAccess) -> UploadOut:
    await upload_in_area(session, access, upload_id)
    return UploadOut.of(await service.get(session, upload_id))


@router.get(
    "/{upload_id}/rows",
    summary="The per-row report",
    responses=error_responses(*AREA_ERRORS, RosterUploadNotFound),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def list_rows(
    upload_id: str,
    session: DbSession,
    access: CurrentAccess,
    row_status: Annotated[RowStatus | None, Query(alias="status")] = None,
    after_row: Annotated[int, Query(ge=0, le=INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> RowPage:
    await upload_in_area(session, access, upload_id)
    await service.get(session, upload_id)
    rows = await repository.rows(session, upload_id, row_status, after_row, limit)
    return RowPage(
        items=[RowOut.of(r) for r in rows], next_after_row=rows[-1].row_no if len(rows) == limit else None
    )


@router.get(
    "/{upload_id}/report.xlsx",
    summary="The per-row report as a spreadsheet (校验结果)",
    response_class=FileResponse,
    responses=error_responses(*AREA_ERRORS, RosterUploadNotFound, extra={200: {"content": {XLSX: {}}}}),
    dependencies=[allow(Role.DEPARTMENT, Role.STAFF)],
)
async def download_report(
    upload_id: str, session: DbSession, access: CurrentAccess, tasks: BackgroundTasks
) -> FileResponse:
    await upload_in_area(session, access, upload_id)
    upload = await service.get(session, upload_id)
    return await xlsx_download(
        lambda target: write_report(upload, _all_rows(session, upload_id), target),
        f"{Path(upload.filename).stem}-校验结果.xlsx",
        tasks,
    )


@router.post(
    "/{upload_id}/rows/{row_no}/decision",
    summary="Decide on a held row (a suspected duplicate across sources)",
    responses=error_responses(*AREA_ERRORS, RosterUploadNotFound, RosterRowNotFound, RosterRowNotHeld),
    dependencies=[allow(Role.STAFF)],
)
async def decide_row(
    upload_id: str, row_no: RowId, body: Decision, session: DbSession, access: CurrentAccess
) -> RowOut:
    await upload_in_area(session, access, upload_id)
    row = await service.decide_held_row(
        session, upload_id, row_no, accept=body.accept, by=body.decided_by, note=body.note
    )
    return RowOut.of(row)


@router.post(
    "/{upload_id}/approval",
    summary="Approve a validated upload: its accepted rows are applied (医保部门审核通过)",
    responses=error_responses(*AREA_ERRORS, RosterUploadNotFound, RosterNotReviewable, RosterHasHeldRows),
    dependencies=[allow(Role.STAFF)],
)
async def approve_upload(
    upload_id: str,
    body: Review,
    request: Request,
    tasks: BackgroundTasks,
    session: DbSession,
    access: CurrentAccess,
    registry: RegistryContext,
) -> UploadOut:
    await upload_in_area(session, access, upload_id)
    upload = await service.review(
        session, registry, upload_id, by=body.reviewed_by, approve=True, note=body.note
    )
    tasks.add_task(request.app.state.roster_worker.wake)  # after the commit, which precedes the response
    return UploadOut.of(upload)


@router.post(
    "/{upload_id}/rejection",
    summary="Reject a validated upload: nothing of it is applied",
    responses=error_responses(*AREA_ERRORS, RosterUploadNotFound, RosterNotReviewable),
    dependencies=[allow(Role.STAFF)],
)
async def reject_upload(
    upload_id: str, body: Review, session: DbSession, access: CurrentAccess, registry: RegistryContext
) -> UploadOut:
    await upload_in_area(session, access, upload_id)
    return UploadOut.of(
        await service.review(session, registry, upload_id, by=body.reviewed_by, approve=False, note=body.note)
    )


async def _all_rows(session: AsyncSession, upload_id: str) -> AsyncIterator[RosterRow]:
    after = 0
    while page := await repository.rows(session, upload_id, None, after, 1000):
        for row in page:
            yield row
        after = page[-1].row_no


def _in_area(access: Access, region_code: str, category: str) -> None:
    """A department sends rosters of its own categories (or kinds, e.g. `student`); staff of their regions."""
    access.require_region(region_code)
    access.require_category(category)


async def upload_in_area(session: AsyncSession, access: Access, upload_id: str) -> None:
    upload = await repository.get(session, upload_id)
    if upload is not None:
        _in_area(access, upload.region_code, upload.category_code or upload.kind.value)
        access.touch(None, f"roster:{upload.id}")
