"""Database engine, sessions, and the one-transaction-per-request dependency."""

import asyncio
import collections
import enum
import os
import queue
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, cast
from weakref import WeakKeyDictionary

import aiosqlite
import asyncpg
from fastapi import Depends, Path, Request
from sqlalchemy import DateTime, Dialect, Enum, String, TextClause, TypeDecorator, event, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.util import EMPTY_DICT, greenlet_spawn

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


# The connection pool's defaults (ServiceSettings.database_pool_*, docs/performance.md). Connections are
# opened as needed up to the pool's size and kept; past it, up to the overflow more are opened and closed
# again, which costs a connection's set-up and its prepared statements each time: the pool is sized for the
# usual load.
POOL_SIZE = 20
POOL_MAX_OVERFLOW = 10
# A connection is not tested before each use (a pre-ping is a round trip, a BEGIN/SELECT/ROLLBACK on asyncpg,
# on every checkout): one the server closed fails the request that drew it with 503 service_unavailable, and
# the pool then drops every connection as old as it (SQLAlchemy invalidates the pool on a disconnect), so the
# next request connects afresh. Connections older than this are replaced before use, which keeps them under
# the idle limits of servers, poolers and firewalls.
POOL_RECYCLE_S = 1800
# A request's statement waits at most this long for a row or advisory lock, and runs at most this long, on
# PostgreSQL (ServiceSettings.database_*_timeout_s): one stuck behind a lock or a runaway query answers 503
# instead of holding its connection and its caller forever (`_as_refusal`).
LOCK_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 30.0


def create_engine(
    url: str,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = POOL_MAX_OVERFLOW,
    pre_ping: bool = False,
    recycle_s: int = POOL_RECYCLE_S,
    lock_timeout_s: float = 0,
    statement_timeout_s: float = 0,
    **kwargs: Any,
) -> AsyncEngine:
    """The service's engine. SQLite (a file, no server) ignores the pool options and the timeouts. The
    timeouts (0: none, the default: the event path, migrations and the command-line tools' long work) are
    the sessions' settings from connection on, at no round trip of their own."""
    # A statement's parameters (names, ID numbers, birth dates…) stay out of error messages and tracebacks,
    # and so out of the logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, module=_ONE_HOP, connect_args={"timeout": SQLITE_WAIT_S}, **kwargs)
        engine.dialect.statement_compiler = _SQLiteCompiler

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: ConnectionPoolEntry) -> None:
            # WAL lets the relay read while a request writes; busy_timeout waits instead of failing. In WAL,
            # synchronous=NORMAL syncs at checkpoints rather than at every commit (each ~3-6 ms, under the one
            # write lock): a process crash loses nothing, a power cut may lose the last commits
            # (docs/architecture.md, Transactions). PostgreSQL, in production, is not affected.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_WAIT_S * 1000}")
            cur.close()

        return engine
    server_settings = {
        name: f"{round(seconds * 1000)}ms"
        for name, seconds in (("lock_timeout", lock_timeout_s), ("statement_timeout", statement_timeout_s))
        if seconds > 0
    }
    if server_settings:
        kwargs["connect_args"] = {"server_settings": server_settings, **kwargs.get("connect_args", {})}
    return create_async_engine(
        url,
        pool_pre_ping=pre_ping,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=recycle_s,
        **kwargs,
    )


# How long a SQLite writer waits for the database's one write lock, in this process's turn (`_WriteTurn`)
# and then at SQLite's own busy handler, before its request fails with 503.
SQLITE_WAIT_S = 30

# A statement the driver begins a transaction for, and so takes SQLite's write lock for.
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)

# SQLite has no row locks and drops FOR UPDATE; its compiler (`_SQLiteCompiler`) writes this mark in its
# place, and the driver's thread begins the write transaction before such a read.
_LOCKING_READ = "/* FOR UPDATE */"


class _SQLiteCompiler(SQLiteCompiler):
    def for_update_clause(self, select: Any, **kw: Any) -> str:
        # A claim that skips what others hold (a dispatcher's batch) is not a locking read here: it would hold
        # the one write lock while the batch goes out (a reminder gateway's calls), and an embedded
        # deployment runs one dispatcher.
        return "" if select._for_update_arg.skip_locked else " " + _LOCKING_READ


