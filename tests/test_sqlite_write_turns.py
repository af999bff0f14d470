"""SQLite's writers of one process take turns at the write lock (`shared.db`); a writer's turn
must end however its connection ends. A writer still waiting for its turn when its task is cancelled again
while SQLAlchemy closes its connection (as anyio's cancel scopes do, delivering the cancellation at every
await until the task ends; or a shutdown that cancels twice) has its connection closed by force: the turn is
given back at once, before its thread, still waiting, takes it; the thread then takes it, writes into a
connection about to close, and nobody gives it back. Every later writer of the file in the process then
waits its whole SQLITE_WAIT_S (30 s) for a turn that never comes, before SQLite's own waiting."""

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from shared import db


async def test_a_writer_cancelled_while_waiting_for_its_turn_leaves_no_turn_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "SQLITE_WAIT_S", 3)  # the turn's wait, shortened for the test
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    sessionmaker = db.create_sessionmaker(engine)

    async def write(value: int) -> None:
        async with sessionmaker() as session:
            await session.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
            await session.commit()

    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (v INTEGER)"))
        async with sessionmaker() as first:
            await first.execute(text("INSERT INTO t (v) VALUES (1)"))  # its turn, until it commits
            waiting = asyncio.create_task(write(2))
            await asyncio.sleep(0.3)  # the second writer waits for its turn
            for _ in range(3):
                waiting.cancel()
                await asyncio.sleep(0.1)
            await first.commit()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting

        started = time.monotonic()
        await write(3)
        waited = time.monotonic() - started
        async with sessionmaker() as session:
            written = (await session.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all()
    finally:
        await engine.dispose()
    assert written == [1, 3]
    assert waited < 1.0, f"the next writer waited {waited:.1f} s for a turn nobody held"
