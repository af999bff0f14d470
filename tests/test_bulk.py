"""shared.bulk's ids are UUIDs as `str(uuid.UUID(...))` writes them, version 7 (time-ordered), never repeated,
and in the order they were made."""

import time
import uuid
from itertools import islice

import pytest

from shared.bulk import new_ids


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
