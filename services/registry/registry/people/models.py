import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from shared.db import UTCDateTime, enum_column


class DocumentType(enum.StrEnum):
    RESIDENT_ID = "resident_id"  # 居民身份证
    FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"  # 外国人永久居留身份证
    PASSPORT = "passport"  # 护照 (with a residence permit)


class PersonSource(enum.StrEnum):
    """Who first recorded a person, which decides how far the record is trusted."""

    SELF = "self"  # the person, with their own verified identity (a resident's token carries it)
    OFFICIAL = "official"  # staff, a department roster, public security's population data
    OTHER_RESIDENT = "other_resident"  # named by another resident (a household invitation): provisional


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
    source: Mapped[PersonSource] = mapped_column(
        enum_column(PersonSource),
        default=PersonSource.OFFICIAL,
        doc="A record another resident created is provisional: the person's own verified name replaces it",
    )
    recorded_by: Mapped[str | None] = mapped_column(
        String(128), default=None, doc="Who created the record (a token's subject), where known"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    category_epoch: Mapped[int | None] = mapped_column(
        Integer,
        default=None,
        doc="Moves whenever a transaction takes the person's subsidy categories to change them or to price "
        "under the lock (None: never taken); an enrollment priced on categories read without the lock is "
        "written only while it has not moved (people.service.take_categories)",
    )


class IdentityReviewState(enum.StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"  # the person's verified name stands
    REVERTED = "reverted"  # staff found the earlier name right and restored it


class IdentityReview(Base):
    """身份核查: a person arrived with their own verified identity and a name other than the provisional one
    another resident had recorded for their ID number. The verified name took effect at once (nobody is locked
    out of their own enrollment); staff review the case, and the resident who created the record."""

    __tablename__ = "identity_reviews"
    __table_args__ = (Index("ix_identity_reviews_state_region", "state", "region_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    region_code: Mapped[str | None] = mapped_column(String(6), doc="Where the person enrolled when it arose")
    recorded_name: Mapped[str] = mapped_column(String(64), doc="The provisional name another resident gave")
    recorded_by: Mapped[str | None] = mapped_column(String(128), doc="Who created the provisional record")
    claimed_name: Mapped[str] = mapped_column(String(64), doc="The person's own verified name")
    claimed_by: Mapped[str] = mapped_column(String(128))
    state: Mapped[IdentityReviewState] = mapped_column(enum_column(IdentityReviewState))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    note: Mapped[str | None] = mapped_column(String(256), default=None)


@dataclass(frozen=True)
class PersonShown:
    """A person as an enrollment shows them and its event names them, as plain data."""

    id: str
    document_type: DocumentType
    document_number: str
    nationality: str
    name: str
    birth_date: date
    sex: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> "PersonShown":
        return cls(*(row[name] for name in _SHOWN))


_SHOWN = ("id", "document_type", "document_number", "nationality", "name", "birth_date", "sex")
