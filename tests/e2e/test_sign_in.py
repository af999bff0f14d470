"""Staff sign in with a browser (headless Chromium) against the running system: accounts made with
`canbao accounts` by the administrator `make run` starts with; the sign-in page, the dashboard, signing out
and being refused after; a wrong password N times throttled; a disabled account refused next time."""

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from registry.settings import DEV_ADMIN_PASSWORD
from shared.auth import SESSION_COOKIE
from tests.e2e.test_dashboard import ARTIFACTS, CHROMIUM_ARGS, chromium  # noqa: F401  (the fixture)
from tests.support import CANBAO, ROOT, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

PASSWORD = "correct-horse-battery"
DASHBOARD = "/dashboard?region_code=340102&coverage_year=2024"


async def canbao_accounts(stack: Stack, *args: str, stdin: str | None = None) -> str:
    """`canbao accounts …` as an administrator runs it against the running registry (make run's token)."""
    result = await asyncio.to_thread(
        subprocess.run,
        [str(CANBAO), "accounts", *args],
        input=stdin,
        env={**os.environ, "CANBAO_REGISTRY_URL": stack.url("registry")},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def open_staff_account(stack: Stack, username: str, name: str) -> None:
    await canbao_accounts(
        stack,
        "create",
        username,
        "--name",
        name,
        "--role",
        "staff",
        "--region",
        "340102",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )


async def sign_in(page: Page, username: str, password: str) -> int:
    """Fill in and send the sign-in form; the status of the page it answered with."""
    await page.fill("#username", username)
    await page.fill("#password", password)
    async with page.expect_response(
        lambda r: r.url.endswith("/sign-in") and r.request.method == "POST"
    ) as sent:
        await page.click("#sign-in-form button[type=submit]")
    await page.wait_for_load_state()
    return (await sent.value).status


async def test_staff_sign_in_see_the_dashboard_sign_out_and_are_refused_after(
    stack: Stack,
    chromium: Path,  # noqa: F811
) -> None:
    registry = stack.url("registry")
    # The account `make run` starts with signs in to the API with its documented password.
    async with httpx.AsyncClient(base_url=registry) as api:
        admin = await api.post("/v1/sessions", json={"username": "admin", "password": DEV_ADMIN_PASSWORD})
    assert admin.status_code == 201, admin.text
    await open_staff_account(stack, "zhang.wei", "张伟")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 1200}, locale="zh-CN")
            page = await context.new_page()
            await page.goto(registry + DASHBOARD)
            assert page.url.startswith(f"{registry}/sign-in?next=")  # no session yet: sent to sign in
            assert await page.locator("h2").inner_text() == "工作人员登录"
            assert await sign_in(page, "zhang.wei", PASSWORD) == 303
            assert page.url == registry + DASHBOARD
            assert "合肥市2024年度城乡居民基本医疗保险 · 参保工作看板" in await page.title()
            assert "张伟（经办人员）" in await page.locator("#viewer").inner_text()

            cookie = next(c for c in await context.cookies() if c["name"] == SESSION_COOKIE)
            assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Strict", False)
            assert SESSION_COOKIE not in await page.evaluate("document.cookie")  # out of scripts' reach
            backend = "postgresql" if "postgresql" in stack.database_urls["registry"] else "sqlite"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"signed-in-{backend}.png"), full_page=True)

            async with page.expect_navigation():
                await page.click("#sign-out")
            assert await page.locator("#sign-in-notice").inner_text() == "您已退出登录"
            await page.goto(registry + DASHBOARD)
            assert page.url.startswith(f"{registry}/sign-in?next=")
            # The session ended on the server: its cookie, put back, signs nobody in.
            await context.add_cookies([{"name": SESSION_COOKIE, "value": cookie["value"], "url": registry}])
            response = await page.goto(registry + DASHBOARD)
            assert response is not None
            assert page.url.startswith(f"{registry}/sign-in?next=")
        finally:
            await browser.close()


async def test_a_wrong_password_n_times_is_throttled(stack: Stack, chromium: Path) -> None:  # noqa: F811
    await open_staff_account(stack, "li.si", "李四")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            await page.goto(stack.url("registry") + "/sign-in")
            for _ in range(5):  # REGISTRY_SIGN_IN_FAILURES_ALLOWED
                assert await sign_in(page, "li.si", "not-the-password") == 401
                assert "用户名或密码错误" in await page.locator("#sign-in-error").inner_text()
            # Now even the right password is refused until the window has passed.
            assert await sign_in(page, "li.si", PASSWORD) == 429
            assert "登录失败次数过多" in await page.locator("#sign-in-error").inner_text()
            backend = "postgresql" if "postgresql" in stack.database_urls["registry"] else "sqlite"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"sign-in-throttled-{backend}.png"), full_page=True)
        finally:
            await browser.close()
    async with stack.client("registry") as admin:
        audit = (await admin.get("/v1/audit-events", params={"actor": "li.si"})).json()["items"]
    assert [e["record"].split(" ")[0] for e in audit] == ["sign-in:wrong_password"] * 5 + [
        "sign-in:throttled"
    ]


async def test_a_disabled_account_is_refused_on_its_next_request(stack: Stack, chromium: Path) -> None:  # noqa: F811
    registry = stack.url("registry")
    await open_staff_account(stack, "wang.fang", "王芳")
    async with httpx.AsyncClient(base_url=registry) as api:
        token = (await api.post("/v1/sessions", json={"username": "wang.fang", "password": PASSWORD})).json()[
            "access_token"
        ]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="zh-CN")
            await page.goto(registry + DASHBOARD)
            assert await sign_in(page, "wang.fang", PASSWORD) == 303
            assert page.url == registry + DASHBOARD

            await canbao_accounts(stack, "disable", "wang.fang", "--reason", "调离岗位")

            await page.reload()
            assert page.url.startswith(f"{registry}/sign-in?next=")
            async with httpx.AsyncClient(base_url=registry) as api:
                refused = await api.get(DASHBOARD, headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 401
            # Signing in again is refused as a wrong password is: nobody learns the account is disabled.
            assert await sign_in(page, "wang.fang", PASSWORD) == 401
        finally:
            await browser.close()
