"""A service's lifespan sets what the process built to start aside from the cyclic collector
(`gc.freeze()`) and raises the young generation's threshold while it serves, and hands both back at stop
(shared/service.py). Both are settings of the whole process, not of one service: when two services'
lifespans overlap in one process (the tests' in-process stacks, an embedded deployment of both services),
the first to stop must not unfreeze what the other still serves with, and the last to stop hands back what
the first found. Until 2026-12-01 each lifespan saved and restored them as if it were alone."""

import gc
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI

from registry.main import create_app
from shared.service import YOUNG_OBJECTS
from tests.conftest import DB_PREFIX
from tests.registry.helpers import served_settings
from tests.support import free_port


@pytest.fixture
def two_apps(fresh_database: Callable[[str, str, str], str], worker: str, tmp_path: Path) -> list[FastAPI]:
    """Two registries, each on a database of its own. PostgreSQL: on SQLite, an aiosqlite connection cut off
    by the first service's stop is finalised later on the loop of the one still serving, where its graceful
    close waits on a thread already gone; that stop then takes the event thread's whole join timeout (30 s),
    which is not these tests' subject."""
    apps = []
    for name in ("first", "second"):
        database_url = fresh_database("registry", "postgresql", f"{DB_PREFIX}_{worker}_gc_{name}")
        folder = tmp_path / name
        folder.mkdir()
        no_broker = f"127.0.0.1:{free_port()}"
        apps.append(create_app(served_settings(database_url, folder, kafka_bootstrap_servers=no_broker)))
    return apps


async def test_a_service_still_serving_keeps_its_start_up_set_aside_when_another_stops(
    two_apps: list[FastAPI],
) -> None:
    before = gc.get_threshold()
    first, second = two_apps
    try:
        async with first.router.lifespan_context(first):
            async with second.router.lifespan_context(second):
                assert gc.get_freeze_count() > 10_000
            # `first` still serves: what it built to start is still set aside from the collector.
            assert gc.get_freeze_count() > 10_000
            assert gc.get_threshold() == (YOUNG_OBJECTS, *before[1:])
        assert (gc.get_freeze_count(), gc.get_threshold()) == (0, before)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_services_stopped_in_the_order_they_started_hand_the_collector_back_as_found(
    two_apps: list[FastAPI],
) -> None:
    before = gc.get_threshold()
    first, second = two_apps
    first_life, second_life = first.router.lifespan_context(first), second.router.lifespan_context(second)
    try:
        await first_life.__aenter__()
        await second_life.__aenter__()
        await first_life.__aexit__(None, None, None)  # the first started stops first
        await second_life.__aexit__(None, None, None)
        # Every service has stopped: the process's collector is as it was before any started.
        assert (gc.get_freeze_count(), gc.get_threshold()) == (0, before)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
