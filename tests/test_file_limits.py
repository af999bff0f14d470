"""Reading uploaded spreadsheets within bounds (shared/file_limits.py, shared/tabular.py), without a service.

The bounded .xlsx reader gives what openpyxl gave for the files offices send (shared strings, rich text, dates
in both calendars, formulas' last values); files built to hurt are refused with the limit they broke, and the
memory a read takes follows the limits, not the file. The writers' side: text never becomes a formula."""

import csv
import io
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from collection.settings import CollectionSettings
from registry.settings import RegistrySettings
from shared import tabular
from shared.errors import DomainError
from shared.file_limits import FileLimits
from tests import hostile_files
from tests.spreadsheets import xlsx

MAIN = hostile_files.MAIN
MiB = 1024 * 1024


class Refusal(DomainError):
    status_code = 422
    code = "test_file_invalid"


def read(tmp_path: Path, name: str, content: bytes, limits: FileLimits | None = None) -> list[Any]:
    path = tmp_path / name
    path.write_bytes(content)
    return list(tabular.rows(path, name, Refusal, limits))


def refused(tmp_path: Path, name: str, content: bytes, limits: FileLimits | None = None) -> dict[str, Any]:
    with pytest.raises(Refusal) as caught:
        read(tmp_path, name, content, limits)
    assert caught.value.zh
    assert caught.value.en
    return caught.value.details or {}


# Parts as Excel and WPS write them: shared strings, a style sheet with date formats.
STYLES = (
    f'<styleSheet xmlns="{MAIN}"><numFmts count="2">'
    '<numFmt numFmtId="176" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/>'
    '<numFmt numFmtId="177" formatCode="[h]:mm:ss"/></numFmts><fonts count="1"><font><sz val="11"/></font>'
    '</fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0"/></cellStyleXfs>'
    '<cellXfs count="5"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="176"/><xf numFmtId="49"/>'
    '<xf numFmtId="177"/></cellXfs></styleSheet>'
)
STRINGS = [
    "<si><t>泾县2023年度资助参保人员花名册</t></si>",
    "<si><t>张三</t></si>",
    "<si><r><rPr><b/></rPr><t>3401</t></r><r><t>0219900101123X</t></r>"
    '<rPh sb="0" eb="1"><t>ふ</t></rPh></si>',
    "<si><t>_x005F_x000D_under</t></si>",
    '<si><t>=HYPERLINK("http://x/?"&amp;C5,"点我")</t></si>',
    "<si/>",
    '<si><t xml:space="preserve"> 0042 </t></si>',
]
ROWS = (
    '<row r="1" spans="1:8"><c r="A1" t="s"><v>0</v></c></row>'
    '<row r="3"><c r="A3" t="s"><v>1</v></c><c r="B3" t="s"><v>2</v></c><c r="C3" t="s"><v>3</v></c>'
    '<c r="D3" s="1"><v>45000</v></c><c r="E3" s="2"><v>44927.5</v></c><c r="F3" t="b"><v>1</v></c>'
    '<c r="G3" t="e"><v>#N/A</v></c><c r="H3" s="4"><v>1.25</v></c></row>'
    '<row r="4"><c r="B4" t="str"><f>A1&amp;"x"</f><v>joined</v></c><c r="C4"><v>3.40102199001011E+17</v></c>'
    '<c r="E4" t="inlineStr"><is><t> 内联 </t></is></c><c r="F4"><v>12.50</v></c>'
    '<c r="G4" t="d"><v>2023-10-08T09:00:00</v></c></row>'
    '<row r="6"><c t="s"><v>4</v></c><c t="s"><v>5</v></c><c/><c s="3" t="s"><v>6</v></c></row>'
)


