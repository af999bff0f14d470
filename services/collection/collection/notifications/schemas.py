from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from collection.notifications.models import NotificationRejection
from shared.money import Yuan, YuanInput

BillId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ChannelNotification(BaseModel):
    """What a channel posts when a resident paid through it. The body is signed: header `X-Canbao-Timestamp`
    (Unix seconds) and `X-Canbao-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`."""

    model_config = ConfigDict(extra="forbid")

    notification_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The channel's own transaction id: the same id again records nothing new"
    )
    order_reference: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="The payment order's `reference` the resident paid (out_trade_no)"
    )
    bill_id: BillId | None = Field(default=None, description="Without an order: the one bill it paid")
    bill_ids: list[BillId] | None = Field(
        default=None, min_length=1, max_length=30, description="Without an order: the bills it paid"
    )
    amount: YuanInput

    @model_validator(mode="after")
    def _one_way_to_name_what_was_paid(self) -> Self:
        if sum(way is not None for way in (self.order_reference, self.bill_id, self.bill_ids)) != 1:
            raise ValueError("give one of order_reference, bill_id or bill_ids")
        return self

    @property
    def bills(self) -> list[str]:
        return [self.bill_id] if self.bill_id is not None else list(self.bill_ids or [])


class RejectionOut(BaseModel):
    id: int
    channel: str
    transaction_id: str
    order_reference: str | None
    bill_ids: list[str]
    amount: Yuan
    code: str
    received_at: datetime
    attempts: int
    payment_id: str | None = Field(description="Set when a later attempt recorded the payment after all")

    @classmethod
    def of(cls, row: NotificationRejection) -> "RejectionOut":
        return cls(
            id=row.id,
            channel=row.channel,
            transaction_id=row.transaction_id,
            order_reference=row.order_reference,
            bill_ids=row.bill_ids.split(",") if row.bill_ids else [],
            amount=row.amount_fen,
            code=row.code,
            received_at=row.received_at,
            attempts=row.attempts,
            payment_id=row.payment_id,
        )


class RejectionList(BaseModel):
    items: list[RejectionOut]
