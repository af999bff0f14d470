import enum
from datetime import datetime

from sqlalchemy import Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from registry.people.models import DocumentType
from shared.db import UTCDateTime, enum_column


class ExclusionKind(enum.StrEnum):
    EMPLOYEE_INSURANCE = "employee_insurance"  # 已参加职工医保
    ENROLLED_ELSEWHERE = "enrolled_elsewhere"  # 在外市参加本年度居民医保


class Exclusion(Base):
    """Someone who must not enroll here for a year (不得重复参保): kept by the registry from the lists it
    receives, until a live lookup service replaces or complements it."""

    __tablename__ = "exclusions"
    __table_args__ = (
        Index(
            "uq_exclusions_active",
            "document_number",
            "document_type",
            "coverage_year",
            "kind",
            unique=True,
            postgresql_where=text("removed_at IS NULL"),
            sqlite_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_type: Mapped[DocumentType] = mapped_column(enum_column(DocumentType))
    document_number: Mapped[str] = mapped_column(String(32))
    coverage_year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[ExclusionKind] = mapped_column(enum_column(ExclusionKind))
    source: Mapped[str] = mapped_column(String(128), doc="Where the fact comes from, e.g. 市职工医保参保名单")
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    removed_by: Mapped[str | None] = mapped_column(String(64), default=None)
