"""Reading department spreadsheets row by row, never the whole file at once.

CSV comes as UTF-8 (with or without BOM) or GB18030/GBK, as Chinese spreadsheet exports often are; .xlsx
is read in openpyxl's read-only (streaming) mode. Headers are the attachments' Chinese column names; title
lines above the header (the title, 人员类别：…, 填报单位…) are skipped, and a 人员类别 there applies to
every row.
"""

import codecs
import csv
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from registry.roster.errors import RosterFileInvalid

# Normalised header text -> field name.
COLUMNS: dict[str, str] = {
    "序号": "seq",
    "姓名": "name",
    "身份证号码": "id_number",
    "身份证号": "id_number",
    "公民身份号码": "id_number",
    "证件号码": "id_number",
    "乡镇": "township",
    "乡镇(街道)": "township",
    "村(居)委会": "village",
    "村居委会": "village",
    "社区(村)": "village",
    "村民组": "group",
    "备注": "note",
    "人员类别": "category",
    "新增原因": "reason",
    "减少原因": "reason",
    "新增日期": "event_date",
    "减少日期": "event_date",
    "认定日期": "event_date",
    "变动日期": "event_date",
    "学校": "school",
    "学校名称": "school",
    "就读学校": "school",
    "学校(幼儿园)": "school",
    "幼儿园": "school",
    "年级": "grade",
    "班级": "grade",
    "年级班级": "grade",
    "学号": "student_no",
}
HEADER_SCAN_ROWS = 20
_SNIFF_BYTES = 64 * 1024
_CATEGORY_LINE = re.compile(r"人员类别[:：]\s*(\S+)")


def normalise_header(text: str) -> str:
    # The attachments break headers over lines ("序\n号") and mix full- and half-width brackets.
    return re.sub(r"\s+", "", text).replace("（", "(").replace("）", ")")


@dataclass
class Sheet:
    """An opened roster: where each field's column is, and the rows below the header."""

    columns: dict[str, int]
    headers: dict[str, str]  # field -> the header text as the file has it, for the report
    sheet_category: str | None
    header_row: int
    rows: Iterator[tuple[int, list[str]]] = field(repr=False)

    def values(self, cells: list[str]) -> dict[str, str]:
        return {name: (cells[i] if i < len(cells) else "").strip() for name, i in self.columns.items()}


def open_sheet(path: Path, filename: str, required: set[str]) -> Sheet:
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix == ".xlsx":
        rows = _xlsx_rows(path)
    else:
        raise RosterFileInvalid({"reason": "unsupported_format", "accepted": [".csv", ".xlsx"]})
    title_lines: list[str] = []
    for row_no, cells in rows:
        mapped = {COLUMNS[h]: i for i, h in enumerate(normalise_header(c) for c in cells) if h in COLUMNS}
        if {"name", "id_number"} <= set(mapped):
            missing = sorted(required - set(mapped))
            if missing:
                raise RosterFileInvalid({"reason": "columns_missing", "missing": missing})
            match = _CATEGORY_LINE.search(" ".join(title_lines))
            return Sheet(
                columns=mapped,
                headers={name: cells[i].strip() for name, i in mapped.items()},
                sheet_category=match.group(1) if match else None,
                header_row=row_no,
                rows=rows,
            )
        title_lines.append(" ".join(cells))
        if row_no >= HEADER_SCAN_ROWS:
            break
    raise RosterFileInvalid({"reason": "header_not_found", "needs": ["姓名", "身份证号码"]})


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    encoding = _detect_encoding(path)
    with open(path, encoding=encoding, newline="") as handle:
        try:
            yield from enumerate(csv.reader(handle), start=1)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise RosterFileInvalid({"reason": "unreadable", "error": str(exc)[:200]}) from exc


def _detect_encoding(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    try:
        # final=False: the sample may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"  # a superset of GBK and GB2312
    return "utf-8-sig"


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RosterFileInvalid({"reason": "unreadable", "error": str(exc)[:200]}) from exc
    try:
        sheet = workbook.worksheets[0]
        for row_no, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield row_no, [_cell_text(c) for c in cells]
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        # An ID number typed as a number has already lost its last digits; this shows what is left.
        return str(int(value))
    return str(value)


def count_lines(path: Path) -> int:
    """About how many rows a file has, for a progress bar (lines of a CSV, the sheet's extent for .xlsx)."""
    if path.suffix.lower() == ".xlsx":
        try:
            workbook = load_workbook(path, read_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError):
            return 0
        try:
            return int(workbook.worksheets[0].max_row or 0)
        finally:
            workbook.close()
    lines = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return lines


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")


def parse_date(text: str) -> date | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None
