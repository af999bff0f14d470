"""Work of thousands of rows at once (a roster chunk) at the database's speed rather than the ORM's.

Rows go in with COPY on PostgreSQL (asyncpg's `copy_records_to_table`, on the session's own connection and
inside its transaction) and with one executemany elsewhere (SQLite). A lookup by many values binds them as
one parameter on PostgreSQL (`= ANY(…)`): the statement is the same whatever their number, so it is
prepared once, where an IN list would be rendered, and prepared again, for every chunk.
"""

import os
import time
from collections.abc import Iterator, Sequence
from functools import cache
from json.encoder import JSONEncoder, c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Enum,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    cast,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.type_api import TypeEngine

_UNIQUE_VIOLATION = "23505"
# JSON as the database keeps it: compact, text as it is (no \\u escapes for Chinese). The C encoder `json`
# itself makes anew for every `encode` call, made once: a roster's million values dicts spent 40% of their
# encoding making it.
_JSON = c_make_encoder(None, JSONEncoder().default, encode_basestring, None, ":", ",", False, False, True)


def postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(
    session: AsyncSession, column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """`column` is one of `values`: one parameter on PostgreSQL, an IN list elsewhere. Text and whole numbers
    go as one text the database splits: asyncpg's array encoding asks two abstract base classes of every
    element whether it is itself an array, ten times the cost of the rest (a roster chunk looks up five
    thousand ID numbers at a time, several times over)."""
    if not postgresql(session):
        return column.in_(list(values))
    kind = _element_type(column.type)
    joined = _joined(values, kind)
    if joined is None:
        return column == any_(bindparam(None, list(values), type_=ARRAY(kind)))
    split = func.string_to_array(bindparam(None, joined, type_=Text()), _SEPARATOR)
    # Unbounded types: a cast to varchar(n) would cut a longer value down to one that may match.
    return column == any_(cast(split, ARRAY(Text() if isinstance(kind, String) else BigInteger())))


# The ASCII unit separator: no ID number, id, name or code holds it, and values that do go as an array.
_SEPARATOR = "\x1f"


def _joined(values: Sequence[Any], kind: TypeEngine[Any]) -> str | None:
    """The values as one text to split at _SEPARATOR, when that gives them back exactly."""
    if isinstance(kind, String):
        try:
            joined = _SEPARATOR.join(values)
        except TypeError:  # not all text
            return None
        # Splitting an empty text gives no value at all, not one empty value.
        return joined if joined and joined.count(_SEPARATOR) == len(values) - 1 else None
    if isinstance(kind, Integer) and values and all(type(value) is int for value in values):
        return _SEPARATOR.join(map(str, values))
    return None


def _element_type(kind: TypeEngine[Any]) -> TypeEngine[Any]:
    # An enum column (shared.db.enum_column) is text in the database, a decorated type is its own impl.
    if isinstance(kind, Enum):
        return String()
    if isinstance(kind, TypeDecorator):
        return _element_type(kind.impl_instance)
    return kind


async def insert_rows(
    session: AsyncSession, model: type[Any], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert `rows` (values in the order of `columns`) into a mapped class's table in the session's
    transaction. Columns
    left out take their database default (an id sequence); a required column left out is a programming
    error, refused before anything is written. A unique index refusing a row raises IntegrityError, as a
    flush would, and leaves the transaction for the caller to roll back (to a savepoint)."""
    if not rows:
        return
    table: Table = model.__table__
    json_at = _checked(table, tuple(columns))
    await session.flush()  # what the session holds goes in first: these rows may refer to it
    if not postgresql(session):
        await session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    if json_at:
        rows = [_with_json(row, json_at) for row in rows]
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # The session's transaction begins on the database with its first statement; COPY must be inside it.
        await session.execute(text("SELECT 1"))
    try:
        await driver.copy_records_to_table(table.name, records=rows, columns=list(columns))
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == _UNIQUE_VIOLATION:
            raise IntegrityError(f"COPY {table.name}", None, exc) from exc
        raise


@cache
def _checked(table: Table, columns: tuple[str, ...]) -> tuple[int, ...]:
    """The positions of JSON columns among `columns`, once every required column is known to be there."""
    missing = [
        c.name
        for c in table.columns
        if c.name not in columns
        and not c.nullable
        and c.server_default is None
        and not (c.primary_key and c.autoincrement in (True, "auto") and c.type.python_type is int)
    ]
    if missing:
        raise ValueError(f"insert into {table.name} leaves out required columns {missing}")
    return tuple(i for i, name in enumerate(columns) if isinstance(table.columns[name].type, JSON))


def _with_json(row: tuple[Any, ...], json_at: tuple[int, ...]) -> tuple[Any, ...]:
    """The row with its JSON columns' values as JSON text (asyncpg's COPY takes text for them)."""
    values = list(row)
    for i in json_at:
        value = values[i]
        if value is not None:
            empty = None if value else _EMPTY.get(type(value))
            values[i] = empty or "".join(_JSON(value, 0))
    return tuple(values)


_EMPTY: dict[type, str] = {list: "[]", dict: "{}"}


def new_ids() -> Iterator[str]:
    """Time-ordered UUIDs (version 7, RFC 9562: the millisecond, a counter within it, random bits) as text.
    Thousands of new rows a second keyed by random (version 4) ids write all over every index those keys lead,
    and once the indexes outgrow the buffer cache each insert costs a page read; ids in order keep the writes
    at the indexes' right edge. Made a few hundred at a time; one iterator per task (not thread-safe)."""
    millisecond, counter = 0, 0
    while True:
        now = time.time_ns() // 1_000_000
        if now > millisecond:
            millisecond, counter = now, 0
        elif counter + _IDS_AT_ONCE > len(_COUNTERS):  # more than 4,096 in one millisecond: borrow the next
            millisecond, counter = millisecond + 1, 0
        head = _head(millisecond)
        tail = os.urandom(8 * _IDS_AT_ONCE).hex()
        # A list at a time: a generator step less per id (a roster row takes four).
        yield from [
            f"{head}{count}-{variant}{tail[i + 1 : i + 4]}-{tail[i + 4 : i + 16]}"
            for count, variant, i in zip(
                _COUNTERS[counter : counter + _IDS_AT_ONCE],
                tail[::16].translate(_VARIANT),
                range(0, len(tail), 16),
                strict=True,
            )
        ]
        counter += _IDS_AT_ONCE


def _head(millisecond: int) -> str:
    """An id's first 15 characters: the millisecond and the version."""
    stamp = f"{millisecond:012x}"
    return f"{stamp[:8]}-{stamp[8:]}-7"


_IDS_AT_ONCE = 256  # a divisor of the 4,096 counts of a millisecond
_COUNTERS = [f"{count:03x}" for count in range(0x1000)]
# RFC 9562's variant: the top two bits of the ninth byte are 10, so its first hex digit is 8, 9, a or b.
_VARIANT = str.maketrans({digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"})
