"""参保进度统计表 as Hefei's attachment 2 (in 万人), or per township with task counts (in people)."""

import io
from decimal import Decimal

from openpyxl.styles import Alignment, Font

from registry.progress.models import UnitKind
from registry.progress.schemas import ProgressReport, ProgressRow
from shared.tabular import Spreadsheet

TEN_THOUSAND = Decimal(10_000)


def workbook(report: ProgressReport) -> bytes:
    by_region = report.total.kind is UnitKind.REGION
    book = Spreadsheet()
    sheet = book.active
    assert sheet is not None
    sheet.title = "参保进度"
    year = report.campaign_year
    title = f"{year}年各县（市）区、开发区参保进度统计表" if by_region else f"{year}年各乡镇参保进度统计表"
    sheet.append([title])
    sheet.append([f"（截止 {report.as_of.year} 年 {report.as_of.month} 月 {report.as_of.day} 日）"])
    sheet.append(["单位：万人" if by_region else "单位：人"])
    sheet.append(
        [
            "统筹区" if by_region else "乡镇",
            "常住人口",
            "户籍人口",
            f"{year - 1}年居民参保人数",
            "目标任务数",
            f"{year}年居民已参保人数",
            "参保率",
            "备注",
        ]
    )
    for row in [*report.rows, report.total]:
        sheet.append(_cells(row, by_region))
        line = sheet.max_row
        for column in "BCDEF":
            sheet[f"{column}{line}"].number_format = "0.00" if by_region else "0"
        sheet[f"G{line}"].number_format = "0.00%"
    sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    basis = "目标任务数" if report.target_basis == "target" else f"{year - 1}年居民参保人数"
    sheet.append(
        [f"参保率 = {year}年居民已参保人数 ÷ {basis}；目标：{report.coverage_target_percent}%以上。"]
    )
    sheet.append(["合计为各行相加所得。"])
    sheet.merge_cells("A1:H1")
    sheet["A1"].alignment = Alignment(horizontal="center")
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.column_dimensions["A"].width = 14
    for column in "BCDEFG":
        sheet.column_dimensions[column].width = 16
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cells(row: ProgressRow, by_region: bool) -> list[object]:
    def figure(value: int | None) -> Decimal | int | None:
        if value is None:
            return None
        return Decimal(value) / TEN_THOUSAND if by_region else value

    return [
        row.unit,
        figure(row.resident_population),
        figure(row.registered_population),
        figure(row.enrolled_last_year),
        figure(row.target),
        figure(row.enrolled),
        None if row.rate_of_target is None else row.rate_of_target / 100,
        "" if row.in_baseline else "基础数据表未列此单位",
    ]
