"""The background loop kit (shared.polling) that the outbox relay, the roster worker and the reminder
dispatcher run on: rounds until idle, wakes, back-off after failures, and stopping by cancellation. No clock
is read: idle waits are an hour long, so a round that comes sooner came from a wake."""

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from shared.polling import LoopThread, Poller, until_idle

AN_HOUR = 3600.0
GUARD_S = 30.0  # only so that a broken loop fails the test instead of hanging it


class Rounds:
    """A step whose rounds the test scripts: each answer is returned, raised, or awaited in turn."""

    def __init__(self, *answers: bool | Exception | Callable[[], Awaitable[bool]]):
        self.answers = list(answers)
        self.calls = 0
        self.called = asyncio.Event()

    async def __call__(self) -> bool:
        self.calls += 1
        self.called.set()
        answer = self.answers.pop(0) if self.answers else False
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return await answer()
        return answer

    async def reach(self, calls: int) -> None:
        async def reached() -> None:
            while self.calls < calls:
                self.called.clear()
                await self.called.wait()

        await asyncio.wait_for(reached(), GUARD_S)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(GUARD_S):  # a loop that ignored the cancellation times out instead
            await task


async def test_until_idle_runs_rounds_while_more_is_waiting() -> None:
    step = Rounds(True, True, True, False, True)
    await until_idle(step)
    assert step.calls == 4


async def test_a_wake_ends_an_idle_wait() -> None:
    step = Rounds(False, False)
    poller = Poller(step, interval_s=AN_HOUR, failure_event="test_failed")
    task = asyncio.create_task(poller.run())
    await step.reach(1)
    await asyncio.sleep(0)  # let the loop settle into its idle wait
    assert step.calls == 1
    poller.wake()
    await step.reach(2)
    await stop(task)


async def test_a_round_reporting_more_is_followed_at_once() -> None:
    step = Rounds(True, True, False)
    task = asyncio.create_task(Poller(step, interval_s=AN_HOUR, failure_event="test_failed").run())
    await step.reach(3)
    await stop(task)


async def test_a_wake_during_a_round_is_not_lost() -> None:
    poller: Poller

    async def work_committed_meanwhile() -> bool:
        poller.wake()
        return False

    step = Rounds(work_committed_meanwhile, False)
    poller = Poller(step, interval_s=AN_HOUR, failure_event="test_failed")
    task = asyncio.create_task(poller.run())
    await step.reach(2)
    await stop(task)


async def test_failures_are_logged_recovered_from_and_backed_off(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    recoveries = 0

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    async def recover() -> None:
        nonlocal recoveries
        recoveries += 1

    monkeypatch.setattr(asyncio, "sleep", no_wait)  # back-offs pass at once
    down = ConnectionError("broker down")
    step = Rounds(down, down, down, down, down, True, down, False)
    poller = Poller(step, interval_s=0.5, failure_event="test_failed", max_backoff_s=10.0, recover=recover)
    with capture_logs() as logs:
        task = asyncio.create_task(poller.run())
        await step.reach(8)
        await stop(task)
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 1.0]  # doubling up to the bound; a success starts it over
    assert recoveries == 6
    failed = [entry for entry in logs if entry["event"] == "test_failed"]
    assert [entry["failures"] for entry in failed] == [1, 2, 3, 4, 5, 1]
    assert "broker down" in failed[0]["error"]


async def test_without_a_bound_a_failure_waits_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", no_wait)  # back-offs pass at once
    step = Rounds(RuntimeError("lost the lease"), RuntimeError("again"), False)
    task = asyncio.create_task(Poller(step, interval_s=2.0, failure_event="test_failed").run())
    await step.reach(3)
    await stop(task)
    assert waits == [2.0, 2.0]


