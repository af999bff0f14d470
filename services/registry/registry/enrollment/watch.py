"""Waiting for an enrollment to change (`GET /v1/enrollments/{id}?wait_s=…`, a long-poll), so that a front-end
waiting for "paid" need not ask again and again.

A waiter holds no database connection while it waits. It is woken as soon as a transaction of this process
that changed its enrollment commits (the payment consumer's, on its own thread, as much as a request's: the
change is noted on the session with `changed_on_commit`), and, for changes committed by another process (a
replica, another worker), by one re-check every `ENROLLMENT_WAIT_RECHECK_S` of when each waited enrollment
last changed, one query for all of them (which also finds a change committed between a waiter's read and its
wait). A wake-up is only a hint: the waiter reads the enrollment again and decides. The waiters of a process
are bounded (`ENROLLMENT_WAITERS_MAX`; beyond them 429).
"""

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.enrollment import repository
from registry.enrollment.errors import TooManyWaiting
from registry.metrics import ENROLLMENT_WAITERS

log = structlog.get_logger(__name__)

_NOTED = "canbao_changed_enrollments"


class EnrollmentWatch:
    def __init__(
        self,
        sessionmaker_of: Callable[[], async_sessionmaker[AsyncSession]],
        *,
        max_waiters: int,
        recheck_s: float,
    ):
        self._sessionmaker_of = sessionmaker_of
        self._max_waiters = max_waiters
        self._recheck_s = recheck_s
        # enrollment id -> each waiter's future and the change time it last saw
        self._waiting: dict[str, dict[asyncio.Future[None], datetime]] = {}
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rechecking: asyncio.Task[None] | None = None
        with _WATCHES_LOCK:
            _WATCHES.add(self)

    async def wait(self, enrollment_id: str, seen: datetime, timeout_s: float) -> None:
        """Until the enrollment may have changed since `seen` (its `updated_at` when last read), or until
        `timeout_s` passed; TooManyWaiting when this process has its fill of waiters."""
        if self._count >= self._max_waiters:
            raise TooManyWaiting({"max_waiters": self._max_waiters})
        self._loop = asyncio.get_running_loop()
        woken = self._loop.create_future()
        waiters = self._waiting.setdefault(enrollment_id, {})
        waiters[woken] = seen
        self._count += 1
        ENROLLMENT_WAITERS.inc()
        if self._rechecking is None or self._rechecking.done():
            self._rechecking = asyncio.create_task(self._recheck(), name="enrollment-watch-recheck")
        try:
            await asyncio.wait([woken], timeout=timeout_s)
        finally:
            self._count -= 1
            ENROLLMENT_WAITERS.dec()
            del waiters[woken]
            if not waiters:
                self._waiting.pop(enrollment_id, None)

    def wake_soon(self, enrollment_ids: Iterable[str]) -> None:
        """Wake who waits for these enrollments; callable from any thread."""
        loop = self._loop
        if self._count == 0 or loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is left waiting on it
            loop.call_soon_threadsafe(self._wake, list(enrollment_ids))

    def _wake(self, enrollment_ids: Iterable[str]) -> None:
        for enrollment_id in enrollment_ids:
            for woken in self._waiting.get(enrollment_id, {}):
                if not woken.done():
                    woken.set_result(None)

    async def _recheck(self) -> None:
        """While anyone waits: which waited enrollments changed since their waiters last looked."""
        while self._waiting:
            await asyncio.sleep(self._recheck_s)
            if not self._waiting:
                return
            try:
                async with self._sessionmaker_of()() as session:
                    changed = await repository.changed_at(session, list(self._waiting))
            except Exception as exc:  # the waiters still end at their time; the next round tries again
                log.warning("enrollment_watch_recheck_failed", error=type(exc).__name__)
                continue
            self._wake(
                enrollment_id
                for enrollment_id, waiters in self._waiting.items()
                if any(changed.get(enrollment_id) != seen for seen in waiters.values())
            )


# Every watch of this process (one per application): a commit wakes the waiters of each.
_WATCHES: "weakref.WeakSet[EnrollmentWatch]" = weakref.WeakSet()
_WATCHES_LOCK = threading.Lock()


def changed_on_commit(session: AsyncSession, enrollment_id: str) -> None:
    """Note that this transaction changes the enrollment: once it commits, whoever waits for it in this
    process is woken (after a rollback nothing is, until the next commit of the session: a needless wake-up
    only makes a waiter read again)."""
    noted: set[str] | None = session.info.get(_NOTED)
    if noted is None:
        noted = session.info[_NOTED] = set()
        event.listen(session.sync_session, "after_commit", _wake_noted)
    noted.add(enrollment_id)


def _wake_noted(session: Any) -> None:
    noted: set[str] = session.info.get(_NOTED, set())
    if not noted:
        return
    changed = list(noted)
    noted.clear()
    with _WATCHES_LOCK:
        watches = list(_WATCHES)
    for watch in watches:
        watch.wake_soon(changed)


async def get_watch(request: Request) -> EnrollmentWatch:
    watch: EnrollmentWatch = request.app.state.enrollment_watch
    return watch


Watch = Annotated[EnrollmentWatch, Depends(get_watch)]
