"""资助参保人员汇总表 (Jing attachment 5) as a spreadsheet."""

import io

from openpyxl import Workbook

from registry.subsidy.schemas import TownshipSummary

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def summary_workbook(summary: TownshipSummary, policy_name: str) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "汇总表"
    sheet.append([f"{policy_name} 资助参保人员汇总表"])
    sheet.append([f"人员类别：{summary.category_name}"])
    sheet.append(["序号", "乡镇", "资助（补助）参保人数", "备注"])
    for number, row in enumerate(summary.rows, start=1):
        sheet.append([number, row.township, row.enrolled, ""])
    sheet.append([len(summary.rows) + 1, "合计", summary.total, ""])  # computed from the rows above
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