async def test_cancelling_stops_a_round_under_way_and_is_no_failure() -> None:
    under_way = asyncio.Event()

    async def never_done() -> bool:
        under_way.set()
        await asyncio.Event().wait()
        return False

    step = Rounds(never_done)
    with capture_logs() as logs:
        task = asyncio.create_task(Poller(step, interval_s=AN_HOUR, failure_event="test_failed").run())
        await asyncio.wait_for(under_way.wait(), GUARD_S)
        await stop(task)
    assert step.calls == 1
    assert logs == []


async def test_a_stop_that_comes_with_a_wake_still_stops() -> None:
    step = Rounds(False)
    poller = Poller(step, interval_s=AN_HOUR, failure_event="test_failed")
    task = asyncio.create_task(poller.run())
    await step.reach(1)
    await asyncio.sleep(0)  # let the loop settle into its idle wait
    poller.wake()  # e.g. a request commits as the service shuts down
    await stop(task)
    assert step.calls == 1


async def test_a_poller_on_its_own_loop_thread_is_woken_from_another_loop() -> None:
    """The services' relay runs on a thread of its own; a request's commit wakes it from the request loop."""
    rounds: list[int] = []
    first, second = threading.Event(), threading.Event()

    async def step() -> bool:
        rounds.append(threading.get_ident())
        (second if first.is_set() else first).set()
        return False

    poller = Poller(step, interval_s=AN_HOUR, failure_event="test_failed")
    thread = LoopThread("test-events", poller.run)
    thread.start()
    assert await asyncio.to_thread(first.wait, GUARD_S)
    poller.wake()  # from this loop, on this thread
    assert await asyncio.to_thread(second.wait, GUARD_S)
    await thread.stop()
    assert len(rounds) == 2
    assert threading.get_ident() not in rounds


async def test_stopping_a_loop_thread_cancels_its_work_which_cleans_up_on_its_own_loop() -> None:
    started, cleaned = threading.Event(), threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    async def work() -> None:
        loops.append(asyncio.get_running_loop())
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            loops.append(asyncio.get_running_loop())
            cleaned.set()

    thread = LoopThread("test-events", work)
    thread.start()
    assert await asyncio.to_thread(started.wait, GUARD_S)
    await thread.stop(timeout_s=GUARD_S)
    assert cleaned.is_set()
    assert loops[0] is loops[1] is not asyncio.get_running_loop()


async def test_wakes_from_another_loop_before_the_next_round_begins_hand_over_to_it_once() -> None:
    """A busy service commits far more often than its relay's rounds take: the wakes that come before the
    next round begins are all answered by that round, so only the first hands over to the poller's loop (a
    write to its wake-up pipe and a turn of that loop each). A wake once a round has begun is kept for the
    round after it."""
    rounds: list[int] = []
    in_round, go_on, second = threading.Event(), threading.Event(), threading.Event()

    async def step() -> bool:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            in_round.set()
            await asyncio.to_thread(go_on.wait, GUARD_S)
        elif len(rounds) == 3:
            second.set()
        return False

    poller = Poller(step, interval_s=AN_HOUR, failure_event="test_failed")
    thread = LoopThread("test-events", poller.run)
    thread.start()
    await asyncio.sleep(0.2)  # the first round has found nothing; the poller waits
    loop = poller._loop
    assert loop is not None
    handed_over: list[object] = []
    original = loop.call_soon_threadsafe

    def counted(callback: Callable[..., object], *args: object) -> asyncio.Handle:
        if isinstance(getattr(callback, "__self__", None), asyncio.Event):  # not to_thread's own futures
            handed_over.append(callback)
        return original(callback, *args)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
    for _ in range(50):
        poller.wake()
    assert await asyncio.to_thread(in_round.wait, GUARD_S)
    for _ in range(50):
        poller.wake()  # during the second round: one more round comes
    go_on.set()
    assert await asyncio.to_thread(second.wait, GUARD_S)
    await thread.stop()
    assert len(rounds) == 3
    assert len(handed_over) == 2
