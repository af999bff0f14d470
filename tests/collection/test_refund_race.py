"""Two refunds of one bill requested at once (two officers, or a retry under another
Idempotency-Key) refund it once. On SQLite the bill's `FOR UPDATE` is not a lock and the reads run outside
the write transaction: both requests read the bill paid, then each waits for its turn at the write lock and
writes its refund."""

import asyncio

import pytest
from sqlalchemy import text

from tests.collection.test_refunds import paid_bill, refund, refund_events
from tests.conftest import Harness


async def test_two_refunds_of_one_bill_requested_at_once_refund_it_once(collection: Harness) -> None:
    if collection.backend != "sqlite":
        pytest.skip("the harness's PostgreSQL sessions share one connection: no second writer to wait for")
    bill_id = await paid_bill(collection)
    async with collection.sessionmaker() as writer:
        # Another writer holds the write lock while both requests read the bill.
        await writer.execute(text("UPDATE bills SET updated_at = updated_at WHERE 1 = 0"))
        both = asyncio.gather(
            refund(collection, bill_id, "death", key="r-1"), refund(collection, bill_id, "death", key="r-2")
        )
        await asyncio.sleep(0.5)
        await writer.commit()
    answers = sorted(r.status_code for r in await both)

    assert len(await refund_events(collection)) == 1, answers
    assert answers[0] == 201, answers
    assert answers[1] in (409, 503), answers
