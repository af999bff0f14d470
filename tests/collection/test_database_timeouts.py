"""Long work in a request (a channel's day file) waits for another run's locks for as long as that run
lasts, instead of being refused after the request engine's lock limit (`DATABASE_LOCK_TIMEOUT_S`): the
service as it runs (its own lifespan and engine) on PostgreSQL. A connection the server ended is answered
503 and replaced, also where the request's first statement goes through the driver itself."""

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from collection.main import create_app
from shared.auth import Role, dev_token
from tests.collection.helpers import DAY, HEADER, served_settings
from tests.conftest import DB_PREFIX
from tests.spreadsheets import csv_bytes
from tests.support import end_connections, held, in_process, resident_id


@pytest.fixture(scope="module")
def database_url(fresh_database: Callable[[str, str, str], str], worker: str) -> str:
    return fresh_database("collection", "postgresql", f"{DB_PREFIX}_{worker}_collection_timeouts")


async def test_a_days_file_waits_for_another_runs_lock_past_the_request_lock_limit(
    database_url: str, tmp_path: Path
) -> None:
    settings = served_settings(database_url, tmp_path, database_lock_timeout_s=0.3)
    app = create_app(settings)
    rows = [["WX1", f"{DAY} 10:00:00", "380.00", "no-such-bill", ""]]
    async with in_process(app) as client:
        # What another run's ANALYZE of the lines holds until its transaction ends.
        async with held(database_url, "LOCK TABLE reconciliation_lines IN SHARE UPDATE EXCLUSIVE MODE"):
            run = asyncio.create_task(
                client.post(
                    "/v1/reconciliations",
                    data={"channel": "wechat", "business_day": DAY, "uploaded_by": "税务对账员"},
                    files={"file": ("wechat-20231008.csv", csv_bytes(HEADER, rows, "utf-8"))},
                )
            )
            await asyncio.sleep(1.5)  # five times the lock limit
            assert not run.done()
        response = await run
    assert response.status_code == 201, response.text


async def test_connections_the_server_ended_answer_503_then_are_replaced(
    database_url: str, tmp_path: Path
) -> None:
    """What a PostgreSQL restart does to the pool, under a payment order: its Idempotency-Key's lock is the
    request's first statement, sent through the driver (`DriverStatement.fetch_held`), which begins the
    transaction itself."""
    settings = served_settings(database_url, tmp_path)
    resident = resident_id()
    token = dev_token(Role.RESIDENT, sub=resident, id_number=resident)
    body = {"bill_ids": [str(uuid.uuid4())], "channel": "wechat"}

    async def order() -> int:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        return (await client.post("/v1/payment-orders", json=body, headers=headers)).status_code

    async with in_process(create_app(settings)) as client:
        refused = await order()  # no such bill: refused after the key's lock
        assert refused == 404
        assert await end_connections(database_url), "the service held no connection"
        answers = [await order() for _ in range(6)]
    assert set(answers) <= {503, refused}, answers
    assert answers[-1] == refused, answers
