"""The CloudEvents 1.0 envelope (structured JSON mode) every message on every topic carries."""

import builtins
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema


class EventData(BaseModel):
    """Base of every event payload; `event_type` is the CloudEvents `type` it travels under."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[str]


_E = TypeVar("_E", bound=EventData)


def _no_default(schema: dict[str, Any]) -> None:
    """An optional extension attribute is simply absent: its schema names no null default."""
    schema.pop("default", None)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="Unique per event; consumers deduplicate on it")
    source: str = Field(description="The producing service, e.g. /canbao/registry")
    type: str = Field(description="Event type, versioned, e.g. canbao.registry.enrollment.created.v1")
    # With its offset: a time without one names no moment (a consumer writing it through the driver would read
    # it in the process's own zone).
    time: AwareDatetime = Field(description="When the event happened, UTC")
    subject: str = Field(description="The enrollment id the event is about; also the Kafka key")
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    # The CloudEvents distributed-tracing extension: the W3C trace context of the work that produced the
    # event, so the consumer's work joins its trace. Absent when tracing is off, and in older events.
    traceparent: str | SkipJsonSchema[None] = Field(
        default=None,
        description="W3C traceparent of the producing work (CloudEvents distributed-tracing extension)",
        json_schema_extra=_no_default,
    )
    tracestate: str | SkipJsonSchema[None] = Field(
        default=None,
        description="W3C tracestate that goes with traceparent, when there is one",
        json_schema_extra=_no_default,
    )

    def to_bytes(self) -> bytes:
        # An absent extension is left out, not sent as null: consumers without it read the event as before.
        return self.model_dump_json(exclude_none=True).encode()

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
