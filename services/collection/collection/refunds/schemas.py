from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from collection.refunds.models import Refund
from shared.fields import Actor
from shared.money import Yuan

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_id: Text
    reason: Literal["erroneous_payment", "death"] = Field(
        description="错误缴费 or 自然减员; refunded only if the bill's policy names the reason"
    )
    requested_by: Actor = Field(description="The tax officer")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] | None = None


class RefundOut(BaseModel):
    refund_id: str
    bill_id: str
    payment_id: str
    amount: Yuan
    reason: str
    ends_enrollment: bool
    requested_by: str
    note: str | None
    refunded_at: datetime

    @classmethod
    def of(cls, r: Refund) -> "RefundOut":
        return cls(
            refund_id=r.id,
            bill_id=r.bill_id,
            payment_id=r.payment_id,
            amount=r.amount_fen,
            reason=r.reason,
            ends_enrollment=r.ends_enrollment,
            requested_by=r.requested_by,
            note=r.note,
            refunded_at=r.refunded_at,
        )


class RefundList(BaseModel):
    items: list[RefundOut]
