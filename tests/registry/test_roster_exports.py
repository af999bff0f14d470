"""Rosters out in the attachments' layouts (附件4, 6, 7), and back in as they are."""

from typing import Any

from tests.conftest import Harness
from tests.registry.helpers import JING, JING_WINDOW, processed, review, rows_of, upload
from tests.registry.roster_files import ATTACHMENT_4
from tests.spreadsheets import read_xlsx, xlsx
from tests.support import resident_id

TITLE = ["泾县2023年度城乡居民医保资助参保人员花名册", "人员类别：低保对象"]


async def applied(h: Harness, data: bytes, filename: str, **form: Any) -> list[dict[str, Any]]:
    created = await upload(h, data, filename, **form)
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    await processed(h, upload_id)
    assert (await review(h, upload_id)).status_code == 200
    await processed(h, upload_id)
    return await rows_of(h, upload_id)


async def exported(h: Harness, layout: str) -> list[list[object]]:
    response = await h.client.get(
        "/v1/subsidy-assignments/roster.xlsx", params=JING | {"category": "minimum_living", "layout": layout}
    )
    assert response.status_code == 200, response.text
    # Trailing empty cells are not written: compare rows without them.
    rows = read_xlsx(response.content)
    return [row[: max((i + 1 for i, v in enumerate(row) if v is not None), default=0)] for row in rows]


async def test_main_additions_and_reductions_rosters_in_the_attachments_layouts(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    ids = [resident_id(region="341823") for _ in range(3)]
    main = xlsx(
        ATTACHMENT_4,
        [
            [1, "甲", ids[0], "泾川镇", "城东社区", "1组", ""],
            [2, "乙", ids[1], "汀溪乡", "汀溪村", "", "独居"],
        ],
        TITLE,
    )
    assert [r["outcome"] for r in await applied(registry, main, "低保.xlsx")] == ["enrolled", "enrolled"]
    addition = xlsx(
        ["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组", "新增原因", "备注"],
        [[1, "丙", ids[2], "茂林镇", "茂林村", "", "新认定低保", ""]],
        TITLE,
    )  # attachment 6 has no date column: the addition dates from the day it is loaded
    assert [
        r["outcome"] for r in await applied(registry, addition, "新增.xlsx", kind="subsidy_addition")
    ] == ["enrolled"]
    reduction = xlsx(
        ["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组", "减少原因", "备注"],
        [[1, "甲", ids[0], "泾川镇", "城东社区", "1组", "收入超标", ""]],
        TITLE,
    )
    assert [
        r["outcome"] for r in await applied(registry, reduction, "减少.xlsx", kind="subsidy_reduction")
    ] == ["removed:repriced"]

    main_out = await exported(registry, "main")
    assert main_out[1] == ["人员类别：低保对象"]
    assert main_out[3] == ["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组", "备注"]
    assert main_out[4:] == [[1, "乙", ids[1], "汀溪乡", "汀溪村", None, "独居"]]
    additions_out = await exported(registry, "additions")
    assert additions_out[4:] == [[1, "丙", ids[2], "茂林镇", "茂林村", None, "新认定低保", "2022-11-15"]]
    reductions_out = await exported(registry, "reductions")
    assert reductions_out[4:] == [[1, "甲", ids[0], "泾川镇", "城东社区", "1组", "收入超标", "2022-11-15"]]

    # The main roster goes back in as it came out: same people, nothing new to do.
    response = await registry.client.get(
        "/v1/subsidy-assignments/roster.xlsx", params=JING | {"category": "minimum_living"}
    )
    again = await applied(registry, response.content, "导出.xlsx")
    assert [(r["status"], r["outcome"]) for r in again] == [("applied", "already_enrolled")]


async def test_an_unknown_category_or_layout_is_refused(registry: Harness) -> None:
    unknown = await registry.client.get(
        "/v1/subsidy-assignments/roster.xlsx", params=JING | {"category": "nobody"}
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "unknown_subsidy_category")
    layout = await registry.client.get(
        "/v1/subsidy-assignments/roster.xlsx", params=JING | {"category": "minimum_living", "layout": "x"}
    )
    assert (layout.status_code, layout.json()["error"]["code"]) == (422, "validation_error")
