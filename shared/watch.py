"""Waiting for a record to change (a long-poll), so that a front-end waiting for "billed" or "paid" need not
ask again and again: the registry's `GET /v1/enrollments/{id}?wait_s=`, collection's `GET /v1/bills?wait_s=`.

A waiter holds no database connection while it waits. It is woken as soon as a transaction of this process
that changed what it waits for commits (a consumer's, on its own thread, as much as a request's: the change is
noted on the session with `changed_on_commit`), and, for changes committed by another process (a replica,
another worker), by one re-check every `recheck_s` of each waited key's state, one query for all of them.
A change committed here between a waiter's read and its wait woke nobody: a wait for a key changed here
within the last `recheck_s` first compares that key's state with what the waiter read (one query, only
then), so that it is not left for the next re-check (it was the 1.25% of payment -> active that took a
second more at 50 concurrent flows). A wake-up is only a hint: the waiter reads again and decides. The
waiters of one watch in a process are bounded: when they are all taken, the oldest wait of the caller
holding the most (if they hold more than one) is answered at once with what it read, so that one caller
waiting again and again cannot keep everyone else out; when every caller holds one, the watch's `too_many`
error (a 429).
"""

import asyncio
import contextlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import structlog
from prometheus_client import Gauge
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.errors import DomainError

log = structlog.get_logger(__name__)

# What each waited key stands at now (absent: nothing of it yet), read in one query for many keys.
StateOf = Callable[[AsyncSession, Sequence[str]], Awaitable[Mapping[str, Hashable]]]

_NOTED = "canbao_changed_on_commit"


