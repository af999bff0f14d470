"""Work of thousands of rows at once (a roster chunk) at the database's speed rather than the ORM's.

Rows go in with binary COPY on PostgreSQL (on the session's own connection and inside its transaction) and
with one executemany elsewhere (SQLite). A lookup by many values binds them as one array on PostgreSQL
(`= ANY(:values)`): the statement is the same whatever their number, so it is prepared once, where an IN list
would be rendered, and prepared again, for every chunk.
"""

import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import repeat
from json.encoder import JSONEncoder, c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from struct import Struct
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Date,
    DateTime,
    Enum,
    Integer,
    LargeBinary,
    SmallInteger,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
    encoders = _encoders(table, tuple(columns))
    if encoders is None and json_at:
        rows = [_with_json(row, json_at) for row in rows]
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # The session's transaction begins on the database with its first statement; COPY must be inside it.
        await session.execute(text("SELECT 1"))
    try:
        if encoders is None:
            await driver.copy_records_to_table(table.name, records=rows, columns=list(columns))
        else:
            # A memoryview: asyncpg would take bytes for a path.
            data = memoryview(_binary_copy(rows, encoders))
            await driver.copy_to_table(table.name, source=data, columns=list(columns), format="binary")
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


# COPY's binary format, written here rather than by asyncpg's `copy_records_to_table`, which encodes every
# value of every row: most columns of a bulk insert hold one value for the whole batch (an enrollment's 23
# columns after its id, person and township are its kind's), and encoding each value of a column once was a
# fifth of the applying process's CPU. The format as PostgreSQL documents it ("COPY", binary format): a
# signature, flags and header extension length, then per row its field count and each field as its length
# (-1 for NULL) and bytes in the type's binary ("send") form, then -1 as a 16-bit trailer.
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_LENGTH = Struct("!i").pack
_INT4 = Struct("!ii").pack
_INT8 = Struct("!iq").pack
_FIELDS = Struct("!h").pack
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # dates and times count from it
_PG_EPOCH_DAY = _PG_EPOCH.toordinal()
_MICROSECOND = timedelta(microseconds=1)

Encode = Callable[[Any], bytes]


def _text(value: str) -> bytes:
    data = value.encode()
    return _LENGTH(len(data)) + data


def _bytea(value: bytes) -> bytes:
    return _LENGTH(len(value)) + bytes(value)


def _int4(value: int) -> bytes:
    return _INT4(4, value)


def _int8(value: int) -> bytes:
    return _INT8(8, value)


def _date(value: date) -> bytes:
    return _INT4(4, value.toordinal() - _PG_EPOCH_DAY)


def _timestamptz(value: datetime) -> bytes:
    # A naive time is local time, as asyncpg takes it.
    return _INT8(8, (value.astimezone(UTC) - _PG_EPOCH) // _MICROSECOND)


def _json(value: Any) -> bytes:
    empty = None if value else _EMPTY.get(type(value))
    return _text(empty or "".join(_JSON(value, 0)))


@cache
def _encoders(table: Table, columns: tuple[str, ...]) -> tuple[tuple[Encode, bool], ...] | None:
    """Each column's encoder and whether its values may be compared by equality (JSON's may not: equal
    dicts in another key order are other text); None if a column's type is not one written here."""
    found = []
    for name in columns:
        column = table.columns[name]
        # A foreign key declared without a type takes its target's (once the target's table is known).
        targets = [key.column.type for key in column.foreign_keys] if column.type._isnull else []
        kind = _element_type(targets[0] if targets else column.type)
        if isinstance(kind, JSONB | SmallInteger) or (isinstance(kind, DateTime) and not kind.timezone):
            return None  # binary forms of their own, or a type asyncpg's codec treats otherwise
        for base, encode in _ENCODERS:
            if isinstance(kind, base):
                found.append((encode, encode is not _json))
                break
        else:
            return None
    return tuple(found)


# The types of the tables written in bulk, in this order (BigInteger is an Integer); a table with a column of
# another type goes through asyncpg's `copy_records_to_table`.
_ENCODERS: tuple[tuple[type[TypeEngine[Any]], Encode], ...] = (
    (JSON, _json),
    (String, _text),  # Enum and Text among them
    (BigInteger, _int8),
    (Integer, _int4),
    (DateTime, _timestamptz),
    (Date, _date),
    (LargeBinary, _bytea),
)


def _binary_copy(rows: Sequence[tuple[Any, ...]], encoders: tuple[tuple[Encode, bool], ...]) -> bytes:
    """The rows as one binary COPY stream, column by column: a column of one value (most are, in a batch) is
    encoded once and joined with its constant neighbours; one of a few distinct values, each value once."""
    count = len(rows)
    cells: list[Any] = []
    constant = [_FIELDS(len(encoders))]  # the encoded columns since the last varying one
    for values, (encode, comparable) in zip(zip(*rows, strict=True), encoders, strict=True):
        keys = values if comparable else tuple(map(id, values))  # the values outlive their ids here
        column: Any = None
        if len(set(keys[:_SAMPLE])) <= _FEW:
            distinct = dict(zip(keys, values, strict=True))
            if len(distinct) == 1:
                constant.append(_NULL if values[0] is None else encode(values[0]))
                continue
            if len(distinct) * _FEW <= count:
                encoded = {key: _NULL if v is None else encode(v) for key, v in distinct.items()}
                column = map(encoded.__getitem__, keys)
        if column is None:
            column = (
                [_NULL if value is None else encode(value) for value in values]
                if None in values
                else map(encode, values)
            )
        if constant:
            cells.append(repeat(b"".join(constant), count))
        cells.append(column)
        constant = []
    if constant:
        cells.append(repeat(b"".join(constant), count))
    return b"".join((_SIGNATURE, *map(b"".join, zip(*cells, strict=True)), _TRAILER))


# A column whose first _SAMPLE values hold more than _FEW distinct ones is encoded value by value.
_SAMPLE, _FEW = 32, 8


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
