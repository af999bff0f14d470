from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from collection.payments.models import Channel, Payment
from shared.money import Yuan, YuanInput


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_id: str = Field(min_length=1, max_length=64)
    amount: YuanInput = Field(description="The full amount due, as a decimal string")
    channel: Channel


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
