"""The per-row report as .xlsx, written row by row (openpyxl write-only) so its size does not matter."""

from collections.abc import AsyncIterator
from pathlib import Path

from registry.roster.models import RosterRow, RosterUpload
from shared.tabular import Spreadsheet

HEADERS = [
    "行号",
    "状态",
    "姓名",
    "身份证号码",
    "乡镇",
    "村(居)委会",
    "列",
    "问题代码",
    "问题说明",
    "Problem",
    "处理结果",
]
STATUS_ZH = {"accepted": "通过", "rejected": "未通过", "applied": "已导入"}


async def write_report(upload: RosterUpload, rows: AsyncIterator[RosterRow], target: Path) -> None:
    workbook = Spreadsheet(write_only=True)
    sheet = workbook.create_sheet("校验结果")
    sheet.append(
        [
            f"{upload.filename}（{upload.department}）校验结果：共 {upload.rows_read} 行，"
            f"通过 {upload.rows_accepted} 行，未通过 {upload.rows_rejected} 行"
        ]
    )
    sheet.append(HEADERS)
    async for row in rows:
        v = row.values
        base = [
            row.row_no,
            STATUS_ZH[row.status.value],
            v.get("name", ""),
            v.get("id_number", ""),
            v.get("township", ""),
            v.get("village", ""),
        ]
        if not row.problems:
            sheet.append([*base, "", "", "", "", row.outcome or ""])
        for p in row.problems:
            sheet.append([*base, p["column"], p["code"], p["message_zh"], p["message_en"], row.outcome or ""])
    workbook.save(target)
