"""A channel's day as .xlsx (对账结果): the summary, then every line, written row by row."""

from collections.abc import AsyncIterator
from pathlib import Path

from collection.reconciliation.models import LineSource, LineState, ReconciliationLine
from collection.reconciliation.schemas import DaySummary
from shared.money import format_fen
from shared.tabular import Spreadsheet

STATE_ZH: dict[LineState, str] = {
    LineState.MATCHED: "一致",
    LineState.RECORDED: "文件有、系统无（已据文件补记）",
    LineState.ACCEPTED: "日期不符（已确认）",
    LineState.FOUND: "已在其他日文件中对平",
    LineState.DISMISSED: "已核销（线下处理）",
    LineState.WITHDRAWN: "已撤回（更正文件不再列出）",
    LineState.AMOUNT_MISMATCH: "金额不符",
    LineState.DATE_MISMATCH: "日期不符",
    LineState.BILLS_MISMATCH: "账单不符",
    LineState.UNRECORDABLE: "文件有、系统无（无法补记）",
    LineState.DUPLICATE: "重复对账",
    LineState.MISSING_FROM_FILE: "系统有、文件无",
}
HEADERS = [
    "明细编号",
    "来源",
    "文件行号",
    "交易流水号",
    "账单号",
    "文件金额",
    "文件缴费日期",
    "缴费记录",
    "记录金额",
    "记录缴费日期",
    "对账状态",
    "状态说明",
    "原因代码",
]


def _money(fen: int | None) -> str:
    return format_fen(fen) if fen is not None else ""


async def write_report(summary: DaySummary, lines: AsyncIterator[ReconciliationLine], target: Path) -> None:
    workbook = Spreadsheet(write_only=True)
    head = workbook.create_sheet("汇总")
    head.append([f"{summary.channel.value} 渠道 {summary.business_day.isoformat()} 对账结果"])
    head.append(["对账状态", "状态说明", "笔数"])
    for state, count in summary.lines.items():
        head.append([state.value, STATE_ZH[state], count])
    head.append(["文件金额", summary.file_amount and format_fen(summary.file_amount)])
    head.append(["已对平入库金额", format_fen(summary.settled_amount)])
    head.append(["系统有、文件无金额", format_fen(summary.missing_amount)])
    head.append(["待处理笔数", summary.open_lines])
    head.append(["是否对平", "是" if summary.reconciled else "否"])
    sheet = workbook.create_sheet("明细")
    sheet.append(HEADERS)
    async for line in lines:
        sheet.append(
            [
                line.id,
                "对账文件" if line.source is LineSource.FILE else "系统记录",
                line.line_no or "",
                line.reference if line.source is LineSource.FILE else "",
                ";".join(line.bill_ids),
                _money(line.file_amount_fen),
                line.file_paid_on.isoformat() if line.file_paid_on else "",
                line.payment_id or "",
                _money(line.recorded_amount_fen),
                line.recorded_on.isoformat() if line.recorded_on else "",
                line.state.value,
                STATE_ZH[line.state],
                line.reason,
            ]
        )
    workbook.save(target)
