"""Waiting for an enrollment's bill (`GET /v1/bills?enrollment_id=…&wait_s=…`, a long-poll), so that a
front-end that just enrolled someone need not ask again and again: the shared waiting kit (shared/watch.py)
keyed by enrollment id. The consumer's transaction that issues a bill notes it with `billed_on_commit`; bills
issued by another process (a replica, another worker) are found by a re-check every
`COLLECTION_BILL_WAIT_RECHECK_S`; the waiters of a process are bounded (`COLLECTION_BILL_WAITERS_MAX`; beyond
them 429).
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collection.billing import repository
from collection.billing.errors import TooManyWaiting
from collection.metrics import BILL_WAITERS
from shared import watch

KIND = "bill"


class BillWatch(watch.ChangeWatch):
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
            repository.billed,
            max_waiters=max_waiters,
            recheck_s=recheck_s,
            too_many=lambda: TooManyWaiting({"max_waiters": max_waiters}),
            gauge=BILL_WAITERS,
        )


def billed_on_commit(session: AsyncSession, enrollment_id: str) -> None:
    """Whoever waits for this enrollment's bill in this process is woken once this transaction commits."""
    watch.changed_on_commit(session, KIND, enrollment_id)


async def get_watch(request: Request) -> BillWatch:
    bill_watch: BillWatch = request.app.state.bill_watch
    return bill_watch


Watch = Annotated[BillWatch, Depends(get_watch)]