def office_file(
    rows: str = ROWS,
    strings: list[str] = STRINGS,
    date1904: bool = False,
    prefix: str = "",
    extra: str = "",
    doctype: str = "",
) -> bytes:
    p = f"{prefix}:" if prefix else ""
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet xmlns{":" + prefix if prefix else ""}="{MAIN}">'
        f'<{p}dimension ref="A1:H9"/><{p}sheetData>{rows}</{p}sheetData>{extra}</{p}worksheet>'
    )
    if prefix:
        sheet = sheet.replace("<row", f"<{p}row").replace("</row", f"</{p}row").replace("<c ", f"<{p}c ")
        sheet = sheet.replace("</c>", f"</{p}c>").replace("<c/>", f"<{p}c/>").replace("<v>", f"<{p}v>")
        sheet = sheet.replace("</v>", f"</{p}v>")
    rels = hostile_files._PARTS["xl/_rels/workbook.xml.rels"].replace(
        "</Relationships>",
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'styles" Target="styles.xml"/></Relationships>',
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        parts = hostile_files._PARTS | {"xl/_rels/workbook.xml.rels": rels}
        if date1904:
            workbook = parts["xl/workbook.xml"]
            parts["xl/workbook.xml"] = workbook.replace("<sheets>", '<workbookPr date1904="1"/><sheets>')
        for name, text in parts.items():
            book.writestr(name, text)
        book.writestr("xl/styles.xml", STYLES)
        book.writestr("xl/sharedStrings.xml", f'{doctype}<sst xmlns="{MAIN}">{"".join(strings)}</sst>')
        book.writestr("xl/worksheets/sheet1.xml", sheet)
    return out.getvalue()


def as_openpyxl_reads(content: bytes) -> list[tuple[int, list[str]]]:
    """What the readers got before: openpyxl's read-only, data-only rows as text, without empty rows or
    trailing empty cells (which nothing used)."""
    book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    found = []
    for number, row in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
        cells = [tabular.cell_text(c) for c in row]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            found.append((number, cells))
    return found


def trimmed(rows: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    out = []
    for number, cells in rows:
        while cells and not cells[-1]:
            cells = cells[:-1]
        if cells:
            out.append((number, cells))
    return out


@pytest.mark.filterwarnings("ignore:Workbook contains no default style")
@pytest.mark.parametrize(
    "content",
    [
        office_file(),
        office_file(date1904=True),
        office_file(prefix="x"),
        xlsx(["序\n号", "姓名", "日期"], [[1, "张三", "2023-01-02"], [2, "=1+1", 3.5]], title=["标题"]),
    ],
    ids=["excel", "1904", "prefixed", "openpyxl"],
)
def test_the_bounded_reader_reads_office_files_as_openpyxl_did(tmp_path: Path, content: bytes) -> None:
    expected = as_openpyxl_reads(content)
    assert expected  # the comparison sees rows
    assert trimmed(read(tmp_path, "a.xlsx", content)) == expected


def test_what_the_reader_gives_for_each_kind_of_cell(tmp_path: Path) -> None:
    rows = dict(read(tmp_path, "a.xlsx", office_file()))
    assert rows[3] == [
        "张三",
        "34010219900101123X",  # rich text runs joined, the phonetic guide left out
        "_x000D_under",
        "2023-03-15",  # a date format
        "2023-01-01 12:00:00",  # a custom date format (年月日)
        "True",
        "#N/A",
        "1 day, 6:00:00",  # a duration
    ]
    assert rows[4] == ["", "joined", "340102199001011008", "", " 内联 ", "12.5", "2023-10-08 09:00:00"]
    assert rows[6] == ['=HYPERLINK("http://x/?"&C5,"点我")', "", "", " 0042 "]
    assert list(rows) == [1, 3, 4, 6]  # rows with cells, by their own numbers


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            office_file(strings=["<si><t>&a;</t></si>"], doctype="<!DOCTYPE sst [<!ENTITY a 'x'>]>"),
            "unreadable",
        ),
        (office_file(rows="<row r='2'>" + "<c><is>" * 70 + "</is>" * 70 + "</c></row>"), "unreadable"),
        (office_file(rows='<row r="5"><c><v>1</v></c></row><row r="3"><c><v>1</v></c></row>'), "unreadable"),
        (office_file(rows='<row r="1048577"><c><v>1</v></c></row>'), "unreadable"),
        (office_file(rows='<row r="2"><c r="XFE2"><v>1</v></c></row>'), "unreadable"),
        (office_file(rows='<row r="2"><c t="s"><v>99</v></c></row>'), "unreadable"),
        (office_file(extra="<mergeCells>" + '<mergeCell ref="A1:B1"/>' * 10 + "</mergeCells>"), None),
        (hostile_files.zip_bomb(20 * MiB), "compression_ratio_too_high"),
        (hostile_files.zip_bomb(20 * MiB, declared_bytes=1000), "unreadable"),
        (hostile_files.wide_row_xlsx(16_385), "too_many_cells"),
        (hostile_files.long_row_xlsx(2, 200_000), "row_too_long"),
        (hostile_files.long_row_xlsx(1, 400_000), "element_too_long"),
        (b"PK\x05\x06" + b"\x00" * 18, "unreadable"),
    ],
    ids=[
        "dtd",
        "nested-70-deep",
        "rows-out-of-order",
        "row-beyond-1048576",
        "column-beyond-XFD",
        "no-such-shared-string",
        "merged-cells-are-fine",
        "zip-bomb",
        "lying-zip-bomb",
        "16385-cells",
        "row-over-1-MiB",
        "one-text-over-1-MiB",
        "empty-zip",
    ],
)
def test_an_xlsx_beyond_the_limits_or_malformed_is_refused_with_its_reason(
    tmp_path: Path, content: bytes, reason: str | None
) -> None:
    if reason is None:
        assert read(tmp_path, "a.xlsx", content)
        return
    assert refused(tmp_path, "a.xlsx", content)["reason"] == reason


