"""The registry's own database: its declarative base and the outbox, inbox, dead-letter and audit tables."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from shared.audit import AuditMixin
from shared.db import NAMING_CONVENTION
from shared.inbox import DeadLetterMixin, InboxMixin
from shared.outbox import OutboxMixin


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OutboxMessage(OutboxMixin, Base):
    __tablename__ = "outbox"


class InboxMessage(InboxMixin, Base):
    __tablename__ = "inbox"


class DeadLetter(DeadLetterMixin, Base):
    __tablename__ = "dead_letters"


class AuditEvent(AuditMixin, Base):
    __tablename__ = "audit_events"
