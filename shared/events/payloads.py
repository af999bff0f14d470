"""Event payloads. Money is integer fen; dates are business dates in Asia/Shanghai."""

from datetime import date, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.events.envelope import EventData


class SubsidyLineData(BaseModel):
    """One subsidy toward the personal contribution: a receivable from its funder for collection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str
    funder: str
    amount_fen: int = Field(ge=0)


class EnrollmentCreated(EventData):
    """An enrollment was registered and waits for payment (registry → collection)."""

    event_type: ClassVar[str] = "canbao.registry.enrollment.created.v1"

    enrollment_id: str
    document_type: str = Field(description="resident_id, foreign_permanent_residence or passport")
    id_number: str = Field(description="The document number in full; collection needs it on the tax record")
    name: str
    region_code: str
    coverage_year: int
    basis: str
    late_case: str | None
    personal_due_fen: int = Field(ge=0, description="What the person owes, in fen; 0 when fully subsidised")
    subsidy_lines: list[SubsidyLineData]
    fiscal_subsidy_fen: int = Field(ge=0)
    total_financing_fen: int = Field(ge=0)
    price_version: int = Field(ge=1)
    payable_until: date = Field(description="Last Beijing business day the bill may be paid")
    coverage_start: date | None = Field(description="Null when coverage starts the day after payment")
    coverage_end: date
    payer_organisation: str | None = Field(
        default=None,
        description="An organisation (a university for its batch) that pays this bill with its others; "
        "null when the person pays",
    )
    refundable_reasons: list[str] = Field(
        default_factory=list,
        description="Why the policy refunds a paid contribution within the coverage period "
        "(erroneous_payment 错误缴费, death 自然减员); any other request is refused",
    )


class EnrollmentRepriced(EventData):
    """An unpaid enrollment's price changed, e.g. a subsidy category was added or removed
    (registry → collection). Collection adjusts the open bill if this version is newer than the billed one."""

    event_type: ClassVar[str] = "canbao.registry.enrollment.repriced.v1"

    enrollment_id: str
    personal_due_fen: int = Field(ge=0)
    subsidy_lines: list[SubsidyLineData]
    fiscal_subsidy_fen: int = Field(ge=0)
    total_financing_fen: int = Field(ge=0)
    price_version: int = Field(ge=2)
    reason: str


class EnrollmentLapsed(EventData):
    """An enrollment was not paid by its payable_until date and the person enrolled again on the terms of the
    day (registry → collection). Collection cancels its open bill."""

    event_type: ClassVar[str] = "canbao.registry.enrollment.lapsed.v1"

    enrollment_id: str
    replaced_by: str = Field(description="The new enrollment of the same person and year")


class EnrollmentCancelled(EventData):
    """The registry learned an enrollment must end: a death (自然减员) or an erroneous enrollment
    (registry → collection). An open bill is cancelled; a paid one is refunded in full, which collection
    confirms with PaymentRefunded."""

    event_type: ClassVar[str] = "canbao.registry.enrollment.cancelled.v1"

    enrollment_id: str
    reason: str = Field(description="death or erroneous_payment")
    evidence_ref: str = Field(description="The document behind it, e.g. a death certificate number")


class PaymentConfirmed(EventData):
    """A bill was settled: paid in full by the person, or owing nothing after a full subsidy
    (channel `subsidy`) (collection → registry)."""

    event_type: ClassVar[str] = "canbao.collection.payment.confirmed.v1"

    payment_id: str
    bill_id: str
    enrollment_id: str
    amount_fen: int = Field(ge=0)
    price_version: int = Field(ge=1, description="The enrollment price version the bill carried when paid")
    channel: str
    receipt_no: str
    paid_at: datetime


class PaymentRefunded(EventData):
    """Paid money went back to the payer (collection → registry): the whole of it, which ends the enrollment
    (an erroneous payment, a death), or what a lower price left over (the enrollment stands)."""

    event_type: ClassVar[str] = "canbao.collection.payment.refunded.v1"

    refund_id: str
    payment_id: str
    bill_id: str
    enrollment_id: str
    amount_fen: int = Field(ge=0, description="0 when a subsidy had paid it all: the enrollment still ends")
    reason: str = Field(description="erroneous_payment, death, or repriced")
    ends_enrollment: bool
    refunded_at: datetime


EVENT_TYPES: dict[str, type[EventData]] = {
    m.event_type: m
    for m in (
        EnrollmentCreated,
        EnrollmentRepriced,
        EnrollmentLapsed,
        EnrollmentCancelled,
        PaymentConfirmed,
        PaymentRefunded,
    )
}
