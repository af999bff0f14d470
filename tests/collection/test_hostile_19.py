"""Hostile review of issue 19's consumer batches, on PostgreSQL with real connections (a pool for requests,
the event path's own engine, as `shared.service` runs them): a batch holds the locks of every bill its events
touch until its one commit, while a payment locks its bills in id order: the batch takes its bills in that
order too, before applying any (shared.inbox.BatchLocks).

A test marked xfail(strict) demonstrates a defect still open; it fails the suite once the defect is fixed, so
that the mark is taken off."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from collection.main import SPEC, create_app
from collection.settings import CollectionSettings
from shared.auth import Role, dev_token
from shared.db import create_engine, create_sessionmaker
from shared.inbox import IdempotentConsumer
from tests.collection.helpers import enrollment_event, record, repricing_event
from tests.conftest import DB_PREFIX, DEFAULT_NOW

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


class Live:
    def __init__(self, client: httpx.AsyncClient, requests: AsyncEngine, events: AsyncEngine):
        self.client, self.requests, self.events = client, requests, events
        settings = CollectionSettings(
            environment="test", database_url="sqlite+aiosqlite://", consumer_max_attempts=2
        )
        # The consumer as the service builds it (its handlers and its batches' locks).
        self.consumer = IdempotentConsumer(
            settings,
            SPEC.consumes,
            create_sessionmaker(events),
            SPEC.inbox,
            SPEC.dead_letters,
            SPEC.outbox,
            SPEC.handlers,
            batch_locks=SPEC.batch_locks,
        )


@pytest.fixture
def live_url(backend: str, fresh_database: Callable[[str, str, str], str], worker: str) -> str:
    """A database of its own on the module's one backend: this test commits for real."""
    return fresh_database("collection", backend, f"{DB_PREFIX}_h19_{worker}_collection_live")


@pytest.fixture
async def live(live_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    url = live_url
    app = create_app(
        CollectionSettings(
            environment="test",
            database_url=url,
            clock_start=DEFAULT_NOW,
            reconciliation_dir=tmp_path / "reconciliation",
        )
    )
    requests, events = create_engine(url, pool_size=4), create_engine(url, pool_size=2)
    app.state.engine, app.state.sessionmaker = requests, create_sessionmaker(requests)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),  # a 500 as a client gets it
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {dev_token(Role.ADMIN)}"},
    ) as client:
        yield Live(client, requests, events)
    await requests.dispose()
    await events.dispose()


async def bill_of(live: Live, enrollment_id: str) -> dict[str, Any]:
    found = await live.client.get("/v1/bills", params={"enrollment_id": enrollment_id})
    bill: dict[str, Any] = found.json()["items"][0]
    return bill


async def blocked_on_a_lock(live: Live, count: int) -> None:
    """Until `count` sessions of the database wait for a row lock."""
    for _ in range(200):
        async with live.requests.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} sessions never waited for a lock")


async def test_a_family_payment_beside_a_consumer_batch_is_never_a_500(live: Live) -> None:
    created = [enrollment_event() for _ in range(3)]
    await live.consumer.handle_batch([record(e.to_bytes(), key=e.subject) for e in created])
    bills = [await bill_of(live, e.subject) for e in created]
    by_id = sorted(zip(bills, created, strict=True), key=lambda pair: pair[0]["bill_id"])
    (low, low_event), (middle, middle_event), (high, high_event) = by_id
    # The registry's word on three people, in one poll (a new version, the same price).
    batch = [
        record(repricing_event(e, 38000, version=2).to_bytes(), key=e.subject)
        for e in (high_event, middle_event, low_event)
    ]

    # Another transaction holds the middle bill a moment (any request settling or refunding it).
    async with live.requests.connect() as other:
        await other.begin()
        await other.execute(text("SELECT id FROM bills WHERE id = :id FOR UPDATE"), {"id": middle["bill_id"]})
        consuming = asyncio.create_task(live.consumer.handle_batch(batch))
        await blocked_on_a_lock(live, 1)  # the batch holds the high bill and waits for the middle one
        paying = asyncio.create_task(
            live.client.post(
                "/v1/payments",
                json={
                    "bill_ids": [low["bill_id"], high["bill_id"]],
                    "amount": "760.00",
                    "channel": "tax_hall",
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
        )
        await blocked_on_a_lock(live, 2)  # the payment holds the low bill and waits for the high one
        await other.rollback()
    paid = await asyncio.wait_for(paying, timeout=30)
    await asyncio.wait_for(consuming, timeout=60)

    assert paid.status_code == 201, paid.text
    assert (await live.client.get("/v1/ledger/check")).json()["ok"] is True
