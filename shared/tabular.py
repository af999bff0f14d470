"""Reading spreadsheets the way Chinese offices send them, row by row, never the whole file at once.

CSV comes as UTF-8 (with or without BOM) or GB18030/GBK, as Chinese spreadsheet exports often are; .xlsx is
read in openpyxl's read-only (streaming) mode. Every cell comes back as text. A file that cannot be read
raises the caller's own error (`invalid(details)`), so each service answers in its own terms."""

import asyncio
import codecs
import csv
import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from fastapi import BackgroundTasks
from fastapi.responses import FileResponse, Response
from openpyxl import load_workbook

Invalid = Callable[[dict[str, Any]], Exception]
"""Builds the error a service raises for an unreadable file, from details such as {"reason": ...}."""

FORMATS = (".csv", ".xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SNIFF_BYTES = 64 * 1024


async def xlsx_download(
    write: Callable[[Path], Awaitable[None]], filename: str, tasks: BackgroundTasks
) -> FileResponse:
    """A spreadsheet written to a temporary file by `write`, sent as `filename`, deleted once sent."""
    handle, name = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    target = Path(name)
    try:
        await write(target)
    except BaseException:
        await asyncio.to_thread(target.unlink, missing_ok=True)
        raise
    tasks.add_task(target.unlink, missing_ok=True)
    return FileResponse(target, media_type=XLSX, filename=filename, background=tasks)


def xlsx_response(content: bytes, filename: str) -> Response:
    """A small spreadsheet made in memory, sent as `filename` (Chinese names survive, RFC 6266)."""
    return Response(
        content,
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


def spool(
    source: IO[bytes], directory: Path, suffix: str, max_bytes: int, too_large: Invalid
) -> tuple[str, Path]:
    """Copy an upload to a file of our own, hashing it; refuse it past max_bytes (nothing is kept).
    Returns the sha256 and the file."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=directory, suffix=suffix, delete=False) as target:
        path = Path(target.name)
        while chunk := source.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                target.close()
                path.unlink(missing_ok=True)
                raise too_large({"max_bytes": max_bytes})
            digest.update(chunk)
            target.write(chunk)
    return digest.hexdigest(), path


def rows(path: Path, filename: str, invalid: Invalid) -> Iterator[tuple[int, list[str]]]:
    """(row number from 1, cells as text) for each row of the first sheet."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, invalid)
    if suffix == ".xlsx":
        return _xlsx_rows(path, invalid)
    raise invalid({"reason": "unsupported_format", "accepted": list(FORMATS)})


def normalise_header(text: str) -> str:
    # Headers get broken over lines ("序\n号") and mix full- and half-width brackets.
    return re.sub(r"\s+", "", text).replace("（", "(").replace("）", ")")


def _csv_rows(path: Path, invalid: Invalid) -> Iterator[tuple[int, list[str]]]:
    encoding = _detect_encoding(path)
    with open(path, encoding=encoding, newline="") as handle:
        try:
            yield from enumerate(csv.reader(handle), start=1)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise invalid({"reason": "unreadable", "error": str(exc)[:200]}) from exc


def _detect_encoding(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    try:
        # final=False: the sample may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"  # a superset of GBK and GB2312
    return "utf-8-sig"


def _xlsx_rows(path: Path, invalid: Invalid) -> Iterator[tuple[int, list[str]]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise invalid({"reason": "unreadable", "error": str(exc)[:200]}) from exc
    try:
        sheet = workbook.worksheets[0]
        for row_no, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield row_no, [cell_text(c) for c in cells]
    finally:
        workbook.close()


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        # A date typed as a date comes as midnight; a time of day is kept when there is one.
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        # An ID number typed as a number has already lost its last digits; this shows what is left.
        return str(int(value))
    return str(value)


def count_lines(path: Path) -> int:
    """About how many rows a file has, for a progress bar (lines of a CSV, the sheet's extent for .xlsx)."""
    if path.suffix.lower() == ".xlsx":
        try:
            workbook = load_workbook(path, read_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError):
            return 0
        try:
            return int(workbook.worksheets[0].max_row or 0)
        finally:
            workbook.close()
    lines = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return lines


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")


def parse_date(text: str) -> date | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None
