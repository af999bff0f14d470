from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collection.database import Base
from shared.db import UTCDateTime


class SubsidyTransfer(Base):
    """资助资金拨付: a funding department pays its subsidy share for many people as one transfer into the
    collection account. What it owed before is kept, so over- and under-payment stay visible."""

    __tablename__ = "subsidy_transfers"
    __table_args__ = (
        UniqueConstraint("funder", "reference"),
        Index("ix_subsidy_transfers_funder_region_year", "funder", "region_code", "coverage_year"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    funder: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6))
    coverage_year: Mapped[int] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(64), doc="The bank transfer's reference (划款凭证号)")
    owed_before_fen: Mapped[int] = mapped_column(BigInteger, doc="Outstanding for the funder before it")
    recorded_by: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
