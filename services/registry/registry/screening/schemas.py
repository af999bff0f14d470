from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from registry.screening.models import FollowUpState, ScreeningCase, ScreeningCaseEvent
from shared.logging import mask_id_number, mask_phone
from shared.regions import REGION_CODE_PATTERN


class ScreeningRun(BaseModel):
    region_code: str = Field(pattern=REGION_CODE_PATTERN)
    coverage_year: int = Field(ge=2000, le=2100)
    run_by: str = Field(min_length=1, max_length=64)


class ScreeningResult(BaseModel):
    """What one run found and changed."""

    region_code: str
    coverage_year: int
    compared_years: list[int] = Field(description="The last two years' enrollees compared")
    listed: int = Field(description="Cases open after the run")
    added: int
    moved_in: int = Field(description="Open cases taken over from another region (the person moved here)")
    closed: dict[str, int] = Field(description="Cases the run closed, by the state it gave them")


class FollowUpUpdate(BaseModel):
    state: Literal["reminded", "visited", "refused", "moved_away", "enrolled_elsewhere", "enrolled"] = Field(
        description="not_required is the data's to set (employee insurance, death), not staff's"
    )
    note: str | None = Field(default=None, max_length=256)
    updated_by: str = Field(min_length=1, max_length=64)


class CaseEventOut(BaseModel):
    from_state: FollowUpState
    to_state: FollowUpState
    note: str | None
    by: str
    at: datetime

    @classmethod
    def of(cls, e: ScreeningCaseEvent) -> "CaseEventOut":
        return cls(from_state=e.from_state, to_state=e.to_state, note=e.note, by=e.by, at=e.at)


class CaseOut(BaseModel):
    id: int
    name: str
    id_number_masked: str
    phone_masked: str | None
    birth_date: date
    aged_60_plus: bool
    student: bool
    pending_payment: bool
    found_in: list[str]
    region_code: str
    coverage_year: int
    township: str | None
    village: str | None
    village_group: str | None
    state: FollowUpState
    note: str | None
    updated_by: str
    updated_at: datetime
    last_reminded_at: datetime | None

    @classmethod
    def of(cls, c: ScreeningCase) -> "CaseOut":
        return cls(
            id=c.id,
            name=c.person.name,
            id_number_masked=mask_id_number(c.person.document_number),
            phone_masked=mask_phone(c.person.phone) if c.person.phone else None,
            birth_date=c.person.birth_date,
            aged_60_plus=c.aged_60_plus,
            student=c.student,
            pending_payment=c.pending_payment,
            found_in=c.found_in,
            region_code=c.region_code,
            coverage_year=c.coverage_year,
            township=c.township,
            village=c.village,
            village_group=c.village_group,
            state=c.state,
            note=c.note,
            updated_by=c.updated_by,
            updated_at=c.updated_at,
            last_reminded_at=c.last_reminded_at,
        )


class CaseDetail(CaseOut):
    history: list[CaseEventOut]


class CasePage(BaseModel):
    items: list[CaseOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; none on the last")


class TownshipFollowUp(BaseModel):
    township: str
    states: dict[FollowUpState, int] = Field(description="Cases per follow-up state, every state listed")
    open: int
    open_aged_60_plus: int
    open_students: int
    total: int


class FollowUpSummary(BaseModel):
    region_code: str
    coverage_year: int
    rows: list[TownshipFollowUp]
    total: TownshipFollowUp = Field(description="The sum of the rows")
