from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.db import UTCDateTime


class RegisteredResident(Base):
    """户籍人口: a person with household registration in the region, as public security reported it for a
    campaign year, and where (乡镇, 村(居)委会, 村民组). Screening compares it with who has enrolled."""

    __tablename__ = "registered_residents"
    __table_args__ = (
        UniqueConstraint("person_id", "coverage_year"),
        Index("ix_registered_residents_region_year_township", "region_code", "coverage_year", "township"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    region_code: Mapped[str] = mapped_column(String(6))
    coverage_year: Mapped[int] = mapped_column(Integer)
    township: Mapped[str | None] = mapped_column(String(32))
    village: Mapped[str | None] = mapped_column(String(64))
    village_group: Mapped[str | None] = mapped_column(String(32))
    household_no: Mapped[str | None] = mapped_column(
        String(32), default=None, index=True, doc="户号: people of one registered household share it"
    )
    source: Mapped[str] = mapped_column(String(128), doc="The roster upload and row it came from")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
