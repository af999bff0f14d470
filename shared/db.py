"""Database engine, sessions, and the one-transaction-per-request dependency."""

import enum
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy import DateTime, Dialect, Enum, String, TypeDecorator, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from shared.errors import ConcurrentChange, InvalidCharacters, ServiceUnavailable

# Stable constraint names, so Alembic migrations and SQLite batch operations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite would drop the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(kind: type[enum.StrEnum]) -> Enum:
    """Enums stored as their string values, checked by the application: no database enum types to migrate."""
    return Enum(kind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # A statement's parameters (names, ID numbers, birth dates…) stay out of error messages and tracebacks,
    # and so out of the logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: ConnectionPoolEntry) -> None:
            # WAL lets the relay read while a request writes; busy_timeout waits instead of failing.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # A Session subclass of its own, so session events (the outbox wake-up) attach to this factory only.
    session_class = type("ServiceSession", (Session,), {})
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=session_class)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed when the endpoint returns, rolled back on any error.

    Services only flush; this dependency alone commits.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    try:
        async with sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
    except Exception as exc:
        if database_unavailable(exc):
            raise ServiceUnavailable({"reason": "database_unavailable"}) from exc
        if isinstance(exc, DBAPIError) and _sqlstate(exc) in _UNSTORABLE_TEXT:
            raise InvalidCharacters() from exc
        if unique_violation(exc):
            # A concurrent request wrote the same record first: the caller may retry and see it.
            raise ConcurrentChange() from exc
        raise


def unique_violation(exc: BaseException) -> bool:
    """A unique index refused a row: on PostgreSQL SQLSTATE 23505, on SQLite its message."""
    if not isinstance(exc, IntegrityError):
        return False
    return _sqlstate(exc) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


_LOCK_KEYS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(:keys AS text[])) AS k"
)


async def lock_key(session: AsyncSession, scope: str) -> None:
    """Serialise the transactions that work on one key (an Idempotency-Key, a person's document number)
    until they end. PostgreSQL: a transaction-scoped advisory lock. SQLite serialises writers itself; a loser
    of that race fails on the unique index and gets ConcurrentChange."""
    await lock_keys(session, [scope])


async def lock_keys(session: AsyncSession, scopes: Sequence[str]) -> None:
    """`lock_key` for several keys in one statement, taken in sorted order so that two transactions locking
    overlapping keys cannot deadlock."""
    if not scopes or session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(_LOCK_KEYS, {"keys": sorted(set(scopes))})


# Character not in repertoire (PostgreSQL refuses NUL in text), untranslatable character.
_UNSTORABLE_TEXT = ("22021", "22P05")


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", "") or "")


# SQLSTATE classes that mean the server cannot serve now: connection exception, insufficient resources,
# operator intervention (shutdown, cannot connect now), system error.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")


def database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or refuses connections now: not the request's or the message's fault,
    so a request gets 503 and a consumer waits rather than dead-lettering."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    # 55000 is also a programming error in general; a database closed to connections says so in its message.
    return state[:2] in _UNAVAILABLE_CLASSES or (state == "55000" and "accepting connections" in str(exc))


# A number beyond its column's range names no row; refused before it reaches the database (PostgreSQL would
# fail the query rather than find nothing).
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=INT_MAX)]
BigRowId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]

# scope="function": the commit happens before the response is sent, so a 2xx means committed.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]


def statistics_stale_after(chunks: int) -> bool:
    """Whether a bulk load's table statistics need refreshing before its next chunk: after 0, 1, 2, 4, 8…
    chunks they stay within twice the truth, at a handful of ANALYZE runs for a whole load."""
    return chunks & (chunks - 1) == 0


async def refresh_statistics(session: AsyncSession, tables: str) -> None:
    """PostgreSQL plans by table statistics, and autovacuum lags behind a bulk load: without fresh ones a
    lookup of a chunk's rows is planned as a scan of the whole table (the documented advice for bulk loads is
    to ANALYZE; inside the loading transaction it counts that transaction's own rows). SQLite has no such
    planner statistics to go stale in this way."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"ANALYZE {tables}"))


class business_day(FunctionElement[str]):
    """The Beijing business date of a UTC timestamp column, as YYYY-MM-DD text, for grouping by day in SQL.
    Asia/Shanghai keeps no daylight saving, so a fixed eight hours is exact."""

    type = String()
    inherit_cache = True


@compiles(business_day, "postgresql")
def _business_day_postgresql(element: business_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"


@compiles(business_day, "sqlite")
def _business_day_sqlite(element: business_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '+8 hours')"
