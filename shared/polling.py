"""Background loops (轮询): one step of work run over and over, at once while more is waiting, otherwise after
an interval or as soon as someone says there is work.

The outbox relay, the registry's roster worker and its reminder dispatcher each run one. `Poller.run()` is
the background task; cancelling that task stops it (a step cut short rolls its transaction back, what earlier
steps committed stays). Tests and command-line tools call `until_idle()` to do the same work in the
foreground.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

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

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        while True:
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
