"""Event payloads. Money is integer fen; dates are business dates in Asia/Shanghai."""

from datetime import date, datetime
from typing import ClassVar

from pydantic import Field

from shared.events.envelope import EventData


class EnrollmentCreated(EventData):
    """An enrollment was registered and is waiting for payment (registry → collection)."""

    event_type: ClassVar[str] = "canbao.registry.enrollment.created.v1"

    enrollment_id: str
    id_number: str = Field(description="Resident ID number in full; collection needs it on the tax record")
    name: str
    region_code: str
    coverage_year: int
    personal_due_fen: int = Field(ge=0, description="What the person owes, in fen")
    total_financing_fen: int = Field(ge=0)
    coverage_start: date
    coverage_end: date


class PaymentConfirmed(EventData):
    """A bill was paid in full (collection → registry)."""

    event_type: ClassVar[str] = "canbao.collection.payment.confirmed.v1"

    payment_id: str
    bill_id: str
    enrollment_id: str
    amount_fen: int = Field(ge=0)
    channel: str
    receipt_no: str
    paid_at: datetime


EVENT_TYPES: dict[str, type[EventData]] = {m.event_type: m for m in (EnrollmentCreated, PaymentConfirmed)}
