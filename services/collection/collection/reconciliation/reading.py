"""The tax side's daily payment file (缴费明细对账文件): one line per channel transaction.

Columns (Chinese or English headers, in any order, title lines above the header skipped):
交易流水号 (reference), 缴费时间 (paid_at: a date, or a date and Beijing time), 缴费金额 (amount, yuan),
账单号 (bill_ids, several separated by `;`), and optionally 缴费渠道 (channel). A file is used whole or not
at all: any bad line refuses it with a report of every bad line."""

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from collection.ledger.accounts import Channel
from collection.reconciliation.errors import ReconciliationFileInvalid
from shared import tabular
from shared.clock import BUSINESS_TZ
from shared.money import parse_yuan

COLUMNS: dict[str, str] = {
    "交易流水号": "reference",
    "渠道流水号": "reference",
    "流水号": "reference",
    "channel_reference": "reference",
    "reference": "reference",
    "缴费时间": "paid_at",
    "交易时间": "paid_at",
    "缴费日期": "paid_at",
    "交易日期": "paid_at",
    "paid_at": "paid_at",
    "缴费金额": "amount",
    "交易金额": "amount",
    "金额": "amount",
    "金额(元)": "amount",
    "amount": "amount",
    "账单号": "bill_ids",
    "缴费单号": "bill_ids",
    "bill_ids": "bill_ids",
    "缴费渠道": "channel",
    "渠道": "channel",
    "channel": "channel",
}
REQUIRED = ("reference", "paid_at", "amount", "bill_ids")
HEADER_SCAN_ROWS = 20
MAX_REPORTED = 1000
MAX_BILLS = 30
CHANNEL_NAMES: dict[str, Channel] = {
    "微信": Channel.WECHAT,
    "支付宝": Channel.ALIPAY,
    "皖事通": Channel.PROVINCIAL_APP,
    "省医保app": Channel.PROVINCIAL_APP,
    "办税服务厅": Channel.TAX_HALL,
    "现金": Channel.CASH,
    "银行": Channel.BANK,
    **{c.value: c for c in Channel},
}
_BILL_SEPARATORS = re.compile(r"[;；,，\s]+")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S")
# The first two formats exactly, read without strptime (half the reading of a large file otherwise).
_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


@dataclass(frozen=True)
class FileLine:
    line_no: int
    reference: str
    amount_fen: int
    paid_on: date
    paid_at: datetime | None  # when the file gives the time of day
    bill_ids: list[str]


@dataclass(frozen=True)
class CheckedFile:
    """A file every line of which is valid. Its lines are not kept: `chunks` reads them again, a chunk at a
    time, so a file of any length is judged in flat memory."""

    path: Path
    filename: str
    channel: Channel
    references: frozenset[str]

    def chunks(self, size: int) -> Iterator[list[FileLine]]:
        chunk: list[FileLine] = []
        for line, _ in _lines(self.path, self.filename, self.channel):
            assert line is not None  # checked before
            chunk.append(line)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def read(path: Path, filename: str, channel: Channel) -> CheckedFile:
    """Check every line of the file; refuse it whole, with a report of its bad lines, if any is bad."""
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    problem_count = 0
    for line, line_problems in _lines(path, filename, channel):
        if line is not None:
            if line.reference in seen:
                line_problems.append(
                    _problem(
                        line.line_no,
                        "reference",
                        "duplicate_line",
                        f"与第 {seen[line.reference]} 行交易流水号重复",
                        f"same reference as line {seen[line.reference]}",
                    )
                )
            else:
                seen[line.reference] = line.line_no
        problem_count += len(line_problems)
        problems.extend(line_problems[: max(0, MAX_REPORTED - len(problems))])
    if problem_count:
        raise ReconciliationFileInvalid(
            {"reason": "lines_invalid", "problems": problems, "problems_total": problem_count}
        )
    if not seen:
        raise ReconciliationFileInvalid({"reason": "no_lines"})
    return CheckedFile(path, filename, channel, frozenset(seen))


