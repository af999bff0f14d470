from datetime import datetime
from typing import Annotated, Self

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from collection.ledger.accounts import Channel
from collection.orders.models import OrderStatus, PaymentOrder
from shared.money import Yuan

BillId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
OrderId = Annotated[str, Path(min_length=1, max_length=64)]


class PaymentOrderCreate(BaseModel):
    """Start paying one bill, or a household's bills at once (为家人缴费), through an online channel."""

    model_config = ConfigDict(extra="forbid")

    bill_ids: list[BillId] = Field(min_length=1, max_length=30)
    channel: Channel = Field(description="wechat, alipay, provincial_app or bank: the channels that notify")

    @model_validator(mode="after")
    def _bills_once(self) -> Self:
        if len(set(self.bill_ids)) != len(self.bill_ids):
            raise ValueError("bill_ids repeats a bill")
        return self


class PaymentOrderOut(BaseModel):
    order_id: str
    reference: str = Field(description="What the channel quotes back in its notification (out_trade_no)")
    channel: Channel
    bill_ids: list[str]
    amount: Yuan
    status: OrderStatus
    created_at: datetime
    expires_at: datetime
    payment_id: str | None = Field(description="The payment that completed it")

    @classmethod
    def of(cls, order: PaymentOrder, now: datetime) -> "PaymentOrderOut":
        return cls(
            order_id=order.id,
            reference=order.reference,
            channel=order.channel,
            bill_ids=list(order.bill_ids),
            amount=order.amount_fen,
            status=order.status_at(now),
            created_at=order.created_at,
            expires_at=order.expires_at,
            payment_id=order.payment_id,
        )
