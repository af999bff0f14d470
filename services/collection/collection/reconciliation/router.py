from datetime import date
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse

from collection.ledger.accounts import Channel
from collection.reconciliation import repository, service
from collection.reconciliation.errors import (
    ChannelNotReconciled,
    ReconciliationDayNotFound,
    ReconciliationFileInvalid,
    ReconciliationFileTooLarge,
    ReconciliationLineNotFound,
    TransitionNotAllowed,
)
from collection.reconciliation.models import LineState
from collection.reconciliation.report import write_report
from collection.reconciliation.schemas import (
    DayOut,
    DaySummary,
    LineDetail,
    LinePage,
    Rerun,
    Resolution,
    RunOut,
)
from collection.settings import CollectionSettings
from shared.auth import Role, allow
from shared.clock import AppClock
from shared.db import INT_MAX, DbSession, RowId
from shared.errors import error_responses
from shared.tabular import XLSX, xlsx_download

router = APIRouter(
    prefix="/v1/reconciliations", tags=["reconciliation"], dependencies=[allow(Role.TAX_OFFICER)]
)
lines_router = APIRouter(
    prefix="/v1/reconciliation-lines", tags=["reconciliation"], dependencies=[allow(Role.TAX_OFFICER)]
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Reconcile a channel's day with the tax side's payment file (扣款数据比对)",
    description="CSV (UTF-8 or GBK) or .xlsx with columns 交易流水号, 缴费时间, 缴费金额, 账单号 (optional "
    "缴费渠道). A file with any bad line is refused whole with every bad line listed. Each line is judged: "
    "`matched`, `amount_mismatch`, `date_mismatch`, `bills_mismatch` (its transaction paid other bills), "
    "`recorded` (in the file, not recorded: recorded now and "
    "confirmed to the registry), `unrecordable`, `duplicate`; the day's payments the file does not list "
    "become `missing_from_file`. A corrected file for the same day judges open lines again and never "
    "changes a settled one; the same file again is answered with its first run (200).",
    responses=error_responses(
        ChannelNotReconciled,
        ReconciliationFileInvalid,
        ReconciliationFileTooLarge,
        extra={200: {"model": RunOut, "description": "The same file was reconciled before"}},
    ),
)
async def upload_file(
    request: Request,
    response: Response,
    session: DbSession,
    clock: AppClock,
    file: UploadFile,
    channel: Annotated[Channel, Form()],
    business_day: Annotated[date, Form()],
    uploaded_by: Annotated[str, Form(min_length=1, max_length=64)],
) -> RunOut:
    settings: CollectionSettings = request.app.state.settings
    upload = service.FileUpload(channel, business_day, file.filename or "payments.csv", uploaded_by)
    run, created = await service.receive(
        session, clock, settings.reconciliation_dir, upload, file.file, settings.reconciliation_max_bytes
    )
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return run


@router.get("", summary="Each channel's days: lines per state, amounts, whether reconciled")
async def list_days(
    session: DbSession,
    channel: Channel | None = None,
    day_from: date | None = None,
    day_to: date | None = None,
) -> list[DaySummary]:
    return await service.summaries(session, channel=channel, day_from=day_from, day_to=day_to)


@router.get(
    "/{channel}/{business_day}",
    summary="A channel's day: its summary and every run",
    responses=error_responses(ReconciliationDayNotFound),
)
async def get_day(channel: Channel, business_day: date, session: DbSession) -> DayOut:
    return await service.day_of(session, channel, business_day)


@router.get("/{channel}/{business_day}/lines", summary="A channel's day, line by line (keyset pages)")
async def list_lines(
    channel: Channel,
    business_day: date,
    session: DbSession,
    state: Annotated[list[LineState] | None, Query()] = None,
    after: Annotated[int, Query(ge=0, le=INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> LinePage:
    return await service.lines_page(
        session, channel, business_day, states=state or [], after=after, limit=limit
    )


@router.get(
    "/{channel}/{business_day}/report.xlsx",
    summary="A channel's day as a spreadsheet (对账结果): summary and every line",
    response_class=FileResponse,
    responses=error_responses(ReconciliationDayNotFound, extra={200: {"content": {XLSX: {}}}}),
)
async def download_report(
    channel: Channel, business_day: date, session: DbSession, tasks: BackgroundTasks
) -> FileResponse:
    day = await service.day_of(session, channel, business_day)
    return await xlsx_download(
        lambda target: write_report(day.summary, repository.stream(session, channel, business_day), target),
        f"对账结果-{channel.value}-{business_day.isoformat()}.xlsx",
        tasks,
    )


@router.post(
    "/{channel}/{business_day}/rerun",
    status_code=status.HTTP_201_CREATED,
    summary="Judge the day's open lines again (after a late notification, a reissued bill…)",
    responses=error_responses(ChannelNotReconciled, ReconciliationDayNotFound),
)
async def rerun_day(
    channel: Channel, business_day: date, body: Rerun, session: DbSession, clock: AppClock
) -> RunOut:
    return await service.rerun(session, clock, channel, business_day, body.started_by)


@lines_router.get(
    "/{line_id}",
    summary="One line with its history (who or which run moved it, when, why)",
    responses=error_responses(ReconciliationLineNotFound),
)
async def get_line(line_id: RowId, session: DbSession) -> LineDetail:
    return await service.line_detail(session, line_id)


@lines_router.post(
    "/{line_id}/resolution",
    summary="A tax officer accepts a date mismatch (it settles) or dismisses an open line",
    responses=error_responses(ReconciliationLineNotFound, TransitionNotAllowed),
)
async def resolve_line(line_id: RowId, body: Resolution, session: DbSession, clock: AppClock) -> LineDetail:
    return await service.resolve(session, clock, line_id, body)
