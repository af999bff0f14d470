"""The SQLite engines' connections at their end. A connect cut off by a service's stop outlives the event
loop that asked: the driver's thread drops the answer nobody waits for, instead of raising in the thread
and dying (many trials: whether the loop closes before the thread answers is a race). A close after the
connection's thread was told to stop returns, instead of waiting for ever."""

import asyncio
import threading
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from shared.db import create_engine
from shared.polling import LoopThread

TRIALS = 50


def stopped_after(work: Callable[[], Coroutine[Any, Any, None]], delay_s: float) -> None:
    """`work` on an event thread of its own, stopped (as a service stops) `delay_s` after it started."""

    async def start_and_stop() -> None:
        thread = LoopThread("events", work)
        thread.start()
        await asyncio.sleep(delay_s)
        await thread.stop(timeout_s=10)

    asyncio.run(start_and_stop())


def wait_for_connection_threads() -> None:
    """The driver's connection threads (ours, or aiosqlite's own) ended, or given a moment to fail."""
    for thread in threading.enumerate():
        if "driver_thread" in thread.name or "connection_worker_thread" in thread.name:
            thread.join(5)


async def connect(path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    await engine.dispose()


# A failure in any thread (the driver's connection threads among them) fails the test.
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_connect_cut_off_by_the_stop_leaves_no_thread_failing(tmp_path: Path) -> None:
    for trial in range(TRIALS):
        # From at once to a few milliseconds on: some stops land while the connect is under way.
        stopped_after(partial(connect, tmp_path / f"{trial}.db"), delay_s=trial % 10 * 0.0005)
    wait_for_connection_threads()


SLOW = (
    "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 2000000) SELECT count(*) FROM c"
)


async def test_a_close_after_the_thread_was_told_to_stop_returns(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        async with engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            busy = asyncio.ensure_future(driver.execute(SLOW))  # the thread busy: the stop waits behind it
            await asyncio.sleep(0.05)
            driver.stop()  # as SQLAlchemy's terminate outside a greenlet, or the collector, tells it
            await asyncio.wait_for(driver.close(), 10)
            await asyncio.wait_for(busy, 10)  # the call ahead of the stop was answered
            await connection.invalidate()
    finally:
        await engine.dispose()
