from datetime import date, datetime

from pydantic import BaseModel, Field

from collection.ledger.accounts import Channel
from shared.money import Yuan


class ReceiptLine(BaseModel):
    payer_name: str
    id_number_masked: str
    region_code: str
    coverage_year: int
    coverage_end: date
    amount: Yuan


class ReceiptOut(BaseModel):
    """缴费单据: what a resident looks up and prints after paying."""

    receipt_no: str
    payment_id: str
    paid_at: datetime
    paid_on: date = Field(description="The Beijing date of payment")
    channel: Channel
    channel_name: str = Field(examples=["微信"])
    agent_name: str | None = Field(description="The office that collected it, for 代收代缴")
    amount: Yuan
    amount_in_words: str = Field(examples=["叁佰捌拾元整"])
    lines: list[ReceiptLine]
