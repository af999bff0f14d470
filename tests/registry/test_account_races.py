"""Accounts under attack and under concurrency, on PostgreSQL (the registry on a database of its own, requests
in parallel on a pool of connections): parallel guesses get no more tries than the limits allow, a sign-in
with a password racing its change leaves no session behind, two administrators disabling each other at once
leave one; and an IPv6 client is counted by its /64."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from registry.main import create_app
from registry.settings import RegistrySettings
from shared.auth import Role, dev_token
from shared.db import create_sessionmaker
from tests.conftest import Harness
from tests.registry.test_accounts import PASSWORD, open_account, sign_in
from tests.support import migrate, recreate_pg_database

ADMIN = {"Authorization": f"Bearer {dev_token(Role.ADMIN)}"}
ALLOWED = 5  # failures per name, and (here) per address, within the window


@pytest.fixture(scope="module")
async def racing_registry(worker: str) -> AsyncIterator[FastAPI]:
    """The registry on a PostgreSQL database of its own: every request its own connection and transaction,
    as in production (the shared test harness runs each test inside one connection)."""
    url = await asyncio.to_thread(recreate_pg_database, f"account_races_{worker}_registry")
    await asyncio.to_thread(migrate, "registry", url)
    settings = RegistrySettings(
        environment="test",
        database_url=url,
        sign_in_failures_allowed=ALLOWED,
        sign_in_address_failures_allowed=ALLOWED,
    )
    app = create_app(settings)
    engine = create_async_engine(url, pool_size=8, max_overflow=0)
    app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
    yield app
    await engine.dispose()


def client(app: FastAPI, address: str, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50000)),
        base_url="http://registry",
        headers=headers,
        timeout=120,
    )


async def create(app: FastAPI, username: str) -> dict[str, Any]:
    async with client(app, "127.0.0.1", **ADMIN) as admin:
        body = {"username": username, "display_name": "张伟", "role": "staff", "regions": ["340102"]}
        created = await admin.post("/v1/accounts", json=body | {"password": PASSWORD})
    assert created.status_code == 201, created.text
    account: dict[str, Any] = created.json()
    return account


async def attempt(app: FastAPI, address: str, username: str, password: str) -> httpx.Response:
    async with client(app, address) as anonymous:
        return await anonymous.post("/v1/sessions", json={"username": username, "password": password})


async def test_parallel_guesses_at_one_name_get_only_the_allowed_tries(racing_registry: FastAPI) -> None:
    await create(racing_registry, "guessed.at")
    answers = await asyncio.gather(
        *(attempt(racing_registry, f"198.51.100.{n}", "guessed.at", f"guess-{n}-wrong") for n in range(15))
    )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {401: ALLOWED, 429: 15 - ALLOWED}, statuses


async def test_parallel_guesses_from_one_address_get_only_the_allowed_tries(racing_registry: FastAPI) -> None:
    answers = await asyncio.gather(
        *(attempt(racing_registry, "203.0.113.9", f"sprayed.{n}", "the-usual-password") for n in range(15))
    )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {401: ALLOWED, 429: 15 - ALLOWED}, statuses


async def test_a_sign_in_racing_a_new_password_leaves_no_session_behind(racing_registry: FastAPI) -> None:
    """An administrator resets a password someone else knows while they sign in with it: either the sign-in
    is refused, or its session is among those the reset ends."""
    async with client(racing_registry, "127.0.0.1", **ADMIN) as admin:
        for n in range(10):
            account = await create(racing_registry, f"reset.me.{n}")
            signed_in, changed = await asyncio.gather(
                attempt(racing_registry, f"192.0.2.{n}", f"reset.me.{n}", PASSWORD),
                admin.patch(f"/v1/accounts/{account['account_id']}", json={"password": "replaced-password"}),
            )
            assert changed.status_code == 200, changed.text
            assert signed_in.status_code in (201, 401), signed_in.text
            if signed_in.status_code == 201:
                token = signed_in.json()["access_token"]
                async with client(racing_registry, "192.0.2.1", Authorization=f"Bearer {token}") as used:
                    refreshed = await used.post("/v1/sessions/current/token")
                assert refreshed.status_code == 401, (
                    f"trial {n}: the old password's session outlived the reset"
                )


async def test_two_administrators_disabling_or_demoting_each_other_at_once_leave_one(
    racing_registry: FastAPI,
) -> None:
    async with client(racing_registry, "127.0.0.1", **ADMIN) as admin:
        for n in range(6):
            pair = []
            for side in ("a", "b"):
                body = {"username": f"admin.{side}.{n}", "display_name": "张伟", "role": "admin"}
                created = await admin.post("/v1/accounts", json=body | {"password": PASSWORD})
                assert created.status_code == 201, created.text
                pair.append(created.json()["account_id"])
            # Every other administrator steps aside first: the pair are the only ones left.
            listed = await admin.get("/v1/accounts", params={"role": "admin", "enabled": True})
            for other in listed.json()["items"]:
                if other["account_id"] not in pair:
                    stepped = await admin.post(
                        f"/v1/accounts/{other['account_id']}/deactivation", json={"reason": "换届"}
                    )
                    assert stepped.status_code == 200, stepped.text

            def remove(account_id: str, *, demote: bool) -> Any:
                if demote:
                    return admin.patch(f"/v1/accounts/{account_id}", json={"role": "auditor"})
                return admin.post(f"/v1/accounts/{account_id}/deactivation", json={"reason": "离职"})

            demote = n % 2 == 1
            answers = await asyncio.gather(remove(pair[0], demote=demote), remove(pair[1], demote=demote))
            assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
            left = await admin.get("/v1/accounts", params={"role": "admin", "enabled": True})
            assert len(left.json()["items"]) == 1, left.text


async def test_an_ipv6_client_is_counted_by_its_network(registry: Harness) -> None:
    """A host given a /64 may use any of its 2^64 addresses: failures count for the whole prefix."""
    await open_account(registry, "zhang.wei")
    allowed = registry.app.state.settings.sign_in_address_failures_allowed

    async def from_address(address: str, username: str, password: str) -> httpx.Response:
        async with client(registry.app, address) as anonymous:
            return await sign_in(anonymous, username, password)

    for n in range(allowed):
        assert (
            await from_address(f"2001:db8:7:1::{n + 1:x}", f"guess.{n}", "wrong-password-1")
        ).status_code == 401
    refused = await from_address("2001:db8:7:1:ffff:ffff:ffff:fffe", "zhang.wei", PASSWORD)
    assert refused.status_code == 429, refused.text
    # The next /64 is someone else.
    assert (await from_address("2001:db8:7:2::1", "zhang.wei", PASSWORD)).status_code == 201
