"""shared.bulk's ids are UUIDs as `str(uuid.UUID(...))` writes them, version 7 (time-ordered), never repeated,
and in the order they were made; rows written in bulk read back as they were written."""

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import islice
from typing import Any

import pytest
from sqlalchemy import Text, cast, select, update

from registry.database import OutboxMessage
from registry.enrollment import repository as enrollment_repository
from registry.enrollment.models import Enrollment
from registry.enrollment.repository import ENROLLMENT_COLUMNS, EVENT_COLUMNS
from registry.people import repository as people_repository
from registry.people.models import DocumentType, Person, PersonSource
from registry.people.repository import PERSON_COLUMNS
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


# Rows written in bulk read back as written ----------------------------------------------------------------

_ROWS = 40  # enough for a column of a few distinct values to be encoded once per value (at most one in eight)
_BEIJING = timezone(timedelta(hours=8))


async def test_bulk_rows_read_back_as_written(registry: Harness) -> None:
    """Each kind of column the bulk writes use, holding one value for every row, a few values, or a value
    each (NULLs among them), on both databases: what is read back is what was written."""
    now = datetime(2023, 10, 8, 10, 0, 0, 123456, tzinfo=_BEIJING)
    people = [
        (
            f"0190a000-0000-7000-8000-{i:012d}",
            DocumentType.RESIDENT_ID.value,
            f"34182319{i:02d}0101001X",
            "CHN",
            f"张三{i}" if i % 3 else 'O\'Brien "Ω"\t\\ 李',  # quotes, a tab, a backslash
            date(1940 + i, 1 + i % 12, 1 + i % 28),
            ("male", "female")[i % 2],  # two values for all rows
            f"1380000{i:04d}" if i % 10 == 0 else None,  # mostly NULL
            PersonSource.OFFICIAL,  # an enum member for text
            None,  # NULL for every row
            now if i < _ROWS - 1 else now + timedelta(days=400, microseconds=1),
        )
        for i in range(_ROWS)
    ]
    # Equal JSON values in another key order are other text; one dict object shared by most rows.
    shared: dict[str, object] = {}
    dues = [
        shared if i % 4 else {"a": 1, "b": [2, "三"]} if i % 8 else {"b": [2, "三"], "a": 1}
        for i in range(_ROWS)
    ]
    enrollments = [
        (
            f"0190a000-0000-7000-9000-{i:012d}",
            person[0],
            "泾川镇" if i % 5 else None,
            None,
            "jing-2023",
            "341823",
            None,
            None,
            2023,
            "household_registration",
            "pending_payment",
            "personal",
            None,
            None,
            date(2022, 12, 31),
            0 if i % 2 else 380_00,
            2**40 + i,  # past 32 bits
            1_000_00,
            1,
            dues[i],
            "coverage_start",
            None,
            date(2023, 12, 31),
            now,
            0,
            now.astimezone(UTC),
        )
        for i, person in enumerate(people)
    ]
    events = [
        (f"event-{i}", "EnrollmentCreated", "registry.enrollments", enrollment[0], bytes(range(256)) * i, now)
        for i, enrollment in enumerate(enrollments)
    ]
    async with registry.sessionmaker() as session, session.begin():
        await people_repository.insert_many(session, people)
        await enrollment_repository.insert_many(session, enrollments, [])
        await enrollment_repository.insert_events(session, events)

    async with registry.sessionmaker() as session:
        person = Person.__table__.c
        read = (await session.execute(select(*(person[c] for c in PERSON_COLUMNS)).order_by(person.id))).all()
        assert [tuple(row) for row in read] == people
        enrollment = Enrollment.__table__.c
        columns = [enrollment[c] for c in ENROLLMENT_COLUMNS]
        read = (await session.execute(select(*columns).order_by(enrollment.id))).all()
        assert [tuple(row) for row in read] == enrollments
        texts = await session.scalars(select(cast(enrollment.earlier_dues, Text)).order_by(enrollment.id))
        assert [json.loads(t, object_pairs_hook=list) for t in texts] == [list(d.items()) for d in dues]
        outbox = [getattr(OutboxMessage, c) for c in EVENT_COLUMNS]
        read = (
            await session.execute(select(*outbox).where(OutboxMessage.topic == "registry.enrollments"))
        ).all()
        assert sorted(tuple(row) for row in read) == sorted(events)


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
