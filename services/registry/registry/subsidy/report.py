"""Spreadsheets for townships and departments: 资助参保人员汇总表 (Jing attachment 5), 动员名单."""

import io

from openpyxl import Workbook

from registry.subsidy.schemas import MobilisationList, TownshipSummary
from shared.money import format_fen

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
    return _save(workbook)


def mobilisation_workbook(listing: MobilisationList, policy_name: str) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "动员名单"
    sheet.append([f"{policy_name} 部分资助未参保人员动员名单"])
    sheet.append(["序号", "姓名", "身份证号码", "乡镇", "村(居)委会", "村民组", "人员类别", "个人应缴(元)"])
    for number, item in enumerate(listing.items, start=1):
        sheet.append(
            [
                number,
                item.name,
                item.id_number_masked,
                item.township,
                item.village or "",
                item.village_group or "",
                item.category_name,
                format_fen(item.personal_due),
            ]
        )
    return _save(workbook)


def _save(workbook: Workbook) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