def _lines(
    path: Path, filename: str, channel: Channel
) -> Iterator[tuple[FileLine | None, list[dict[str, Any]]]]:
    """Each non-blank line of the file: the line if it is valid, and its problems."""
    rows = tabular.rows(path, filename, ReconciliationFileInvalid)
    columns = _header(rows)
    for row_no, cells in rows:
        values = {name: (cells[i] if i < len(cells) else "").strip() for name, i in columns.items()}
        if any(values.values()):  # blank lines and trailing empty rows are skipped
            yield _line(row_no, values, channel)


def _header(rows: Any) -> dict[str, int]:
    for row_no, cells in rows:
        mapped: dict[str, int] = {}
        for i, cell in enumerate(cells):
            name = COLUMNS.get(tabular.normalise_header(cell).lower())
            if name is not None and name not in mapped:
                mapped[name] = i
        if {"reference", "amount"} <= set(mapped):
            missing = [name for name in REQUIRED if name not in mapped]
            if missing:
                raise ReconciliationFileInvalid({"reason": "columns_missing", "missing": missing})
            return mapped
        if row_no >= HEADER_SCAN_ROWS:
            break
    raise ReconciliationFileInvalid({"reason": "header_not_found", "needs": ["交易流水号", "缴费金额"]})


def _line(row_no: int, v: dict[str, str], channel: Channel) -> tuple[FileLine | None, list[dict[str, Any]]]:
    problems: list[dict[str, Any]] = []
    reference = v["reference"]
    if not reference or len(reference) > 64:
        problems.append(
            _problem(
                row_no,
                "reference",
                "reference_invalid",
                "交易流水号为空或过长",
                "reference empty or too long",
            )
        )
    amount_fen = 0
    try:
        amount_fen = parse_yuan(v["amount"].replace(",", ""))
        if amount_fen == 0:
            raise ValueError("zero")
    except ValueError:
        problems.append(
            _problem(
                row_no,
                "amount",
                "amount_invalid",
                "金额须为大于零、最多两位小数的数",
                "amount must be positive with at most two decimals",
            )
        )
    paid_at, paid_on = _moment(v["paid_at"])
    if paid_on is None:
        problems.append(
            _problem(
                row_no,
                "paid_at",
                "paid_at_invalid",
                "缴费时间无法识别",
                "paid_at is not a date or date and time",
            )
        )
    bill_ids = [b for b in _BILL_SEPARATORS.split(v["bill_ids"]) if b]
    if len(bill_ids) > MAX_BILLS or any(len(b) > 64 for b in bill_ids) or len(set(bill_ids)) != len(bill_ids):
        problems.append(
            _problem(
                row_no,
                "bill_ids",
                "bill_ids_invalid",
                "账单号过多、过长或重复",
                "too many, too long or repeated bill ids",
            )
        )
    named = v.get("channel", "")
    if named and CHANNEL_NAMES.get(named.lower()) is not channel:
        problems.append(
            _problem(
                row_no,
                "channel",
                "channel_differs",
                f"缴费渠道“{named}”与对账渠道不符",
                f"channel {named!r} is not the file's channel",
            )
        )
    if problems or paid_on is None:
        return None, problems
    return FileLine(row_no, reference, amount_fen, paid_on, paid_at, bill_ids), problems


def _moment(text: str) -> tuple[datetime | None, date | None]:
    """(the moment in Beijing time if the text has one, the Beijing date)."""
    if _ISO_MOMENT.fullmatch(text):
        with contextlib.suppress(ValueError):  # no such day or time: as strptime would, below
            moment = datetime.fromisoformat(text).replace(tzinfo=BUSINESS_TZ)
            return moment, moment.date()
    for fmt in _DATETIME_FORMATS:
        try:
            moment = datetime.strptime(text, fmt).replace(tzinfo=BUSINESS_TZ)
        except ValueError:
            continue
        return moment, moment.date()
    return None, tabular.parse_date(text)


def _problem(row_no: int, field: str, code: str, zh: str, en: str) -> dict[str, Any]:
    return {"line": row_no, "column": field, "code": code, "message_zh": zh, "message_en": en}
