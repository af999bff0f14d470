"""A request stuck behind a lock, or a statement running too long, is refused with 503 and a reason once the
service's limit passes (`DATABASE_LOCK_TIMEOUT_S`, `DATABASE_STATEMENT_TIMEOUT_S`), instead of waiting for as
long as the other transaction lasts: the service as it runs (its own lifespan and engine) on PostgreSQL."""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from structlog.testing import capture_logs

from registry.main import create_app
from shared.db import long_work
from tests.conftest import DB_PREFIX
from tests.registry.helpers import HEFEI, person, served_settings
from tests.spreadsheets import csv_bytes
from tests.support import (
    eventually,
    free_port,
    held,
    in_process,
    problem,
    resident_id,
    scalar_on,
)

# Far beyond the limits the tests set: a request still waiting then is one that waits for the lock's holder.
BOUND_S = 20.0
# What a request changing the enrollment holds until it ends.
LOCK_ENROLLMENT = "SELECT id FROM enrollments WHERE id = :id FOR UPDATE"
TIMEOUTS = ("lock_timeout", "statement_timeout")  # equal limits: whichever ends the wait first
DEATH = {"reason": "death", "evidence_ref": "死亡证明 NO.0099", "reported_by": "staff-07"}

Serving = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, FastAPI]]]


@pytest.fixture(scope="module")
def database_url(fresh_database: Callable[[str, str, str], str], worker: str) -> str:
    return fresh_database("registry", "postgresql", f"{DB_PREFIX}_{worker}_timeouts")


@pytest.fixture
def serving(database_url: str, tmp_path: Path) -> Serving:
    @asynccontextmanager
    async def serve(
        *, lock_timeout_s: float, statement_timeout_s: float
    ) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
        settings = served_settings(
            database_url,
            tmp_path,
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",  # no broker: events wait in the outbox
            database_lock_timeout_s=lock_timeout_s,
            database_statement_timeout_s=statement_timeout_s,
        )
        app = create_app(settings)
        async with in_process(app) as client:
            yield client, app

    return serve


async def an_enrollment(client: httpx.AsyncClient) -> str:
    created = await client.post("/v1/enrollments", json=person() | HEFEI)
    assert created.status_code == 201, created.text
    enrollment_id: str = created.json()["enrollment_id"]
    return enrollment_id


async def test_a_request_behind_a_locked_enrollment_is_refused_after_the_lock_timeout(
    serving: Serving, database_url: str
) -> None:
    async with serving(lock_timeout_s=0.3, statement_timeout_s=0) as (client, _):
        enrollment_id = await an_enrollment(client)
        async with held(database_url, LOCK_ENROLLMENT, id=enrollment_id):
            refused = await asyncio.wait_for(
                client.post(f"/v1/enrollments/{enrollment_id}/cancellation", json=DEATH), BOUND_S
            )
        assert (refused.status_code, problem(refused)["code"], problem(refused)["details"]) == (
            503,
            "service_unavailable",
            {"reason": "lock_timeout"},
        )
        assert refused.headers["Retry-After"]
        # Once the lock is given back, the same request goes through.
        ended = await client.post(f"/v1/enrollments/{enrollment_id}/cancellation", json=DEATH)
        assert (ended.status_code, ended.json()["status"]) == (200, "cancelled")


async def test_an_enrollment_whose_write_waits_past_the_lock_timeout_is_refused_and_leaves_nothing(
    serving: Serving, database_url: str
) -> None:
    # The POST's transaction and its refusals come from its one dependency (shared.auth.call): a write stuck
    # behind another transaction's lock is a 503 with its reason, and neither the person nor the request's
    # audit rows are written.
    async with serving(lock_timeout_s=0.3, statement_timeout_s=0) as (client, _):
        who = person()
        audited = await scalar_on(database_url, "SELECT count(*) FROM audit_events")
        async with held(database_url, "LOCK TABLE outbox IN EXCLUSIVE MODE"):
            refused = await asyncio.wait_for(client.post("/v1/enrollments", json=who | HEFEI), BOUND_S)
        assert (refused.status_code, problem(refused)["code"], problem(refused)["details"]) == (
            503,
            "service_unavailable",
            {"reason": "lock_timeout"},
        )
        written = await scalar_on(
            database_url, "SELECT count(*) FROM people WHERE document_number = :n", n=who["id_number"]
        )
        assert (written, await scalar_on(database_url, "SELECT count(*) FROM audit_events")) == (0, audited)
        # Once the lock is given back, the same request goes through.
        assert (await client.post("/v1/enrollments", json=who | HEFEI)).status_code == 201


async def test_a_statement_running_past_the_statement_timeout_is_refused(
    serving: Serving, database_url: str
) -> None:
    # No lock limit: the statement waits for the table until its own limit ends it. The limit leaves the
    # request after the lock room on a loaded machine (at 0.3 s it too was cut short in one fresh-clone run).
    async with serving(lock_timeout_s=0, statement_timeout_s=2.0) as (client, _):
        enrollment_id = await an_enrollment(client)
        async with held(database_url, "LOCK TABLE enrollments IN ACCESS EXCLUSIVE MODE"):
            refused = await asyncio.wait_for(client.get(f"/v1/enrollments/{enrollment_id}"), BOUND_S)
        assert (refused.status_code, problem(refused)["details"]) == (503, {"reason": "statement_timeout"})
        assert (await client.get(f"/v1/enrollments/{enrollment_id}")).status_code == 200


