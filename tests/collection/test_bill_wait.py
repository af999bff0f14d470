"""Waiting for an enrollment's bill (`GET /v1/bills?enrollment_id=…&wait_s=…`): a front-end that just enrolled
someone asks once and is answered when collection's consumer has issued the bill."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from collection.billing.models import Bill, BillStatus
from collection.main import create_app
from collection.settings import CollectionSettings
from shared.clock import utc_now
from shared.events import EnrollmentCreated
from shared.metrics import PROCESS
from tests.collection.helpers import deliver, enrollment_event, resident_token
from tests.conftest import DEFAULT_NOW, Harness, _harness
from tests.support import eventually, resident_id


async def _collection(
    backend: str, migrated_urls: Any, pg_engines: Any, tmp_path: Path, **settings: Any
) -> AsyncIterator[Harness]:
    app = create_app(
        CollectionSettings(
            environment="test",
            database_url="sqlite+aiosqlite://",
            clock_start=DEFAULT_NOW,
            reconciliation_dir=tmp_path / "reconciliation",
            **settings,
        )
    )
    async for harness in _harness("collection", app, backend, migrated_urls, pg_engines, tmp_path):
        yield harness


@pytest.fixture
async def collection(
    backend: str, migrated_urls: Any, pg_engines: Any, tmp_path: Path
) -> AsyncIterator[Harness]:
    """One waiter at a time, and no re-check while a test runs: on PostgreSQL every request of a test shares
    one connection, which the re-check must not use at the same time as the test's own requests."""
    async for harness in _collection(
        backend, migrated_urls, pg_engines, tmp_path, bill_waiters_max=1, bill_wait_recheck_s=30
    ):
        yield harness


async def waiters() -> float:
    """How many requests wait, as GET /metrics shows it (read from the process's metrics: a request for them
    would read the database beside the test's own, on one connection on PostgreSQL)."""
    return PROCESS.get_sample_value("canbao_bill_waiters") or 0.0


async def waiting(request: Any) -> "asyncio.Task[httpx.Response]":
    """`request` started, once it waits."""
    task = asyncio.create_task(request)
    await eventually(waiters)
    return task


def wait_for(enrollment_id: str, wait_s: int = 30) -> dict[str, Any]:
    return {"enrollment_id": enrollment_id, "wait_s": wait_s}


async def test_a_waiting_request_is_answered_when_the_consumer_issues_the_bill(collection: Harness) -> None:
    event = enrollment_event(38000)
    waiter = await waiting(collection.client.get("/v1/bills", params=wait_for(event.subject)))

    await deliver(collection, event)  # the consumer applies the registry's event and commits

    # Woken by the consumer's commit, long before its 30 seconds are up.
    answer = await asyncio.wait_for(waiter, timeout=15)
    assert answer.status_code == 200, answer.text
    [bill] = answer.json()["items"]
    assert bill["enrollment_id"] == event.subject
    assert bill["amount_due"] == "380.00"
    assert await waiters() == 0


async def test_a_wait_ends_with_no_bills_when_none_is_issued(collection: Harness) -> None:
    answer = await collection.client.get("/v1/bills", params=wait_for(str(uuid.uuid4()), wait_s=1))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"items": []}
    assert await waiters() == 0


async def test_an_enrollment_already_billed_is_answered_at_once(collection: Harness) -> None:
    event = enrollment_event(38000)
    await deliver(collection, event)

    answer = await asyncio.wait_for(
        collection.client.get("/v1/bills", params=wait_for(event.subject)), timeout=15
    )

    assert [b["enrollment_id"] for b in answer.json()["items"]] == [event.subject]


async def test_a_resident_waiting_for_another_persons_bill_is_refused_when_it_comes(
    collection: Harness,
) -> None:
    event = enrollment_event(38000)
    someone_else = resident_id()
    headers = {"Authorization": f"Bearer {resident_token(someone_else)}"}
    asking = collection.client.get("/v1/bills", params=wait_for(event.subject), headers=headers)
    waiter = await waiting(asking)

    await deliver(collection, event)

    refused = await asyncio.wait_for(waiter, timeout=15)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "not_your_record"


