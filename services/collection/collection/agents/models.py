from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collection.database import Base
from shared.db import UTCDateTime


class Agent(Base):
    """A township or village office collecting contributions on residents' behalf (代收代缴). Cash it takes is
    owed to the treasury (国库) until remitted."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, doc="The tax bureau's code for the agent")
    name: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    township: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Remittance(Base):
    """Cash an agent paid into the treasury (解缴国库)."""

    __tablename__ = "agent_remittances"
    __table_args__ = (UniqueConstraint("agent_id", "reference"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(64), doc="The treasury's receipt (缴库凭证号)")
    recorded_by: Mapped[str] = mapped_column(String(64))
    remitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
