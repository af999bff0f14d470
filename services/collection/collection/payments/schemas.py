from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from collection.payments.models import Channel, Payment
from shared.money import Yuan, YuanInput


def _paid_by_a_person(channel: Channel) -> Channel:
    if channel is Channel.SUBSIDY:
        raise ValueError("subsidy settlement is recorded by collection itself, not paid through the API")
    return channel


ResidentChannel = Annotated[
    Channel,
    AfterValidator(_paid_by_a_person),
    WithJsonSchema({"type": "string", "enum": [c.value for c in Channel if c is not Channel.SUBSIDY]}),
]
"""The channels a person (or an agent for them) pays through."""


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_id: str = Field(min_length=1, max_length=64)
    amount: YuanInput = Field(description="The full amount due, as a decimal string")
    channel: ResidentChannel


class PaymentOut(BaseModel):
    payment_id: str
    bill_id: str
    enrollment_id: str
    amount: Yuan
    channel: Channel
    receipt_no: str = Field(description="Tax payment receipt number (缴费单据号)")
    paid_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> "PaymentOut":
        return cls(
            payment_id=payment.id,
            bill_id=payment.bill_id,
            enrollment_id=payment.enrollment_id,
            amount=payment.amount_fen,
            channel=payment.channel,
            receipt_no=payment.receipt_no,
            paid_at=payment.paid_at,
        )
