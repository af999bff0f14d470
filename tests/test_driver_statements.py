"""Statements through the driver itself, on a real engine (the tests' harness binds its sessions to a
connection with a transaction begun, so its tests do not see this). On PostgreSQL
(`shared.db.DriverStatement`) inside the session's transaction they hold what they lock until that
transaction ends, and all of a session's statements take its one connection; on SQLite a statement is one
call into aiosqlite's thread, and writers of one process take turns at the write lock."""

import asyncio
import os
import threading
import uuid
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiosqlite
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from shared.db import _GATES, DriverStatement, create_engine, lock_keys
from tests.support import PG_ADMIN_URL

_TAKEN = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")


async def test_a_key_locked_through_the_driver_stays_locked_until_the_session_commits() -> None:
    engine, other = create_engine(PG_ADMIN_URL), create_async_engine(PG_ADMIN_URL)
    key = f"test:{uuid.uuid4()}"
    try:
        async with AsyncSession(engine) as session:
            await lock_keys(session, [key])
            async with other.connect() as connection:
                assert await connection.scalar(_TAKEN, {"key": key}) is False
            await session.commit()
        async with other.connect() as connection:
            assert await connection.scalar(_TAKEN, {"key": key}) is True
    finally:
        await engine.dispose()
        await other.dispose()


async def test_a_sessions_driver_statements_never_hold_a_second_connection() -> None:
    """Never a second connection while the session holds one: requests each holding one and waiting for
    another would stall once the pool is used up (here a pool of one, which waited 30 s for itself). Before
    the session's transaction begins, each statement runs by itself on a connection of the pool, given back
    when it returns, and the session is left without a transaction (nothing of its own to commit); once
    the session holds its connection, the statements take that one."""
    engine = create_engine(PG_ADMIN_URL, pool_size=1, max_overflow=0)
    one = DriverStatement(text("SELECT 1"))
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *_: checkouts.append(None))
    try:
        async with AsyncSession(engine) as session:
            assert tuple(await one.fetchrow(session, {})) == (1,)
            assert tuple(await one.fetchrow(session, {})) == (1,)
            assert not session.in_transaction()
            assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            await session.execute(text("SELECT 1"))  # the session's own statement takes the one connection
            assert tuple(await asyncio.wait_for(one.fetchrow(session, {}), 5)) == (1,)
            await session.commit()
        assert len(checkouts) == 3
    finally:
        await engine.dispose()


async def test_a_statement_on_sqlite_is_one_call_into_the_drivers_thread(tmp_path: Path) -> None:
    """aiosqlite runs the connection on a thread of its own, and each call into it is a queue and a wake-up
    of the event loop: a statement is sent there whole (executed and read in one call), a commit or
    rollback only when a transaction is open, and the same statements do the same — rows, RETURNING, the
    count of changed rows, executemany, a refusal, a rollback."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'hops.db'}")
    calls = 0
    original = aiosqlite.Connection._execute

    async def counted(connection: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(connection, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
        with patch.object(aiosqlite.Connection, "_execute", counted):
            async with AsyncSession(engine) as session:
                await session.connection()  # the pool's checkout, not counted
                calls = 0
                await session.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "a"}, {"v": "b"}])
                updated = await session.execute(text("UPDATE t SET v = v || '!' RETURNING id, v"))
                assert sorted(tuple(row) for row in updated) == [(1, "a!"), (2, "b!")]
                assert (await session.execute(text("DELETE FROM t WHERE id = 2"))).rowcount == 1  # type: ignore[attr-defined]
                assert await session.scalar(text("SELECT v FROM t")) == "a!"
                assert calls == 4
                await session.commit()
            assert calls == 5  # and the commit; the pool's rollback of the connection given back: none
            async with AsyncSession(engine) as session:  # a read-only request
                assert await session.scalar(text("SELECT count(*) FROM t")) == 1
            assert calls == 6  # the read; nothing to roll back after it
        async with AsyncSession(engine) as session:
            with pytest.raises(IntegrityError, match="UNIQUE constraint failed"):
                await session.execute(text("INSERT INTO t (v) VALUES ('a!')"))
            await session.rollback()
            await session.execute(text("INSERT INTO t (v) VALUES ('c')"))
            await session.rollback()
            assert await session.scalar(text("SELECT count(*) FROM t")) == 1
    finally:
        await engine.dispose()


async def test_the_writers_of_one_process_take_turns_and_always_give_them_back(tmp_path: Path) -> None:
    """SQLite lets one transaction write at a time, and a writer finding the lock taken sleeps and looks
    again; writers of one process wait for their turn instead, woken when the previous one's transaction
    ends, without having begun theirs. The turn ends with the transaction however it ends."""
    path = tmp_path / "turns.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")

    async def writing(session: AsyncSession, v: str) -> None:
        await session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v})

    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
        gate = _gate_of(path)
        async with AsyncSession(engine) as first, AsyncSession(engine) as second:
            await writing(first, "a")
            assert gate.locked()
            waiting = asyncio.create_task(writing(second, "b"))
            await asyncio.sleep(0.2)
            driver = (await (await second.connection()).get_raw_connection()).driver_connection
            assert driver is not None
            assert not waiting.done()
            assert not driver.in_transaction  # waiting for its turn, not inside SQLite
            await first.commit()
            await waiting
            assert gate.locked()
            await second.commit()
        assert not gate.locked()
        async with AsyncSession(engine) as refused:
            with pytest.raises(IntegrityError):
                await writing(refused, "a")
            await refused.rollback()
        assert not gate.locked()
        async with AsyncSession(engine) as abandoned:
            await writing(abandoned, "c")
        assert not gate.locked()  # closed without a commit: rolled back
        async with AsyncSession(engine) as lost:
            await writing(lost, "d")
            await (await lost.connection()).invalidate()
        assert not gate.locked()
        async with AsyncSession(engine) as session:
            assert (await session.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all() == ["a", "b"]
    finally:
        await engine.dispose()


def _gate_of(database: Path) -> threading.Lock:
    """The write turn of this process for a database file (`shared.db._WriteTurn`)."""
    return _GATES[os.path.realpath(database)]
