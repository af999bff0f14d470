"""Request fields whose limits are the columns' limits, so that what validation accepts always fits."""

import unicodedata
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, StringConstraints

from shared.regions import REGION_CODE_PATTERN

# The query parameters of every listing by region and coverage year (optional ones: `RegionCodeQuery | None`).
RegionCodeQuery = Annotated[str, Query(pattern=REGION_CODE_PATTERN)]
CoverageYearQuery = Annotated[int, Query(ge=2000, le=2100)]

# Who did something (a staff member's or officer's name or account): the `*_by` columns are String(64).
Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# 乡镇 and 村民组 names are String(32) columns, 村(居)委会 String(64).
Township = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Village = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
VillageGroup = Township


# Control, format (zero-width, bidirectional overrides), surrogate, private-use and unassigned characters, and
# line or paragraph separators: invisible in a name, they make a false name look like a real one.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def has_invisible_characters(text: str) -> bool:
    # Letters and digits (a Chinese name is all letters) are never invisible: most names need no more.
    return not text.isalnum() and any(unicodedata.category(ch) in _INVISIBLE for ch in text)


def _visible(name: str) -> str:
    if has_invisible_characters(name):
        raise ValueError("a name may not contain control, zero-width or bidirectional-override characters")
    return name


# A person's name (姓名): the people.name column is String(64); nothing invisible.
PersonName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_visible)
]
