"""Money: integer fen (分) inside, decimal strings with two places ("380.00") outside, never float."""

import re
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

FEN_PER_YUAN = 100
_YUAN_PATTERN = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$"
_YUAN_RE = re.compile(_YUAN_PATTERN)


def format_fen(fen: int) -> str:
    """Render fen as a yuan decimal string: 38000 -> "380.00"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """Parse a non-negative yuan decimal string ("380", "380.5", "380.00") into fen.

    Raises ValueError for anything else, including floats' exponent forms and more than two decimals.
    """
    if not _YUAN_RE.fullmatch(text):
        raise ValueError(f"not a non-negative amount with at most two decimals: {text!r}")
    whole, _, frac = text.partition(".")
    return int(whole) * FEN_PER_YUAN + int(frac.ljust(2, "0") or "0")


def _validate_yuan_input(value: Any) -> int:
    # JSON numbers are refused on purpose: a float cannot carry money exactly.
    if not isinstance(value, str):
        raise ValueError('amount must be a decimal string such as "380.00"')
    return parse_yuan(value)


def _validate_fen_or_yuan(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _validate_yuan_input(value)


_YUAN_JSON_SCHEMA = WithJsonSchema({"type": "string", "pattern": _YUAN_PATTERN, "examples": ["380.00"]})

YuanInput = Annotated[
    int,
    PlainValidator(_validate_yuan_input),
    PlainSerializer(format_fen, return_type=str),
    _YUAN_JSON_SCHEMA,
]
"""Money given by a caller or a data file: only a yuan decimal string is accepted; held as fen."""

Yuan = Annotated[
    int,
    PlainValidator(_validate_fen_or_yuan),
    PlainSerializer(format_fen, return_type=str),
    _YUAN_JSON_SCHEMA,
]
"""Money the system reports: built from fen, written as a yuan decimal string (and read back from one)."""
