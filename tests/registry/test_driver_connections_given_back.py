"""The enrollment POST's driver statements (`shared.db.DriverStatement.fetchrow`) run, before the
session's transaction, on a pool connection of their own (`AsyncEngine.raw_connection()`) and give it back
when they return. A connection the pool keeps goes back to it; one the pool does not keep (an overflow
connection given back while the pool is full, as after every burst past `database_pool_size`) is closed, and
closing an asyncpg connection is I/O that SQLAlchemy's adapter can do only inside its greenlet. Given back
outside it (as it was until 2026-12-01), the pool logged "Exception closing connection" (MissingGreenlet) and
left the connection open, to whoever collected the object (asyncpg then warned "unclosed connection" and cut
it off)."""

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from registry.main import create_app
from tests.conftest import DB_PREFIX
from tests.registry.helpers import HEFEI, person, served_settings
from tests.support import eventually, free_port, held, in_process, scalar_on

# Requests in flight at once, each holding a connection: one of the pool's, the others overflow.
AT_ONCE = 4


@pytest.fixture
def database_url(fresh_database: Callable[[str, str, str], str], worker: str) -> str:
    return fresh_database("registry", "postgresql", f"{DB_PREFIX}_{worker}_overflow")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_overflow_connections_of_enrollment_posts_are_closed_when_given_back(
    database_url: str, tmp_path: Path
) -> None:
    settings = served_settings(
        database_url,
        tmp_path,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",  # no broker: events wait in the outbox
        database_pool_size=1,
        database_max_overflow=AT_ONCE,
        database_lock_timeout_s=0,  # the writes wait for the test's lock, however long
    )
    app = create_app(settings)
    errors = _Errors()
    pool_log = logging.getLogger("sqlalchemy.pool")
    pool_log.addHandler(errors)
    database = database_url.rsplit("/", 1)[1]
    try:
        async with in_process(app) as client:
            opened: list[Any] = []  # the driver connections the request pool opens from here on
            event.listen(
                app.state.engine.sync_engine,
                "connect",
                lambda dbapi_connection, _: opened.append(dbapi_connection.driver_connection),
            )

            async def waiting_writes() -> bool:
                count = await scalar_on(
                    database_url,
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = :name AND wait_event_type = 'Lock'",
                    name=database,
                )
                return int(count or 0) >= AT_ONCE

            # The writes wait behind the test's lock, so that the requests hold AT_ONCE connections at once.
            async with held(database_url, "LOCK TABLE audit_events IN EXCLUSIVE MODE"):
                posts = [
                    asyncio.ensure_future(client.post("/v1/enrollments", json=person() | HEFEI))
                    for _ in range(AT_ONCE)
                ]
                await eventually(waiting_writes, 30)
            answers = await asyncio.gather(*posts)
            assert [a.status_code for a in answers] == [201] * AT_ONCE, [a.text for a in answers]

            pool = app.state.engine.sync_engine.pool
            left_open = [c for c in opened if not c.is_closed()]
            # Given back, a connection is either kept by the pool or closed; none is left open outside it (a
            # background worker's may be checked out at this moment).
            held_by_pool = pool.checkedin() + pool.checkedout()
            assert len(left_open) <= held_by_pool, (len(opened), len(left_open), pool.status())
            assert not [m for m in errors.messages if "closing connection" in m], errors.messages
    finally:
        pool_log.removeHandler(errors)
