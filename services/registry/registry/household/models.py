import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.database import Base
from registry.people.models import Person
from shared.db import UTCDateTime, enum_column


class Relation(enum.StrEnum):
    HEAD = "head"  # 户主
    SPOUSE = "spouse"
    CHILD = "child"
    PARENT = "parent"
    GRANDCHILD = "grandchild"
    GRANDPARENT = "grandparent"
    OTHER = "other"


class Household(Base):
    """户: people one member can enroll and pay for together (为家人缴费)."""

    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    members: Mapped[list["HouseholdMember"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="HouseholdMember.position"
    )


class HouseholdMember(Base):
    __tablename__ = "household_members"

    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), primary_key=True)
    # A person belongs to one household at a time.
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), primary_key=True, unique=True)
    relation: Mapped[Relation] = mapped_column(enum_column(Relation))
    position: Mapped[int] = mapped_column()

    person: Mapped[Person] = relationship(lazy="joined", innerjoin=True)
