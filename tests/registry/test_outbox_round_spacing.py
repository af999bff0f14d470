"""The outbox relay's round spacing (OUTBOX_ROUND_SPACING_S), on the registry as served on PostgreSQL with a
real broker: beside a stream of enrollments its rounds start that far apart, each taking what was committed
meanwhile; a full batch (a backlog) is followed at once; an enrollment after a quiet spell goes at once.

A round stamps every row it published with one `published_at`, so the outbox itself shows the rounds."""

import asyncio
import json
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from registry.main import create_app
from tests.conftest import DB_PREFIX
from tests.registry.helpers import HEFEI, person, served_settings
from tests.support import eventually, in_process, own_broker, scalar_on

SPACING_S = 1.0
BATCH = 5
AN_HOUR_S = 3600.0  # the relay's idle poll: only wakes publish within the test
GUARD_S = 30.0
_ROUNDS = """
SELECT coalesce(json_agg(json_build_array(extract(epoch FROM at), rows) ORDER BY at), '[]')::text
FROM (SELECT published_at AS at, count(*) AS rows FROM outbox WHERE published_at IS NOT NULL GROUP BY 1) r
"""


@pytest.fixture
def database_url(fresh_database: Callable[[str, str, str], str], worker: str) -> str:
    return fresh_database("registry", "postgresql", f"{DB_PREFIX}_{worker}_round_spacing")


async def _rounds(database_url: str) -> list[tuple[float, int]]:
    """(when, how many rows) of each round so far, in order."""
    return [(at, rows) for at, rows in json.loads(await scalar_on(database_url, _ROUNDS))]


async def _all_published(database_url: str, expected: int) -> list[tuple[float, int]] | None:
    rounds = await _rounds(database_url)
    return rounds if sum(rows for _, rows in rounds) == expected else None


async def test_rounds_are_spaced_beside_a_stream_a_backlog_goes_at_once_and_a_lone_event_at_once(
    database_url: str, tmp_path: Path
) -> None:
    with own_broker(tmp_path) as bootstrap:
        settings = served_settings(
            database_url,
            tmp_path,
            kafka_bootstrap_servers=bootstrap,
            kafka_topic_partitions=1,
            outbox_poll_interval_s=AN_HOUR_S,
            outbox_batch_size=BATCH,
            outbox_round_spacing_s=SPACING_S,
        )
        async with in_process(create_app(settings)) as client:

            async def enroll() -> None:
                answer = await client.post("/v1/enrollments", json=person() | HEFEI)
                assert answer.status_code == 201, answer.text

            # A stream: one enrollment every 50 ms for 1.5 s, then a burst of four batches' worth at once.
            for _ in range(30):
                await enroll()
                await asyncio.sleep(0.05)
            await asyncio.gather(*(enroll() for _ in range(4 * BATCH)))
            rounds = await eventually(lambda: _all_published(database_url, 50), GUARD_S)

            gaps = [(later - earlier, rows) for (earlier, rows), (later, _) in pairwise(rounds)]
            # After a round that was not full the next began SPACING_S after it ended, and its stamp is later
            # still; the stream's 30 enrollments took a few rounds, not one each.
            assert all(gap >= SPACING_S for gap, rows in gaps if rows < BATCH), rounds
            assert len(rounds) < 20, rounds
            # The burst left full batches waiting: each was followed at once, not after the spacing.
            assert any(gap < SPACING_S / 2 for gap, rows in gaps if rows == BATCH), rounds

            # After a quiet spell, a lone enrollment is published at once, not a spacing later.
            await asyncio.sleep(SPACING_S * 1.2)
            await enroll()
            lone = await eventually(lambda: _all_published(database_url, 51), GUARD_S)
            delay = await scalar_on(
                database_url,
                "SELECT extract(epoch FROM published_at - created_at) FROM outbox "
                "ORDER BY created_at DESC LIMIT 1",
            )
            assert float(delay) < SPACING_S / 2, (delay, lone)
