"""The waiting kit (shared.watch) behind the long-polls: a commit of this process that changes a waited key
wakes its waiters, also when it came between the waiter's read and its wait. No clock is read: re-checks and
waits are an hour apart, so a waiter answered sooner was answered by the commit."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence

import pytest
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from shared.errors import DomainError
from shared.watch import ChangeWatch, changed_on_commit

AN_HOUR = 3600.0
GUARD_S = 30.0  # only so that a broken watch fails the test instead of hanging it
KIND = "test-thing"


class Things:
    """What the waited keys stand at (as a table would), and how often the watch read it."""

    def __init__(self) -> None:
        self.state: dict[str, int] = {}
        self.reads = 0
        self.read = asyncio.Event()
        self.while_reading: Callable[[], Awaitable[None]] | None = None  # happens during the next read

    async def state_of(self, session: AsyncSession, keys: Sequence[str]) -> Mapping[str, Hashable]:
        self.reads += 1
        self.read.set()
        if self.while_reading is not None:
            during, self.while_reading = self.while_reading, None
            await during()
        return {key: self.state[key] for key in keys if key in self.state}


@pytest.fixture
async def sessionmaker() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine("sqlite+aiosqlite://")
    yield async_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def things() -> Things:
    return Things()


@pytest.fixture
def watch(things: Things, sessionmaker: async_sessionmaker[AsyncSession]) -> ChangeWatch:
    return ChangeWatch(
        KIND,
        lambda: sessionmaker,
        things.state_of,
        max_waiters=10,
        recheck_s=AN_HOUR,
        too_many=DomainError,
        gauge=Gauge("test_waiters", "waiters", registry=CollectorRegistry()),
    )


async def change(sessionmaker: async_sessionmaker[AsyncSession], things: Things, key: str) -> None:
    """A transaction of this process that changes `key`, committed."""
    async with sessionmaker() as session:
        things.state[key] = things.state.get(key, 0) + 1
        changed_on_commit(session, KIND, key)
        await session.commit()


async def woken_only_by_a_change(
    waiter: "asyncio.Task[bool]", sessionmaker: async_sessionmaker[AsyncSession], things: Things, key: str
) -> None:
    """The waiter still waits, and a commit changing `key` ends its wait."""
    assert not waiter.done()
    await change(sessionmaker, things, key)
    assert await asyncio.wait_for(waiter, GUARD_S) is True


async def test_a_commit_wakes_who_waits(
    sessionmaker: async_sessionmaker[AsyncSession], things: Things, watch: ChangeWatch
) -> None:
    waiter = asyncio.create_task(watch.wait("a", None, AN_HOUR, caller="x"))
    await asyncio.sleep(0)  # it waits

    await change(sessionmaker, things, "a")

    assert await asyncio.wait_for(waiter, GUARD_S) is True


async def test_a_commit_between_the_read_and_the_wait_is_not_missed(
    sessionmaker: async_sessionmaker[AsyncSession], things: Things, watch: ChangeWatch
) -> None:
    seen = things.state.get("a")  # the waiter reads: nothing yet

    await change(sessionmaker, things, "a")  # committed before the waiter waits: nobody to wake yet

    assert await asyncio.wait_for(watch.wait("a", seen, AN_HOUR, caller="x"), GUARD_S) is True


async def test_a_change_the_waiter_read_does_not_end_its_wait(
    sessionmaker: async_sessionmaker[AsyncSession], things: Things, watch: ChangeWatch
) -> None:
    await change(sessionmaker, things, "a")
    seen = things.state["a"]  # the waiter read the change

    waiter = asyncio.create_task(watch.wait("a", seen, AN_HOUR, caller="x"))
    await asyncio.wait_for(things.read.wait(), GUARD_S)  # it compared what it read with the key's state
    await asyncio.sleep(0)

    await woken_only_by_a_change(waiter, sessionmaker, things, "a")


async def test_a_key_not_changed_here_is_not_read_before_waiting(
    sessionmaker: async_sessionmaker[AsyncSession], things: Things, watch: ChangeWatch
) -> None:
    await change(sessionmaker, things, "b")

    waiter = asyncio.create_task(watch.wait("a", None, AN_HOUR, caller="x"))
    await asyncio.sleep(0.05)  # time for a read it should not make
    assert things.reads == 0

    await woken_only_by_a_change(waiter, sessionmaker, things, "a")


async def test_a_commit_while_the_waiter_compares_wakes_it_once(
    sessionmaker: async_sessionmaker[AsyncSession], things: Things, watch: ChangeWatch
) -> None:
    seen = things.state.get("a")
    await change(sessionmaker, things, "a")

    async def another_commit() -> None:
        await change(sessionmaker, things, "a")
        await asyncio.sleep(0)  # its wake-up reaches the waiter before the comparison ends

    things.while_reading = another_commit

    assert await asyncio.wait_for(watch.wait("a", seen, AN_HOUR, caller="x"), GUARD_S) is True