async def test_a_resident_waits_for_their_own_bill(collection: Harness) -> None:
    event = enrollment_event(38000)
    own = event.payload(EnrollmentCreated).id_number
    headers = {"Authorization": f"Bearer {resident_token(own)}"}
    asking = collection.client.get("/v1/bills", params=wait_for(event.subject), headers=headers)
    waiter = await waiting(asking)

    await deliver(collection, event)

    answer = await asyncio.wait_for(waiter, timeout=15)
    assert answer.status_code == 200, answer.text
    assert [b["enrollment_id"] for b in answer.json()["items"]] == [event.subject]


async def test_waiters_beyond_the_bound_are_refused_with_429(collection: Harness) -> None:
    event = enrollment_event(38000)
    first = await waiting(collection.client.get("/v1/bills", params=wait_for(event.subject)))

    refused = await collection.client.get("/v1/bills", params=wait_for(event.subject))
    answered = await collection.client.get("/v1/bills", params={"enrollment_id": event.subject})

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "too_many_waiting"
    assert refused.headers["Retry-After"]
    assert answered.status_code == 200
    assert answered.json() == {"items": []}  # asking without waiting is still served
    await deliver(collection, event)
    assert len((await asyncio.wait_for(first, timeout=15)).json()["items"]) == 1


@pytest.mark.parametrize(
    "params",
    [{"wait_s": 5}, {"wait_s": 5, "enrollment_id": ["a", "b"]}],
    ids=["no enrollment", "two enrollments"],
)
async def test_a_wait_names_exactly_one_enrollment(collection: Harness, params: dict[str, Any]) -> None:
    refused = await collection.client.get("/v1/bills", params=params)

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "wait_needs_one_enrollment"
    assert await waiters() == 0


async def test_a_wait_is_bounded_to_thirty_seconds(collection: Harness) -> None:
    refused = await collection.client.get("/v1/bills", params=wait_for(str(uuid.uuid4()), wait_s=31))

    assert refused.status_code == 422, refused.text


@pytest.mark.parametrize("backend", ["sqlite"])  # see below
async def test_a_bill_issued_by_another_process_is_found_by_the_recheck(
    backend: str, migrated_urls: Any, pg_engines: Any, tmp_path: Path
) -> None:
    """Only on SQLite: the re-check runs beside the test's own statements, which on PostgreSQL share one
    connection (the test's transaction)."""
    async for h in _collection(backend, migrated_urls, pg_engines, tmp_path, bill_wait_recheck_s=0.2):
        enrollment_id = str(uuid.uuid4())
        waiter = await waiting(h.client.get("/v1/bills", params=wait_for(enrollment_id)))
        # Another replica's consumer issued the bill: nothing in this process hears of it.
        async with h.sessionmaker() as session:
            session.add(
                Bill(
                    id=str(uuid.uuid4()),
                    enrollment_id=enrollment_id,
                    document_type="resident_id",
                    id_number=resident_id(),
                    payer_name="王五",
                    region_code="340104",
                    coverage_year=2024,
                    amount_due_fen=38000,
                    price_version=1,
                    payable_until=date(2023, 12, 31),
                    coverage_start=date(2024, 1, 1),
                    coverage_end=date(2024, 12, 31),
                    status=BillStatus.OPEN,
                    created_at=utc_now(),
                )
            )
            await session.commit()

        answer = await asyncio.wait_for(waiter, timeout=15)
        assert [b["enrollment_id"] for b in answer.json()["items"]] == [enrollment_id]


async def test_a_bill_read_after_a_wait_is_on_the_audit_trail(collection: Harness) -> None:
    """A long-poll is a read like any other: the bill it answers with is audited."""
    event = enrollment_event(38000)
    waiter = await waiting(collection.client.get("/v1/bills", params=wait_for(event.subject)))
    await deliver(collection, event)
    [bill] = (await asyncio.wait_for(waiter, timeout=15)).json()["items"]

    trail = (await collection.client.get("/v1/audit-events", params={"limit": 500})).json()["items"]
    assert [
        e["route"] for e in trail if e["record"] == f"bill:{bill['bill_id']}" and e["action"] == "read"
    ] == ["/v1/bills"]
