"""An import killed mid-file (SIGKILL, no clean-up) resumes when run again: nothing lost, doubled or
half-applied."""

import asyncio
import csv
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from shared.db import create_engine
from tests.support import ROOT, recreate_pg_database, resident_id, with_wrong_check

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("roster-kill")]

VALID, INVALID = 300, 30_000


def write_roster(path: Path) -> None:
    with open(path, "w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["泾县2023年度城乡居民医保资助参保人员花名册"])
        writer.writerow(["人员类别：低保对象"])
        writer.writerow(["序号", "姓名", "身份证号码", "乡镇", "村（居）委会", "村民组", "备注"])
        for i in range(INVALID + VALID):
            number = resident_id(region="341823")
            writer.writerow(
                [
                    i + 1,
                    f"居民{i}",
                    number if i >= INVALID else with_wrong_check(number),
                    "泾川镇",
                    "",
                    "",
                    "",
                ]
            )


def command(env: dict[str, str], *args: str) -> list[str]:
    return [sys.executable, "-m", "registry", "roster", *args]


async def scalar(url: str, sql: str) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def kill_when(process: subprocess.Popen[bytes], url: str, sql: str) -> None:
    for _ in range(1200):
        if process.poll() is not None:
            raise AssertionError("the import finished before it could be interrupted")
        if await scalar(url, sql):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the import never got under way")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command(env, *args), env=env, cwd=ROOT, stdout=subprocess.DEVNULL)


async def test_a_killed_import_resumes_when_run_again(backend: str, tmp_path: Path, worker: str) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    else:
        url = await asyncio.to_thread(recreate_pg_database, f"canbao_kill_{worker}_registry")
    env = {
        **os.environ,
        "REGISTRY_DATABASE_URL": url,
        "REGISTRY_ROSTER_DIR": str(tmp_path / "rosters"),
        "REGISTRY_CLOCK_START": "2022-11-15T10:00:00+08:00",
        "REGISTRY_ROSTER_CHUNK_ROWS": "50",
    }
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "registry", "migrate"], env=env, check=True, cwd=ROOT
    )
    roster = tmp_path / "低保花名册.csv"
    write_roster(roster)
    args = [
        "import",
        str(roster),
        "--kind",
        "subsidy",
        "--region",
        "341823",
        "--year",
        "2023",
        "--department",
        "县民政局",
        "--by",
        "importer",
    ]

    first = spawn(env, *args)
    await kill_when(
        first, url, "SELECT position FROM roster_uploads WHERE status = 'pending' AND position > 0"
    )
    read_before = await scalar(url, "SELECT rows_read FROM roster_uploads")
    assert 0 < read_before < INVALID + VALID

    again = await asyncio.to_thread(
        subprocess.run, command(env, *args), env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "the same file was sent before" in again.stdout
    upload_id = await scalar(url, "SELECT id FROM roster_uploads")
    assert await scalar(url, "SELECT COUNT(*) FROM roster_rows") == INVALID + VALID
    assert await scalar(url, "SELECT rows_accepted FROM roster_uploads") == VALID
    assert await scalar(url, "SELECT status FROM roster_uploads") == "validated"

    # Smaller chunks for applying: a chunk of 50 applies in milliseconds now, and the kill has to land while
    # chunks are left (a fresh-clone run saw all 300 applied between the check and the kill).
    env["REGISTRY_ROSTER_CHUNK_ROWS"] = "5"
    approving = spawn(env, "approve", upload_id, "--by", "bureau")
    await kill_when(approving, url, "SELECT rows_applied FROM roster_uploads WHERE rows_applied > 0")
    applied_before = await scalar(url, "SELECT rows_applied FROM roster_uploads")
    assert 0 < applied_before < VALID
    # What a chunk applied is whole: its rows, assignments, enrollments and events together, or none of them.
    assert await scalar(url, "SELECT COUNT(*) FROM roster_rows WHERE status = 'applied'") == applied_before
    assert await scalar(url, "SELECT COUNT(*) FROM enrollments") == applied_before

    resumed = await asyncio.to_thread(
        subprocess.run, command(env, "resume"), env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert await scalar(url, "SELECT status FROM roster_uploads") == "applied"
    assert await scalar(url, "SELECT rows_applied FROM roster_uploads") == VALID
    for count in ("subsidy_assignments", "enrollments", "outbox"):
        assert await scalar(url, f"SELECT COUNT(*) FROM {count}") == VALID, count  # noqa: S608  (fixed names)
