"""Behaviour both services share: settings safety, database outages, unknown routes."""

import gc
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from collection.settings import CollectionSettings
from registry.main import create_app
from registry.settings import RegistrySettings
from shared.auth import Role, dev_token
from shared.db import create_engine, create_sessionmaker
from shared.service import YOUNG_OBJECTS
from tests.conftest import Harness
from tests.registry.helpers import served_settings
from tests.support import free_port, in_process, problem, production_kafka_env, resident_id

ADMIN = {"Authorization": f"Bearer {dev_token(Role.ADMIN)}"}


@pytest.mark.parametrize("settings_class", [RegistrySettings, CollectionSettings])
def test_production_refuses_the_embedded_sqlite_default(
    settings_class: type[RegistrySettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What collection's production also needs: real channel secrets (tested in test_channel_notifications).
    secrets = {c: "k" * 40 + c for c in ("wechat", "alipay", "provincial_app", "bank")}
    monkeypatch.setenv("COLLECTION_CHANNEL_SECRETS", json.dumps(secrets))
    production_kafka_env(monkeypatch)
    for prefix in ("REGISTRY", "COLLECTION"):
        monkeypatch.setenv(f"{prefix}_AUTH_KEYS", json.dumps({"2026-11": "s" * 40}))
    with pytest.raises(ValidationError, match="PostgreSQL"):
        settings_class(environment="production")
    settings_class(environment="production", database_url="postgresql+asyncpg://u@db/x")


@pytest.mark.parametrize("settings_class", [RegistrySettings, CollectionSettings])
@pytest.mark.parametrize("keys", [None, {"dev": "dev-only-" + "x" * 40}, {"short": "too-short"}])
def test_production_refuses_development_or_weak_token_keys(
    settings_class: type[RegistrySettings], keys: dict[str, str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {c: "k" * 40 + c for c in ("wechat", "alipay", "provincial_app", "bank")}
    monkeypatch.setenv("COLLECTION_CHANNEL_SECRETS", json.dumps(secrets))
    production_kafka_env(monkeypatch)
    database = "postgresql+asyncpg://u@db/x"
    given: dict[str, Any] = {} if keys is None else {"auth_keys": keys}
    with pytest.raises(ValidationError, match="token keys"):
        settings_class(environment="production", database_url=database, **given)
    settings_class(environment="production", database_url=database, auth_keys={"2026-11": "s" * 40})


def test_settings_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_PORT", "9101")
    monkeypatch.setenv("COLLECTION_PORT", "9102")
    assert (RegistrySettings().port, CollectionSettings().port) == (9101, 9102)


@pytest.mark.parametrize("settings_class", [RegistrySettings, CollectionSettings])
def test_several_workers_need_postgresql(settings_class: type[RegistrySettings]) -> None:
    with pytest.raises(ValidationError, match="workers"):
        settings_class(workers=2)  # the SQLite default
    assert settings_class(workers=2, database_url="postgresql+asyncpg://u@db/x").workers == 2


async def test_an_unreachable_database_gives_503_with_a_retry_hint(tmp_path: Path) -> None:
    app = create_app(RegistrySettings(environment="test"))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'registry.db'}")
    app.state.sessionmaker = create_sessionmaker(engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers=ADMIN
    ) as client:
        response = await client.post(
            "/v1/enrollments",
            json={"id_number": resident_id(), "name": "张三", "region_code": "340104", "coverage_year": 2024},
        )
        read = await client.get(f"/v1/enrollments/{uuid.uuid4()}")  # a read-only request too
    await engine.dispose()
    for answer in (response, read):
        assert answer.status_code == 503
        assert answer.headers["Retry-After"]
        assert problem(answer)["code"] == "service_unavailable"


async def test_unknown_routes_use_the_error_format() -> None:
    app = create_app(RegistrySettings(environment="test"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert problem(response)["code"] == "not_found"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_text_the_database_cannot_store_is_refused_with_422(registry: Harness) -> None:
    exclusion = {
        "person": {"id_number": resident_id(), "name": "张三"},
        "coverage_year": 2024,
        "kind": "employee_insurance",
        "source": "市职工医保\x00名单",
        "recorded_by": "staff-01",
    }

    response = await registry.client.post("/v1/exclusions", json=exclusion)

    assert response.status_code == 422, response.text
    assert problem(response)["code"] == "invalid_characters"
    clean = await registry.client.post("/v1/exclusions", json=exclusion | {"source": "市职工医保名单"})
    assert clean.status_code == 201, clean.text  # the refused one left nothing behind to conflict with


async def test_what_a_service_built_to_start_is_set_aside_from_the_collector_while_it_serves(
    fresh_database: Callable[[str, str, str], str], worker: str, tmp_path: Path
) -> None:
    """The collector's full collections walked the whole start-up heap again (a third of an enrollment's
    CPU under load): it is frozen once the service has started, and handed back when it stops; so is the
    young generation's threshold."""
    database_url = fresh_database("registry", "sqlite", f"frozen_{worker}")
    app = create_app(
        served_settings(database_url, tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    )
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    async with in_process(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() > 10_000  # the modules, the app, its routes and models, the policies
        # A request's objects are freed by their reference counts as it ends: no young collection for
        # every few requests.
        assert gc.get_threshold() == (YOUNG_OBJECTS, *before[1:])
    assert (gc.get_freeze_count(), gc.get_threshold()) == (0, before)
