"""Background loops (轮询): one step of work run over and over, at once while more is waiting, otherwise after
an interval or as soon as someone says there is work.

The outbox relay, the registry's roster worker and its reminder dispatcher each run one. `Poller.run()` is
the background task; cancelling that task stops it (a step cut short rolls its transaction back, what earlier
steps committed stays). Tests and command-line tools call `until_idle()` to do the same work in the
foreground. `LoopThread` runs such tasks on an event loop of their own, in a thread, so that a busy request
loop does not hold them up (the services' event path: outbox relay and consumer).
"""

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# One round of work; True when more may be waiting, so the next round starts at once.
Step = Callable[[], Awaitable[bool]]


async def until_idle(step: Step) -> None:
    """Run `step` until it finds nothing more to do."""
    while await step():
        pass


class Poller:
    """Runs `step` until cancelled. After a round that found no more work it waits `interval_s`, or less when
    `wake()` is called (a wake during a round is kept, so work committed meanwhile is not left waiting).

    A failing round is logged as `failure_event`, `recover` runs, and the next round waits a back-off that
    doubles from `interval_s` up to `max_backoff_s` (by default `interval_s`: a steady retry). Wakes do not
    cut a back-off short: commits keep coming while a database or broker is down, and must not turn the
    retries into a hammering."""

    def __init__(
        self,
        step: Step,
        *,
        interval_s: float,
        failure_event: str,
        max_backoff_s: float | None = None,
        recover: Callable[[], Awaitable[None]] | None = None,
    ):
        self._step = step
        self._interval_s = interval_s
        self._max_backoff_s = interval_s if max_backoff_s is None else max_backoff_s
        self._failure_event = failure_event
        self._recover = recover
        self._wake = asyncio.Event()
        # A wake not yet taken by a round (cleared as a round begins, before it looks for work): the round to
        # come sees whatever was committed before the wakes that find it set, so they need not hand over
        # again. Each hand-over to another thread's loop is a write to its wake-up pipe and a turn of that
        # loop, per commit of a busy service.
        self._pending = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Start the next round now; safe to call from any thread (a commit on another loop)."""
        if self._pending:
            return
        self._pending = True
        loop = self._loop
        if loop is None or loop is _running_loop():
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        failures = 0
        while True:
            self._pending = False
            self._wake.clear()
            try:
                more = await self._step()
            except Exception as exc:  # e.g. a database or broker outage: committed progress is kept
                failures += 1
                log.warning(self._failure_event, error=repr(exc), failures=failures)
                if self._recover is not None:
                    await self._recover()
                await asyncio.sleep(min(self._interval_s * 2**failures, self._max_backoff_s))
                continue
            failures = 0
            if not more:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives
                # with a wake, and the loop would outlive its service's shutdown.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval_s):
                        await self._wake.wait()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # optional (not on every platform): the default loop without it
    except ImportError:
        return None
    return uvloop.new_event_loop


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # called outside any loop
        return None


class LoopThread:
    """Runs one coroutine on an event loop of its own, in a daemon thread, until `stop()`.

    What runs there must not share loop-bound objects (database connections, Kafka clients) with the
    caller's loop: it makes its own. Python switches threads at least every few milliseconds, so work here
    goes on while the caller's loop is saturated by requests, instead of waiting a whole turn of that loop
    at each await."""

    def __init__(self, name: str, main: Callable[[], Coroutine[Any, Any, None]]):
        self._name = name
        self._main = main
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        # uvloop (uvicorn's standard extra, as the request loop runs on) where installed: less CPU per turn.
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._main(), name=self._name)
        self._started.set()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            log.error("loop_thread_failed", thread=self._name, error=repr(exc))

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Cancel the coroutine (what it holds is released on its own loop) and wait for the thread."""
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left to cancel
                self._loop.call_soon_threadsafe(self._task.cancel)
        await asyncio.to_thread(self._thread.join, timeout_s)
        if self._thread.is_alive():
            log.warning("loop_thread_did_not_stop", thread=self._name, timeout_s=timeout_s)
