import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
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


class MembershipStatus(enum.StrEnum):
    """A household is a real household: a member named by another resident is only invited until they accept
    from their own account, or public security's registration data puts both in one 户."""

    ACCEPTED = "accepted"
    INVITED = "invited"


class HouseholdMember(Base):
    __tablename__ = "household_members"
    __table_args__ = (
        # A person belongs to one household at a time; invitations may stand in several.
        Index(
            "uq_household_members_accepted_person",
            "person_id",
            unique=True,
            postgresql_where=text("status = 'accepted'"),
            sqlite_where=text("status = 'accepted'"),
        ),
    )

    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), primary_key=True)
    relation: Mapped[Relation] = mapped_column(enum_column(Relation))
    position: Mapped[int] = mapped_column()
    status: Mapped[MembershipStatus] = mapped_column(
        enum_column(MembershipStatus), default=MembershipStatus.ACCEPTED
    )
    claimed_name: Mapped[str | None] = mapped_column(
        String(64),
        default=None,
        doc="The name the inviting resident gave: shown to them, never stored on the person",
    )
    invited_by: Mapped[str | None] = mapped_column(String(128), default=None)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def established(self) -> bool:
        return self.status is MembershipStatus.ACCEPTED

    person: Mapped[Person] = relationship(lazy="joined", innerjoin=True)
