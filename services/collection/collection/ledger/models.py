import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from collection.database import Base
from shared.db import UTCDateTime, enum_column


class TransactionKind(enum.StrEnum):
    BILL_ISSUED = "bill_issued"  # contributions become due: the person's share and each funder's
    BILL_REPRICED = "bill_repriced"  # the difference a new price makes
    BILL_CANCELLED = "bill_cancelled"  # what was still due is written off
    PAYMENT = "payment"  # money in through a channel
    SUBSIDY_TRANSFER = "subsidy_transfer"  # a department pays its subsidy share into the treasury
    AGENT_REMITTANCE = "agent_remittance"  # an agent pays the cash it collected into the treasury
    REFUND = "refund"  # paid money goes back the way it came
    CHANNEL_SETTLEMENT = "channel_settlement"  # a channel's money confirmed into the treasury


class LedgerTransaction(Base):
    """One money movement: its entries sum to zero (debits positive, credits negative)."""

    __tablename__ = "ledger_transactions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(enum_column(TransactionKind))
    reference: Mapped[str] = mapped_column(String(64), index=True, doc="The bill or payment it records")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    entries: Mapped[list["LedgerEntry"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="LedgerEntry.id"
    )


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account: Mapped[str] = mapped_column(String(96), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger, doc="Debit positive, credit negative")
