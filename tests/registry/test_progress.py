"""Progress reports (参保进度): per township or district, as of a day, against the documents' reference
tables; totals computed from the rows."""

import random
from collections import Counter
from datetime import date
from typing import Any

from tests.conftest import Harness
from tests.registry.helpers import (
    HEFEI,
    HEFEI_WINDOW,
    JING,
    JING_WINDOW,
    applied,
    assign,
    deliver_payment,
    deliver_refund,
    enrolled,
    enrollment_of,
    person,
)
from tests.spreadsheets import csv_bytes, read_xlsx, xlsx
from tests.support import resident_id

JING_TOWNSHIPS = [
    "泾川镇",
    "云岭镇",
    "茂林镇",
    "榔桥镇",
    "桃花潭镇",
    "丁家桥镇",
    "黄村镇",
    "蔡村镇",
    "琴溪镇",
    "昌桥乡",
    "汀溪乡",
]
# Attachment 1's rows as printed; they add up to 271,369 while the document prints 271,370.
JING_TARGETS = [56838, 35512, 18814, 27428, 26629, 13398, 19506, 15985, 16202, 30014, 11043]

BEFORE = "2022-12-01T10:00:00+08:00"
AFTER = "2022-12-11T09:00:00+08:00"  # the day after the report's cut-off
AS_OF = "2022-12-10"