def test_a_zip_of_too_many_parts_is_refused_before_its_directory_is_read(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        for i in range(10_001):
            book.writestr(f"x/{i}", b"")
    assert refused(tmp_path, "a.xlsx", out.getvalue())["reason"] == "too_many_parts"


@pytest.mark.parametrize(
    ("content", "limits", "reason"),
    [
        (office_file(), FileLimits(max_shared_strings_bytes=256), "shared_strings_too_large"),
        (office_file(), FileLimits(max_unzipped_bytes=1024), "unzipped_too_large"),
        (office_file(), FileLimits(max_cells_per_row=5), "too_many_cells"),
        (hostile_files.long_row_xlsx(40, 500), FileLimits(max_row_bytes=4096), "row_too_long"),
        (hostile_files.zip_bomb(2 * MiB), FileLimits(max_zip_ratio=10), "compression_ratio_too_high"),
    ],
    ids=["shared-strings", "unzipped", "cells", "row", "ratio"],
)
def test_every_limit_is_configurable(tmp_path: Path, content: bytes, limits: FileLimits, reason: str) -> None:
    assert read(tmp_path, "a.xlsx", content, FileLimits(max_zip_ratio=2000))  # within the defaults
    details = refused(tmp_path, "a.xlsx", content, limits)
    assert details["reason"] == reason
    assert details["limit"] == next(v for k, v in vars(limits).items() if v != getattr(FileLimits(), k))


@pytest.mark.parametrize(
    ("content", "reason", "row"),
    [
        (hostile_files.many_columns_csv(16_385, b"1"), "too_many_cells", 2),
        (hostile_files.many_columns_csv(2_000_000), "row_too_long", 2),
        (hostile_files.long_line_csv(MiB), "row_too_long", 2),
        (hostile_files.long_quoted_csv(12, 40_000), "row_too_long", 2),
        (hostile_files.long_quoted_csv(1, 50_000), "unreadable", 2),  # the csv module's own cell bound
        ("姓名\n\udcff".encode("utf-8", "surrogateescape") + b"\x00" * 10, "unreadable", None),
    ],
    ids=["16385-cells", "2m-columns", "1-MiB-line", "quoted-lines-over-1-MiB", "quoted-cell", "not-text"],
)
def test_a_csv_beyond_the_limits_is_refused_with_the_row(
    tmp_path: Path, content: bytes, reason: str, row: int | None
) -> None:
    details = refused(tmp_path, "a.csv", content)
    assert details["reason"] == reason
    if row is not None:
        assert details["row"] == row


def test_a_csv_row_of_exactly_the_limits_is_read(tmp_path: Path) -> None:
    limits = FileLimits(max_cells_per_row=10, max_row_bytes=4096)
    rows = read(tmp_path, "a.csv", ("1," * 9 + "1\n" + "x" * 4095 + "\n").encode(), limits)
    assert [len(cells) for _, cells in rows] == [10, 1]


def peak_memory(work: Any) -> int:
    tracemalloc.start()
    try:
        work()
    except DomainError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_the_memory_a_read_takes_follows_the_limits_not_the_file(tmp_path: Path) -> None:
    # A 40 MB line is refused having read 1 MiB of it; shared strings are kept compactly, and beyond their
    # limit refused before they are inflated.
    (tmp_path / "line.csv").write_bytes(hostile_files.long_line_csv(40 * MiB))
    line = peak_memory(lambda: list(tabular.rows(tmp_path / "line.csv", "line.csv", Refusal)))
    assert line < 8 * MiB, line
    strings = [f"<si><t>{i:x}</t></si>" for i in range(500_000)]  # ~9 MB of XML, half a million strings
    (tmp_path / "s.xlsx").write_bytes(office_file(rows="", strings=strings))
    limits = FileLimits(max_zip_ratio=1000)
    kept = peak_memory(lambda: list(tabular.rows(tmp_path / "s.xlsx", "s.xlsx", Refusal, limits)))
    # Kept compactly, about 10 bytes a string: 8 MB at the peak, where openpyxl took 70.
    assert kept < 12 * MiB, kept
    small = FileLimits(max_zip_ratio=1000, max_shared_strings_bytes=4 * MiB)
    beyond = peak_memory(lambda: list(tabular.rows(tmp_path / "s.xlsx", "s.xlsx", Refusal, small)))
    assert beyond < 2 * MiB, beyond  # refused by the declared size, before inflating anything


def test_settings_give_each_service_its_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_UPLOAD_MAX_CELLS_PER_ROW", "200")
    monkeypatch.setenv("COLLECTION_UPLOAD_MAX_ROW_BYTES", "65536")
    registry = RegistrySettings(environment="test", database_url="sqlite+aiosqlite://")
    collection = CollectionSettings(environment="test", database_url="sqlite+aiosqlite://")
    assert registry.file_limits == FileLimits(max_cells_per_row=200)
    assert collection.file_limits == FileLimits(max_row_bytes=65536)


def test_filenames_are_bounded_and_formats_named() -> None:
    assert tabular.upload_suffix("花名册.XLSX", Refusal) == ".xlsx"
    for name, reason in (("a" * 252 + ".csv", "filename_too_long"), ("a.xls", "unsupported_format")):
        with pytest.raises(Refusal) as caught:
            tabular.upload_suffix(name, Refusal)
        assert (caught.value.details or {})["reason"] == reason


# Writing ------------------------------------------------------------------------------------------------


# (A carriage return would come back as a line feed: XML normalises line ends on reading.)
TEXTS = ['=HYPERLINK("http://x/?"&C5,"点我")', "+1", "-12.00", "@SUM(A1)", "\tx", "#N/A", "=1"]


@pytest.mark.parametrize("write_only", [False, True], ids=["workbook", "write-only"])
def test_a_spreadsheet_writes_text_as_text_and_numbers_as_numbers(write_only: bool) -> None:
    book = tabular.Spreadsheet(write_only=write_only)
    sheet = book.create_sheet("名单") if write_only else book.active
    assert sheet is not None
    sheet.append([*TEXTS, -12, 3.5, "普通", "a\x01b"])
    if not write_only:
        sheet["A2"] = "=2+2"  # set any other way: made safe when saved
        sheet.cell(row=3, column=1, value="=3+3")
    out = io.BytesIO()
    book.save(out)
    written = load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    cells = next(iter(written.iter_rows(min_row=1, max_row=1)))
    assert [(c.value, c.data_type, bool(c.quotePrefix)) for c in cells[: len(TEXTS)]] == [
        (text, "s", True) for text in TEXTS
    ]
    assert [(c.value, c.data_type) for c in cells[len(TEXTS) : len(TEXTS) + 2]] == [(-12, "n"), (3.5, "n")]
    assert (cells[-2].value, cells[-2].quotePrefix) == ("普通", False)
    assert cells[-1].value == "a\ufffdb"  # a character XML cannot hold does not fail the whole file
    if not write_only:
        assert [(written[a].value, written[a].data_type) for a in ("A2", "A3")] == [
            ("=2+2", "s"),
            ("=3+3", "s"),
        ]


def test_a_csv_writer_quotes_formula_text_and_leaves_numbers() -> None:
    out = io.StringIO()
    writer = tabular.csv_writer(out)
    writer.writerows([["=1+1", "+1", "-12.00", "@x", "\tq", -12, 3.5, "普通"]])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == [
        "'=1+1",
        "'+1",
        "'-12.00",
        "'@x",
        "'\tq",
        "-12",
        "3.5",
        "普通",
    ]
