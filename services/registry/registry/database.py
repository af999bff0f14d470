"""The registry's own database: its declarative base and the outbox, inbox, dead-letter and audit tables."""

from sqlalchemy.orm import DeclarativeBase

from shared.tables import service_metadata, service_tables


class Base(DeclarativeBase):
    metadata = service_metadata()


OutboxMessage, InboxMessage, DeadLetter, AuditEvent = service_tables(Base)
