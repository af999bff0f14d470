from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from registry.exclusion.models import Exclusion, ExclusionKind
from registry.people.schemas import PersonIn
from shared.fields import Actor
from shared.logging import mask_id_number

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class ExclusionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: PersonIn
    coverage_year: int = Field(ge=2000, le=2100)
    kind: ExclusionKind
    source: Text
    recorded_by: Actor


class ExclusionRemove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    removed_by: Actor


class ExclusionOut(BaseModel):
    exclusion_id: str
    document_number_masked: str
    coverage_year: int
    kind: ExclusionKind
    source: str
    recorded_by: str
    recorded_at: datetime
    removed_at: datetime | None
    removed_by: str | None

    @classmethod
    def of(cls, e: Exclusion) -> "ExclusionOut":
        return cls(
            exclusion_id=e.id,
            document_number_masked=mask_id_number(e.document_number),
            coverage_year=e.coverage_year,
            kind=e.kind,
            source=e.source,
            recorded_by=e.recorded_by,
            recorded_at=e.recorded_at,
            removed_at=e.removed_at,
            removed_by=e.removed_by,
        )
