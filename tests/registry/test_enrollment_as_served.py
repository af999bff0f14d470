"""The enrollment POST as the service runs it on PostgreSQL (its own lifespan, engine and outbox relay, a real
broker): its two statements run through the driver outside any transaction of the request's session
(shared.db.DriverStatement), so no commit of the session's follows its write. The tests' usual harness binds
the session to a connection with a transaction begun, and does not see this."""

from collections.abc import Callable
from pathlib import Path

import pytest

from canbao.stack import start_broker, stop
from registry.main import create_app
from tests.conftest import DB_PREFIX
from tests.registry.helpers import HEFEI, person, served_settings
from tests.support import eventually, free_port, in_process, scalar_on

# The relay's poll, far beyond the test's wait: only a wake-up publishes the event in time.
AN_HOUR_S = 3600.0
GUARD_S = 20.0


@pytest.fixture
def database_url(fresh_database: Callable[[str, str, str], str], worker: str) -> str:
    return fresh_database("registry", "postgresql", f"{DB_PREFIX}_{worker}_as_served")


async def test_an_enrollment_written_without_the_sessions_transaction_wakes_the_relay_at_once(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    with (tmp_path / "broker.log").open("ab") as log:
        broker = start_broker("127.0.0.1", port, log)
    try:
        settings = served_settings(
            database_url,
            tmp_path,
            kafka_bootstrap_servers=f"127.0.0.1:{port}",
            kafka_topic_partitions=1,
            outbox_poll_interval_s=AN_HOUR_S,
        )
        app = create_app(settings)
        async with in_process(app) as client:
            created = await client.post("/v1/enrollments", json=person() | HEFEI)
            assert created.status_code == 201, created.text
            enrollment_id = created.json()["enrollment_id"]

            async def published() -> bool:
                sent = await scalar_on(
                    database_url,
                    "SELECT count(*) FROM outbox WHERE key = :key AND published_at IS NOT NULL",
                    key=enrollment_id,
                )
                return bool(sent == 1)

            await eventually(published, GUARD_S)
    finally:
        stop(broker, "broker")
