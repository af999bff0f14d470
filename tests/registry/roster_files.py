"""Roster files as departments send them: the attachments' layouts, as .xlsx and as GBK or UTF-8 CSV."""

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook, load_workbook

ATTACHMENT_4 = ["序\n号", "姓名", "身份证号\n码", "乡镇", "村（居）委\n会", "村民组", "备注"]
ATTACHMENT_6 = [
    "序号",
    "姓名",
    "身份证号码",
    "乡镇",
    "村（居）委会",
    "村民组",
    "新增原因",
    "新增日期",
    "人员类别",
    "备注",
]
ATTACHMENT_7 = [
    "序号",
    "姓名",
    "身份证号码",
    "乡镇",
    "村（居）委会",
    "村民组",
    "减少原因",
    "人员类别",
    "备注",
]


def xlsx(header: Sequence[str], rows: Sequence[Sequence[object]], title: Sequence[str] = ()) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for line in title:
        sheet.append([line])
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(
    header: Sequence[str], rows: Sequence[Sequence[object]], encoding: str, title: Sequence[str] = ()
) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    for line in title:
        writer.writerow([line])
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


def read_xlsx(data: bytes) -> list[list[object]]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]
