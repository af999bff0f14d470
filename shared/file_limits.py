"""Reading uploaded spreadsheets within fixed bounds of memory, whatever the file holds.

A file from outside may be built to hurt: an .xlsx is a zip of XML parts that can inflate a thousandfold, its
shared strings are the one part a reader keeps whole, and a CSV line can hold millions of cells. So:

- zip: the central directory's size is checked before the archive is opened; every part's declared size and
  compression ratio, and their total, before anything is inflated; each part is then inflated as a stream that
  stops at its declared size and at the limits (the actual size, not the declared one, is what counts).
- XML: parsed incrementally (ElementTree's pull parser over expat), each element dropped once read; no DTD,
  nesting bounded; a row, a shared string or any single tag or text longer than `max_row_bytes`, or a row of
  more than `max_cells_per_row` cells, is refused before anything after it is read.
- shared strings: bounded by `max_shared_strings_bytes` of XML, kept compactly (UTF-8 in one buffer, offsets
  in an array) rather than as millions of Python strings.
- CSV: lines read with a length cap, so a row longer than `max_row_bytes` characters is refused before it is
  whole; then its cells are counted.

Anything refused raises `Refused`, with details and Chinese and English messages; `shared.tabular` turns it
into the calling service's own error. Only the first worksheet is read, as every reader here wants.
"""

import codecs
import csv
import io
import struct
import xml.etree.ElementTree as ET
import zipfile
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from posixpath import dirname, join, normpath
from typing import IO, Any, cast

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.cell import get_column_letter
from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH, from_excel, from_ISO8601

MiB = 1024 * 1024


@dataclass(frozen=True)
class FileLimits:
    """What an uploaded spreadsheet may take. The defaults let a real roster of a million rows through."""

    max_unzipped_bytes: int = 1024 * MiB  # an .xlsx's parts together, declared and as inflated
    max_zip_ratio: int = 100  # any part over RATIO_FLOOR bytes; office files inflate 5-20 fold
    max_shared_strings_bytes: int = 128 * MiB  # the one part kept in memory while the sheet is read
    max_cells_per_row: int = 16_384  # the .xlsx format's own column limit (XFD)
    max_row_bytes: int = MiB  # a row's XML, a CSV row's characters, any single XML tag or text


# Fixed bounds: each is far beyond any office file and keeps what it bounds small.
RATIO_FLOOR = MiB  # small parts may compress well without harm
MAX_PARTS = 10_000
MAX_DIRECTORY_BYTES = MiB  # the zip's central directory, read whole by zipfile
MAX_METADATA_BYTES = 32 * MiB  # workbook.xml, styles.xml, relationships
MAX_DEPTH = 64
MAX_RELATIONSHIPS = 10_000
MAX_FORMATS = 100_000  # number formats and cell formats (Excel allows about 64,000 cell formats)
MAX_ROW_NUMBER = 1_048_576  # the .xlsx format's row limit
CHUNK = 64 * 1024
SNIFF_BYTES = 64 * 1024

_DOCTYPE = [b"<!DOCTYPE", "<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be")]
_COLUMNS = {get_column_letter(i): i for i in range(1, 16_385)}
_DIGITS = "0123456789"
_DATE, _TIMEDELTA = 1, 2


class Refused(Exception):
    """A file that cannot be read as it is, or not within the limits; nothing of it may be used."""

    def __init__(self, details: dict[str, Any], zh: str | None = None, en: str | None = None):
        super().__init__(en or details.get("reason", "refused"))
        self.details, self.zh, self.en = details, zh, en


def unreadable(error: object, **where: Any) -> Refused:
    return Refused({"reason": "unreadable", "error": str(error)[:200], **where})


def _beyond(reason: str, limit: int, zh: str, en: str, **where: Any) -> Refused:
    return Refused({"reason": reason, "limit": limit, **where}, zh=zh, en=en)


