"""Accounts and sign-in (registry/accounts): an administrator manages accounts; staff sign in with a password
through the API (short-lived tokens both services accept) or the sign-in page (a session cookie); failures are
throttled per account name and per address and audited; a disabled account, a changed password or a signed-out
session stops working on the next request; cookie-signed changes need the page's CSRF token."""

import asyncio
import json
import os
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError

from registry.main import create_app
from registry.settings import DEV_ADMIN_PASSWORD, RegistrySettings
from shared.auth import CSRF_HEADER, SESSION_COOKIE
from shared.db import create_engine, create_sessionmaker
from tests.conftest import Harness
from tests.support import CANBAO, migrate, problem, production_kafka_env

PASSWORD = "correct-horse-battery"
YAOHAI: dict[str, Any] = {"region_code": "340102", "coverage_year": 2024}
NO_TOKEN = {"Authorization": ""}


async def open_account(registry: Harness, username: str, **fields: Any) -> dict[str, Any]:
    body = {"username": username, "display_name": "张伟", "role": "staff", "regions": ["340102"]}
    response = await registry.client.post("/v1/accounts", json=body | {"password": PASSWORD} | fields)
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


async def sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(
        "/v1/sessions", json={"username": username, "password": password}, headers=NO_TOKEN
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def browser(h: Harness, address: str = "10.0.0.1") -> httpx.AsyncClient:
    """A browser: no bearer token, keeps cookies, asks for pages, comes from `address`."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=h.app, client=(address, 50000)),
        base_url="http://testserver",
        headers={"Accept": "text/html,application/xhtml+xml"},
    )


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found[1]


async def sign_in_page(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/sign-in", params={"next": "/dashboard?region_code=340102&coverage_year=2024"})
    assert page.status_code == 200
    data = {"username": username, "password": password, "csrf_token": form_token(page)}
    data["next"] = "/dashboard?region_code=340102&coverage_year=2024"
    return await client.post("/sign-in", data=data)


async def test_an_administrator_opens_changes_and_lists_accounts(registry: Harness) -> None:
    created = await open_account(registry, "Zhang.Wei")
    assert (created["username"], created["role"], created["regions"], created["enabled"]) == (
        "zhang.wei",
        "staff",
        ["340102"],
        True,
    )
    assert "password" not in json.dumps(created).replace("password_changed_at", "")
    changed = await registry.client.patch(
        f"/v1/accounts/{created['account_id']}",
        json={"regions": ["340104", "340102"], "display_name": "张伟强"},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["regions"], changed.json()["display_name"]) == (["340102", "340104"], "张伟强")
    listed = (await registry.client.get("/v1/accounts", params={"role": "staff"})).json()["items"]
    assert [a["username"] for a in listed] == ["zhang.wei"]
    # The first administrator `registry migrate` made at first start is there too.
    admins = (await registry.client.get("/v1/accounts", params={"role": "admin"})).json()["items"]
    assert [a["username"] for a in admins] == ["admin"]
    audit = (await registry.client.get("/v1/audit-events", params={"actor": "dev-admin"})).json()["items"]
    assert {(e["action"], e["record"]) for e in audit} >= {("change", f"account:{created['account_id']}")}


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"role": "resident", "regions": []}, 422, "account_role_not_allowed"),
        ({"regions": []}, 422, "account_area_invalid"),
        ({"role": "department", "categories": []}, 422, "account_area_invalid"),
        ({"role": "tax_officer"}, 422, "account_area_invalid"),
        ({"password": "xx-li.na-2024"}, 422, "password_too_weak"),
        ({"password": "short"}, 422, "validation_error"),
        ({"regions": ["34010"]}, 422, "validation_error"),
        ({"username": "admin"}, 409, "account_exists"),
    ],
)
async def test_an_account_must_fit_its_role(
    registry: Harness, fields: dict[str, Any], status: int, code: str
) -> None:
    body = {"username": "li.na", "display_name": "李娜", "role": "staff", "regions": ["340102"]}
    response = await registry.client.post("/v1/accounts", json=body | {"password": PASSWORD} | fields)
    assert (response.status_code, problem(response)["code"]) == (status, code)


async def test_the_last_enabled_administrator_stays(registry: Harness) -> None:
    (first,) = (await registry.client.get("/v1/accounts", params={"role": "admin"})).json()["items"]
    disabled = await registry.client.post(
        f"/v1/accounts/{first['account_id']}/deactivation", json={"reason": "离职"}
    )
    demoted = await registry.client.patch(f"/v1/accounts/{first['account_id']}", json={"role": "auditor"})
    assert problem(disabled)["code"] == problem(demoted)["code"] == "last_administrator"
    await open_account(registry, "second.admin", role="admin", regions=[])
    disabled = await registry.client.post(
        f"/v1/accounts/{first['account_id']}/deactivation", json={"reason": "离职"}
    )
    assert (disabled.status_code, disabled.json()["enabled"]) == (200, False)
    again = await registry.client.post(
        f"/v1/accounts/{first['account_id']}/deactivation", json={"reason": "x"}
    )
    assert problem(again)["code"] == "account_already_disabled"
    enabled = await registry.client.post(f"/v1/accounts/{first['account_id']}/reactivation")
    assert enabled.json()["enabled"] is True


async def test_a_sign_in_token_is_short_lived_and_both_services_accept_it(
    registry: Harness, collection: Harness
) -> None:
    await open_account(registry, "tax.01", role="tax_officer", regions=[], display_name="钱七")
    signed_in = await sign_in(registry.client, "TAX.01")
    assert signed_in.status_code == 201, signed_in.text
    body = signed_in.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == registry.app.state.settings.session_token_ttl_s == 300
    assert (claims["sub"], claims["role"], claims["sid"]) == ("tax.01", "tax_officer", body["session_id"])
    bills = await collection.client.get(
        "/v1/bills/organisation-due",
        headers=bearer(body["access_token"]),
        params={"organisation": "x"} | YAOHAI,
    )
    assert bills.status_code == 200, bills.text
    standings = await registry.client.get(
        "/v1/accounts", headers=bearer(body["access_token"])
    )  # a tax officer manages no accounts
    assert problem(standings)["code"] == "role_not_allowed"


async def test_a_wrong_password_an_unknown_name_and_a_disabled_account_answer_alike(
    registry: Harness,
) -> None:
    await open_account(registry, "zhang.wei")
    disabled = await open_account(registry, "wang.fang")
    await registry.client.post(f"/v1/accounts/{disabled['account_id']}/deactivation", json={"reason": "调岗"})
    answers = [
        await sign_in(registry.client, "zhang.wei", "wrong-password-1"),
        await sign_in(registry.client, "nobody.here", PASSWORD),
        await sign_in(registry.client, "wang.fang", PASSWORD),  # the right password
    ]
    assert {(a.status_code, a.text) for a in answers} == {(401, answers[0].text)}
    assert problem(answers[0])["code"] == "sign_in_failed"
    audit = (await registry.client.get("/v1/audit-events", params={"since": "2000-01-01T00:00:00Z"})).json()
    outcomes = {(e["actor"], e["action"], e["record"].split(" ")[0]) for e in audit["items"]}
    assert outcomes >= {
        ("zhang.wei", "sign_in", "sign-in:wrong_password"),
        ("nobody.here", "sign_in", "sign-in:unknown_account"),
        ("wang.fang", "sign_in", "sign-in:account_disabled"),
    }


async def test_failed_sign_ins_are_throttled_per_account_name(registry: Harness) -> None:
    await open_account(registry, "zhang.wei")
    allowed = registry.app.state.settings.sign_in_failures_allowed
    for _ in range(allowed):
        assert (await sign_in(registry.client, "zhang.wei", "wrong-password-1")).status_code == 401
    refused = await sign_in(registry.client, "zhang.wei", PASSWORD)  # even the right password now
    assert (refused.status_code, problem(refused)["code"]) == (429, "too_many_sign_in_failures")
    assert 0 < int(refused.headers["Retry-After"]) <= registry.app.state.settings.sign_in_failure_window_s
    # An unknown name is throttled the same way: the answer says nothing of who exists.
    for _ in range(allowed):
        await sign_in(registry.client, "nobody.here", "wrong-password-1")
    assert (await sign_in(registry.client, "nobody.here", PASSWORD)).status_code == 429
    audit = (await registry.client.get("/v1/audit-events", params={"actor": "zhang.wei"})).json()["items"]
    assert [e["record"].split(" ")[0] for e in audit][-1] == "sign-in:throttled"
    # Once the window has passed, the right password signs in again.
    registry.at("2023-10-08T10:16:00+08:00")
    assert (await sign_in(registry.client, "zhang.wei", PASSWORD)).status_code == 201


async def test_failed_sign_ins_are_throttled_per_address_across_names(registry: Harness) -> None:
    await open_account(registry, "zhang.wei")
    allowed = registry.app.state.settings.sign_in_address_failures_allowed
    async with browser(registry, "198.51.100.7") as one, browser(registry, "198.51.100.8") as other:
        for n in range(allowed):
            assert (await sign_in(one, f"guess.{n}", "wrong-password-1")).status_code == 401
        assert (await sign_in(one, "zhang.wei", PASSWORD)).status_code == 429
        # Another address is not held back by it.
        assert (await sign_in(other, "zhang.wei", PASSWORD)).status_code == 201


async def test_replicas_share_the_failure_count(registry: Harness) -> None:
    """Another replica of the registry (its own process, the same database) sees the failures."""
    await open_account(registry, "zhang.wei")
    replica = create_app(registry.app.state.settings)
    replica.state.sessionmaker, replica.state.clock = registry.sessionmaker, registry.app.state.clock
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=replica), base_url="http://replica"
    ) as other:
        for _ in range(registry.app.state.settings.sign_in_failures_allowed):
            await sign_in(registry.client, "zhang.wei", "wrong-password-1")
        assert (await sign_in(other, "zhang.wei", PASSWORD)).status_code == 429


async def test_a_disabled_account_is_refused_on_its_next_request(registry: Harness) -> None:
    account = await open_account(registry, "zhang.wei")
    token = (await sign_in(registry.client, "zhang.wei")).json()["access_token"]
    async with browser(registry) as page:
        assert (await sign_in_page(page, "zhang.wei")).status_code == 303
        shown = await page.get("/dashboard", params=YAOHAI)
        assert shown.status_code == 200
        # Not kept by caches: the back button after signing out shows nothing; not framed by other sites.
        assert (shown.headers["Cache-Control"], shown.headers["X-Frame-Options"]) == ("no-store", "DENY")
        assert (
            await registry.client.get("/dashboard", params=YAOHAI, headers=bearer(token))
        ).status_code == 200
        disabled = await registry.client.post(
            f"/v1/accounts/{account['account_id']}/deactivation", json={"reason": "调离岗位"}
        )
        assert disabled.status_code == 200
        by_token = await registry.client.get("/dashboard", params=YAOHAI, headers=bearer(token))
        assert (by_token.status_code, problem(by_token)["details"]["reason"]) == (401, "session_ended")
        by_cookie = await page.get("/dashboard", params=YAOHAI, headers={"Accept": "application/json"})
        assert (by_cookie.status_code, problem(by_cookie)["details"]["reason"]) == (401, "session_ended")
        # Enabled again, the account signs in anew; the old sessions stay over.
        await registry.client.post(f"/v1/accounts/{account['account_id']}/reactivation")
        assert (await registry.client.get("/dashboard", headers=bearer(token))).status_code == 401
        assert (await sign_in(registry.client, "zhang.wei")).status_code == 201


async def test_a_new_password_ends_the_sessions_and_role_changes_apply_at_once(registry: Harness) -> None:
    account = await open_account(registry, "zhang.wei")
    token = (await sign_in(registry.client, "zhang.wei")).json()["access_token"]
    moved = await registry.client.patch(f"/v1/accounts/{account['account_id']}", json={"regions": ["340104"]})
    assert moved.status_code == 200
    # The token still says 340102; the registry goes by the account as it stands.
    outside = await registry.client.get("/dashboard", params=YAOHAI, headers=bearer(token))
    assert problem(outside)["code"] == "outside_area"
    await registry.client.patch(
        f"/v1/accounts/{account['account_id']}", json={"password": "another-horse-77"}
    )
    assert (await registry.client.get("/dashboard", headers=bearer(token))).status_code == 401
    assert (await sign_in(registry.client, "zhang.wei")).status_code == 401
    assert (await sign_in(registry.client, "zhang.wei", "another-horse-77")).status_code == 201


async def test_the_sign_in_page_sets_an_http_only_strict_session_cookie(registry: Harness) -> None:
    await open_account(registry, "zhang.wei")
    async with browser(registry) as page:
        form = await page.get("/sign-in")
        assert "工作人员登录" in form.text
        assert form.headers["X-Frame-Options"] == "DENY"
        signed_in = await sign_in_page(page, "zhang.wei")
        assert signed_in.status_code == 303
        assert signed_in.headers["Location"] == "/dashboard?region_code=340102&coverage_year=2024"
        cookie = next(
            c for c in signed_in.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= flags
        assert "secure" not in flags  # tests speak plain http; production sets it (next test)
        dashboard = await page.get("/dashboard", params=YAOHAI)
        assert dashboard.status_code == 200
        assert "张伟（经办人员）" in dashboard.text
        assert 'action="/sign-out"' in dashboard.text


def test_production_sends_the_cookie_over_https_only_and_refuses_the_development_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production_kafka_env(monkeypatch)
    real: dict[str, Any] = {"database_url": "postgresql+asyncpg://u@db/x", "auth_keys": {"2026-11": "s" * 40}}
    settings = RegistrySettings(environment="production", **real)
    assert settings.cookie_secure is True
    assert settings.first_admin_password() is None  # no account unless a password is given
    for wrong in (
        {"bootstrap_admin_password": DEV_ADMIN_PASSWORD},
        {"bootstrap_admin_password": "short"},
        {"session_cookie_secure": False},
        {"password_hash_memory_kib": 1024},
    ):
        with pytest.raises(ValidationError):
            RegistrySettings(environment="production", **real, **wrong)


async def test_the_sign_in_form_needs_its_own_token(registry: Harness) -> None:
    await open_account(registry, "zhang.wei")
    async with browser(registry) as page:
        # A form posted from another site: no token cookie of this page, or another token.
        forged = await page.post(
            "/sign-in", data={"username": "zhang.wei", "password": PASSWORD, "csrf_token": "x"}
        )
        assert forged.status_code == 403
        assert "页面已过期" in forged.text
        await page.get("/sign-in")
        mismatched = await page.post(
            "/sign-in", data={"username": "zhang.wei", "password": PASSWORD, "csrf_token": "not-the-cookie"}
        )
        assert mismatched.status_code == 403
        assert SESSION_COOKIE not in page.cookies
        wrong = await sign_in_page(page, "zhang.wei", "wrong-password-1")
        assert wrong.status_code == 401
        assert "用户名或密码错误" in wrong.text


async def test_a_change_signed_by_the_cookie_needs_the_csrf_header(registry: Harness) -> None:
    await open_account(registry, "zhang.wei")
    async with browser(registry) as page:
        await sign_in_page(page, "zhang.wei")
        refused = await page.post("/v1/screenings", json=YAOHAI | {"run_by": "张伟"})
        assert (refused.status_code, problem(refused)["code"]) == (403, "csrf_token_invalid")
        dashboard = await page.get("/dashboard", params=YAOHAI)
        token = form_token(dashboard)
        allowed = await page.post(
            "/v1/screenings", json=YAOHAI | {"run_by": "张伟"}, headers={CSRF_HEADER: token}
        )
        assert allowed.status_code == 200, allowed.text


async def test_signing_out_ends_the_session_on_the_server(registry: Harness) -> None:
    await open_account(registry, "zhang.wei")
    async with browser(registry) as page:
        await sign_in_page(page, "zhang.wei")
        secret = page.cookies[SESSION_COOKIE]
        dashboard = await page.get("/dashboard", params=YAOHAI)
        assert (await page.post("/sign-out", data={"csrf_token": "forged"})).status_code == 403
        assert (await page.get("/dashboard", params=YAOHAI)).status_code == 200  # still signed in
        out = await page.post("/sign-out", data={"csrf_token": form_token(dashboard)})
        assert (out.status_code, out.headers["Location"]) == (303, "/sign-in?signed_out=true")
        assert SESSION_COOKIE not in page.cookies
        assert "您已退出登录" in (await page.get(out.headers["Location"])).text
    # The cookie kept by someone else is over too: the session ended in the database.
    async with browser(registry) as replay:
        replay.cookies.set(SESSION_COOKIE, secret)
        again = await replay.get("/dashboard", params=YAOHAI, headers={"Accept": "application/json"})
        assert problem(again)["details"]["reason"] == "session_ended"
    audit = (await registry.client.get("/v1/audit-events", params={"actor": "zhang.wei"})).json()["items"]
    assert "sign_out" in {e["action"] for e in audit}


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_an_api_client_gets_401(
    registry: Harness,
) -> None:
    async with browser(registry) as page:
        sent = await page.get("/dashboard", params=YAOHAI)
        assert sent.status_code == 303
        assert (
            sent.headers["Location"]
            == "/sign-in?next=%2Fdashboard%3Fregion_code%3D340102%26coverage_year%3D2024"
        )
        page.cookies.set(SESSION_COOKIE, "made-up")
        assert (await page.get("/dashboard")).status_code == 303
    api = await registry.client.get("/dashboard", headers=NO_TOKEN)
    assert (api.status_code, problem(api)["details"]["reason"]) == (401, "missing_token")
    # After signing in the browser goes where it was going, and never to another site.
    async with browser(registry) as page:
        form = await page.get("/sign-in", params={"next": "//evil.example/x"})
        assert 'name="next" value="/dashboard"' in form.text


async def test_a_session_idles_out_and_ends_at_its_maximum_age(registry: Harness) -> None:
    await open_account(registry, "zhang.wei")
    settings = registry.app.state.settings
    token = (await sign_in(registry.client, "zhang.wei")).json()["access_token"]
    registry.at("2023-10-08T10:31:00+08:00")  # 31 minutes unused
    idle = await registry.client.get("/dashboard", headers=bearer(token))
    assert problem(idle)["details"]["reason"] == "session_idle"
    # Used every 25 minutes, a session still ends at its maximum age.
    token = (await sign_in(registry.client, "zhang.wei")).json()["access_token"]
    start = datetime.fromisoformat("2023-10-08T10:31:00+08:00")
    step = timedelta(minutes=25)
    moment = start
    while moment + step < start + timedelta(seconds=settings.session_max_age_s):
        moment += step
        registry.at(moment.isoformat())
        fresh = await registry.client.post("/v1/sessions/current/token", headers=bearer(token))
        assert fresh.status_code == 200, fresh.text
        token = fresh.json()["access_token"]
    registry.at((start + timedelta(seconds=settings.session_max_age_s, minutes=1)).isoformat())
    over = await registry.client.get("/dashboard", headers=bearer(token))
    assert problem(over)["details"]["reason"] == "session_expired"


async def test_an_api_client_refreshes_its_token_and_signs_out(registry: Harness) -> None:
    await open_account(registry, "zhang.wei")
    first = (await sign_in(registry.client, "zhang.wei")).json()
    fresh = await registry.client.post("/v1/sessions/current/token", headers=bearer(first["access_token"]))
    assert fresh.json()["session_id"] == first["session_id"]
    ended = await registry.client.post(
        "/v1/sessions/current/end", headers=bearer(fresh.json()["access_token"])
    )
    assert ended.status_code == 204
    for token in (first["access_token"], fresh.json()["access_token"]):
        refused = await registry.client.get("/dashboard", headers=bearer(token))
        assert problem(refused)["details"]["reason"] == "session_ended"
    # A token from `canbao token` names no session: nothing to refresh.
    assert (
        problem(await registry.client.post("/v1/sessions/current/token"))["code"] == "not_a_sign_in_session"
    )


async def test_create_admin_works_on_the_database_when_nobody_can_sign_in(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    migrate("registry", url)  # the first start: `admin` with the development password
    env = {**os.environ, "REGISTRY_DATABASE_URL": url}

    def create_admin() -> subprocess.CompletedProcess[str]:
        command = [str(CANBAO), "accounts", "create-admin", "Ops.Admin", "--password-stdin"]
        return subprocess.run(command, input="ops-password-2024\n", env=env, capture_output=True, text=True)

    created = await asyncio.to_thread(create_admin)
    assert created.returncode == 0, created.stderr
    assert "'ops.admin'" in created.stdout
    again = await asyncio.to_thread(create_admin)
    assert (again.returncode, "account_exists" in again.stderr) == (1, True)
    app = create_app(RegistrySettings(environment="test", database_url=url))
    engine = create_engine(url)
    app.state.sessionmaker = create_sessionmaker(engine)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
            for username, password in (("ops.admin", "ops-password-2024"), ("admin", DEV_ADMIN_PASSWORD)):
                assert (await sign_in(client, username, password)).status_code == 201
    finally:
        await engine.dispose()
