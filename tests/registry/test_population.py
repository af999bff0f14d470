"""Household-registration population data (户籍人口) from public security, loaded as a roster."""

from typing import Any

from tests.conftest import Harness
from tests.registry.helpers import JING, JING_WINDOW, processed, review, rows_of, upload
from tests.spreadsheets import csv_bytes
from tests.support import resident_id

HEADER = ["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组"]


async def load(h: Harness, rows: list[list[object]], filename: str) -> list[dict[str, Any]]:
    data = csv_bytes(HEADER, rows, "gb18030")
    created = await upload(h, data, filename, kind="household_registration", department="县公安局")
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    await processed(h, upload_id)
    assert (await review(h, upload_id)).status_code == 200
    await processed(h, upload_id)
    return await rows_of(h, upload_id)


async def summary(h: Harness) -> dict[str, int]:
    body = (await h.client.get("/v1/population/summary", params=JING)).json()
    counts = {r["township"]: r["registered"] for r in body["rows"] if r["registered"]}
    assert body["total"] == sum(r["registered"] for r in body["rows"])
    return counts


async def test_registered_population_is_kept_per_township_and_follows_moves(registry: Harness) -> None:
    registry.at(JING_WINDOW)
    ids = [resident_id(region="341823") for _ in range(4)]
    first = await load(
        registry,
        [
            [1, "甲", ids[0], "泾川镇", "城东社区", "1组"],
            [2, "乙", ids[1], "泾川镇", "城东社区", "2组"],
            [3, "丙", ids[2], "汀溪乡", "汀溪村", ""],
            [4, "丁", ids[3], "泾县镇", "", ""],
        ],
        "户籍人口2022.csv",
    )
    assert [(r["status"], r["outcome"]) for r in first] == [
        ("applied", "registered"),
        ("applied", "registered"),
        ("applied", "registered"),
        ("rejected", None),
    ]
    assert first[3]["problems"][0]["code"] == "unknown_township"
    assert await summary(registry) == {"泾川镇": 2, "汀溪乡": 1}

    # The next extract: 乙 moved to 汀溪乡, the others are as before; nobody is counted twice.
    second = await load(
        registry,
        [
            [1, "甲", ids[0], "泾川镇", "城东社区", "1组"],
            [2, "乙", ids[1], "汀溪乡", "汀溪村", "3组"],
            [3, "丙", ids[2], "汀溪乡", "汀溪村", ""],
        ],
        "户籍人口2022-12.csv",
    )
    assert [r["outcome"] for r in second] == ["unchanged", "updated", "unchanged"]
    assert await summary(registry) == {"泾川镇": 1, "汀溪乡": 2}
