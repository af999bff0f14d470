"""Reading department rosters row by row (shared.tabular reads the files).

Headers are the attachments' Chinese column names; title
lines above the header (the title, 人员类别：…, 填报单位…) are skipped, and a 人员类别 there applies to
every row.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from registry.roster.errors import RosterFileInvalid
from shared import tabular

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
    "户号": "household_no",  # 户籍人口: people of one registered household share it
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
# Distinct 人员类别 texts noted at intake (to judge a department's access); more means a mixed file anyway.
MAX_NAMED_CATEGORIES = 64
_CATEGORY_LINE = re.compile(r"人员类别[:：]\s*(\S+)")


@dataclass
class Sheet:
    """An opened roster: where each field's column is, and the rows below the header."""

    columns: dict[str, int]
    headers: dict[str, str]  # field -> the header text as the file has it, for the report
    sheet_category: str | None
    header_row: int
    rows: Iterator[tuple[int, list[str]]] = field(repr=False)
    # The 人员类别 texts of the rows, as read through by `open_whole` (at most MAX_NAMED_CATEGORIES + 1).
    named_categories: set[str] = field(default_factory=set)

    def values(self, cells: list[str]) -> dict[str, str]:
        return {name: (cells[i] if i < len(cells) else "").strip() for name, i in self.columns.items()}


def open_sheet(path: Path, filename: str, required: set[str]) -> Sheet:
    rows = tabular.rows(path, filename, RosterFileInvalid)
    title_lines: list[str] = []
    for row_no, cells in rows:
        headers = (tabular.normalise_header(c) for c in cells)
        mapped = {COLUMNS[h]: i for i, h in enumerate(headers) if h in COLUMNS}
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


def open_whole(path: Path, filename: str, required: set[str]) -> Sheet:
    """The sheet as `open_sheet` finds it, once every row was read within the file limits: a file beyond them
    is refused at intake, whole, rather than halfway through validation."""
    sheet = open_sheet(path, filename, required)
    column = sheet.columns.get("category")
    tabular.read_through(sheet.rows if column is None else _noting_categories(sheet, column))
    return sheet


def _noting_categories(sheet: Sheet, column: int) -> Iterator[tuple[int, list[str]]]:
    for row_no, cells in sheet.rows:
        text = cells[column].strip() if column < len(cells) else ""
        if text and len(sheet.named_categories) <= MAX_NAMED_CATEGORIES:
            sheet.named_categories.add(text)
        yield row_no, cells
