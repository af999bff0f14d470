import enum
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from collection.ledger.accounts import Channel
from collection.reconciliation.models import (
    LineSource,
    LineState,
    LineTransition,
    ReconciliationLine,
    ReconciliationRun,
)
from shared.money import Yuan


class DaySummary(BaseModel):
    """Where a channel's day stands: lines per state and the money in each."""

    channel: Channel
    business_day: date
    lines: dict[LineState, int] = Field(description="Lines per match state")
    file_amount: Yuan = Field(description="What the latest file lists (withdrawn lines left out)")
    settled_amount: Yuan = Field(description="Confirmed and settled into the treasury by this day's file")
    missing_amount: Yuan = Field(description="Recorded payments of the day the file does not list")
    open_lines: int = Field(description="Lines that still need a corrected file or an officer")
    reconciled: bool = Field(description="Nothing open: the day is settled")


class RunOut(BaseModel):
    run_id: str
    channel: Channel
    business_day: date
    filename: str | None
    started_by: str
    started_at: datetime
    lines_in_file: int
    changes: dict[str, int] = Field(
        description="Lines moved to each state by this run; `kept`: closed lines the file lists again, "
        "left as they were; `unchanged`: open lines judged the same again"
    )
    summary: DaySummary

    @classmethod
    def of(cls, run: ReconciliationRun, summary: DaySummary) -> "RunOut":
        return cls(
            run_id=run.id,
            channel=run.channel,
            business_day=run.business_day,
            filename=run.filename,
            started_by=run.started_by,
            started_at=run.started_at,
            lines_in_file=run.lines_in_file,
            changes=run.changes,
            summary=summary,
        )


class DayOut(BaseModel):
    summary: DaySummary
    runs: list[RunOut]


class LineOut(BaseModel):
    id: int
    source: LineSource = Field(
        description="`file`: a line of the file; `records`: a payment it does not list"
    )
    reference: str
    line_no: int | None
    file_amount: Yuan | None
    file_paid_on: date | None
    file_paid_at: datetime | None
    bill_ids: list[str]
    payment_id: str | None
    recorded_amount: Yuan | None
    recorded_on: date | None
    state: LineState
    reason: str
    updated_at: datetime

    @classmethod
    def of(cls, line: ReconciliationLine) -> "LineOut":
        return cls(**cls.fields(line))

    @staticmethod
    def fields(line: ReconciliationLine) -> dict[str, Any]:
        return dict(
            id=line.id,
            source=line.source,
            reference=line.reference,
            line_no=line.line_no,
            file_amount=line.file_amount_fen,
            file_paid_on=line.file_paid_on,
            file_paid_at=line.file_paid_at,
            bill_ids=line.bill_ids,
            payment_id=line.payment_id,
            recorded_amount=line.recorded_amount_fen,
            recorded_on=line.recorded_on,
            state=line.state,
            reason=line.reason,
            updated_at=line.updated_at,
        )


class LinePage(BaseModel):
    items: list[LineOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last")


class TransitionOut(BaseModel):
    from_state: LineState | None
    to_state: LineState
    reason: str
    run_id: str | None
    actor: str
    note: str | None
    at: datetime

    @classmethod
    def of(cls, t: LineTransition) -> "TransitionOut":
        return cls(
            from_state=t.from_state,
            to_state=t.to_state,
            reason=t.reason,
            run_id=t.run_id,
            actor=t.actor,
            note=t.note,
            at=t.at,
        )


class LineDetail(LineOut):
    channel: Channel
    business_day: date
    history: list[TransitionOut]


class Action(enum.StrEnum):
    ACCEPT = "accept"  # a date mismatch: the money is right, settle it
    DISMISS = "dismiss"  # close it without settling: handled outside the system


class Resolution(BaseModel):
    """A tax officer's decision on an open line."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    officer: str = Field(min_length=1, max_length=64)
    note: str = Field(min_length=1, max_length=256, description="Why: the audit trail keeps it")


class Rerun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    started_by: str = Field(min_length=1, max_length=64)
