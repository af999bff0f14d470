"""shared.bulk's ids are UUIDs as `str(uuid.UUID(...))` writes them, version 7 (time-ordered), never repeated,
and in the order they were made; a lookup by many values finds exactly those."""

import time
import uuid
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

import pytest
from sqlalchemy import select, update

from registry.people import repository as people_repository
from registry.people.models import Person
from shared import bulk
from shared.bulk import new_ids
from tests.conftest import Harness


def test_ids_are_time_ordered_uuids_as_uuid_writes_them() -> None:
    ids = list(islice(new_ids(), 10_000))  # past a few refills, and more than one millisecond's counter
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 7, uuid.RFC_4122)


def test_each_iterator_makes_its_own() -> None:
    assert not set(islice(new_ids(), 500)) & set(islice(new_ids(), 500))


def test_more_than_a_milliseconds_counter_borrows_the_next_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)  # the clock stands still
    ids = list(islice(new_ids(), 3 * 4096 + 10))
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    stamps = [uuid.UUID(text).int >> 80 for text in ids]
    assert (stamps[0], stamps[-1]) == (1_700_000_000_000, 1_700_000_000_003)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 7, uuid.RFC_4122)


# Lookups by many values ----------------------------------------------------------------------------------


async def test_among_finds_exactly_the_values_given(registry: Harness) -> None:
    """`among` finds the rows holding one of the values and no others, whatever the values hold: the unit
    separator the database splits text at, an empty text, a text longer than the column whose beginning is a
    stored value, whole numbers, no values at all."""
    now = datetime(2023, 10, 8, 10, 0, tzinfo=UTC)
    numbers = [f"34182319{i:02d}0101001X" for i in range(3)]
    people = [
        (f"0190a000-0000-7000-8000-{i:012d}", "resident_id", n, "CHN", f"李{i}", date(1990, 1, 1), "male")
        for i, n in enumerate(numbers)
    ]
    async with registry.sessionmaker() as session, session.begin():
        await people_repository.insert_many(session, [(*p, None, "official", None, now) for p in people])
        await session.execute(
            update(Person).where(Person.document_number == numbers[1]).values(category_epoch=7)
        )

    async def found(values: list[Any], column: Any = Person.document_number) -> list[str]:
        async with registry.sessionmaker() as session:
            query = select(Person.document_number).where(bulk.among(session, column, values))
            return sorted(await session.scalars(query))

    assert await found(numbers[:2]) == numbers[:2]
    assert await found([numbers[0], "no such number"]) == numbers[:1]
    assert await found([f"{numbers[0]}\x1f{numbers[1]}"]) == []
    assert await found([f"{numbers[0]}\x1f{numbers[1]}", numbers[2]]) == numbers[2:]
    assert await found([""]) == []
    assert await found(["", numbers[1]]) == numbers[1:2]
    assert await found([people[0][0] + "0"], Person.id) == []  # ids are 36 characters at most
    assert await found([]) == []
    assert await found([7, 8], Person.category_epoch) == numbers[1:2]
    assert await found([None, 8], Person.category_epoch) == []
