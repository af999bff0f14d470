import enum
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.db import UTCDateTime, enum_column


class UnitKind(enum.StrEnum):
    """What a row of a progress table counts."""

    REGION = "region"  # 县(市)区、开发区, by region code
    TOWNSHIP = "township"  # 乡镇 of a county
    UNIVERSITY = "university"  # 大学生: students a university enrolled where they study, counted city-wide


class ProgressBaseline(Base):
    """One row of the reference figures a progress table sets enrollments against (常住人口, 户籍人口,
    上年度参保人数, 目标任务数), for one policy. Figures are people (not 万人); absent where none is given."""

    __tablename__ = "progress_baselines"
    __table_args__ = (UniqueConstraint("policy_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(64))
    kind: Mapped[UnitKind] = mapped_column(enum_column(UnitKind))
    region_code: Mapped[str | None] = mapped_column(String(6))
    resident_population: Mapped[int | None] = mapped_column(BigInteger)
    registered_population: Mapped[int | None] = mapped_column(BigInteger)
    enrolled_last_year: Mapped[int | None] = mapped_column(BigInteger)
    target: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(256), doc="The file the figures came from")
    loaded_by: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
