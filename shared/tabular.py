"""Reading spreadsheets the way Chinese offices send them, row by row, never the whole file at once; writing
the spreadsheets the services send, with no text taken for a formula.

CSV comes as UTF-8 (with or without BOM) or GB18030/GBK, as Chinese spreadsheet exports often are; .xlsx is
read as a stream of its XML (`shared.file_limits`). Every cell comes back as text. Files from outside are
read within `FileLimits` (set once per process from the service's settings by `configure`), whatever they
hold. A file that cannot be read, or not within the limits, raises the caller's own error
(`invalid(details, zh=, en=)`), so each service answers in its own terms.

Every workbook a service writes is a `Spreadsheet`, and every CSV goes through `csv_writer`: text that a
spreadsheet program would take for a formula (starting with =, +, -, @, tab or CR) is written as text, never
as a formula — in .xlsx a string cell marked as text (quotePrefix), in CSV behind a single quote (OWASP).
Numbers stay numbers."""

import asyncio
import csv
import hashlib
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import quote

from fastapi import BackgroundTasks
from fastapi.responses import FileResponse, Response
from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

from shared import file_limits
from shared.file_limits import FileLimits, Refused


class Invalid(Protocol):
    """Builds the error a service raises for a file it refuses (a DomainError subclass), from details such as
    {"reason": ...} and, where the file broke a limit, messages that say which."""

    def __call__(
        self, details: dict[str, Any] | None = None, *, zh: str | None = None, en: str | None = None
    ) -> Exception: ...


FORMATS = (".csv", ".xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_FILENAME_CHARS = 255

_limits = FileLimits()


def configure(limits: FileLimits) -> None:
    """The limits every file read by this process is held to (the service's settings, at start-up)."""
    global _limits
    _limits = limits


def limits() -> FileLimits:
    return _limits


def upload_suffix(filename: str, invalid: Invalid) -> str:
    """The format of an uploaded file by its name (.csv or .xlsx); a name no file system or column can hold,
    or another format, is refused before anything is read or kept."""
    if len(filename) > MAX_FILENAME_CHARS:
        raise invalid(
            {"reason": "filename_too_long", "limit": MAX_FILENAME_CHARS},
            zh=f"文件名超过 {MAX_FILENAME_CHARS} 个字符",
            en=f"The file name is longer than {MAX_FILENAME_CHARS} characters",
        )
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise invalid({"reason": "unsupported_format", "accepted": list(FORMATS)})
    return suffix


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


def rows(
    path: Path, filename: str, invalid: Invalid, within: FileLimits | None = None
) -> Iterator[tuple[int, list[str]]]:
    """(row number from 1, cells as text) for each row of the first sheet (an .xlsx's rows that have cells).
    The file is held to `within` (else the process's limits): beyond them, `invalid` is raised, naming the
    limit, before anything past it is read."""
    suffix = Path(filename).suffix.lower()
    bounds = within or _limits
    if suffix == ".csv":
        return _refusing(file_limits.csv_rows(path, bounds), invalid)
    if suffix == ".xlsx":
        return _refusing(_xlsx_rows(path, bounds), invalid)
    raise invalid({"reason": "unsupported_format", "accepted": list(FORMATS)})


def read_through(rows: Iterable[tuple[int, list[str]]]) -> None:
    """Read every remaining row, keeping none: a file is refused whole at intake, not halfway through use."""
    for _ in rows:
        pass


def normalise_header(text: str) -> str:
    # Headers get broken over lines ("序\n号") and mix full- and half-width brackets.
    return re.sub(r"\s+", "", text).replace("（", "(").replace("）", ")")


def _refusing(source: Iterator[tuple[int, list[str]]], invalid: Invalid) -> Iterator[tuple[int, list[str]]]:
    try:
        yield from source
    except Refused as refused:
        raise invalid(refused.details, zh=refused.zh, en=refused.en) from None


def _xlsx_rows(path: Path, bounds: FileLimits) -> Iterator[tuple[int, list[str]]]:
    for row_no, values in file_limits.xlsx_rows(path, bounds):
        yield row_no, [v if type(v) is str else cell_text(v) for v in values]


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
        return file_limits.xlsx_extent(path, _limits)
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


# Writing ---------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(sheet: Worksheet | WriteOnlyWorksheet, value: Any) -> Any:
    """The value as a cell: text stays text. What openpyxl would write as a formula (=…) or an error (#N/A),
    and whatever a spreadsheet program would take for a formula when edited (+, -, @, tab, CR), becomes a
    string cell marked as text; characters XML cannot hold become U+FFFD instead of failing the whole file."""
    if not isinstance(value, str):
        return value
    if ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if not value.startswith(_FORMULA_START) and value not in ERROR_CODES:
        return value
    cell = Cell(sheet, row=1, column=1)
    cell.value = value
    _as_text(cell)
    return cell


def _as_text(cell: Cell) -> None:
    cell.data_type = "s"
    cell.quotePrefix = True  # Excel and WPS keep it text even when someone edits the cell


class _TextWorksheet(Worksheet):
    def append(self, iterable: Any) -> None:
        super().append([_text_cell(self, v) for v in iterable])


class _TextWriteOnlyWorksheet(WriteOnlyWorksheet):
    def append(self, row: Any) -> None:
        super().append([_text_cell(self, v) for v in row])


class Spreadsheet(Workbook):
    """The workbook every service writes with (openpyxl's, write-only or not): no cell is ever a formula.
    Rows appended are made safe as they come; a normal workbook's cells set any other way, at save."""

    def __init__(self, write_only: bool = False) -> None:
        super().__init__(write_only=write_only)
        for sheet in self.worksheets:
            self._make_safe(sheet)

    def create_sheet(self, title: Any = None, index: int | None = None) -> Any:
        return self._make_safe(super().create_sheet(title, index))

    @staticmethod
    def _make_safe(sheet: Any) -> Any:
        # The same objects with a guarded append (the subclasses add no state of their own).
        if type(sheet) is Worksheet:
            sheet.__class__ = _TextWorksheet
        elif type(sheet) is WriteOnlyWorksheet:
            sheet.__class__ = _TextWriteOnlyWorksheet
        return sheet

    def save(self, filename: Any) -> None:
        if not self.write_only:
            for sheet in self.worksheets:
                if isinstance(sheet, Worksheet):
                    for cell in sheet._cells.values():
                        if isinstance(cell, Cell):
                            _guard(cell)
        super().save(filename)


def _guard(cell: Cell) -> None:
    value = cell.value
    if cell.data_type in ("f", "e") and isinstance(value, str):
        _as_text(cell)
    elif cell.data_type == "s" and isinstance(value, str) and value.startswith(_FORMULA_START):
        cell.quotePrefix = True


def csv_text(value: Any) -> Any:
    """A value for a CSV cell: text a spreadsheet program would take for a formula gets a leading single quote
    (OWASP's advice for CSV injection); numbers stay numbers, a negative amount included."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class TextCsvWriter:
    """csv.writer whose rows go through `csv_text`."""

    def __init__(self, handle: IO[str], **options: Any):
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([csv_text(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle: IO[str], **options: Any) -> TextCsvWriter:
    """The only way services write CSV."""
    return TextCsvWriter(handle, **options)
