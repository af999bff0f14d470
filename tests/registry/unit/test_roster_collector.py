"""The roster commands' cyclic collector (registry/roster/cli.py `_work`), without a database: a fake worker
stands in for `RosterWorker` and goes through chunks shaped like applying's (a few hundred thousand container
objects alive while a chunk is worked, then freed by their reference counts; a chunk's statements a reference
cycle, still alive while the next chunk is worked since chunks are applied at once)."""

import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from registry.roster import cli

CHUNKS = 80
OBJECTS_A_CHUNK = 300_000  # applying's chunk of 5,000 rows at some sixty container objects a row


class _Statement:
    """A chunk's statement: a reference cycle holding its lookups' values."""

    def __init__(self, values: list[str]) -> None:
        self.values = values
        self.me = self


@pytest.fixture
def collector() -> Iterator[None]:
    """`_work` freezes the process and sets the collector's threshold for the process: handed back after."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    gc.enable()
    gc.collect()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        if not enabled:
            gc.disable()
        gc.collect()


async def test_statement_cycles_of_chunks_in_flight_are_collected_while_a_roster_applies(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Until 2026-12-01 (ba6b8fe): with the young threshold at 1,000,000 no automatic collection ever ran
    # while a roster applied (a chunk's objects come and go under it), so the older generations were never
    # collected; chunk_done's gc.collect(0) moved what was alive at that moment (the cycles of the chunks
    # still being applied) into the next generation, where they stayed as garbage for the rest of the run.
    statements: list[weakref.ref[_Statement]] = []

    class FakeWorker:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def run_until_idle(self, progress: Callable[[Any], None]) -> None:
            in_flight: _Statement | None = None
            for chunk in range(CHUNKS):
                rows = [[chunk, i] for i in range(OBJECTS_A_CHUNK)]  # the chunk's live rows
                statement = _Statement([f"3401{chunk:06d}{i:08d}" for i in range(200)])
                statements.append(weakref.ref(statement))
                del rows
                # The previous chunk's statement is let go as this one is done; this one's is still in flight.
                in_flight = statement
                del statement
                progress(object())
            del in_flight

    monkeypatch.setattr(cli, "RosterWorker", FakeWorker)
    await cli._work(None, None, "applying", CHUNKS, lambda upload: 0)  # type: ignore[arg-type]

    uncollected = sum(1 for ref in statements if ref() is not None)
    # At most the last few chunks' cycles may wait for the next collection; not a quarter of the run's.
    assert uncollected <= 5, f"{uncollected} of {CHUNKS} chunks' statement cycles never collected"
