"""Helpers the tests share: ID numbers, free ports, databases, and the running stack."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

from canbao.harness import CANBAO, ROOT, Stack, free_port, resident_id
from canbao.stack import SERVICES, start_broker, stop
from shared.auth import Role, dev_token
from shared.db import create_engine

__all__ = ["CANBAO", "ROOT", "SERVICES", "Stack", "free_port", "resident_id"]

PG_ADMIN_URL = os.environ.get("CANBAO_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")

T = TypeVar("T")


@contextmanager
def own_broker(tmp_path: Path) -> Iterator[str]:
    """A Kafka-protocol broker of the test's own (its log in tmp_path): its address; stopped after."""
    port = free_port()
    with (tmp_path / "broker.log").open("ab") as log:
        broker = start_broker("127.0.0.1", port, log)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop(broker, "broker")


@dataclass
class Activity:
    """What one process of a service logged doing: its consumer's assignments (the latest last), the events
    it applied, and the API requests (/v1/) it answered."""

    started: bool = False
    assignments: list[list[str]] = field(default_factory=list)
    applied: int = 0
    requests: int = 0

    @property
    def partitions(self) -> list[str]:
        """What its consumer holds now: its latest assignment."""
        return self.assignments[-1] if self.assignments else []


def activity(log_path: Path, since: int = 0) -> dict[int, Activity]:
    """Each process's `Activity` by its pid, read from a service's JSON log (`<SERVICE>_LOG_JSON`) from byte
    `since` on: the several worker processes of a replica (`WORKERS`) write to one log, each line with its
    writer's pid."""
    found: defaultdict[int, Activity] = defaultdict(Activity)
    with log_path.open("rb") as log:
        log.seek(since)
        for raw in log:
            try:
                line = json.loads(raw)
            except ValueError:  # a line being written, or one written before logging was configured
                continue
            if not isinstance(line, dict) or "pid" not in line:
                continue
            doing = found[line["pid"]]
            match line.get("event"):
                case "service_started":
                    doing.started = True
                case "partitions_assigned":
                    doing.assignments.append(line["partitions"])
                case "event_applied":
                    doing.applied += 1
                case "http_request" if line["path"].startswith("/v1/"):
                    doing.requests += 1
    return dict(found)


def with_wrong_check(id_number: str) -> str:
    wrong = "0" if id_number[-1] != "0" else "1"
    return id_number[:-1] + wrong


def pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


def recreate_pg_database(name: str, template: str | None = None) -> str:
    """Drop and create a PostgreSQL database (a copy of `template`, if given); returns its URL.

    CANBAO_TEST_DB_PREFIX namespaces every database a run makes, so runs from several checkouts can share one
    server.
    """
    namespace = os.environ.get("CANBAO_TEST_DB_PREFIX")
    if namespace and not name.startswith(namespace):
        name = f"{namespace}_{name}"

    async def run() -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(
                text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
            )
        await engine.dispose()

    asyncio.run(run())
    return pg_url(name)


