"""Reconciliation with the tax side's daily payment files (扣款数据比对): every line of a file, and every
payment of the day missing from it, has a match state that only moves along `TRANSITIONS`, with its
history."""

import enum
from datetime import date, datetime, time

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from collection.database import Base
from collection.ledger.accounts import Channel
from shared.clock import BUSINESS_TZ
from shared.db import UTCDateTime, enum_column


class LineState(enum.StrEnum):
    """对账状态."""

    MATCHED = "matched"  # file and records agree: the channel's money is settled into the treasury
    RECORDED = "recorded"  # in the file, never recorded: recorded from the file now, and confirmed
    ACCEPTED = "accepted"  # a date mismatch a tax officer accepted: settled
    FOUND = "found"  # a payment missing from its day's file turned up, settled, in another file
    DISMISSED = "dismissed"  # closed by a tax officer, nothing settled (handled outside the system)
    WITHDRAWN = "withdrawn"  # a corrected file for the same day no longer lists it (or now lists its payment)
    AMOUNT_MISMATCH = "amount_mismatch"
    DATE_MISMATCH = "date_mismatch"
    BILLS_MISMATCH = (
        "bills_mismatch"  # the file names other bills than the payment of its transaction settled
    )
    UNRECORDABLE = "unrecordable"  # in the file, and it cannot be recorded (see the reason)
    DUPLICATE = "duplicate"  # its payment is already reconciled by another line
    MISSING_FROM_FILE = "missing_from_file"  # recorded, and not in the channel's file for its day


SETTLED = frozenset({LineState.MATCHED, LineState.RECORDED, LineState.ACCEPTED, LineState.FOUND})
CLOSED = SETTLED | {LineState.DISMISSED, LineState.WITHDRAWN}
"""A run never changes a closed line."""
_EVALUATED = frozenset(
    {
        LineState.MATCHED,
        LineState.RECORDED,
        LineState.AMOUNT_MISMATCH,
        LineState.DATE_MISMATCH,
        LineState.BILLS_MISMATCH,
        LineState.UNRECORDABLE,
        LineState.DUPLICATE,
    }
)
TRANSITIONS: dict[LineState | None, frozenset[LineState]] = {
    None: _EVALUATED | {LineState.MISSING_FROM_FILE},
    LineState.AMOUNT_MISMATCH: _EVALUATED | {LineState.DISMISSED, LineState.WITHDRAWN},
    LineState.DATE_MISMATCH: _EVALUATED | {LineState.ACCEPTED, LineState.DISMISSED, LineState.WITHDRAWN},
    LineState.BILLS_MISMATCH: _EVALUATED | {LineState.DISMISSED, LineState.WITHDRAWN},
    LineState.UNRECORDABLE: _EVALUATED | {LineState.DISMISSED, LineState.WITHDRAWN},
    LineState.DUPLICATE: _EVALUATED | {LineState.DISMISSED, LineState.WITHDRAWN},
    LineState.MISSING_FROM_FILE: frozenset({LineState.FOUND, LineState.DISMISSED, LineState.WITHDRAWN}),
}
"""Where each state may go (None: a new line). Closed states go nowhere."""


class LineSource(enum.StrEnum):
    FILE = "file"  # a line of the tax side's file
    RECORDS = "records"  # one of collection's payments the file for its day does not list


class ReconciliationRun(Base):
    """One reconciliation of a channel's day: a file uploaded, or the day run again."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    business_day: Mapped[date] = mapped_column(Date)
    fingerprint: Mapped[str | None] = mapped_column(
        String(64), unique=True, doc="sha256 of the file, channel and day: the same file twice is one run"
    )
    filename: Mapped[str | None] = mapped_column(String(255))
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lines_in_file: Mapped[int] = mapped_column(Integer)
    changes: Mapped[dict[str, int]] = mapped_column(JSON, doc="How many lines moved to each state")


class ReconciliationLine(Base):
    __tablename__ = "reconciliation_lines"
    __table_args__ = (
        UniqueConstraint("channel", "business_day", "source", "reference"),
        Index("ix_reconciliation_lines_day_state", "channel", "business_day", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    business_day: Mapped[date] = mapped_column(Date, doc="The day of the file (or of the payment)")
    source: Mapped[LineSource] = mapped_column(enum_column(LineSource))
    reference: Mapped[str] = mapped_column(
        String(64), doc="The channel's transaction number; a payment id for a payment missing from the file"
    )
    run_id: Mapped[str] = mapped_column(ForeignKey("reconciliation_runs.id"), index=True)
    line_no: Mapped[int | None] = mapped_column(Integer, doc="Its row in the latest file that listed it")
    file_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    file_paid_on: Mapped[date | None] = mapped_column(Date)
    file_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="When the file gives a time")
    bill_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"), index=True)
    recorded_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    recorded_on: Mapped[date | None] = mapped_column(Date)
    state: Mapped[LineState] = mapped_column(enum_column(LineState))
    reason: Mapped[str] = mapped_column(String(64), doc="Machine code of why it is in its state")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    transitions: WriteOnlyMapped["LineTransition"] = relationship(cascade="all, delete-orphan")


def moment(paid_at: datetime | None, paid_on: date) -> datetime:
    """When the channel took a file line's money: the file's time, or the start of its Beijing day."""
    return paid_at if paid_at is not None else datetime.combine(paid_on, time(), BUSINESS_TZ)


class LineTransition(Base):
    """A line's history: each move of its state, by which run or officer, and why (the audit trail)."""

    __tablename__ = "reconciliation_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_lines.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("reconciliation_runs.id"))
    from_state: Mapped[LineState | None] = mapped_column(enum_column(LineState))
    to_state: Mapped[LineState] = mapped_column(enum_column(LineState))
    reason: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