class ChangeWatch:
    """The waiters of one kind of record (`kind`, e.g. "enrollment"), by key."""

    def __init__(
        self,
        kind: str,
        sessionmaker_of: Callable[[], async_sessionmaker[AsyncSession]],
        state_of: StateOf,
        *,
        max_waiters: int,
        recheck_s: float,
        too_many: Callable[[], DomainError],
        gauge: Gauge,
    ):
        self.kind = kind
        self._sessionmaker_of = sessionmaker_of
        self._state_of = state_of
        self._max_waiters = max_waiters
        self._recheck_s = recheck_s
        self._too_many = too_many
        self._gauge = gauge
        # key -> each waiter's future and the state it last saw (None: nothing yet)
        self._waiting: dict[str, dict[asyncio.Future[None], Hashable]] = {}
        # caller -> their waits, oldest first; and the waits ended to make room for another caller
        self._by_caller: dict[str, list[asyncio.Future[None]]] = {}
        self._given_up: set[asyncio.Future[None]] = set()
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rechecking: asyncio.Task[None] | None = None
        # key -> when a commit of this process last changed it (monotonic), for the last `recheck_s`; noted
        # from any thread, oldest first in `_changes` to forget them in order
        self._changed_at: dict[str, float] = {}
        self._changes: deque[tuple[float, str]] = deque()
        self._changes_lock = threading.Lock()
        with _WATCHES_LOCK:
            _WATCHES.add(self)

    async def wait(self, key: str, seen: Hashable, timeout_s: float, *, caller: str) -> bool:
        """Until `key` may have changed from `seen` (its state when last read, None if there was nothing),
        or until `timeout_s` passed: True. False when the wait was ended to make room for another caller:
        answer at once with what was read. The watch's `too_many` error when this process has its fill of
        waiters, one per caller."""
        if self._count >= self._max_waiters:
            self._make_room()
        self._loop = asyncio.get_running_loop()
        woken = self._loop.create_future()
        waiters = self._waiting.setdefault(key, {})
        waiters[woken] = seen
        theirs = self._by_caller.setdefault(caller, [])
        theirs.append(woken)
        self._count += 1
        self._gauge.inc()
        if self._rechecking is None or self._rechecking.done():
            self._rechecking = asyncio.create_task(self._recheck(), name=f"{self.kind}-watch-recheck")
        started = self._loop.time()
        try:
            # (woken meanwhile by a commit, or to make room, it is done already)
            if self._changed_lately(key) and await self._differs(key, seen) and not woken.done():
                woken.set_result(None)
            # The comparison's query counts against the wait: the answer comes within `timeout_s`.
            await asyncio.wait([woken], timeout=max(0.0, timeout_s - (self._loop.time() - started)))
        finally:
            self._count -= 1
            self._gauge.dec()
            del waiters[woken]
            if not waiters:
                self._waiting.pop(key, None)
            theirs.remove(woken)
            if not theirs:
                self._by_caller.pop(caller, None)
            given_up = woken in self._given_up
            self._given_up.discard(woken)  # also when the request went away meanwhile
        return not given_up

    def _make_room(self) -> None:
        """End the oldest wait of the caller holding the most, if they hold more than one still waiting (one
        woken, or ended this way, counts until it has left); else the watch's `too_many`."""
        holding = {caller: [w for w in waits if not w.done()] for caller, waits in self._by_caller.items()}
        caller = max(holding, key=lambda c: len(holding[c]), default=None)
        if caller is None or len(holding[caller]) < 2:
            raise self._too_many()
        oldest = holding[caller][0]
        self._given_up.add(oldest)
        oldest.set_result(None)

    def wake_soon(self, keys: Iterable[str]) -> None:
        """Wake who waits for these keys; callable from any thread."""
        keys = list(keys)
        self._note_changed(keys)
        loop = self._loop
        if self._count == 0 or loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is left waiting on it
            loop.call_soon_threadsafe(self._wake, keys)

    def _note_changed(self, keys: list[str]) -> None:
        now = time.monotonic()
        with self._changes_lock:
            changes = self._changes
            while changes and now - changes[0][0] > self._recheck_s:
                _, key = changes.popleft()
                if now - self._changed_at.get(key, now) > self._recheck_s:
                    del self._changed_at[key]
            for key in keys:
                self._changed_at[key] = now
                changes.append((now, key))

    def _changed_lately(self, key: str) -> bool:
        with self._changes_lock:
            changed_at = self._changed_at.get(key)
        return changed_at is not None and time.monotonic() - changed_at <= self._recheck_s

    async def _differs(self, key: str, seen: Hashable) -> bool:
        """Whether `key` stands otherwise than `seen` now (False if that cannot be read: the re-check
        tries again)."""
        now = await self._states([key])
        return now is not None and now.get(key) != seen

    async def _states(self, keys: list[str]) -> Mapping[str, Hashable] | None:
        """What the keys stand at now, or None if that cannot be read (waiters still end at their time)."""
        try:
            async with self._sessionmaker_of()() as session:
                return await self._state_of(session, keys)
        except Exception as exc:
            log.warning("watch_recheck_failed", kind=self.kind, error=type(exc).__name__)
            return None

    def _wake(self, keys: Iterable[str]) -> None:
        for key in keys:
            for woken in self._waiting.get(key, {}):
                if not woken.done():
                    woken.set_result(None)

    async def _recheck(self) -> None:
        """While anyone waits: which waited keys stand otherwise than their waiters last saw."""
        while self._waiting:
            await asyncio.sleep(self._recheck_s)
            if not self._waiting:
                return
            now = await self._states(list(self._waiting))
            if now is None:  # the next round tries again
                continue
            self._wake(
                key
                for key, waiters in self._waiting.items()
                if any(now.get(key) != seen for seen in waiters.values())
            )


# Every watch of this process (one per kind and application): a commit wakes the waiters of its kind.
_WATCHES: "weakref.WeakSet[ChangeWatch]" = weakref.WeakSet()
_WATCHES_LOCK = threading.Lock()


def changed_on_commit(session: AsyncSession, kind: str, key: str) -> None:
    """Note that this transaction changes `key` of `kind`: once it commits, whoever waits for it in this
    process is woken (after a rollback nothing is, until the next commit of the session: a needless wake-up
    only makes a waiter read again)."""
    noted: dict[str, set[str]] | None = session.info.get(_NOTED)
    if noted is None:
        noted = session.info[_NOTED] = {}
        event.listen(session.sync_session, "after_commit", _wake_noted)
    noted.setdefault(kind, set()).add(key)


def _wake_noted(session: Any) -> None:
    noted: dict[str, set[str]] = session.info.get(_NOTED, {})
    if not noted:
        return
    changed = {kind: list(keys) for kind, keys in noted.items()}
    noted.clear()
    with _WATCHES_LOCK:
        watches = list(_WATCHES)
    for watch in watches:
        if watch.kind in changed:
            watch.wake_soon(changed[watch.kind])
