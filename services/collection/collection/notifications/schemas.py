from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.money import YuanInput

BillId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ChannelNotification(BaseModel):
    """What a channel posts when a resident paid through it. The body is signed: header `X-Canbao-Timestamp`
    (Unix seconds) and `X-Canbao-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`."""

    model_config = ConfigDict(extra="forbid")

    notification_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The channel's own transaction id: the same id again records nothing new"
    )
    bill_id: BillId | None = None
    bill_ids: list[BillId] | None = Field(default=None, min_length=1, max_length=30)
    amount: YuanInput
