"""Hostile review of issue 19's long-poll (`GET /v1/enrollments/{id}?wait_s=`): who may still be answered
after waiting, and who may take every waiting place. A test marked xfail(strict) demonstrates a defect still
open; it fails the suite once the defect is fixed, so that the mark is taken off.

On SQLite only, as tests/registry/test_enrollment_wait.py's re-check test: on PostgreSQL every request of a
test shares one connection, which the sign-in session checks and a waiting request must not use at once."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.main import create_app
from registry.settings import RegistrySettings
from shared.auth import Role, dev_token
from shared.metrics import PROCESS
from tests.conftest import DEFAULT_NOW, Harness, _harness
from tests.registry.helpers import HEFEI, HEFEI_WINDOW, deliver_payment, enrolled, person
from tests.support import eventually

PASSWORD = "correct-horse-battery"


@pytest.fixture
async def registry(migrated_urls: Any, pg_engines: Any, tmp_path: Path) -> AsyncIterator[Harness]:
    app = create_app(
        RegistrySettings(
            environment="test",
            database_url="sqlite+aiosqlite://",
            clock_start=DEFAULT_NOW,
            roster_dir=tmp_path / "rosters",
            reminder_log=tmp_path / "reminders.log",
            enrollment_waiters_max=2,
            enrollment_wait_recheck_s=30,
        )
    )
    async for harness in _harness("registry", app, "sqlite", migrated_urls, pg_engines, tmp_path):
        yield harness


async def waiters() -> float:
    return PROCESS.get_sample_value("canbao_enrollment_waiters") or 0.0


async def waiting(request: Any, count: float = 1) -> "asyncio.Task[httpx.Response]":
    task = asyncio.create_task(request)

    async def there() -> bool:
        return await waiters() >= count

    await eventually(there)
    return task


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def staff_token(registry: Harness, username: str) -> tuple[str, str]:
    """A staff account of Hefei's district signed in through the API: (account id, its bearer token)."""
    opened = await registry.client.post(
        "/v1/accounts",
        json={
            "username": username,
            "display_name": "张伟",
            "role": "staff",
            "regions": [HEFEI["region_code"]],
            "password": PASSWORD,
        },
    )
    assert opened.status_code == 201, opened.text
    signed_in = await registry.client.post(
        "/v1/sessions", json={"username": username, "password": PASSWORD}, headers={"Authorization": ""}
    )
    assert signed_in.status_code == 201, signed_in.text
    return opened.json()["account_id"], signed_in.json()["access_token"]


async def test_a_wait_of_an_account_disabled_meanwhile_is_not_answered_with_the_record(
    registry: Harness,
) -> None:
    account_id, token = await staff_token(registry, "zhang.wei")
    enrollment = await enrolled(registry, person(), HEFEI)
    path = f"/v1/enrollments/{enrollment['enrollment_id']}"
    assert (await registry.client.get(path, headers=bearer(token))).status_code == 200

    waiter = await waiting(registry.client.get(path, params={"wait_s": 30}, headers=bearer(token)))
    disabled = await registry.client.post(
        f"/v1/accounts/{account_id}/deactivation", json={"reason": "调离岗位"}
    )
    assert disabled.status_code == 200, disabled.text
    # Refused at once for any new request…
    assert (await registry.client.get(path, headers=bearer(token))).status_code == 401
    await deliver_payment(registry, enrollment, HEFEI_WINDOW)

    answer = await asyncio.wait_for(waiter, timeout=15)
    # …but the wait begun before is answered with the changed record.
    assert answer.status_code == 401, (answer.status_code, answer.json())


async def test_one_caller_cannot_take_every_waiting_place(registry: Harness) -> None:
    hoarder = person()
    own = await enrolled(registry, hoarder, HEFEI)
    number = hoarder["id_number"]
    resident = dev_token(Role.RESIDENT, sub=number, id_number=number)
    other = await enrolled(registry, person(), HEFEI)
    own_path = f"/v1/enrollments/{own['enrollment_id']}"

    first = await waiting(registry.client.get(own_path, params={"wait_s": 30}, headers=bearer(resident)))
    second = await waiting(
        registry.client.get(own_path, params={"wait_s": 30}, headers=bearer(resident)), count=2
    )
    try:
        staff = dev_token(Role.STAFF, sub="staff-h19", regions=[HEFEI["region_code"]])
        theirs = await registry.client.get(
            f"/v1/enrollments/{other['enrollment_id']}", params={"wait_s": 1}, headers=bearer(staff)
        )
        assert theirs.status_code == 200, theirs.text
    finally:
        await deliver_payment(registry, own, HEFEI_WINDOW)
        await asyncio.wait_for(asyncio.gather(first, second), timeout=15)
