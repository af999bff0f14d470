from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from collection.refunds.models import Refund
from shared.fields import Actor
from shared.money import Yuan

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

# The documents' words for the policies' refund reasons (泾县 五(4) 因错误缴费、自然减员等原因需退费的).
REASON_WORDS = {"错误缴费": "erroneous_payment", "自然减员": "death", "死亡": "death"}


def reason_code(text: str) -> str:
    """A stated reason as the policies name it: the documents' words become its codes, anything else stays."""
    return REASON_WORDS.get(text, text)


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bill_id: Text
    reason: Annotated[Text, AfterValidator(reason_code)] = Field(
        description="Any stated reason. `erroneous_payment` (错误缴费) and `death` (自然减员), in code or in "
        "the documents' words, are refunded where the bill's policy names them; any other reason is refused "
        "with the rule (422 refund_not_allowed: 待遇享受期内已缴纳的医保费不予退还)",
        examples=["erroneous_payment", "自然减员"],
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