async def report(h: Harness, where: dict[str, Any], as_of: str | None = None) -> dict[str, Any]:
    params = where | ({"as_of": as_of} if as_of else {})
    response = await h.client.get("/v1/progress", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_township_progress_matches_counts_made_independently(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    rng = random.Random(20221210)
    enrolled_by_township: Counter[str] = Counter()
    paid_late = 0
    holders_by_township: Counter[str] = Counter()
    holders_enrolled: Counter[str] = Counter()
    for n in range(40):
        township = rng.choice([*JING_TOWNSHIPS, None])
        place = {"township": township} if township else {}
        who = person(resident_id(region="341823"), name=f"居民{n}")
        subsidised = rng.random() < 0.3
        if subsidised:
            assigned = await assign(registry, who, JING, "minimum_living", **place)
            assert assigned.status_code == 201, assigned.text
        enrollment = await enrolled(registry, who, JING, **place)
        fate = rng.choice(["unpaid", "before", "after", "died"])
        if fate in ("before", "died"):
            paid = await deliver_payment(registry, enrollment, BEFORE)
            if fate == "died":
                await deliver_refund(registry, paid, paid.amount_fen, "death", ends_enrollment=True)
        elif fate == "after":
            await deliver_payment(registry, enrollment, AFTER)
            paid_late += 1
        row = township or "未填乡镇"
        enrolled_by_township[row] += fate == "before"
        holders_by_township[row] += subsidised
        holders_enrolled[row] += subsidised and fate == "before"

    body = await report(registry, JING, AS_OF)

    assert body["as_of"] == AS_OF
    assert body["target_basis"] == "target"
    rows = {r["unit"]: r for r in body["rows"]}
    assert [r["unit"] for r in body["rows"]][:11] == JING_TOWNSHIPS
    assert [rows[t]["target"] for t in JING_TOWNSHIPS] == JING_TARGETS
    for unit, row in rows.items():
        assert row["enrolled"] == enrolled_by_township[unit], unit
        low_income = next(c for c in row["categories"] if c["category"] == "minimum_living")
        assert (low_income["holders"], low_income["enrolled"]) == (
            holders_by_township[unit],
            holders_enrolled[unit],
        ), unit
    assert set(rows) - set(JING_TOWNSHIPS) <= {"未填乡镇"}
    if enrolled_by_township["未填乡镇"]:
        assert rows["未填乡镇"]["in_baseline"] is False
    jingchuan = rows["泾川镇"]
    expected_rate = f"{enrolled_by_township['泾川镇'] * 100 / 56838:.2f}"
    assert jingchuan["rate_of_target"] == expected_rate
    total = body["total"]
    assert total["target"] == 271369  # the sum of the rows, not the printed 271,370
    assert total["enrolled"] == sum(enrolled_by_township.values())
    low_income_total = next(c for c in body["categories"] if c["category"] == "minimum_living")
    assert low_income_total["holders"] == sum(holders_by_township.values())
    assert low_income_total["enrolled"] == sum(holders_enrolled.values())

    # A day later, the late payers count too; before anyone paid, nobody does.
    later = await report(registry, JING, "2022-12-11")
    assert later["total"]["enrolled"] == total["enrolled"] + paid_late
    assert (await report(registry, JING, "2022-11-30"))["total"]["enrolled"] == 0


async def test_district_progress_counts_university_students_city_wide_and_exports_attachment_2(
    registry: Harness,
) -> None:
    registry.at(HEFEI_WINDOW)
    for region, count in (("340104", 3), ("340102", 2)):
        for n in range(count):
            e = await enrolled(
                registry, person(resident_id(region=region), name=f"市民{n}"), HEFEI | {"region_code": region}
            )
            await deliver_payment(registry, e, "2023-10-08T11:00:00+08:00")
    students = [
        resident_id(region="130102", birth="20040915"),
        resident_id(region="510104", birth="20050101"),
    ]
    rows = await applied(
        registry,
        xlsx(["序号", "姓名", "身份证号码"], [[1, "赵一", students[0]], [2, "钱二", students[1]]]),
        "新生.xlsx",
        kind="university",
        department="合肥工业大学",
        **HEFEI,
    )
    assert [r["outcome"] for r in rows.values()] == ["enrolled", "enrolled"]

    body = await report(registry, HEFEI, "2023-10-08")

    by_unit = {r["unit"]: r for r in body["rows"]}
    assert [r["unit"] for r in body["rows"]][:13] == [
        "肥东县",
        "肥西县",
        "长丰县",
        "巢湖市",
        "庐江县",
        "瑶海区",
        "庐阳区",
        "蜀山区",
        "包河区",
        "高新区",
        "经开区",
        "新站区",
        "大学生",
    ]
    assert (by_unit["蜀山区"]["enrolled"], by_unit["瑶海区"]["enrolled"]) == (3, 2)
    assert by_unit["大学生"]["enrolled"] == 0  # not paid yet: the university pays for its batch
    assert body["target_basis"] == "enrolled_last_year"
    shushan = by_unit["蜀山区"]
    assert (shushan["registered_population"], shushan["enrolled_last_year"]) == (696900, 281500)
    assert shushan["rate_of_target"] == f"{3 * 100 / 281500:.2f}"
    assert shushan["rate_of_registered"] == f"{3 * 100 / 696900:.2f}"
    # The document prints 800.16 and 551.15; its rows add up to 800.15 and 549.17.
    assert body["total"]["registered_population"] == 8001500
    assert body["total"]["enrolled_last_year"] == 5491700
    assert body["total"]["enrolled"] == 5

    sheet = read_xlsx(
        (
            await registry.client.get("/v1/progress/report.xlsx", params=HEFEI | {"as_of": "2023-10-08"})
        ).content,
    )
    assert sheet[0][0] == "2023年各县（市）区、开发区参保进度统计表"
    assert sheet[1][0] == "（截止 2023 年 10 月 8 日）"
    assert sheet[3][:6] == [
        "统筹区",
        "常住人口",
        "户籍人口",
        "2022年居民参保人数",
        "目标任务数",
        "2023年居民已参保人数",
    ]
    table = {r[0]: r for r in sheet[4:] if r and r[0]}
    assert float(str(table["蜀山区"][2])) == 69.69
    assert float(str(table["蜀山区"][5])) == 0.0003
    assert float(str(table["合计"][2])) == 800.15
    assert float(str(table["合计"][3])) == 549.17
    assert float(str(table["合计"][5])) == 0.0005


async def test_paid_students_of_a_university_count_in_their_own_row(registry: Harness) -> None:
    registry.at(HEFEI_WINDOW)
    student = resident_id(region="130102", birth="20040915")
    rows = await applied(
        registry,
        xlsx(["序号", "姓名", "身份证号码"], [[1, "赵一", student]]),
        "新生.xlsx",
        kind="university",
        department="合肥工业大学",
        **HEFEI,
    )
    assert [r["outcome"] for r in rows.values()] == ["enrolled"]
    enrollment = await enrollment_of(registry, person(student, name="赵一"), HEFEI)
    await deliver_payment(registry, enrollment, "2023-10-08T11:00:00+08:00")

    body = await report(registry, HEFEI, "2023-10-08")

    by_unit = {r["unit"]: r for r in body["rows"]}
    assert by_unit["大学生"]["enrolled"] == 1
    assert by_unit["蜀山区"]["enrolled"] == 0
    assert by_unit["大学生"]["rate_of_target"] == f"{100 / 439000:.2f}"


async def test_reference_figures_can_be_replaced_whole_or_not_at_all(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    before = (await registry.client.get("/v1/progress/baseline", params=JING)).json()
    assert before["source"] == "shipped:jing-2023.csv"
    assert len(before["rows"]) == 11

    bad = csv_bytes(
        ["乡镇", "目标任务数"],
        [["泾川镇", "57000"], ["泾县镇", "100"], ["云岭镇", "三万"], ["泾川镇", "1"]],
        "gb18030",
    )
    refused = await registry.client.put(
        "/v1/progress/baseline",
        files={"file": ("任务数.csv", bad)},
        data=JING | {"loaded_by": "县医保局"},
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "progress_baseline_invalid"
    assert [(p["row"], p["code"]) for p in error["details"]["problems"]] == [
        (3, "unknown_unit"),
        (4, "figure_invalid"),
        (5, "duplicate_unit"),
    ]
    assert (await registry.client.get("/v1/progress/baseline", params=JING)).json() == before

    good = csv_bytes(["乡镇", "目标任务数"], [["泾川镇", "57000"], ["云岭镇", "36000"]], "utf-8")
    replaced = await registry.client.put(
        "/v1/progress/baseline", files={"file": ("任务数2.csv", good)}, data=JING | {"loaded_by": "县医保局"}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["source"] == "任务数2.csv"
    body = await report(registry, JING)
    assert [(r["unit"], r["target"]) for r in body["rows"] if r["in_baseline"]] == [
        ("泾川镇", 57000),
        ("云岭镇", 36000),
    ]
    assert body["total"]["target"] == 93000


async def test_payments_per_day_since_the_window_opened(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    for moment in ("2022-11-15T23:30:00+08:00", "2022-11-15T08:00:00+08:00", "2022-11-16T00:10:00+08:00"):
        e = await enrolled(registry, person(resident_id(region="341823")), JING)
        await deliver_payment(registry, e, moment)

    days = (
        await registry.client.get("/v1/progress/daily-payments", params=JING | {"as_of": "2022-11-16"})
    ).json()

    # Beijing days: 23:30 on the 15th is the 15th, 00:10 on the 16th is the 16th.
    assert [(d["day"], d["enrolled"]) for d in days[-2:]] == [("2022-11-15", 2), ("2022-11-16", 1)]
    assert days[-2]["amount"] == "700.00"
    assert days[0] == {
        "day": "2022-10-17",
        "enrolled": 0,
        "amount": "0.00",
    }  # every day since the window opened
    assert len(days) == (date(2022, 11, 16) - date(2022, 10, 17)).days + 1


async def test_unknown_policy_is_refused_clearly(registry: Harness) -> None:
    response = await registry.client.get(
        "/v1/progress", params={"region_code": "110101", "coverage_year": 2024}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "policy_not_found"
