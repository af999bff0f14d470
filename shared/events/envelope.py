"""The CloudEvents 1.0 envelope (structured JSON mode) every message on every topic carries."""

import builtins
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class EventData(BaseModel):
    """Base of every event payload; `event_type` is the CloudEvents `type` it travels under."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[str]


_E = TypeVar("_E", bound=EventData)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="Unique per event; consumers deduplicate on it")
    source: str = Field(description="The producing service, e.g. /canbao/registry")
    type: str = Field(description="Event type, versioned, e.g. canbao.registry.enrollment.created.v1")
    time: datetime = Field(description="When the event happened, UTC")
    subject: str = Field(description="The enrollment id the event is about; also the Kafka key")
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        return cls.model_validate_json(raw)

    def payload(self, model: builtins.type[_E]) -> _E:
        return model.model_validate(self.data)


def new_envelope(source: str, subject: str, data: EventData, time: datetime | None = None) -> Envelope:
    """`time` is when it happened by the producer's business clock; now, if not given."""
    return Envelope(
        id=str(uuid.uuid4()),
        source=source,
        type=data.event_type,
        time=time or datetime.now(UTC),
        subject=subject,
        data=data.model_dump(mode="json"),
    )