# One turn at the write lock per database file in this process, shared by all its engines' connections.
_GATES: dict[str, threading.Lock] = {}
_GATES_MADE = threading.Lock()


def _gate_for(database: str) -> "threading.Lock | None":
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = os.path.realpath(database)
    with _GATES_MADE:
        return _GATES.setdefault(path, threading.Lock())


class _WriteTurn:
    """A connection's turn at its database's one writer. SQLite lets one transaction write at a time; a
    writer that finds the lock taken sleeps in its busy handler (1, 2, 5 … up to 100 ms at a time) and looks
    again, so under load the lock stood free between a commit and the next waiter's look while waiters slept
    for hundreds of milliseconds (docs/performance.md, SQLite's flows). The writers of this process (the
    requests' and the event path's engines alike) wait for their turn on a lock of the process instead,
    woken as soon as the previous writer's transaction ends; other processes, and a turn not had within
    `SQLITE_WAIT_S`, fall back to SQLite's own waiting. Not a guarantee of anything: SQLite's lock still
    serialises the writers; the turn only orders them without the sleeps."""

    __slots__ = ("_closing", "_gate", "_held", "_mutex")

    def __init__(self, gate: "threading.Lock | None"):
        self._gate = gate
        self._held = False
        self._closing = False
        # `_held` and `_closing` are read and set from the driver's thread and the event loop's.
        self._mutex = threading.Lock()

    def take(self, connection: sqlite3.Connection, operation: str) -> None:
        """In the driver's thread, before a statement that would begin a write transaction (or a locking
        read, which begins one)."""
        if self._gate is None or self._held or connection.in_transaction:
            return
        if not (_WRITE.match(operation) or _LOCKING_READ in operation):
            return
        taken = self._gate.acquire(timeout=SQLITE_WAIT_S)
        with self._mutex:
            if not self._closing:
                self._held = taken
                return
        # A statement still queued when its connection was closed (its task cancelled while it waited):
        # the turn would be held by a connection nobody ends.
        if taken:
            self._gate.release()
        raise sqlite3.ProgrammingError("the connection is closing")

    def give_back_unless_writing(self, connection: sqlite3.Connection) -> None:
        """After a statement, a commit or a rollback: the turn ends with the transaction."""
        if self._held and not connection.in_transaction:
            self.give_back()

    def give_back(self) -> None:
        with self._mutex:
            held, self._held = self._held, False
        if held and self._gate is not None:
            self._gate.release()

    def refuse_more(self) -> None:
        """The connection closes: no turn is taken for it again (one it holds is given back once closed)."""
        with self._mutex:
            self._closing = True


def _in_driver_thread(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool, turn: _WriteTurn
) -> tuple[Any, int, int | None, list[Any]]:
    """A statement, whole, on aiosqlite's thread: its cursor made, executed, read to the end and closed."""
    turn.take(connection, operation)
    if _LOCKING_READ in operation and not connection.in_transaction:
        # Rows read to be changed are read under the write lock, as FOR UPDATE reads them on PostgreSQL:
        # a writer that read them before would otherwise write over what another committed meanwhile.
        connection.execute("BEGIN IMMEDIATE")
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()
        turn.give_back_unless_writing(connection)  # a write that failed before its transaction began


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor sends each step of a statement to aiosqlite's thread on its own (make
    the cursor, execute, fetch the rows, close: three or four hops, each a queue and a wake-up of the event
    loop, under the GIL); this one sends the statement once, whole. The same connection and transaction,
    so the same statements do the same: only the hops are fewer (docs/performance.md, SQLite's flows)."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection):
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # none kept between statements
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _async_soft_close(self) -> None:
        """Nothing to close: the statement's cursor was closed in the thread, its rows are held."""

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._whole(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._whole(operation, seq_of_parameters, many=True)

    async def _whole(self, operation: Any, parameters: Any, *, many: bool) -> Any:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        turn = cast(_OneHopConnection, self._adapt_connection).turn
        async with self._adapt_connection._execute_mutex:
            outcome = await driver._execute(  # type: ignore[no-untyped-call]
                _in_driver_thread, driver._conn, operation, parameters, many, turn
            )
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows)
        return self


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("turn",)
    _cursor_cls = _OneHopCursor  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: Any, turn: _WriteTurn):
        super().__init__(dbapi, connection)
        self.turn = turn

    # Outside a transaction there is nothing to end: a read-only request's reads (each its own transaction,
    # as the driver begins one only before a write), the pool's rollback of a connection given back after
    # its commit. No call into the thread for them.
    def rollback(self) -> None:
        try:
            if self._in_transaction():
                super().rollback()
        finally:
            self._turn_ends()

    def commit(self) -> None:
        try:
            if self._in_transaction():
                super().commit()
        finally:
            self._turn_ends()

    def close(self) -> None:
        self.turn.refuse_more()
        try:
            super().close()
        finally:
            self.turn.give_back()

    def terminate(self) -> None:
        self.turn.refuse_more()
        try:
            super().terminate()
        finally:
            self.turn.give_back()

    def _in_transaction(self) -> bool:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        # Read from the event loop's thread: nothing else runs on this connection meanwhile.
        return driver._connection is not None and driver.in_transaction

    def _turn_ends(self) -> None:
        if not self._in_transaction():
            self.turn.give_back()