def too_many_cells(row: int, limit: int) -> Refused:
    return _beyond(
        "too_many_cells",
        limit,
        f"第 {row} 行超过 {limit} 个单元格，文件未读取",
        f"Row {row} has more than {limit} cells; the file was not read",
        row=row,
    )


def row_too_long(row: int, limit: int) -> Refused:
    return _beyond(
        "row_too_long",
        limit,
        f"第 {row} 行超过 {limit} 字节（CSV 为字符），文件未读取",
        f"Row {row} is longer than {limit} bytes (characters in a CSV); the file was not read",
        row=row,
    )


# CSV --------------------------------------------------------------------------------------------------------


def csv_encoding(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    try:
        # final=False: the sample may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"  # a superset of GBK and GB2312
    return "utf-8-sig"


def csv_rows(path: Path, limits: FileLimits) -> Iterator[tuple[int, list[str]]]:
    """(row number from 1, cells) for each CSV row (a row may span lines inside quotes)."""
    with open(path, encoding=csv_encoding(path), newline="") as handle:
        row_no, taken = 0, 0

        def lines() -> Iterator[str]:
            nonlocal taken
            while line := handle.readline(limits.max_row_bytes + 1):
                taken += len(line)
                if taken > limits.max_row_bytes:
                    raise row_too_long(row_no + 1, limits.max_row_bytes)
                yield line

        try:
            for cells in csv.reader(lines()):
                row_no, taken = row_no + 1, 0
                if len(cells) > limits.max_cells_per_row:
                    raise too_many_cells(row_no, limits.max_cells_per_row)
                yield row_no, cells
        except (UnicodeDecodeError, csv.Error) as exc:
            raise unreadable(exc, row=row_no + 1) from exc


# .xlsx: the zip ---------------------------------------------------------------------------------------------

_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


def _directory_size(handle: IO[bytes]) -> tuple[int, int]:
    """(entries, bytes) of the central directory, from the end records, before zipfile reads it whole."""
    size = handle.seek(0, io.SEEK_END)
    tail_size = min(size, _EOCD.size + 0xFFFF)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        raise unreadable("not a zip archive (no end of central directory)")
    _, _, _, _, entries, directory, _, _ = _EOCD.unpack_from(tail, at)
    if entries == 0xFFFF or directory == 0xFFFFFFFF:
        locator_at = size - tail_size + at - _ZIP64_LOCATOR.size
        if locator_at < 0:
            raise unreadable("zip64 end record missing")
        handle.seek(locator_at)
        signature, _, record_at, _ = _ZIP64_LOCATOR.unpack(handle.read(_ZIP64_LOCATOR.size))
        handle.seek(record_at)
        record = handle.read(_ZIP64_EOCD.size)
        if signature != b"PK\x06\x07" or len(record) != _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
            raise unreadable("zip64 end record missing")
        fields = _ZIP64_EOCD.unpack(record)
        entries, directory = fields[7], fields[8]
    return entries, directory


class _Budget:
    """Bytes inflated so far, across the parts read."""

    def __init__(self, limits: FileLimits):
        self.limits, self.used = limits, 0

    def take(self, count: int) -> None:
        self.used += count
        if self.used > self.limits.max_unzipped_bytes:
            raise _unzipped_too_large(self.limits.max_unzipped_bytes)


def _unzipped_too_large(limit: int) -> Refused:
    return _beyond(
        "unzipped_too_large",
        limit,
        f"表格文件解压后超过 {limit} 字节，未读取",
        f"The spreadsheet unpacks to more than {limit} bytes; it was not read",
    )


def _part_too_large(part: str, limit: int) -> Refused:
    return _beyond(
        "part_too_large",
        limit,
        f"表格文件中的 {part} 解压后超过 {limit} 字节，未读取",
        f"Part {part} of the spreadsheet unpacks to more than {limit} bytes; it was not read",
        part=part,
    )


class Archive:
    """An .xlsx opened once its directory and declared sizes are checked; parts come out bounded streams."""

    def __init__(self, path: Path, limits: FileLimits):
        self.limits = limits
        self.budget = _Budget(limits)
        self._handle = open(path, "rb")  # noqa: SIM115  (closed by close())
        try:
            entries, directory = _directory_size(self._handle)
            if entries > MAX_PARTS or directory > MAX_DIRECTORY_BYTES:
                raise _beyond(
                    "too_many_parts",
                    MAX_PARTS,
                    f"表格文件内含 {entries} 个部件，超过 {MAX_PARTS} 个，未读取",
                    f"The spreadsheet holds {entries} parts, more than {MAX_PARTS}; it was not read",
                    parts=entries,
                )
            self._handle.seek(0)
            self.zip = zipfile.ZipFile(self._handle)
            self._check_declared()
        except BaseException:
            self.close()
            raise

    def _check_declared(self) -> None:
        infos = self.zip.infolist()
        if len(infos) > MAX_PARTS:
            raise unreadable("the zip directory lists more parts than its end record says")
        total = 0
        for info in infos:
            if info.flag_bits & 0x1:
                raise unreadable("encrypted parts", part=info.filename)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise unreadable(f"compression method {info.compress_type}", part=info.filename)
            total += info.file_size
            ratio = self.limits.max_zip_ratio
            if info.file_size > RATIO_FLOOR and info.file_size > ratio * max(info.compress_size, 1):
                raise _beyond(
                    "compression_ratio_too_high",
                    ratio,
                    f"表格文件中的 {info.filename} 压缩比超过 {ratio} 倍（疑似压缩炸弹），未读取",
                    f"Part {info.filename} of the spreadsheet inflates more than {ratio}-fold "
                    "(a zip bomb?); it was not read",
                    part=info.filename,
                )
        if total > self.limits.max_unzipped_bytes:
            raise _unzipped_too_large(self.limits.max_unzipped_bytes)

    def has(self, name: str) -> bool:
        try:
            self.zip.getinfo(name)
        except KeyError:
            return False
        return True

    def chunks(self, name: str, cap: int) -> Iterator[bytes]:
        """The part inflated piece by piece: never past its declared size, `cap`, or the archive's budget."""
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            raise unreadable("part missing", part=name) from None
        if info.file_size > cap:
            raise _part_too_large(name, cap)
        inflated = 0
        try:
            with self.zip.open(info) as stream:
                while chunk := stream.read(CHUNK):
                    inflated += len(chunk)
                    if inflated > info.file_size:
                        raise unreadable("a part inflates beyond its declared size", part=name)
                    if inflated > cap:
                        raise _part_too_large(name, cap)
                    self.budget.take(len(chunk))
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, OSError, NotImplementedError, EOFError) as exc:
            raise unreadable(exc, part=name) from exc

    def close(self) -> None:
        if hasattr(self, "zip"):
            self.zip.close()
        self._handle.close()


