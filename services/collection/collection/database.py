"""Collection's own database: its declarative base and the outbox, inbox, dead-letter and audit tables."""

from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from shared.db import DriverStatement, holds_changes
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
    PostgreSQL. SQLite has neither: a notified order's payment and a consumer run's bills are written a
    statement per table there (`table`), the rest through the unit of work."""
    return session.get_bind().dialect.name == "postgresql"


def table(model: type[Any]) -> Table:
    """A model's table, for the hot paths' plain-row writes on SQLite."""
    return cast(Table, model.__table__)


R = TypeVar("R", bound=Base)


async def held_rows(session: AsyncSession, statement: DriverStatement, values: dict[str, Any]) -> list[Any]:
    """A hot path's read on PostgreSQL as plain rows, in the request's transaction (what it locks stays
    locked): what the session holds unflushed is written first, as a query of the session would."""
    await flush_held(session)
    return await statement.fetch_held(session, values)


async def flush_held(session: AsyncSession) -> None:
    """What the session holds unflushed written, before a statement the unit of work does not see."""
    if holds_changes(session):
        await session.flush()


def attached(session: AsyncSession, model: type[R], values: dict[str, Any]) -> R:
    """The record a plain row read (`shared.db.DriverStatement`) as if the session had loaded it: in its
    identity map, changes flushed as updates; what the row did not carry (relationships) is loaded on use,
    which async refuses loudly. A record the session holds already is taken as held, as a query would; unlike
    a query, an expired one is not refilled from the row (no path reads a record again after a rollback)."""
    record = model(**values)
    key = identity_key(instance=record)
    held = session.identity_map.get(key)
    if held is not None:
        return held
    make_transient_to_detached(record)
    session.add(record)
    return record
