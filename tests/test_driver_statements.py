"""Statements a hot path sends through the driver itself (`shared.db.DriverStatement`) inside the session's
transaction hold what they lock until that transaction ends: on a real engine, where the statement begins
the transaction itself (the tests' harness begins it beforehand, so its tests do not see this)."""

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from shared.db import create_engine, lock_keys
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
