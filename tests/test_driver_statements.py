"""Statements a hot path sends through the driver itself (`shared.db.DriverStatement`), on a real engine (the
tests' harness binds its sessions to a connection with a transaction begun, so its tests do not see this):
inside the session's transaction they hold what they lock until that transaction ends, and all of a
session's statements take its one connection."""

import asyncio
import uuid

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from shared.db import DriverStatement, create_engine, lock_keys
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


async def test_a_sessions_driver_statements_take_its_connection_and_no_other() -> None:
    """One checkout for all of a request's driver statements, and never a second connection while the
    session holds one: requests each holding one and waiting for another would stall once the pool is used
    up (here a pool of one, which waited 30 s for itself)."""
    engine = create_engine(PG_ADMIN_URL, pool_size=1, max_overflow=0)
    one = DriverStatement(text("SELECT 1"))
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *_: checkouts.append(None))
    try:
        async with AsyncSession(engine) as session:
            assert tuple(await one.fetchrow(session, {})) == (1,)
            assert tuple(await one.fetchrow(session, {})) == (1,)
            await session.execute(text("SELECT 1"))  # the session's own statement, on the same connection
            assert tuple(await asyncio.wait_for(one.fetchrow(session, {}), 5)) == (1,)
            await session.commit()
        assert len(checkouts) == 1
    finally:
        await engine.dispose()
