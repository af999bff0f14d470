"""Fixtures: every database test runs on SQLite and on PostgreSQL.

Each service is migrated once per run on each backend (`templates`); every migrated database a test needs is a
copy (`fresh_database`). PostgreSQL: one database per xdist worker and service; each test runs inside a
transaction that is rolled back (the app's commits become savepoints). SQLite: each test gets a copy of a
migrated file.
"""

import fcntl
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from collection.main import create_app as create_collection_app
from collection.settings import CollectionSettings
from registry.main import create_app as create_registry_app
from registry.settings import RegistrySettings
from shared.auth import Role, dev_token
from shared.clock import BUSINESS_TZ
from shared.db import create_engine
from shared.logging import configure_logging
from tests.support import SERVICES, migrate, pg_url, recreate_pg_database

BACKENDS = ("sqlite", "postgresql")
# Two test runs on one PostgreSQL (two checkouts, a developer beside CI) keep apart with their own prefix.
DB_PREFIX = os.environ.get("CANBAO_TEST_DB_PREFIX", "canbao_test")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--dist loadgroup` (make test) keeps an `xdist_group`'s tests on one worker by a suffix on their
    node ids. pytest-xdist 3.8 writes it to `item._nodeid`, which pytest 9 no longer reads: every group was
    split between the workers (and a module's end-to-end stack started on both). Written where pytest 9
    reads it, as xdist does."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = {
            mark.args[0] if mark.args else mark.kwargs.get("name", "default")
            for mark in item.iter_markers("xdist_group")
        }
        suffix = "@" + "_".join(sorted(str(name) for name in names))
        if names and not item.nodeid.endswith(suffix):
            item._id = type(item._id).parse(item.nodeid + suffix)  # pytest 9's NodeId


@pytest.fixture(scope="session", autouse=True)
def loggers_not_cached() -> Iterator[None]:
    """A service started in-process (its lifespan) configures logging with loggers cached on first use, and
    a logger cached then escapes `structlog.testing.capture_logs` in every later test of the same worker: the
    tests' services log uncached."""

    def uncached(level: str = "INFO", json: bool = False) -> None:
        configure_logging(level, json)
        structlog.configure(cache_logger_on_first_use=False)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("shared.service.configure_logging", uncached)
        yield


@pytest.fixture(scope="session")
def worker(worker_id: str) -> str:
    return worker_id


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory, worker: str) -> dict[tuple[str, str], str]:
    """(service, backend) -> URL of a database migrated to head once per run, by the `migrate` command (all
    four at once); every database the tests need migrated is a copy of one (`fresh_database`). The xdist
    workers share them: the first to get here makes them, the others wait."""
    run_dir = tmp_path_factory.getbasetemp()
    if worker != "master":
        run_dir = run_dir.parent  # shared by this run's workers, and by no other run
    urls = {
        (service, "sqlite"): f"sqlite+aiosqlite:///{run_dir / service}-template.db" for service in SERVICES
    }
    urls |= {(service, "postgresql"): pg_url(f"{DB_PREFIX}_template_{service}") for service in SERVICES}
    with (run_dir / "templates.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run_dir / "templates.ready").exists():
            for service in SERVICES:
                recreate_pg_database(f"{DB_PREFIX}_template_{service}")
            with ThreadPoolExecutor(len(urls)) as migrating:
                list(migrating.map(lambda key: migrate(key[0], urls[key]), urls))
            (run_dir / "templates.ready").touch()
    return urls


@pytest.fixture(scope="session")
def fresh_database(
    templates: dict[tuple[str, str], str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str, str], str]:
    """`fresh_database(service, backend, name)`: the URL of a new database `name`, migrated to head."""
    copies = tmp_path_factory.mktemp("databases")

    def copy(service: str, backend: str, name: str) -> str:
        if backend == "sqlite":
            path = copies / f"{name}.db"
            shutil.copy(templates[(service, "sqlite")].split(":///", 1)[1], path)
            return f"sqlite+aiosqlite:///{path}"
        template = templates[(service, "postgresql")].rsplit("/", 1)[1]
        return recreate_pg_database(name, template=template)

    return copy


@pytest.fixture(scope="session")
def migrated_urls(fresh_database: Callable[[str, str, str], str], worker: str) -> dict[tuple[str, str], str]:
    """(service, backend) -> URL of a database migrated to head for this worker."""
    return {
        (service, backend): fresh_database(service, backend, f"{DB_PREFIX}_{worker}_{service}")
        for service in SERVICES
        for backend in BACKENDS
    }


@pytest.fixture(scope="session")
async def pg_engines(migrated_urls: dict[tuple[str, str], str]) -> AsyncIterator[dict[str, AsyncEngine]]:
    engines = {s: create_engine(migrated_urls[(s, "postgresql")]) for s in SERVICES}
    yield engines
    for engine in engines.values():
        await engine.dispose()


# Inside Hefei's 2024 window (2023-09-01 .. 2023-12-31); tests that need another moment move the clock.
DEFAULT_NOW = datetime(2023, 10, 8, 10, 0, tzinfo=BUSINESS_TZ)


@dataclass
class Harness:
    """An app with its test database; `client` speaks HTTP to it in-process."""

    app: FastAPI
    sessionmaker: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    backend: str

    def at(self, moment: str) -> None:
        """Set the business clock, e.g. "2023-12-31T23:59:00+08:00"."""
        self.app.state.clock.set(datetime.fromisoformat(moment))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


async def _harness(
    service: str,
    app: FastAPI,
    backend: str,
    migrated_urls: dict[tuple[str, str], str],
    pg_engines: dict[str, AsyncEngine],
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    if backend == "sqlite":
        db_file = tmp_path / f"{service}.db"
        shutil.copy(migrated_urls[(service, "sqlite")].split(":///", 1)[1], db_file)
        engine = create_engine(f"sqlite+aiosqlite:///{db_file}")
        app.state.engine = engine
        app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        async with _client(app) as client:
            yield Harness(app, app.state.sessionmaker, client, backend)
        await engine.dispose()
        return
    engine = pg_engines[service]
    async with engine.connect() as conn:
        outer = await conn.begin()
        app.state.engine = engine
        app.state.sessionmaker = async_sessionmaker(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        async with _client(app) as client:
            yield Harness(app, app.state.sessionmaker, client, backend)
        await outer.rollback()


def _client(app: FastAPI) -> httpx.AsyncClient:
    # As an administrator; tests of roles and areas pass their own tokens (tests/test_access.py).
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )


ADMIN_TOKEN = dev_token(Role.ADMIN)


@pytest.fixture
async def registry(
    request: pytest.FixtureRequest, backend: str, migrated_urls: Any, pg_engines: Any, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The registry app; `@pytest.mark.policy_dir(path)` adds policy files, as REGISTRY_POLICY_DIR does."""
    marker = request.node.get_closest_marker("policy_dir")
    app = create_registry_app(
        RegistrySettings(
            environment="test",
            database_url="sqlite+aiosqlite://",
            clock_start=DEFAULT_NOW,
            policy_dir=marker.args[0] if marker else None,
            roster_dir=tmp_path / "rosters",
            reminder_log=tmp_path / "reminders.log",
        )
    )
    async for harness in _harness("registry", app, backend, migrated_urls, pg_engines, tmp_path):
        yield harness


@pytest.fixture
async def collection(
    backend: str, migrated_urls: Any, pg_engines: Any, tmp_path: Path
) -> AsyncIterator[Harness]:
    app = create_collection_app(
        CollectionSettings(
            environment="test",
            database_url="sqlite+aiosqlite://",
            clock_start=DEFAULT_NOW,
            reconciliation_dir=tmp_path / "reconciliation",
        )
    )
    async for harness in _harness("collection", app, backend, migrated_urls, pg_engines, tmp_path):
        yield harness