def _driver_thread(tx: "queue.SimpleQueue[tuple[asyncio.Future[Any] | None, Callable[[], Any]]]") -> None:
    """aiosqlite's connection thread, but for a caller's loop that closed before its answer came. aiosqlite
    answers each call on the loop of whoever made it, and a call may outlive that loop: a connect cut off by
    a cancellation, as a service stops while its event path connects. There the answer raised in this
    thread ("Event loop is closed"), which died. Nobody is waiting for such an answer: it is dropped."""
    while True:
        future, function = tx.get()
        try:
            result = function()
        except BaseException as exc:  # the caller's to handle, handed on as aiosqlite does
            _answer(future, _set_exception, exc)
            continue
        _answer(future, _set_result, result)
        if result is aiosqlite.core._STOP_RUNNING_SENTINEL:
            return


def _answer(future: "asyncio.Future[Any] | None", how: Callable[..., None], value: Any) -> None:
    if future is None:
        return
    loop = future.get_loop()
    try:
        loop.call_soon_threadsafe(how, future, value)
    except RuntimeError:
        if not loop.is_closed():
            raise


def _set_result(future: "asyncio.Future[Any]", result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: "asyncio.Future[Any]", exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class _Connection(aiosqlite.Connection):
    """aiosqlite's connection, but for a close after its thread was told to stop (SQLAlchemy terminating a
    connection, the collector finalising one): aiosqlite then refused the close's statement and told the
    thread to stop once more, and waited for an answer the thread, ending at the first word, never gave."""

    async def close(self) -> None:
        if not self._running:  # told to stop already: the thread closes the database connection as it ends
            return
        await super().close()


def _connect(database: str, *, iter_chunk_size: int = 64, **kw: Any) -> aiosqlite.Connection:
    """`aiosqlite.connect`, its thread `_driver_thread`."""
    connection = _Connection(lambda: sqlite3.connect(database, **kw), iter_chunk_size)
    # Daemon, as SQLAlchemy makes aiosqlite's: a connection forgotten open does not hold up the exit.
    connection._thread = threading.Thread(target=_driver_thread, args=(connection._tx,), daemon=True)
    return connection


class _OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, async_creator_fn=_connect, **kw)
        database = str(arg[0] if arg else kw.get("database", ""))
        return _OneHopConnection(self, adapted._connection, _WriteTurn(_gate_for(database)))


# The SQLite engines' driver module: aiosqlite with one hop per statement.
_ONE_HOP = _OneHopDBAPI(aiosqlite, sqlite3)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # A Session subclass of its own, so session events (the outbox wake-up) attach to this factory only.
    session_class = type("ServiceSession", (Session,), {})
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=session_class)


# The request engine's limits (`create_engine`), lifted until the transaction ends.
_LIFT_LIMITS = text(
    "SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)"
)