# .xlsx: bounded XML -----------------------------------------------------------------------------------------


class _Events:
    """ElementTree's pull parser fed a part piece by piece, with the bounds that hold for every part: no DTD,
    and no single tag or text longer than max_row_bytes. Iterating gives events one by one and keeps `open`,
    the elements started and not yet ended (bounded in depth); `batches()` gives each piece's events at once,
    for a caller that keeps its own. `record_bytes` counts the bytes fed since `start_record()`."""

    def __init__(self, chunks: Iterable[bytes], part: str, limits: FileLimits):
        self.part, self.limits = part, limits
        self._chunks = chunks
        self.open: list[ET.Element] = []
        self.recording = False
        self.record_bytes = 0

    def start_record(self) -> None:
        self.recording, self.record_bytes = True, 0

    def end_record(self) -> None:
        self.recording = False

    def batches(self) -> Iterator[list[tuple[str, ET.Element]]]:
        parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
        prolog = b""
        quiet = 0
        rooted = False
        # Lengths are counted per piece fed: pieces of an eighth of the limit keep the count close to it.
        step = max(1024, min(CHUNK, self.limits.max_row_bytes // 8))
        try:
            for chunk in _pieces(self._chunks, step):
                if not rooted:
                    prolog = prolog[-32:] + chunk
                    if any(d in prolog for d in _DOCTYPE):
                        raise unreadable("a document type declaration (DTD)", part=self.part)
                parser.feed(chunk)
                batch = list(_read(parser))
                if batch:
                    rooted = True
                    yield batch
                quiet = 0 if batch else quiet + len(chunk)
                if self.recording:
                    self.record_bytes += len(chunk)
                if quiet > self.limits.max_row_bytes:
                    raise _beyond(
                        "element_too_long",
                        self.limits.max_row_bytes,
                        f"表格文件 {self.part} 中有超过 {self.limits.max_row_bytes} 字节的单项内容，未读取",
                        f"Part {self.part} holds a single tag or text longer than "
                        f"{self.limits.max_row_bytes} bytes; it was not read",
                        part=self.part,
                    )
            parser.close()
            yield list(_read(parser))
        except ET.ParseError as exc:
            raise unreadable(exc, part=self.part) from exc

    def __iter__(self) -> Iterator[tuple[str, ET.Element]]:
        for batch in self.batches():
            for event, element in batch:
                if event == "start":
                    self.open.append(element)
                    if len(self.open) > MAX_DEPTH:
                        raise _too_deep(self.part)
                else:
                    self.open.pop()
                yield event, element

    def parent(self) -> ET.Element | None:
        """The element holding the one that just ended."""
        return self.open[-1] if self.open else None


def _pieces(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    for chunk in chunks:
        if len(chunk) <= size:
            yield chunk
        else:
            yield from (chunk[i : i + size] for i in range(0, len(chunk), size))


def _too_deep(part: str) -> Refused:
    return unreadable(f"XML nested deeper than {MAX_DEPTH}", part=part)


def _read(parser: "ET.XMLPullParser[ET.Element]") -> Iterator[tuple[str, ET.Element]]:
    return cast(Iterator[tuple[str, ET.Element]], parser.read_events())


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _drop(events: _Events, element: ET.Element) -> None:
    """Forget an element once read: its parent keeps no children, so nothing accumulates."""
    parent = events.parent()
    if parent is not None:
        parent.clear()
    else:
        element.clear()


def _relationships(archive: Archive, part: str) -> dict[str, tuple[str, str]]:
    """Id -> (type's last segment, target part name) of a part's relationships."""
    base = dirname(dirname(part)) if part.startswith("_rels/") or "/_rels/" in part else ""
    found: dict[str, tuple[str, str]] = {}
    if not archive.has(part):
        return found
    events = _Events(archive.chunks(part, MAX_METADATA_BYTES), part, archive.limits)
    for event, element in events:
        if event != "end":
            continue
        if _local(element.tag) == "Relationship":
            target = element.get("Target", "")
            if element.get("TargetMode") != "External":
                target = normpath(target[1:] if target.startswith("/") else join(base, target))
            found[element.get("Id", "")] = (element.get("Type", "").rpartition("/")[2], target)
            if len(found) > MAX_RELATIONSHIPS:
                raise unreadable("too many relationships", part=part)
        _drop(events, element)
    return found


class SharedStrings:
    """The shared strings, as UTF-8 in one buffer with offsets: a few bytes each, not a Python object each."""

    def __init__(self, limit: int) -> None:
        self._text = bytearray()
        # The text takes at most 1.5 times the bytes of its XML (UTF-16 to UTF-8): 4-byte offsets suffice.
        self._ends = array("I" if limit < 2**31 else "Q")

    def add(self, text: str) -> None:
        self._text += text.encode()
        self._ends.append(len(self._text))

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < len(self._ends):
            raise IndexError(index)
        start = self._ends[index - 1] if index else 0
        return self._text[start : self._ends[index]].decode()

    def __len__(self) -> int:
        return len(self._ends)


def _text(element: ET.Element, t: str, r: str) -> str:
    """A string item's text as openpyxl gives it: its `t`, then each run's `t`; phonetic runs left out."""
    parts = []
    for child in element:
        if child.tag == t:
            parts.append(child.text or "")
        elif child.tag == r:
            parts.extend(node.text or "" for node in child if node.tag == t)
    return "".join(parts)


def _shared_strings(archive: Archive, part: str) -> SharedStrings:
    limit = archive.limits.max_shared_strings_bytes
    strings = SharedStrings(limit)
    if not archive.has(part):
        return strings
    if archive.zip.getinfo(part).file_size > limit:
        raise _shared_strings_too_large(part, limit)
    try:
        _read_strings(archive, part, strings)
    except Refused as refused:
        if refused.details.get("reason") == "part_too_large":
            raise _shared_strings_too_large(part, limit) from None
        raise
    return strings


def _read_strings(archive: Archive, part: str, strings: SharedStrings) -> None:
    max_bytes = archive.limits.max_row_bytes
    events = _Events(archive.chunks(part, archive.limits.max_shared_strings_bytes), part, archive.limits)
    ns = ""
    for event, element in events:
        depth = len(events.open)
        if event == "start":
            if depth == 1:
                ns = element.tag[: element.tag.find("}") + 1]
            elif depth == 2:
                events.start_record()
            elif events.record_bytes > max_bytes:
                raise _string_too_long(part, len(strings) + 1, max_bytes)
            continue
        if depth != 1:
            continue
        # a string item (si) ended, or the table's extensions
        if events.record_bytes > max_bytes:
            raise _string_too_long(part, len(strings) + 1, max_bytes)
        events.end_record()
        if element.tag == ns + "si":
            text = _text(element, ns + "t", ns + "r")
            strings.add(text.replace("x005F_", "") if "x005F_" in text else text)
        _drop(events, element)


def _shared_strings_too_large(part: str, limit: int) -> Refused:
    return _beyond(
        "shared_strings_too_large",
        limit,
        f"表格文件的共享字符串（{part}）超过 {limit} 字节，未读取",
        f"The spreadsheet's shared strings ({part}) exceed {limit} bytes; it was not read",
        part=part,
    )


def _string_too_long(part: str, item: int, limit: int) -> Refused:
    return _beyond(
        "string_too_long",
        limit,
        f"表格文件的第 {item} 个共享字符串超过 {limit} 字节，未读取",
        f"Shared string {item} of the spreadsheet is longer than {limit} bytes; it was not read",
        part=part,
    )


def _number_formats(archive: Archive, part: str) -> bytearray:
    """For each cell format (`s` of a cell), whether its number format shows a date (and a duration)."""
    flags = bytearray()
    if not archive.has(part):
        return flags
    custom: dict[int, int] = {}
    events = _Events(archive.chunks(part, MAX_METADATA_BYTES), part, archive.limits)
    for event, element in events:
        if event != "end":
            continue
        name = _local(element.tag)
        parent = events.parent()
        if name == "numFmt":
            code = element.get("formatCode")
            custom[_int(element.get("numFmtId"), part)] = _kind(code)
            if len(custom) > MAX_FORMATS:
                raise unreadable("too many number formats", part=part)
        elif name == "xf" and parent is not None and _local(parent.tag) == "cellXfs":
            number_format = _int(element.get("numFmtId", "0"), part)
            flags.append(custom[number_format] if number_format in custom else _builtin_kind(number_format))
            if len(flags) > MAX_FORMATS:
                raise unreadable("too many cell formats", part=part)
        _drop(events, element)
    return flags


def _kind(code: str | None) -> int:
    return (_DATE if is_date_format(code) else 0) | (_TIMEDELTA if is_timedelta_format(code) else 0)


_BUILTIN_KINDS = {number: _kind(code) for number, code in BUILTIN_FORMATS.items()}


def _builtin_kind(number_format: int) -> int:
    return _BUILTIN_KINDS.get(number_format, 0)


def _int(text: str | None, part: str) -> int:
    try:
        return int(text or "")
    except ValueError:
        raise unreadable(f"not a number: {text!r}"[:80], part=part) from None


@dataclass
class _Workbook:
    sheet: str
    shared_strings: str | None
    styles: str | None
    epoch: datetime


def _workbook(archive: Archive) -> _Workbook:
    package = _relationships(archive, "_rels/.rels")
    book = next((target for kind, target in package.values() if kind == "officeDocument"), "xl/workbook.xml")
    folder, name = dirname(book), book.rpartition("/")[2]
    related = _relationships(archive, join(folder, "_rels", f"{name}.rels"))
    by_kind = {kind: target for kind, target in reversed(list(related.values()))}
    epoch = WINDOWS_EPOCH
    sheet = None
    events = _Events(archive.chunks(book, MAX_METADATA_BYTES), book, archive.limits)
    for event, element in events:
        if event != "end":
            continue
        local = _local(element.tag)
        if local == "workbookPr" and element.get("date1904", "").lower() in ("1", "true"):
            epoch = MAC_EPOCH
        elif local == "sheet":
            rid = next((v for k, v in element.attrib.items() if _local(k) == "id"), None)
            kind, target = related.get(rid or "", ("", ""))
            if kind == "worksheet":
                sheet = target
                break
        _drop(events, element)
    if sheet is None:
        raise unreadable("the workbook has no worksheet", part=book)
    return _Workbook(sheet, by_kind.get("sharedStrings"), by_kind.get("styles"), epoch)


# .xlsx: the sheet -------------------------------------------------------------------------------------------


def xlsx_rows(path: Path, limits: FileLimits) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cell values) for each row of the first worksheet that has one, as openpyxl would give the
    values with data_only (a formula's last result): text, numbers, dates, booleans. Rows come in order."""
    try:
        archive = Archive(path, limits)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise unreadable(exc) from exc
    try:
        book = _workbook(archive)
        strings = _shared_strings(archive, book.shared_strings) if book.shared_strings else SharedStrings(0)
        formats = _number_formats(archive, book.styles) if book.styles else bytearray()
        yield from _sheet_rows(archive, book, strings, formats)
    finally:
        archive.close()


def _sheet_rows(  # noqa: C901, PLR0912 — inline on purpose, see below
    archive: Archive, book: _Workbook, strings: SharedStrings, formats: bytearray
) -> Iterator[tuple[int, list[Any]]]:
    # The hot loop of a large upload: events are handled inline, with the sheet's own element stack (a call
    # per event costs more than the rest of the loop).
    limits = archive.limits
    part = book.sheet
    events = _Events(archive.chunks(part, limits.max_unzipped_bytes), part, limits)
    stack: list[ET.Element] = []
    ns = row_tag = ""
    row: ET.Element | None = None
    cells = last_row = 0
    for batch in events.batches():
        if row is not None and events.record_bytes > limits.max_row_bytes:
            raise row_too_long(_row_number(row, last_row, part), limits.max_row_bytes)
        for event, element in batch:
            if event == "start":
                stack.append(element)
                depth = len(stack)
                if depth == 4 and row is not None:
                    cells += 1
                    if cells > limits.max_cells_per_row:
                        raise too_many_cells(_row_number(row, last_row, part), limits.max_cells_per_row)
                elif depth > MAX_DEPTH:
                    raise _too_deep(part)
                elif depth == 3 and element.tag == row_tag:
                    row, cells = element, 0
                    events.start_record()
                elif depth == 1:
                    ns = element.tag[: element.tag.find("}") + 1]
                    row_tag = ns + "row"
                continue
            stack.pop()
            if row is not None:
                if element is not row:
                    continue  # a cell or a cell's part: read with its row
                row = None
                events.end_record()
                number = _row_number(element, last_row, part)
                if events.record_bytes > limits.max_row_bytes:
                    raise row_too_long(number, limits.max_row_bytes)
                if number <= last_row:
                    raise unreadable(f"row {number} comes after row {last_row}", part=part)
                last_row = number
                values = _values(element, ns, strings, formats, book.epoch, number, part)
                stack[-1].clear()
                yield number, values
            elif stack:
                stack[-1].clear()  # whatever else the sheet holds is dropped once read


def _row_number(row: ET.Element, previous: int, part: str) -> int:
    text = row.get("r")
    if text is None:
        number = previous + 1
    else:
        try:
            number = int(text)
        except ValueError:
            raise unreadable(f"row number {text[:20]!r}", part=part) from None
    if not 1 <= number <= MAX_ROW_NUMBER:
        raise unreadable(f"row number {number} beyond {MAX_ROW_NUMBER}", part=part)
    return number


def _values(
    row: ET.Element,
    ns: str,
    strings: SharedStrings,
    formats: bytearray,
    epoch: datetime,
    number: int,
    part: str,
) -> list[Any]:
    values: list[Any] = []
    column = 0
    v_tag, is_tag, t_tag, r_tag = ns + "v", ns + "is", ns + "t", ns + "r"
    for cell in row:
        ref = cell.get("r")
        if ref is None:
            column += 1
        else:
            letters = ref.rstrip(_DIGITS)
            at = _COLUMNS.get(letters) or _COLUMNS.get(letters.upper())
            if at is None:
                raise unreadable(f"cell reference {ref[:20]!r} in row {number}", part=part)
            column = at
        kind = cell.get("t", "n")
        try:
            if kind == "inlineStr":
                held = cell.find(is_tag)
                value: Any = None if held is None else _text(held, t_tag, r_tag)
            else:
                value = _value(kind, cell.findtext(v_tag) or None, cell.get("s"), strings, formats, epoch)
        except (ValueError, IndexError, OverflowError) as exc:
            raise unreadable(f"cell {get_column_letter(column)}{number}: {exc}", part=part) from exc
        if column > len(values):
            values.extend([None] * (column - len(values) - 1))
            values.append(value)
        else:
            values[column - 1] = value
    return values


def _value(
    kind: str,
    text: str | None,
    style: str | None,
    strings: SharedStrings,
    formats: bytearray,
    epoch: datetime,
) -> Any:
    if text is None:
        return None
    if kind == "n":
        number = float(text) if "." in text or "E" in text or "e" in text else int(text)
        flags = formats[int(style)] if style and int(style) < len(formats) else 0
        if flags & _DATE:
            try:
                return from_excel(number, epoch, timedelta=bool(flags & _TIMEDELTA))
            except (OverflowError, ValueError):
                return "#VALUE!"
        return number
    if kind == "s":
        return strings[int(text)]
    if kind == "b":
        return bool(int(text))
    if kind == "d":
        return from_ISO8601(text)  # type: ignore[no-untyped-call]
    return text  # str (a formula's text), e (an error such as #N/A)


def xlsx_extent(path: Path, limits: FileLimits) -> int:
    """The last row the first sheet declares (its dimension), or 0: for a progress bar."""
    try:
        archive = Archive(path, limits)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, Refused):
        return 0
    try:
        sheet = _workbook(archive).sheet
        for event, element in _Events(archive.chunks(sheet, limits.max_unzipped_bytes), sheet, limits):
            if event != "start":
                continue
            if _local(element.tag) == "dimension":
                last = element.get("ref", "").rpartition(":")[2].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                return int(last) if last.isdigit() else 0
            if _local(element.tag) == "sheetData":
                return 0
        return 0
    except Refused:
        return 0
    finally:
        archive.close()