async def test_a_sign_in_session_behind_a_lock_is_refused_with_503_not_500(
    serving: Serving, database_url: str
) -> None:
    # The session's check runs before the request's own session: its lock limit answers the same 503.
    async with serving(lock_timeout_s=0.3, statement_timeout_s=0) as (client, app):
        account = {"username": "li.na", "display_name": "李娜", "role": "staff", "regions": ["340102"]}
        opened = await client.post("/v1/accounts", json=account | {"password": "correct-horse-battery"})
        assert opened.status_code == 201, opened.text
        signed_in = await client.post(
            "/v1/sessions",
            json={"username": "li.na", "password": "correct-horse-battery"},
            headers={"Authorization": ""},
        )
        assert signed_in.status_code == 201, signed_in.text
        token = signed_in.json()["access_token"]
        enrollment_id = await an_enrollment(client)
        app.state.clock.set(app.state.clock.now() + timedelta(minutes=5))  # its use is noted again
        async with held(database_url, "SELECT id FROM account_sessions FOR UPDATE"):
            refused = await asyncio.wait_for(
                client.get(f"/v1/enrollments/{enrollment_id}", headers={"Authorization": f"Bearer {token}"}),
                BOUND_S,
            )
        assert (refused.status_code, problem(refused)["details"]) == (503, {"reason": "lock_timeout"})


async def test_background_work_waits_for_a_lock_past_the_request_lock_limit(
    serving: Serving, database_url: str
) -> None:
    # The roster worker and the reminder dispatcher take their sessions from `long_work`.
    async with serving(lock_timeout_s=0.3, statement_timeout_s=0.3) as (client, app):
        enrollment_id = await an_enrollment(client)

        async def locking() -> str:
            async with long_work(app.state.sessionmaker)() as session, session.begin():
                found = await session.execute(text(LOCK_ENROLLMENT), {"id": enrollment_id})
                return str(found.scalar_one())

        async with held(database_url, LOCK_ENROLLMENT, id=enrollment_id):
            work = asyncio.create_task(locking())
            await asyncio.sleep(1.5)  # five times either limit
            assert not work.done()
        assert await asyncio.wait_for(work, BOUND_S) == enrollment_id
        # The request's own sessions keep their limits.
        async with held(database_url, LOCK_ENROLLMENT, id=enrollment_id):
            refused = await client.post(f"/v1/enrollments/{enrollment_id}/cancellation", json=DEATH)
        assert (refused.status_code, problem(refused)["details"]["reason"] in TIMEOUTS) == (503, True)


async def lock_waiters(database_url: str, table: str) -> int:
    """How many transactions are waiting for a lock on `table`."""
    waiting = await scalar_on(
        database_url,
        "SELECT count(*) FROM pg_locks JOIN pg_class ON pg_class.oid = pg_locks.relation "
        "WHERE NOT pg_locks.granted AND pg_class.relname = :table",
        table=table,
    )
    return int(waiting or 0)


async def waits_past_the_lock_limit(database_url: str, table: str) -> None:
    """A background worker's transaction is waiting for `table`, and still waits five times the request's
    lock limit later. (No statement limit in these tests: on a loaded machine a new connection's setup alone
    may pass a tight one.)"""
    await eventually(lambda: lock_waiters(database_url, table), BOUND_S)
    await asyncio.sleep(1.5)
    assert await lock_waiters(database_url, table) == 1


def failures(logs: Sequence[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def test_the_roster_worker_waits_for_a_lock_past_the_request_lock_limit(
    serving: Serving, database_url: str
) -> None:
    population = csv_bytes(
        ["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组"],
        [[1, "户籍", resident_id(region="340104"), "南七街道", "花园社区", "3组"]],
        "gb18030",
    )
    form = HEFEI | {"kind": "household_registration", "department": "市公安局", "uploaded_by": "dept-01"}
    async with serving(lock_timeout_s=0.3, statement_timeout_s=0) as (client, _):
        with capture_logs() as logs:  # once the lifespan has configured logging
            # What a bulk load, or an operator's maintenance, may hold longer than a request may wait.
            async with held(database_url, "LOCK TABLE roster_rows IN SHARE MODE"):
                created = await client.post(
                    "/v1/rosters", files={"file": ("户籍人口.csv", population)}, data=form
                )
                assert created.status_code == 201, created.text  # the worker, woken, judges the rows
                await waits_past_the_lock_limit(database_url, "roster_rows")

            async def validated() -> bool:
                found = await client.get(f"/v1/rosters/{created.json()['upload_id']}")
                return bool(found.json()["status"] == "validated")

            await eventually(validated, BOUND_S)
        assert failures(logs, "roster_worker_failed") == []


async def test_the_reminder_dispatcher_waits_for_a_lock_past_the_request_lock_limit(
    serving: Serving, database_url: str
) -> None:
    async def nobody_waiting() -> bool:
        return await lock_waiters(database_url, "reminders") == 0

    async with serving(lock_timeout_s=0.3, statement_timeout_s=0) as (client, _):
        with capture_logs() as logs:  # once the lifespan has configured logging
            async with held(database_url, "LOCK TABLE reminders IN EXCLUSIVE MODE"):
                woken = await client.post(
                    "/v1/reminders", json=HEFEI | {"channel": "sms", "requested_by": "社区"}
                )
                # Nobody to remind: the dispatcher, woken, looks all the same.
                assert woken.status_code == 202, woken.text
                await waits_past_the_lock_limit(database_url, "reminders")
            await eventually(nobody_waiting, BOUND_S)
        assert failures(logs, "reminder_dispatch_failed") == []
