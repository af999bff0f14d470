"""Waiting for an enrollment to change (`GET /v1/enrollments/{id}?wait_s=…`, a long-poll), so that a front-end
waiting for "paid" need not ask again and again: the shared waiting kit (shared/watch.py) keyed by enrollment,
its state the enrollment's `updated_at`. A transaction that changes an enrollment notes it with
`changed_on_commit`; other processes' changes are found by a re-check every `ENROLLMENT_WAIT_RECHECK_S`; the
waiters of a process are bounded (`ENROLLMENT_WAITERS_MAX`; beyond them 429).
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.enrollment import repository
from registry.enrollment.errors import TooManyWaiting
from registry.metrics import ENROLLMENT_WAITERS
from shared import watch

KIND = "enrollment"


class EnrollmentWatch(watch.ChangeWatch):
    def __init__(
        self,
        sessionmaker_of: Callable[[], async_sessionmaker[AsyncSession]],
        *,
        max_waiters: int,
        recheck_s: float,
    ):
        super().__init__(
            KIND,
            sessionmaker_of,
            repository.changed_at,
            max_waiters=max_waiters,
            recheck_s=recheck_s,
            too_many=lambda: TooManyWaiting({"max_waiters": max_waiters}),
            gauge=ENROLLMENT_WAITERS,
        )


def changed_on_commit(session: AsyncSession, enrollment_id: str) -> None:
    """Whoever waits for this enrollment in this process is woken once this transaction commits."""
    watch.changed_on_commit(session, KIND, enrollment_id)


async def get_watch(request: Request) -> EnrollmentWatch:
    enrollment_watch: EnrollmentWatch = request.app.state.enrollment_watch
    return enrollment_watch


Watch = Annotated[EnrollmentWatch, Depends(get_watch)]
