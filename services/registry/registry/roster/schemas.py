from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from registry.roster.models import RosterKind, RosterRow, RosterUpload, RowStatus, UploadStatus
from shared.fields import Actor

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class UploadOut(BaseModel):
    upload_id: str
    kind: RosterKind
    region_code: str
    coverage_year: int
    category: str | None
    department: str
    filename: str
    uploaded_by: str
    uploaded_at: datetime
    status: UploadStatus
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rows_held: int = Field(description="Suspected duplicates awaiting a decision; approval waits for them")
    rows_applied: int
    failure: str | None = Field(description="Why the file as a whole could not be read, if it could not")
    validated_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None
    applied_at: datetime | None

    @classmethod
    def of(cls, u: RosterUpload) -> "UploadOut":
        return cls(
            upload_id=u.id,
            kind=u.kind,
            region_code=u.region_code,
            coverage_year=u.coverage_year,
            category=u.category_code,
            department=u.department,
            filename=u.filename,
            uploaded_by=u.uploaded_by,
            uploaded_at=u.uploaded_at,
            status=u.status,
            rows_read=u.rows_read,
            rows_accepted=u.rows_accepted,
            rows_rejected=u.rows_rejected,
            rows_held=u.rows_held,
            rows_applied=u.rows_applied,
            failure=u.failure,
            validated_at=u.validated_at,
            reviewed_by=u.reviewed_by,
            reviewed_at=u.reviewed_at,
            review_note=u.review_note,
            applied_at=u.applied_at,
        )


class Problem(BaseModel):
    column: str
    code: str
    message_zh: str
    message_en: str


class RowOut(BaseModel):
    row_no: int = Field(description="Line in the file, counting the header and any title lines")
    status: RowStatus
    values: dict[str, Any]
    problems: list[Problem]
    evidence: dict[str, Any] | None = Field(description="For a held row: what makes it look like a duplicate")
    decided_by: str | None
    decision_note: str | None
    outcome: str | None = Field(
        description="After applying: enrolled, enrolled_fully_subsidised, already_enrolled, mobilise (listed "
        "for the township), removed:<effect on the enrollment>, not_held, excluded, already_excluded, "
        "refused:<code>"
    )

    @classmethod
    def of(cls, r: RosterRow) -> "RowOut":
        return cls(
            row_no=r.row_no,
            status=r.status,
            values=r.values,
            problems=[Problem.model_validate(p) for p in r.problems],
            evidence=r.evidence,
            decided_by=r.decided_by,
            decision_note=r.decision_note,
            outcome=r.outcome,
        )


class RowPage(BaseModel):
    items: list[RowOut]
    next_after_row: int | None = Field(description="Pass as after_row for the next page; null at the end")


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewed_by: Actor
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] | None = None


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept: bool = Field(description="True: apply the row with the rest; false: leave it out")
    decided_by: Actor
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] | None = None
