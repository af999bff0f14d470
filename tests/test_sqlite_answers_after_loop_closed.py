"""An SQLite call that outlives the event loop that made it, as on a service's event thread when the service
stops: a connect cut off by the stop, a connection nobody closed finalised by the collector just before.
The driver's thread drops the answer nobody waits for, instead of raising in the thread and dying with its
work undone. Many trials: whether the loop closes before the thread answers is a race."""

import asyncio
import gc
import threading
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.db import create_engine
from shared.polling import LoopThread

TRIALS = 20


@pytest.fixture
def thread_failures() -> Iterator[list[BaseException]]:
    """What was raised in any thread meanwhile (the driver's connection threads among them)."""
    failures: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value or RuntimeError(args.exc_type))
    try:
        yield failures
    finally:
        threading.excepthook = previous


def on_an_event_thread(work: Callable[[], Awaitable[None]], *, cut_off: bool) -> None:
    """`work` on an event thread of its own, stopped (a service stopping) at once if `cut_off`, else once
    it is done."""

    async def start_and_stop() -> None:
        done = threading.Event()

        async def run() -> None:
            await work()
            done.set()

        thread = LoopThread("events", run)
        thread.start()
        if not cut_off:
            assert await asyncio.to_thread(done.wait, 10)
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


async def abandon(path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    connection = await engine.connect()
    await connection.execute(text("SELECT 1"))
    del connection  # never closed: the collector finalises it, and its thread is told to stop
    gc.collect()


# The connection abandoned on purpose: SQLAlchemy says so.
@pytest.mark.filterwarnings("ignore:The garbage collector is trying to clean up non-checked-in connection")
@pytest.mark.parametrize(
    ("work", "cut_off"),
    [(connect, True), (abandon, False)],
    ids=["a connect cut off by the stop", "a connection nobody closed, finalised before the stop"],
)
def test_a_call_answered_after_its_loop_closed_leaves_no_thread_failing(
    work: Callable[[Path], Awaitable[None]],
    cut_off: bool,
    tmp_path: Path,
    thread_failures: list[BaseException],
) -> None:
    for trial in range(TRIALS):
        on_an_event_thread(partial(work, tmp_path / f"{trial}.db"), cut_off=cut_off)
    wait_for_connection_threads()
    assert thread_failures == []
