"""Hostile spreadsheets, built in the tests: what an attacker (or a broken export) sends in place of a roster.

Each keeps the header a roster needs (姓名, 身份证号码) in its first row, so that only the limit it breaks can
refuse it."""

import io
import random
import struct
import zipfile
from collections.abc import Callable, Sequence
from typing import IO

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"

_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_TYPE}.worksheet+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_TYPE}.sharedStrings+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_RELS}"><Relationship Id="rId1" '
        f'Type="{_OFFICE}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{_OFFICE}"><sheets>'
        '<sheet name="花名册" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_RELS}"><Relationship Id="rId1" '
        f'Type="{_OFFICE}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" '
        f'Type="{_OFFICE}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    ),
}
ROSTER = ("姓名", "身份证号码")


def _sheet(header: Sequence[str], rows: str = "") -> bytes:
    head = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><sheetData>'
    cells = "".join(f'<c t="inlineStr"><is><t>{text}</t></is></c>' for text in header)
    return f'{head}<row r="1">{cells}</row>{rows}</sheetData></worksheet>'.encode()


def _csv_header(header: Sequence[str]) -> bytes:
    return (",".join(header) + "\n").encode()


def _package(sheet: bytes, write_strings: Callable[[IO[bytes]], None] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for name, text in _PARTS.items():
            book.writestr(name, text)
        book.writestr("xl/worksheets/sheet1.xml", sheet)
        if write_strings is None:
            book.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN}"/>')
        else:
            with book.open("xl/sharedStrings.xml", "w") as part:
                write_strings(part)
    return out.getvalue()


def zip_bomb(inflated_bytes: int, declared_bytes: int | None = None, header: Sequence[str] = ROSTER) -> bytes:
    """An .xlsx of a few megabytes at most whose shared strings inflate to `inflated_bytes` (about 1000:1).
    With `declared_bytes`, its zip directory declares them that small instead: the ratio looks harmless, and
    only reading with a cap shows the truth."""
    item = b"<si><t>" + b"A" * 32_768 + b"</t></si>"
    block = item * 32

    def write(part: IO[bytes]) -> None:
        part.write(f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN}">'.encode())
        written = 0
        while written < inflated_bytes:
            part.write(block)
            written += len(block)
        part.write(b"</sst>")

    data = _package(_sheet(header), write)
    return _declare(data, "xl/sharedStrings.xml", declared_bytes) if declared_bytes is not None else data


def _declare(data: bytes, name: str, size: int) -> bytes:
    """The same zip with the central directory's uncompressed size of `name` replaced."""
    at = data.find(b"PK\x01\x02")
    patched = bytearray(data)
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == name.encode():
            struct.pack_into("<L", patched, at + 24, size)
            return bytes(patched)
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} not in the archive")


def wide_row_xlsx(cells: int, header: Sequence[str] = ROSTER) -> bytes:
    """An .xlsx whose second row has `cells` cells."""
    row = "".join(f"<c><v>{i}</v></c>" for i in range(cells))
    return _package(_sheet(header, f'<row r="2">{row}</row>'))


def long_row_xlsx(cells: int, cell_chars: int, header: Sequence[str] = ROSTER) -> bytes:
    """An .xlsx whose second row is `cells` cells of `cell_chars` Chinese characters each (random ones: the
    part compresses no more than a real one does, so only the row's length can refuse it)."""
    rng = random.Random(16)
    texts = ("".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(cell_chars)) for _ in range(cells))
    row = "".join(f'<c t="inlineStr"><is><t>{text}</t></is></c>' for text in texts)
    return _package(_sheet(header, f'<row r="2">{row}</row>'))


def many_columns_csv(columns: int, cell: bytes = b"1234567", header: Sequence[str] = ROSTER) -> bytes:
    """A CSV whose second line has `columns` cells."""
    return _csv_header(header) + b",".join([cell] * columns) + b"\n"


def long_line_csv(characters: int, header: Sequence[str] = ROSTER) -> bytes:
    """A CSV whose second line is one cell of `characters` characters, no separator anywhere."""
    return _csv_header(header) + b"x" * characters + b"\n"


def long_quoted_csv(cells: int, lines: int, header: Sequence[str] = ROSTER) -> bytes:
    """A CSV whose second row is `cells` quoted cells each spanning `lines` short lines: no line is long, no
    cell is beyond the csv module's own bound, and the row is."""
    cell = b'"' + b"ab\n" * lines + b'"'
    return _csv_header(header) + b",".join([cell] * cells) + b"\n"
