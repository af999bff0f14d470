"""Reading a progress table's reference figures: the documents' own tables (合肥 附件2 in 万人, 泾县 附件1 in
people) as shipped, or a department's update in the same columns, English or Chinese."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from registry.policy.models import Policy
from registry.progress.errors import ProgressBaselineInvalid
from registry.progress.models import UnitKind
from shared import tabular

FIGURES = ("resident_population", "registered_population", "enrolled_last_year", "target")
UNIVERSITY_UNITS = ("大学生", "高校学生")
TEN_THOUSAND = Decimal(10_000)

_UNIT_HEADERS = {"district", "township", "unit", "统筹区", "县(市)区", "乡镇", "单位"}
_CODE_HEADERS = {"region_code", "区划代码"}
# Header (without a unit suffix) -> figure; `enrolled_2022` and `target_2023` name the year they speak for.
_FIGURE_HEADERS = [
    (re.compile(r"^(resident_population|常住人口)$"), "resident_population"),
    (re.compile(r"^(registered_population|户籍人口)$"), "registered_population"),
    (
        re.compile(r"^(enrolled_last_year|enrolled_\d{4}|\d{4}年居民参保人数|上年度参保人数)$"),
        "enrolled_last_year",
    ),
    (re.compile(r"^(target|target_\d{4}|目标任务数|任务数)$"), "target"),
]
_TEN_THOUSAND_SUFFIXES = ("_10k", "(万人)")


@dataclass(frozen=True)
class BaselineRow:
    unit: str
    kind: UnitKind
    region_code: str | None
    figures: dict[str, int | None]


@dataclass(frozen=True)
class _Column:
    name: str
    index: int
    in_ten_thousands: bool


def read(path: Path, filename: str, policy: Policy) -> list[BaselineRow]:
    """Every row, or ProgressBaselineInvalid listing every bad one: a table is taken whole or not at all."""
    rows = tabular.rows(path, filename, ProgressBaselineInvalid)
    columns = _header(rows)
    by_name = {c.name: c for c in columns}
    problems: list[dict[str, Any]] = []
    result: list[BaselineRow] = []
    seen: dict[tuple[UnitKind, str | None], int] = {}
    for row_no, cells in rows:
        text = {c.name: (cells[c.index] if c.index < len(cells) else "").strip() for c in columns}
        if not any(text.values()):
            continue
        row, row_problems = _row(row_no, text, by_name, policy)
        if row is not None:
            key = (row.kind, row.region_code if row.kind is UnitKind.REGION else row.unit)
            if key in seen:
                row_problems.append(
                    _problem(
                        row_no,
                        "unit",
                        "duplicate_unit",
                        f"与第 {seen[key]} 行重复",
                        f"same unit as row {seen[key]}",
                    )
                )
            seen.setdefault(key, row_no)
            result.append(row)
        problems.extend(row_problems)
    kinds = {r.kind for r in result} - {UnitKind.UNIVERSITY}
    if len(kinds) > 1:
        problems.append(
            _problem(
                None,
                "unit",
                "mixed_units",
                "同一张表不能既按县区又按乡镇统计",
                "a table counts regions or townships, not both",
            )
        )
    if problems:
        raise ProgressBaselineInvalid({"reason": "rows_invalid", "problems": problems[:100]})
    if not result:
        raise ProgressBaselineInvalid({"reason": "no_rows"})
    return result


def _header(rows: Any) -> list[_Column]:
    for _, cells in rows:
        columns: list[_Column] = []
        for i, cell in enumerate(cells):
            name, scaled = _column_name(tabular.normalise_header(cell).lower())
            if name is not None and name not in {c.name for c in columns}:
                columns.append(_Column(name, i, scaled))
        if any(c.name == "unit" for c in columns):
            if not any(c.name in FIGURES for c in columns):
                raise ProgressBaselineInvalid({"reason": "columns_missing", "needs_one_of": list(FIGURES)})
            return columns
        break  # the header is the first row
    raise ProgressBaselineInvalid({"reason": "header_not_found", "needs": ["district|township|统筹区|乡镇"]})


def _column_name(header: str) -> tuple[str | None, bool]:
    scaled = header.endswith(_TEN_THOUSAND_SUFFIXES)
    for suffix in _TEN_THOUSAND_SUFFIXES:
        header = header.removesuffix(suffix)
    if header in _UNIT_HEADERS:
        return "unit", False
    if header in _CODE_HEADERS:
        return "region_code", False
    for pattern, name in _FIGURE_HEADERS:
        if pattern.match(header):
            return name, scaled
    return None, False


def _row(
    row_no: int, text: dict[str, str], columns: dict[str, _Column], policy: Policy
) -> tuple[BaselineRow | None, list[dict[str, Any]]]:
    problems: list[dict[str, Any]] = []
    figures: dict[str, int | None] = {}
    for name in FIGURES:
        column = columns.get(name)
        figures[name] = None
        if column is None or not text[name]:
            continue
        value = _people(text[name], column.in_ten_thousands)
        if value is None:
            problems.append(
                _problem(
                    row_no, name, "figure_invalid", f"“{text[name]}”不是有效的人数", "not a count of people"
                )
            )
        figures[name] = value
    unit = text["unit"]
    code = text.get("region_code", "")
    if not unit:
        problems.append(_problem(row_no, "unit", "unit_missing", "统计单位名称为空", "the unit has no name"))
        return None, problems
    if code:
        if not any(r.code == code for r in policy.regions):
            problems.append(
                _problem(
                    row_no,
                    "region_code",
                    "unknown_region",
                    f"区划代码 {code} 不在本政策范围内",
                    "region code not in the policy",
                )
            )
            return None, problems
        return BaselineRow(unit, UnitKind.REGION, code, figures), problems
    if unit in UNIVERSITY_UNITS:
        return BaselineRow(unit, UnitKind.UNIVERSITY, None, figures), problems
    township = next((t for t in policy.townships if t.name == unit), None)
    if township is None:
        problems.append(
            _problem(
                row_no,
                "unit",
                "unknown_unit",
                f"“{unit}”既无区划代码，也不是本政策的乡镇",
                "neither a region code nor a township of the policy",
            )
        )
        return None, problems
    return BaselineRow(unit, UnitKind.TOWNSHIP, township.region_code, figures), problems


def _people(text: str, in_ten_thousands: bool) -> int | None:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    if in_ten_thousands:
        value *= TEN_THOUSAND
    if not value.is_finite() or value < 0 or value != value.to_integral_value():
        return None
    return int(value)


def _problem(row_no: int | None, field: str, code: str, zh: str, en: str) -> dict[str, Any]:
    return {"row": row_no, "field": field, "code": code, "message_zh": zh, "message_en": en}
