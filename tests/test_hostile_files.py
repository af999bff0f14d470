"""Hostile files through the real HTTP API (issue 16, files): every upload route refuses each one whole with a
clear error in the project's format (422, the route's own code, `details.reason` naming the limit, Chinese and
English messages that say which), never a 500, and keeps nothing of it. A good file goes through afterwards.

The memory these files would have taken is measured on the running service in tests/e2e/test_hostile_files.py;
shared/file_limits.py is where the limits hold."""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from registry.roster.models import RosterUpload
from shared.file_limits import FileLimits
from tests import hostile_files
from tests.collection.helpers import DAY
from tests.conftest import Harness
from tests.registry.helpers import JING, JING_WINDOW, processed, upload
from tests.registry.roster_files import ATTACHMENT_4
from tests.spreadsheets import csv_bytes, xlsx
from tests.support import problem, resident_id

LIMITS = FileLimits()
MiB = 1024 * 1024

# (file name, content, the reason it is refused for): each breaks one limit at its default.
HOSTILE: list[tuple[str, bytes, str]] = [
    # 200 MB of shared strings in 200 KB: refused by the declared ratio before anything is inflated.
    ("bomb.xlsx", hostile_files.zip_bomb(200 * MiB), "compression_ratio_too_high"),
    # The same, its directory declaring the strings 64 KiB: never inflated past what it declares.
    ("lying-bomb.xlsx", hostile_files.zip_bomb(200 * MiB, declared_bytes=64 * 1024), "unreadable"),
    ("wide.xlsx", hostile_files.wide_row_xlsx(LIMITS.max_cells_per_row + 1), "too_many_cells"),
    ("long-row.xlsx", hostile_files.long_row_xlsx(20, 40_000), "row_too_long"),
    ("one-huge-cell.xlsx", hostile_files.long_row_xlsx(1, 600_000), "element_too_long"),
    ("wide.csv", hostile_files.many_columns_csv(LIMITS.max_cells_per_row + 1, b"1"), "too_many_cells"),
    # The found one had 8 million cells a line; two million make the point in a fifth of the bytes.
    ("8m-columns.csv", hostile_files.many_columns_csv(2_000_000), "row_too_long"),
    ("long-line.csv", hostile_files.long_line_csv(3 * MiB), "row_too_long"),
    ("long-quoted.csv", hostile_files.long_quoted_csv(20, 20_000), "row_too_long"),
]


def assert_refused(response: httpx.Response, code: str, reason: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text[:500]
    error = problem(response)
    assert (error["code"], error["details"]["reason"]) == (code, reason), error
    if reason != "unreadable":
        # The limit is named, in both languages.
        limit = str(error["details"]["limit"])
        assert limit in error["message_zh"]
        assert limit in error["message_en"]
    return error


def files_in(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.exists() else []


async def uploads_kept(h: Harness) -> int:
    async with h.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(RosterUpload)) or 0


@pytest.mark.parametrize(("filename", "content", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_a_hostile_roster_is_refused_whole_and_nothing_is_kept(
    registry: Harness, filename: str, content: bytes, reason: str
) -> None:
    registry.at(JING_WINDOW)
    response = await upload(registry, content, filename)
    assert_refused(response, "roster_file_invalid", reason)
    assert await uploads_kept(registry) == 0
    assert files_in(registry.app.state.settings.roster_dir) == []

    good = csv_bytes(ATTACHMENT_4, [[1, "张一", resident_id(region="341823"), "泾川镇", "", "", ""]], "utf-8")
    created = await upload(registry, good, "低保.csv", category="低保对象")
    assert created.status_code == 201, created.text
    assert (await processed(registry, created.json()["upload_id"]))["rows_accepted"] == 1


async def test_a_roster_beyond_a_limit_deep_in_the_file_is_refused_at_intake(registry: Harness) -> None:
    """The limits hold for every row, not only the header the intake looks at: the file is read through once
    before it is kept, so no upload is left half-validated."""
    registry.at(JING_WINDOW)
    ids = [resident_id(region="341823") for _ in range(3000)]
    rows = [[i, f"居民{i}", n, "泾川镇", "", "", ""] for i, n in enumerate(ids, start=1)]
    data = csv_bytes(ATTACHMENT_4, rows, "utf-8") + b",".join([b"9"] * (LIMITS.max_cells_per_row + 1)) + b"\n"
    response = await upload(registry, data, "低保.csv", category="低保对象")
    error = assert_refused(response, "roster_file_invalid", "too_many_cells")
    assert error["details"]["row"] == len(rows) + 2  # the header, then the rows
    assert await uploads_kept(registry) == 0


@pytest.mark.parametrize(
    "name",
    ["名" * 252 + ".csv", "n" * 400 + ".xlsx", "roster." + "x" * 300],
    ids=["256-characters", "405-characters", "long-suffix"],
)
async def test_a_roster_file_name_over_255_characters_is_refused_with_422(
    registry: Harness, name: str
) -> None:
    registry.at(JING_WINDOW)
    rows = [[1, "张一", resident_id(region="341823"), "泾川镇", "", "", ""]]
    data = xlsx(ATTACHMENT_4, rows) if name.endswith(".xlsx") else csv_bytes(ATTACHMENT_4, rows, "utf-8")
    response = await upload(registry, data, name, category="低保对象")
    assert_refused(response, "roster_file_invalid", "filename_too_long")
    assert await uploads_kept(registry) == 0
    suffix = ".xlsx" if name.endswith(".xlsx") else ".csv"
    response = await upload(registry, data, "名" * (255 - len(suffix)) + suffix, category="低保对象")
    assert response.status_code == 201, response.text


TABLE = ("乡镇", "目标任务数")
PAYMENTS = ("交易流水号", "缴费时间", "缴费金额", "账单号")
SMALL = [  # a progress table may be 1 MiB at most: the files that fit
    ("bomb.xlsx", lambda h: hostile_files.zip_bomb(200 * MiB, header=h), "compression_ratio_too_high"),
    ("wide.xlsx", lambda h: hostile_files.wide_row_xlsx(LIMITS.max_cells_per_row + 1, h), "too_many_cells"),
    ("wide.csv", lambda h: hostile_files.many_columns_csv(20_000, b"1", h), "too_many_cells"),
    ("x" * 252 + ".csv", lambda h: b"a", "filename_too_long"),
]


@pytest.mark.parametrize(
    ("filename", "build", "reason"), SMALL, ids=["bomb", "wide.xlsx", "wide.csv", "name"]
)
async def test_the_progress_table_and_the_reconciliation_file_are_held_to_the_same_limits(
    registry: Harness,
    collection: Harness,
    filename: str,
    build: Callable[[Sequence[str]], bytes],
    reason: str,
) -> None:
    registry.at(JING_WINDOW)
    before = (await registry.client.get("/v1/progress/baseline", params=JING)).json()
    table = await registry.client.put(
        "/v1/progress/baseline",
        files={"file": (filename, build(TABLE))},
        data=JING | {"loaded_by": "县医保局"},
    )
    assert_refused(table, "progress_baseline_invalid", reason)
    assert (await registry.client.get("/v1/progress/baseline", params=JING)).json() == before

    payments = await collection.client.post(
        "/v1/reconciliations",
        data={"channel": "wechat", "business_day": DAY, "uploaded_by": "税务对账员"},
        files={"file": (filename, build(PAYMENTS))},
    )
    assert_refused(payments, "reconciliation_file_invalid", reason)
    assert (await collection.client.get("/v1/reconciliations", params={"channel": "wechat"})).json() == []