def migrate(service: str, url: str) -> None:
    """Migrate a database the way operators do: the service's own `migrate` command."""
    env = {**os.environ, f"{service.upper()}_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", service, "migrate"], env=env, check=True, cwd=ROOT)


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0) -> T:
    """Poll until probe returns something truthy; the events cross a real broker, so they take a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.1)


def problem(response: httpx.Response) -> dict[str, Any]:
    """The error body every refusal carries; asserts its shape."""
    body: dict[str, Any] = response.json()["error"]
    assert set(body) >= {"code", "message_zh", "message_en"}
    assert body["message_zh"]
    assert body["message_en"]
    return body


# What production settings need of the broker connection: SASL with a user (tested in test_kafka_security).
PRODUCTION_KAFKA: dict[str, Any] = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "svc",
    "kafka_sasl_password": "p" * 20,
}


def production_kafka_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("REGISTRY", "COLLECTION"):
        for name, value in PRODUCTION_KAFKA.items():
            monkeypatch.setenv(f"{prefix}_{name.upper()}", value)


async def canbao_check(stack: Stack, region: str, year: int, *, repair: bool = True) -> dict[str, Any]:
    """`canbao check --json` as an operator runs it against a running stack; asserts it exits 0."""
    command = [str(CANBAO), "check", "--region", region, "--year", str(year), "--json", "--wait", "60"]
    result = await asyncio.to_thread(
        subprocess.run,
        [*command, *([] if repair else ["--no-repair"])],
        env={
            **os.environ,
            "CANBAO_REGISTRY_URL": stack.url("registry"),
            "CANBAO_COLLECTION_URL": stack.url("collection"),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr + stack.log()[-4000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@contextmanager
def listening(target: Any, name: str, keep: Callable[..., Any]) -> Iterator[list[Any]]:
    """What `keep` makes of each `name` event of `target` (SQLAlchemy's) meanwhile, None left out."""
    seen: list[Any] = []

    def listener(*args: Any) -> None:
        kept = keep(*args)
        if kept is not None:
            seen.append(kept)

    event.listen(target, name, listener)
    try:
        yield seen
    finally:
        event.remove(target, name, listener)


def statements() -> AbstractContextManager[list[str]]:
    """The SQL statements sent meanwhile (savepoints of the tests' outer transaction left out)."""

    def sql(conn: Any, cursor: Any, statement: str, *args: Any) -> str | None:
        return None if "SAVEPOINT" in statement else statement

    return listening(Engine, "before_cursor_execute", sql)


def commits() -> AbstractContextManager[list[Session]]:
    """The sessions committed meanwhile, one entry per commit."""
    return listening(Session, "after_commit", lambda session: session)


_offsets = count()


def consumer_record(value: bytes, *, key: str, topic: str) -> ConsumerRecord[bytes, bytes]:
    """A record as the broker hands it to a consumer, each at the next offset."""
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=next(_offsets),
        timestamp=0,
        timestamp_type=0,
        key=key.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=(),
    )


@asynccontextmanager
async def held(database_url: str, statement: str, **values: Any) -> AsyncIterator[None]:
    """Another transaction holding what `statement` locks, until the block ends."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection, connection.begin():
            await connection.execute(text(statement), values)
            yield
    finally:
        await engine.dispose()


@asynccontextmanager
async def in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The service as it runs (its own lifespan: engine, background workers, outbox relay), spoken to over
    HTTP in-process as an administrator."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {dev_token(Role.ADMIN)}"},
            timeout=30,
        ) as client,
    ):
        yield client


@contextmanager
def all_statements() -> Iterator[list[str]]:
    """`statements`, with those a hot path sends through the driver itself (shared.db.DriverStatement, which
    SQLAlchemy's events do not see) in the order sent; each of those is marked with a leading "driver: "."""
    import asyncpg  # only for the tests that count statements on PostgreSQL

    with statements() as sent:
        originals = {how: getattr(asyncpg.Connection, how) for how in ("fetch", "fetchrow")}

        def noting(how: str) -> Callable[..., Any]:
            async def run(connection: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                sent.append(f"driver: {query}")
                return await originals[how](connection, query, *args, **kwargs)

            return run

        for how in originals:
            setattr(asyncpg.Connection, how, noting(how))
        try:
            yield sent
        finally:
            for how, original in originals.items():
                setattr(asyncpg.Connection, how, original)


async def scalar_on(database_url: str, sql: str, **values: Any) -> Any:
    """One value read on a connection of its own to `database_url` (autocommit)."""
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            return await connection.scalar(text(sql), values)
    finally:
        await engine.dispose()


async def end_connections(*database_urls: str) -> int:
    """What a PostgreSQL restart does to the services' pools: every open connection to these databases is
    ended. How many were."""
    ended = await scalar_on(
        PG_ADMIN_URL,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = ANY(:names) AND pid <> pg_backend_pid()",
        names=[url.rsplit("/", 1)[1] for url in database_urls],
    )
    return int(ended or 0)


async def allow_connections(database: str, allowed: bool) -> None:
    """Take a database away (refuse new connections, end the open ones), or give it back."""
    engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": database},
            )
    await engine.dispose()
