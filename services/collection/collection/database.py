"""Collection's own database: its declarative base and the outbox, inbox, dead-letter and audit tables."""

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.attributes import set_committed_value

from shared.tables import service_metadata, service_tables


class Base(DeclarativeBase):
    metadata = service_metadata()


OutboxMessage, InboxMessage, DeadLetter, AuditEvent = service_tables(Base)


def took(record: Base, **written: object) -> None:
    """The record holds what a statement wrote to its row (its RETURNING, or values the caller sent), as if
    read back: nothing to flush, no read."""
    for name, value in written.items():
        set_committed_value(record, name, value)


def one_statement(session: AsyncSession) -> bool:
    """Whether the hot paths write what they write in one statement (data-modifying WITH, arrays): on
    PostgreSQL. SQLite has neither, and writes through the unit of work."""
    return session.get_bind().dialect.name == "postgresql"
