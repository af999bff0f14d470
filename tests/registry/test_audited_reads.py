"""Reads are audited outside their own transaction (a group commit, shared/audit.py): each read's row is
written before its answer, and a read whose row cannot be written is not answered with the record."""

import asyncio

import httpx
import pytest
from sqlalchemy import text

from shared.auth import Role, dev_token
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, enrolled, person

ADMIN = {"Authorization": f"Bearer {dev_token(Role.ADMIN)}"}


async def reads_of(h: Harness, record: str) -> list[dict[str, object]]:
    trail = (await h.client.get("/v1/audit-events", params={"limit": 500})).json()["items"]
    return [e for e in trail if e["record"] == record and e["action"] == "read"]


async def test_each_read_of_an_enrollment_is_on_the_audit_trail_once(registry: Harness) -> None:
    enrollment = await enrolled(registry, person(), HEFEI)
    record = f"enrollment:{enrollment['enrollment_id']}"

    for _ in range(3):
        read = await registry.client.get(f"/v1/enrollments/{enrollment['enrollment_id']}")
        assert read.status_code == 200

    reads = await reads_of(registry, record)
    assert len(reads) == 3
    assert {(e["route"], e["method"], e["role"]) for e in reads} == {
        ("/v1/enrollments/{enrollment_id}", "GET", "admin")
    }


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_reads_at_once_each_have_their_row(registry: Harness) -> None:
    """Only on SQLite: on PostgreSQL a test's requests share one connection and cannot run at once."""
    enrollment = await enrolled(registry, person(), HEFEI)
    path = f"/v1/enrollments/{enrollment['enrollment_id']}"

    answers = await asyncio.gather(*(registry.client.get(path) for _ in range(20)))

    assert {a.status_code for a in answers} == {200}
    assert len(await reads_of(registry, f"enrollment:{enrollment['enrollment_id']}")) == 20


async def test_a_read_whose_audit_row_cannot_be_written_is_not_answered(registry: Harness) -> None:
    enrollment = await enrolled(registry, person(name="李四"), HEFEI)
    async with registry.sessionmaker() as session:  # the trail cannot be written (a database fault)
        await session.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
        await session.commit()

    # What the caller gets: the server's error answer (the test client would raise it instead).
    transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=ADMIN) as client:
        answer = await client.get(f"/v1/enrollments/{enrollment['enrollment_id']}")

    assert answer.status_code >= 500
    assert enrollment["enrollment_id"] not in answer.text
    assert "李四" not in answer.text


async def test_a_long_polled_read_is_on_the_audit_trail(registry: Harness) -> None:
    """`?wait_s=` reads the enrollment again after its wait, as the caller stands then: still audited."""
    enrollment = await enrolled(registry, person(), HEFEI)
    record = f"enrollment:{enrollment['enrollment_id']}"

    read = await registry.client.get(f"/v1/enrollments/{enrollment['enrollment_id']}", params={"wait_s": 1})

    assert read.status_code == 200, read.text
    assert [(e["route"], e["method"]) for e in await reads_of(registry, record)] == [
        ("/v1/enrollments/{enrollment_id}", "GET")
    ]
