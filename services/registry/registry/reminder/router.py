from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from registry.enrollment.dependencies import RegistryContext
from registry.policy.errors import PolicyNotFound
from registry.reminder import repository, service
from registry.reminder.errors import RemindersBusy
from registry.reminder.schemas import ReminderBatch, ReminderOut, ReminderRequest
from registry.settings import RegistrySettings
from shared.db import DbSession
from shared.errors import error_responses

router = APIRouter(prefix="/v1/reminders", tags=["screening"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue reminders (参保提醒) for open screening cases",
    description="One reminder per person with a phone number, unless they were reminded within "
    "REGISTRY_REMINDER_MIN_INTERVAL_HOURS (counted as throttled). Delivery is asynchronous, through the "
    "configured sender; a delivered reminder marks a case nobody had contacted as reminded.",
    responses=error_responses(PolicyNotFound, RemindersBusy),
)
async def queue_reminders(
    body: ReminderRequest, request: Request, session: DbSession, registry: RegistryContext
) -> ReminderBatch:
    settings: RegistrySettings = request.app.state.settings
    batch = await service.queue(session, registry, body, settings.reminder_min_interval)
    request.app.state.reminder_dispatcher.wake()
    return batch


@router.get("", summary="Reminders sent or queued for a screening case (phone numbers masked)")
async def case_reminders(session: DbSession, case_id: Annotated[int, Query(ge=1)]) -> list[ReminderOut]:
    return [ReminderOut.of(r) for r in await repository.of_case(session, case_id)]
