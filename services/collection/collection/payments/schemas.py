from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from collection.ledger.accounts import Channel
from collection.payments.models import Payment, PaymentOrigin
from shared.money import Yuan, YuanInput
from shared.regions import REGION_CODE_PATTERN


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


class OrganisationBills(BaseModel):
    """Every open bill a school pays for, in one region and year."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    region_code: str = Field(pattern=REGION_CODE_PATTERN)
    coverage_year: int = Field(ge=2000, le=2100)


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_id: str | None = Field(default=None, min_length=1, max_length=64, description="One bill")
    bill_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=30, description="Several bills paid at once (为家人缴费)"
    )
    organisation: OrganisationBills | None = Field(
        default=None, description="All open bills a school pays for (GET /v1/bills/organisation-due)"
    )
    amount: YuanInput = Field(description="The full amount due on all the bills, as a decimal string")
    channel: ResidentChannel
    agent_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="With channel `agent`: who collected the cash"
    )
    channel_reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The channel's transaction number (交易流水号), matched with the tax side's daily file",
    )

    @model_validator(mode="after")
    def _one_way_to_name_bills(self) -> Self:
        if sum(way is not None for way in (self.bill_id, self.bill_ids, self.organisation)) != 1:
            raise ValueError("give one of bill_id, bill_ids or organisation")
        if (self.channel is Channel.AGENT) != (self.agent_id is not None):
            raise ValueError("agent_id goes with channel agent, and only with it")
        if self.bill_ids is not None and len(set(self.bill_ids)) != len(self.bill_ids):
            raise ValueError("bill_ids repeats a bill")
        return self

    @property
    def bills(self) -> list[str]:
        """The bills named one by one (none when an organisation pays)."""
        return [self.bill_id] if self.bill_id is not None else list(self.bill_ids or [])


class PaymentItemOut(BaseModel):
    bill_id: str
    enrollment_id: str
    amount: Yuan


class PaymentOut(BaseModel):
    payment_id: str
    amount: Yuan
    channel: Channel
    agent_id: str | None
    receipt_no: str = Field(description="Tax payment receipt number (缴费单据号)")
    paid_at: datetime
    channel_reference: str | None
    origin: PaymentOrigin
    items: list[PaymentItemOut] = Field(description="The bills this payment settled")

    @classmethod
    def of(cls, payment: Payment) -> "PaymentOut":
        return cls(
            payment_id=payment.id,
            amount=payment.amount_fen,
            channel=payment.channel,
            agent_id=payment.agent_id,
            receipt_no=payment.receipt_no,
            paid_at=payment.paid_at,
            channel_reference=payment.channel_reference,
            origin=payment.origin,
            items=[
                PaymentItemOut(bill_id=i.bill_id, enrollment_id=i.enrollment_id, amount=i.amount_fen)
                for i in payment.items
            ],
        )
