"""The enrollment bench's floor served by several processes (`--workers`), as the bench starts it, on
PostgreSQL: every request answered and its row written, the CPU counted over the workers; and the summary's
ratio of each round pair, with their median."""

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import asyncpg
import pytest

from bench.enrollment import Bodies, Round, children, server_cpu_s, summarise, wait_up
from bench.load import Result, drive
from canbao.harness import ROOT, free_port
from tests.support import recreate_pg_database


@pytest.fixture
def floor() -> Iterator[tuple[subprocess.Popen[bytes], int, str]]:
    """bench/floor.py with two workers, started as the bench starts it: its process, port and database."""
    url = recreate_pg_database("bench_floor_workers")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.floor", "--database-url", url, "--port", str(port), "--workers", "2"],
        cwd=ROOT,
    )
    try:
        yield process, port, url
    finally:
        process.terminate()
        process.wait(30)


async def test_the_floor_served_by_two_workers_writes_every_row_and_counts_their_cpu(
    floor: tuple[subprocess.Popen[bytes], int, str],
) -> None:
    process, port, url = floor
    await wait_up(f"http://127.0.0.1:{port}")
    result = await drive("127.0.0.1", port, Bodies().factory("/floor"), connections=8, count=400)
    assert result.statuses == Counter({201: 400})
    assert not result.errors
    workers = [pid for pid in children(process.pid) if b"spawn_main" in _cmdline(pid)]
    assert len(workers) == 2
    total, loops = server_cpu_s(process.pid)
    assert total > loops > 0
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await connection.fetchval("SELECT count(*) FROM bench_floor_rows") == 400
    finally:
        await connection.close()


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read()


def _round(what: str, requests: int) -> Round:
    return Round(what, Result(elapsed_s=1.0, statuses=Counter({201: requests})), 1.0, 1.0, None, 0.0, 0.0)


def test_the_summary_gives_each_round_pairs_ratio_and_their_median(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rounds = [
        _round("floor", 1000),
        _round("POST", 400),
        _round("floor", 500),  # a slow stretch of the machine slows both rounds of its pair
        _round("POST", 100),
        _round("floor", 1000),
        _round("POST", 350),
    ]
    summarise(rounds)
    out = capsys.readouterr().out
    assert "ratio POST/floor: 0.34 by requests/s" in out
    assert "round pair by pair: 0.40 0.20 0.35; median 0.35" in out
