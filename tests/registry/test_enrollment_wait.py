"""Waiting for an enrollment to change (`GET /v1/enrollments/{id}?wait_s=`): a front-end waiting for "paid"
asks once and is answered when the payment's confirmation is applied."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from registry.enrollment.models import Enrollment, EnrollmentStatus
from registry.main import create_app
from registry.settings import RegistrySettings
from shared.auth import Role, dev_token
from shared.clock import utc_now
from shared.metrics import PROCESS
from tests.conftest import DEFAULT_NOW, Harness, _harness
from tests.registry.helpers import HEFEI, HEFEI_WINDOW, deliver_payment, enrolled, person
from tests.support import eventually, resident_id


async def _registry(
    backend: str,
    migrated_urls: Any,
    pg_engines: Any,
    tmp_path: Path,
    **settings: Any,
) -> AsyncIterator[Harness]:
    app = create_app(
        RegistrySettings(
            environment="test",
            database_url="sqlite+aiosqlite://",
            clock_start=DEFAULT_NOW,
            roster_dir=tmp_path / "rosters",
            reminder_log=tmp_path / "reminders.log",
            **settings,
        )
    )
    async for harness in _harness("registry", app, backend, migrated_urls, pg_engines, tmp_path):
        yield harness


@pytest.fixture
async def registry(
    backend: str, migrated_urls: Any, pg_engines: Any, tmp_path: Path
) -> AsyncIterator[Harness]:
    """One waiter at a time, and no re-check while a test runs: on PostgreSQL every request of a test shares
    one connection, which the re-check must not use at the same time as the test's own requests."""
    async for harness in _registry(
        backend,
        migrated_urls,
        pg_engines,
        tmp_path,
        enrollment_waiters_max=1,
        enrollment_wait_recheck_s=30,
    ):
        yield harness


async def waiters() -> float:
    """How many requests wait, as GET /metrics shows it (read here from the process's metrics: a request
    for them would read the database beside the test's own, on one connection on PostgreSQL)."""
    return PROCESS.get_sample_value("canbao_enrollment_waiters") or 0.0


async def waiting(request: Any) -> "asyncio.Task[httpx.Response]":
    """`request` started, once it waits."""
    task = asyncio.create_task(request)
    await eventually(waiters)
    return task


async def test_a_waiting_request_is_answered_when_the_payment_is_applied(registry: Harness) -> None:
    enrollment = await enrolled(registry, person(), HEFEI)
    path = f"/v1/enrollments/{enrollment['enrollment_id']}"

    waiter = await waiting(registry.client.get(path, params={"wait_s": 30}))
    await deliver_payment(registry, enrollment, HEFEI_WINDOW)  # the consumer applies collection's event

    # Woken by the payment's commit, long before its 30 seconds are up.
    answer = await asyncio.wait_for(waiter, timeout=15)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "active"
    assert answer.json()["payment_id"] is not None
    assert await waiters() == 0


async def test_a_wait_ends_unchanged_when_nothing_happens(registry: Harness) -> None:
    enrollment = await enrolled(registry, person(), HEFEI)

    answer = await registry.client.get(f"/v1/enrollments/{enrollment['enrollment_id']}", params={"wait_s": 1})

    assert answer.status_code == 200, answer.text
    assert answer.json() == enrollment | {"notices": []}


async def test_a_caller_that_knows_an_older_state_is_answered_at_once(registry: Harness) -> None:
    enrollment = await enrolled(registry, person(), HEFEI)
    await deliver_payment(registry, enrollment, HEFEI_WINDOW)

    answer = await asyncio.wait_for(
        registry.client.get(
            f"/v1/enrollments/{enrollment['enrollment_id']}",
            params={"wait_s": 30, "known_status": "pending_payment", "known_price_version": 1},
        ),
        timeout=15,
    )

    assert answer.json()["status"] == "active"


async def test_nobody_waits_for_another_persons_enrollment(registry: Harness) -> None:
    enrollment = await enrolled(registry, person(), HEFEI)
    path = f"/v1/enrollments/{enrollment['enrollment_id']}"
    someone_else = resident_id()
    resident = dev_token(Role.RESIDENT, sub=someone_else, id_number=someone_else)
    elsewhere = dev_token(Role.STAFF, regions=["340102"])

    for token, code in ((resident, "not_your_record"), (elsewhere, "outside_area")):
        refused = await registry.client.get(
            path, params={"wait_s": 30}, headers={"Authorization": f"Bearer {token}"}
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == code
    assert await waiters() == 0


async def test_waiters_beyond_the_bound_are_refused_with_429(registry: Harness) -> None:
    enrollment = await enrolled(registry, person(), HEFEI)
    path = f"/v1/enrollments/{enrollment['enrollment_id']}"
    first = await waiting(registry.client.get(path, params={"wait_s": 30}))

    refused = await registry.client.get(path, params={"wait_s": 30})
    answered = await registry.client.get(path)  # asking without waiting is still served

    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "too_many_waiting"
    assert refused.headers["Retry-After"]
    assert answered.status_code == 200
    await deliver_payment(registry, enrollment, HEFEI_WINDOW)
    assert (await asyncio.wait_for(first, timeout=15)).json()["status"] == "active"


@pytest.mark.parametrize("backend", ["sqlite"])  # see below
async def test_a_change_committed_by_another_process_is_found_by_the_recheck(
    backend: str, migrated_urls: Any, pg_engines: Any, tmp_path: Path
) -> None:
    """Only on SQLite: the re-check runs beside the test's own statements, which on PostgreSQL share one
    connection (the test's transaction)."""
    async for h in _registry(backend, migrated_urls, pg_engines, tmp_path, enrollment_wait_recheck_s=0.2):
        enrollment = await enrolled(h, person(), HEFEI)
        waiter = await waiting(
            h.client.get(f"/v1/enrollments/{enrollment['enrollment_id']}", params={"wait_s": 30})
        )
        # Another replica applied the payment: nothing in this process hears of it.
        async with h.sessionmaker() as session:
            await session.execute(
                update(Enrollment)
                .where(Enrollment.id == enrollment["enrollment_id"])
                .values(status=EnrollmentStatus.ACTIVE, updated_at=utc_now())
            )
            await session.commit()

        answer = await asyncio.wait_for(waiter, timeout=15)
        assert answer.json()["status"] == "active"
