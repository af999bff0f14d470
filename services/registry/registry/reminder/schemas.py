from datetime import datetime

from pydantic import BaseModel, Field

from registry.reminder.models import Reminder, ReminderChannel, ReminderStatus
from shared.logging import mask_phone
from shared.regions import REGION_CODE_PATTERN


class ReminderRequest(BaseModel):
    """Remind the people of open screening cases: all of a township, or the cases named."""

    region_code: str = Field(pattern=REGION_CODE_PATTERN)
    coverage_year: int = Field(ge=2000, le=2100)
    channel: ReminderChannel
    township: str | None = Field(default=None, min_length=1, max_length=32)
    case_ids: list[int] | None = Field(default=None, min_length=1, max_length=10_000)
    requested_by: str = Field(min_length=1, max_length=64)


class ReminderBatch(BaseModel):
    considered: int = Field(description="Open cases matched")
    queued: int
    throttled: int = Field(description="Reminded within the interval: not reminded again")
    no_phone: int = Field(description="No phone number known")
    min_interval_hours: int


class ReminderOut(BaseModel):
    id: str
    case_id: int | None
    channel: ReminderChannel
    recipient_masked: str
    text: str
    status: ReminderStatus
    attempts: int
    queued_at: datetime
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, r: Reminder) -> "ReminderOut":
        return cls(
            id=r.id,
            case_id=r.case_id,
            channel=r.channel,
            recipient_masked=mask_phone(r.recipient),
            text=r.text,
            status=r.status,
            attempts=r.attempts,
            queued_at=r.queued_at,
            sent_at=r.sent_at,
            last_error=r.last_error,
        )
