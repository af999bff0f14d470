from datetime import date, datetime

from pydantic import BaseModel, Field

from collection.billing.models import Bill, BillStatus
from shared.logging import mask_id_number
from shared.money import Yuan


class BillOut(BaseModel):
    bill_id: str
    enrollment_id: str
    payer_name: str
    payer_organisation: str | None = Field(description="The school paying this bill with its others, if any")
    id_number_masked: str = Field(examples=["3401**********1234"])
    region_code: str
    coverage_year: int
    amount_due: Yuan
    payable_until: date
    coverage_start: date | None
    coverage_end: date
    status: BillStatus
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, bill: Bill) -> "BillOut":
        return cls(
            bill_id=bill.id,
            enrollment_id=bill.enrollment_id,
            payer_name=bill.payer_name,
            payer_organisation=bill.payer_organisation,
            id_number_masked=mask_id_number(bill.id_number),
            region_code=bill.region_code,
            coverage_year=bill.coverage_year,
            amount_due=bill.amount_due_fen,
            payable_until=bill.payable_until,
            coverage_start=bill.coverage_start,
            coverage_end=bill.coverage_end,
            status=bill.status,
            created_at=bill.created_at,
            paid_at=bill.paid_at,
        )


class BillList(BaseModel):
    items: list[BillOut]


class OrganisationDue(BaseModel):
    """What a school owes for its students' open bills: pay exactly this, with `organisation`, at once."""

    organisation: str
    region_code: str
    coverage_year: int
    open_bills: int
    amount_due: Yuan
