"""Spreadsheets as offices send them: .xlsx, and CSV in GBK or UTF-8."""

import csv
import io
from collections.abc import Sequence

from openpyxl import Workbook, load_workbook


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


def read_xlsx(data: bytes, sheet: int = 0) -> list[list[object]]:
    worksheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[sheet]
    return [list(row) for row in worksheet.iter_rows(values_only=True)]
