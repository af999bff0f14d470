"""The operators' dashboard in a real browser (headless Chromium) against the running system with data:
what a person sees, and a screenshot kept as a test artifact."""

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from shared.auth import Role, dev_token
from tests.e2e.paying import pay_online
from tests.spreadsheets import csv_bytes
from tests.support import ROOT, Stack, eventually, resident_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

CHROMIUM = Path(os.environ.get("CANBAO_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("CANBAO_TEST_ARTIFACTS", ROOT / "test-artifacts"))
# As root and on a closed network: no sandbox, and none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
YAOHAI: dict[str, Any] = {"region_code": "340102", "coverage_year": 2024}


async def enroll_and_pay(stack: Stack, id_number: str, name: str) -> None:
    async with stack.client("registry") as registry:
        created = await registry.post("/v1/enrollments", json={"id_number": id_number, "name": name} | YAOHAI)
    assert created.status_code == 201, created.text
    enrollment_id = created.json()["enrollment_id"]

    async def bill() -> dict[str, Any] | None:
        async with stack.client("collection") as collection:
            items = (await collection.get("/v1/bills", params={"enrollment_id": enrollment_id})).json()[
                "items"
            ]
        return items[0] if items else None

    found = await eventually(bill)
    await pay_online(stack, [found["bill_id"]], "wechat", id_number=id_number)

    async def active() -> bool:
        async with stack.client("registry") as registry:
            return bool((await registry.get(f"/v1/enrollments/{enrollment_id}")).json()["status"] == "active")

    await eventually(active)


async def load_household_registration(stack: Stack, rows: list[list[object]]) -> None:
    data = csv_bytes(["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组"], rows, "gb18030")
    async with stack.client("registry") as registry:
        created = await registry.post(
            "/v1/rosters",
            files={"file": ("户籍人口.csv", data)},
            data={"kind": "household_registration", "department": "市公安局", "uploaded_by": "dept-01"}
            | YAOHAI,
        )
        assert created.status_code == 201, created.text
        upload_id = created.json()["upload_id"]

        async def status(*wanted: str) -> bool:
            return bool((await registry.get(f"/v1/rosters/{upload_id}")).json()["status"] in wanted)

        await eventually(lambda: status("validated"))
        approved = await registry.post(
            f"/v1/rosters/{upload_id}/approval", json={"reviewed_by": "bureau-01", "note": "核对无误"}
        )
        assert approved.status_code == 200, approved.text
        await eventually(lambda: status("applied"))


@pytest.fixture(scope="module")
def chromium() -> Path:
    """The browser the project's set-up installs; its absence fails the test rather than skipping it."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make install` installs Debian's chromium"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


async def test_the_dashboard_shows_progress_payments_and_follow_up(stack: Stack, chromium: Path) -> None:
    people = [(resident_id(region="340102"), name) for name in ("王一", "王二", "王三")]
    await load_household_registration(
        stack,
        [
            [1, people[0][1], people[0][0], "明光路街道", "和平社区", ""],
            [2, people[1][1], people[1][0], "明光路街道", "和平社区", ""],
            [3, people[2][1], people[2][0], "三里街街道", "长江社区", ""],
        ],
    )
    await enroll_and_pay(stack, *people[0])
    async with stack.client("registry") as registry:
        screened = await registry.post("/v1/screenings", json=YAOHAI | {"run_by": "区医保局"})
        assert screened.json()["listed"] == 2, screened.text
        progress = (await registry.get("/v1/progress", params=YAOHAI)).json()
    yaohai = next(r for r in progress["rows"] if r["unit"] == "瑶海区")
    assert yaohai["enrolled"] >= 1  # other tests in this stack may have enrolled more

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            # As the district's staff would open it.
            staff = dev_token(Role.STAFF, regions=["340102"])
            page = await browser.new_page(
                viewport={"width": 1280, "height": 1600},
                locale="zh-CN",
                extra_http_headers={"Authorization": f"Bearer {staff}"},
            )
            response = await page.goto(
                f"{stack.url('registry')}/dashboard?region_code=340102&coverage_year=2024"
            )
            assert response is not None
            assert response.status == 200
            assert "合肥市2024年度城乡居民基本医疗保险 · 参保工作看板" in await page.title()

            units = page.locator("#units-table tbody tr", has_text="瑶海区")
            cells = await units.locator("td").all_inner_texts()
            assert cells[0] == "瑶海区"
            assert cells[2] == "222,700"  # 2022年参保 22.27万, from attachment 2
            assert cells[4] == f"{yaohai['enrolled']:,}"
            assert cells[5] == f"{yaohai['rate_of_target']}%"
            assert (
                await page.locator("#units-chart rect").count() == 13
            )  # the table's 12 districts and 大学生
            goal = page.locator("#units-chart text", has_text="目标 95%")
            assert await goal.count() == 1

            assert await page.locator("#enrolled-total").inner_text() == f"{progress['total']['enrolled']:,}"
            groups = await page.locator("#groups-table tbody tr").all_inner_texts()
            assert any(row.startswith("低保对象") for row in groups)

            today = progress["as_of"]
            day_row = await page.locator("#payments-table tbody tr").first.locator("td").all_inner_texts()
            assert day_row[0] == today
            assert int(day_row[1]) >= 1
            assert await page.locator("#payments-chart rect").count() >= 1

            follow_up = page.locator("#screening-table tbody tr", has_text="明光路街道")
            row = await follow_up.locator("td").all_inner_texts()
            headers = await page.locator("#screening-table thead th").all_inner_texts()
            assert row[headers.index("未联系")] == "1"
            assert row[headers.index("待跟进")] == "1"
            total = await page.locator("#screening-table tfoot td").all_inner_texts()
            assert total[headers.index("待跟进")] == "2"

            backend = "postgresql" if "postgresql" in stack.database_urls["registry"] else "sqlite"
            shot = ARTIFACTS / f"dashboard-{backend}.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            await browser.close()


async def test_the_dashboard_refuses_an_unknown_region_clearly(stack: Stack) -> None:
    async with stack.client("registry") as registry:
        response = await registry.get("/dashboard", params={"region_code": "110101", "coverage_year": 2024})
        index = await registry.get("/dashboard")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "policy_not_found"
    assert index.status_code == 200
    assert "合肥市2024年度城乡居民基本医疗保险" in index.text
