from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from collection.transfers.models import SubsidyTransfer
from shared.fields import Actor
from shared.money import Yuan, YuanInput
from shared.regions import REGION_CODE_PATTERN

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    funder: Text = Field(
        description="The funding department as the bills name it, e.g. 县民政局 or 医疗救助资金"
    )
    region_code: str = Field(pattern=REGION_CODE_PATTERN)
    coverage_year: int = Field(ge=2000, le=2100)
    amount: YuanInput = Field(description="What arrived, as a decimal string")
    reference: Text = Field(description="The bank transfer's reference (划款凭证号)")
    recorded_by: Actor


class TransferOut(BaseModel):
    transfer_id: str
    funder: str
    region_code: str
    coverage_year: int
    amount: Yuan
    reference: str
    owed_before: Yuan = Field(description="Outstanding for this funder, region and year before this transfer")
    outstanding_after: Yuan = Field(description="Still owed after it; negative when over-paid")
    result: Literal["exact", "underpaid", "overpaid"]
    recorded_by: str
    received_at: datetime

    @classmethod
    def of(cls, t: SubsidyTransfer) -> "TransferOut":
        after = t.owed_before_fen - t.amount_fen
        return cls(
            transfer_id=t.id,
            funder=t.funder,
            region_code=t.region_code,
            coverage_year=t.coverage_year,
            amount=t.amount_fen,
            reference=t.reference,
            owed_before=t.owed_before_fen,
            outstanding_after=after,
            result="exact" if after == 0 else "underpaid" if after > 0 else "overpaid",
            recorded_by=t.recorded_by,
            received_at=t.received_at,
        )


class CategoryOwed(BaseModel):
    category: str
    people: int
    owed: Yuan


class FunderStatement(BaseModel):
    """What a funder owes for a region and year (subsidy lines of bills that stand), what it has transferred,
    and the difference: positive is still owed, negative is over-paid."""

    funder: str
    region_code: str
    coverage_year: int
    owed: Yuan
    transferred: Yuan
    outstanding: Yuan
    by_category: list[CategoryOwed]
    transfers: list[TransferOut]