async def lift_limits(session: AsyncSession) -> None:
    """Long work in a request's transaction (a channel's day file) waits for locks and runs as long as it
    needs, as the command-line tools do: another upload's run holding a lock this one needs is waited for,
    not refused after the request's lock limit."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_LIFT_LIMITS)


# Each request sessionmaker's twin for background work, made once.
_LONG_WORK: "WeakKeyDictionary[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]]" = (
    WeakKeyDictionary()
)


def long_work(sessionmaker: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions for a service's background work on the request engine (the roster worker, the reminder
    dispatcher): each of their transactions begins with the request's limits lifted, so a worker waits for a
    lock a request holds instead of failing its batch after the request's lock limit."""
    if sessionmaker not in _LONG_WORK:
        session_class = type("LongWorkSession", (sessionmaker.kw.get("sync_session_class", Session),), {})
        event.listen(session_class, "after_begin", _lift_on_begin)
        _LONG_WORK[sessionmaker] = async_sessionmaker(
            class_=sessionmaker.class_, **{**sessionmaker.kw, "sync_session_class": session_class}
        )
    return _LONG_WORK[sessionmaker]


def _lift_on_begin(session: Session, transaction: Any, connection: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(_LIFT_LIMITS)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def holds_changes(session: AsyncSession) -> bool:
    """Whether the session holds changes not flushed yet (new, changed or deleted records)."""
    return bool(session.new or session.dirty or session.deleted)


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed when the endpoint returns, rolled back on any error.

    Services only flush; this dependency alone commits.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    try:
        session = sessionmaker()
        try:
            try:
                yield session
                if session.in_transaction() or holds_changes(session):
                    # A request that wrote only through driver statements has nothing of the session's to
                    # commit (they ran on connections of their own, outside any transaction of its).
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise
        finally:
            # A session that never began a transaction and holds nothing (the enrollment POST's, whose
            # statements run on connections of their own) has nothing to close: closing it cost a task and a
            # greenlet round, ~20 us of the request's CPU.
            if session.in_transaction() or session.identity_map or holds_changes(session):
                async with session:  # closed in a task of its own, which a cancellation does not cut short
                    pass
        then = session.info.pop(_AFTER_COMMIT, [])
        for work in then:
            await work()
    except Exception as exc:
        refusal = _as_refusal(exc)
        if refusal is exc:
            raise
        raise refusal from exc


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """For an endpoint that only reads. On PostgreSQL its statements run outside a transaction, each seeing
    what was committed when it began, which spares the BEGIN and COMMIT round trips of a transaction that
    would change nothing; a connection bound to an outer transaction (the tests') is read inside it. Writing
    through it is a programming error: what it holds unflushed is refused, never written."""
    try:
        async with _reader_of(request.app.state.sessionmaker)() as session:
            yield session
            if holds_changes(session):
                raise RuntimeError("a read-only request changed something")
    except Exception as exc:
        refusal = _as_refusal(exc)
        if refusal is exc:
            raise
        raise refusal from exc


async def release(session: AsyncSession) -> None:
    """Give a read-only request's connection back to the pool while it waits (a long-poll); its next
    statement takes one again. What it read stays readable (detached from the session)."""
    if holds_changes(session):
        raise RuntimeError("a read-only request changed something")
    await session.close()


# Each request sessionmaker's reading twin (None: it reads as it is), made once.
_READERS: "WeakKeyDictionary[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession] | None]" = (
    WeakKeyDictionary()
)


def _reader_of(sessionmaker: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    if sessionmaker not in _READERS:
        bind = sessionmaker.kw.get("bind")
        reader = None
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
            autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")
            reader = async_sessionmaker(class_=sessionmaker.class_, **{**sessionmaker.kw, "bind": autocommit})
        _READERS[sessionmaker] = reader
    return _READERS[sessionmaker] or sessionmaker


def _as_refusal(exc: Exception) -> Exception:
    """What a request answers for an error of its database work: 503 when the database cannot serve now, the
    domain's refusals for text it cannot store and for a record written concurrently; anything else as is."""
    if (unavailable := unavailable_now(exc)) is not None:
        return unavailable
    if isinstance(exc, DBAPIError) and _sqlstate(exc) in _UNSTORABLE_TEXT:
        return InvalidCharacters()
    if unique_violation(exc) or (isinstance(exc, DBAPIError) and _sqlstate(exc) in _LOST_TO_ANOTHER):
        # A concurrent request wrote the same record first, or PostgreSQL ended this transaction to let
        # another one on: nothing of it was kept, and the caller may retry.
        return ConcurrentChange()
    return exc


def unavailable_now(exc: BaseException) -> ServiceUnavailable | None:
    """503 for an error that says the database cannot serve this now (away, overloaded, or a request's lock
    or statement limit passed), with its reason; None for any other error. For every path that answers a
    request from its own database work, the request's session (`_as_refusal`) and the sign-in session's
    check alike."""
    if (timeout := _timed_out(exc)) is not None:
        return ServiceUnavailable({"reason": timeout})
    if database_unavailable(exc):
        return ServiceUnavailable({"reason": "database_unavailable"})
    return None


def _timed_out(exc: BaseException) -> str | None:
    """`lock_timeout` or `statement_timeout` when one of the request's limits (`create_engine`) ended its
    statement: the caller may retry, nothing of the transaction was kept."""
    if not isinstance(exc, DBAPIError):
        return None
    state = _sqlstate(exc)
    if state == "55P03":  # lock_not_available: waited lock_timeout (or NOWAIT)
        return "lock_timeout"
    if state == "57014" and "statement timeout" in str(exc.orig):  # query_canceled, by the timeout
        return "statement_timeout"
    return None


# Deadlock detected, serialization failure.
_LOST_TO_ANOTHER = frozenset({"40P01", "40001"})

_AFTER_COMMIT = "canbao_after_commit"


def after_commit(session: AsyncSession, work: Callable[[], Awaitable[None]]) -> None:
    """Have `get_db_session` run `work` once the request's transaction has committed and given its
    connection back, before the response is sent; what `work` raises is the request's error. For writes that
    take no part in the request's transaction yet must be done before the caller hears back (the audit rows
    of reads, shared.audit)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(work)


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
    await _LOCK_KEYS_HELD.fetch_held(session, {"keys": sorted(set(scopes))})


# Text statements with named parameters, compiled to asyncpg's numbered ones.
_NUMBERED = PGDialect_asyncpg(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]


class DriverStatement:
    """A statement a hot path runs on PostgreSQL through the driver itself (asyncpg, which prepares it once
    per connection), on the session's connection: SQLAlchemy's execution (the cache key of the statement,
    hashed on every use, and the result's processing) cost more than the round trip. `fetchrow` runs outside
    a transaction block unless the session's has begun: a caller that needs no other statement in its
    transaction writes with one statement, which is atomic by itself; `fetch_held` begins the session's
    transaction and runs in it, among its other statements. Values go as the columns store them
    (an enum as its value); errors come as SQLAlchemy's, so a request's refusals (`_as_refusal`) and
    `unique_violation` read them as usual."""

    def __init__(self, statement: TextClause):
        compiled = statement.compile(dialect=_NUMBERED)
        self.sql = str(compiled)
        self._names = tuple(compiled.positiontup or ())

    async def fetchrow(self, session: AsyncSession, values: dict[str, Any]) -> Any:
        # Never a second connection while the request holds one (requests each holding one and waiting for
        # another would wait on each other once the pool is used up). A session that has begun its
        # transaction holds its connection: the statement runs there, inside that transaction. One that has
        # not holds none: the statement runs by itself on a connection of the pool, given back when it
        # returns, and the session stays without a transaction. Beginning the session's transaction for it
        # (to commit it empty at the request's end) cost more of a request's CPU than its round trip. No
        # BEGIN is sent either way: SQLAlchemy's adapter begins at its own first statement. A session bound
        # to a connection (the tests' outer transaction) runs it there.
        bind = session.bind
        if session.in_transaction() or not isinstance(bind, AsyncEngine):
            return await self._fetchrow(await session.connection(), values)
        raw = await _checked_out(bind)
        try:
            return await self._call(raw, "fetchrow", values)
        except asyncio.CancelledError:
            # Cut short mid-statement: the driver's connection may still be busy with it.
            raw.invalidate()
            raise
        finally:
            # Given back inside SQLAlchemy's greenlet: a connection the pool does not keep (an overflow one,
            # after a burst) is closed through the driver's adapter, which awaits; outside it the close failed
            # and left the connection open.
            await greenlet_spawn(raw.close)

    async def fetch_held(self, session: AsyncSession, values: dict[str, Any]) -> list[Any]:
        """The rows, read in the session's transaction (begun here if it was not yet), so that what the
        statement locks (FOR UPDATE, an advisory lock) stays locked until the request commits."""
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        adapted = raw.dbapi_connection
        # SQLAlchemy's asyncpg adapter begins its transaction at its first statement; one through the driver
        # must begin it first, as the adapter would, or it would run (and release its locks) on its own.
        if adapted is not None and adapted._transaction is None:
            async with adapted._execute_mutex:
                if adapted._transaction is None:
                    try:
                        await adapted._start_transaction()
                    except Exception as exc:
                        # The adapter's own error class, from the driver's: read as the driver's error.
                        self._refuse(raw, exc.__cause__ or exc)
                        raise
        rows: list[Any] = await self._run(connection, "fetch", values)
        return rows

    async def _fetchrow(self, connection: AsyncConnection, values: dict[str, Any]) -> Any:
        return await self._run(connection, "fetchrow", values)

    async def _run(self, connection: AsyncConnection, how: str, values: dict[str, Any]) -> Any:
        return await self._call(await connection.get_raw_connection(), how, values)

    async def _call(self, raw: PoolProxiedConnection, how: str, values: dict[str, Any]) -> Any:
        driver = raw.driver_connection
        assert driver is not None  # a checked-out connection
        try:
            return await getattr(driver, how)(self.sql, *[values[n] for n in self._names])
        except Exception as exc:
            self._refuse(raw, exc)
            raise

    def _refuse(self, raw: Any, exc: BaseException) -> None:
        """Raise the driver's error as SQLAlchemy's; a lost connection is invalidated, so the pool replaces
        it. Returns for an error of another kind, which the caller raises as it came."""
        lost = (
            OSError | asyncpg.InterfaceError | asyncpg.PostgresConnectionError | asyncpg.InternalClientError
        )
        if isinstance(exc, lost):
            raw.invalidate(exc)
            raise OperationalError(self.sql, None, exc, connection_invalidated=True) from exc
        if isinstance(exc, asyncpg.PostgresError):
            kind = IntegrityError if str(exc.sqlstate).startswith("23") else DBAPIError
            raise kind(self.sql, None, exc, hide_parameters=True) from exc


# A lost connection. InternalClientError: the protocol out of step, as when the server's FATAL (an operator or
# a restart ended its connection) was read while idle and the close is not yet seen.
_LOST = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.InternalClientError)


# Taken on every idempotent request: through the driver, at a fraction of SQLAlchemy's execution.
_LOCK_KEYS_HELD = DriverStatement(_LOCK_KEYS)


# Character not in repertoire (PostgreSQL refuses NUL in text), untranslatable character.
_UNSTORABLE_TEXT = ("22021", "22P05")


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", "") or "")


# SQLSTATE classes that mean the server cannot serve now: connection exception, insufficient resources,
# operator intervention (shutdown, cannot connect now), system error.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")


async def _checked_out(engine: AsyncEngine) -> PoolProxiedConnection:
    """A connection of the engine's pool, for a statement of its own. A connection the pool fails to make
    raises the driver's own error (`Engine.raw_connection` does not wrap it, as a `Connection` would): wrapped
    here as SQLAlchemy's, so that a database refusing connections is told apart (`database_unavailable`) and
    answered 503 rather than 500."""
    dialect = engine.dialect
    try:
        return await engine.raw_connection()
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc


def database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or refuses connections now: not the request's or the message's fault,
    so a request gets 503 and a consumer waits rather than dead-lettering."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | PoolTimeout):
        return True  # a pool timeout: every connection busy for pool_timeout, the server overloaded
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
ReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


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
