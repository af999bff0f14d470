import enum
from datetime import UTC, date, datetime

from sqlalchemy import Date, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.db import UTCDateTime, enum_column


class DocumentType(enum.StrEnum):
    RESIDENT_ID = "resident_id"  # 居民身份证
    FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"  # 外国人永久居留身份证
    PASSPORT = "passport"  # 护照 (with a residence permit)


class Person(Base):
    """A person known to the registry (参保人), identified by their identity document."""

    __tablename__ = "people"
    __table_args__ = (
        # The number leads: it is what lookups of thousands of people at once narrow by.
        UniqueConstraint("document_number", "document_type"),
        Index("ix_people_name_birth_date", "name", "birth_date"),  # one person under two numbers?
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_type: Mapped[DocumentType] = mapped_column(enum_column(DocumentType))
    document_number: Mapped[str] = mapped_column(String(32))
    nationality: Mapped[str] = mapped_column(String(3), doc="ISO 3166-1 alpha-3; CHN for resident IDs")
    name: Mapped[str] = mapped_column(String(64))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
