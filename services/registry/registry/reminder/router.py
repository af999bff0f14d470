from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, status

from registry import access as registry_access
from registry.context import RegistryContext
from registry.policy.errors import PolicyNotFound
from registry.reminder import repository, service
from registry.reminder.errors import RemindersBusy
from registry.reminder.schemas import ReminderBatch, ReminderOut, ReminderRequest
from registry.settings import RegistrySettings
from shared.auth import AREA_ERRORS, CurrentAccess, Role, allow
from shared.db import INT_MAX, DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/reminders", tags=["screening"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue reminders (参保提醒) for open screening cases",
    description="One reminder per person with a phone number, unless they were reminded within "
    "REGISTRY_REMINDER_MIN_INTERVAL_HOURS (counted as throttled). Delivery is asynchronous, through the "
    "configured sender; a delivered reminder marks a case nobody had contacted as reminded.",
    responses=error_responses(PolicyNotFound, RemindersBusy, *AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def queue_reminders(
    body: ReminderRequest,
    request: Request,
    tasks: BackgroundTasks,
    session: DbSession,
    registry: RegistryContext,
    access: CurrentAccess,
) -> ReminderBatch:
    access.require_region(body.region_code)
    settings: RegistrySettings = request.app.state.settings
    batch = await service.queue(session, registry, body, settings.reminder_min_interval)
    # Woken after the commit (which precedes the response), so the dispatcher sees the queued reminders.
    tasks.add_task(request.app.state.reminder_dispatcher.wake)
    return batch


@router.get(
    "",
    summary="Reminders sent or queued for a screening case (phone numbers masked)",
    responses=error_responses(*AREA_ERRORS),
    dependencies=[allow(Role.STAFF)],
)
async def case_reminders(
    session: DbSession, access: CurrentAccess, case_id: Annotated[int, Query(ge=1, le=INT_MAX)]
) -> list[ReminderOut]:
    await registry_access.screening_case(session, access, case_id)
    return [ReminderOut.of(r) for r in await repository.of_case(session, case_id)]
