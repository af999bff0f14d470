from datetime import UTC, date, datetime

from sqlalchemy import Date, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.db import UTCDateTime


class Person(Base):
    """A resident known to the registry, identified by their ID number (参保人)."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
