"""Spreadsheets for townships and departments: 资助参保人员汇总表 (Jing attachment 5), 动员名单."""

import io
from datetime import date

from registry.people.models import Person
from registry.subsidy.models import SubsidyAssignment
from registry.subsidy.schemas import MobilisationList, RosterLayout, TownshipSummary
from shared.clock import business_date
from shared.money import format_fen
from shared.tabular import Spreadsheet


def summary_workbook(summary: TownshipSummary, policy_name: str) -> bytes:
    workbook = Spreadsheet()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "汇总表"
    sheet.append([f"{policy_name} 资助参保人员汇总表"])
    sheet.append([f"人员类别：{summary.category_label}"])
    sheet.append(["序号", "乡镇", "资助（补助）参保人数", "备注"])
    for number, row in enumerate(summary.rows, start=1):
        sheet.append([number, row.township, row.enrolled, ""])
    sheet.append([len(summary.rows) + 1, "合计", summary.total, ""])  # computed from the rows above
    return _save(workbook)


def mobilisation_workbook(listing: MobilisationList, policy_name: str) -> bytes:
    workbook = Spreadsheet()
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


def _save(workbook: Spreadsheet) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


_PLACE = ["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组"]
_LAYOUTS = {
    RosterLayout.MAIN: ("资助参保人员花名册", [*_PLACE, "备注"]),
    RosterLayout.ADDITIONS: ("新增资助参保人员花名册", [*_PLACE, "新增原因", "新增日期", "备注"]),
    RosterLayout.REDUCTIONS: ("资助参保人员减少花名册", [*_PLACE, "减少原因", "减少日期", "备注"]),
}


def roster_workbook(
    layout: RosterLayout,
    policy_name: str,
    category_name: str,
    entries: list[tuple[Person, SubsidyAssignment]],
    made_on: date,
) -> bytes:
    """A roster in its attachment's layout (附件4, 6, 7), which the roster upload reads back as it is."""
    title, header = _LAYOUTS[layout]
    workbook = Spreadsheet(write_only=True)  # rows are streamed out, not kept as cells
    sheet = workbook.create_sheet(title[:31])
    sheet.append([f"{policy_name} {title}"])
    sheet.append([f"人员类别：{category_name}"])
    sheet.append([f"填报日期：{made_on:%Y年%m月%d日}"])
    sheet.append(header)
    for number, (person, a) in enumerate(entries, start=1):
        place = [number, person.name, person.document_number, a.township, a.village, a.village_group]
        if layout is RosterLayout.MAIN:
            sheet.append([*place, a.note])
        elif layout is RosterLayout.ADDITIONS:
            sheet.append([*place, a.reason, a.effective_date.isoformat(), a.note])
        else:
            removed = business_date(a.removed_at).isoformat() if a.removed_at else None
            sheet.append([*place, a.removal_reason, removed, a.note])
    return _save(workbook)
