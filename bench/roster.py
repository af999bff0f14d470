"""Roster throughput on PostgreSQL: a generated subsidy roster (Jing attachment 4 layout) imported and applied
with the registry's own command line, next to a raw COPY of the same rows in the same run, with peak memory.

Creates (and drops first) its own database on the given server, migrates it with `python -m registry migrate`,
then times `roster import` (intake + validation) and `roster approve` (application), each a separate process
as an operator runs them, and `COPY … FROM STDIN` of the same file into a plain table. It prints each rate
beside the floor's (`*_vs_copy`) and the machine's load average, since other work on the machine slows all.

    .venv/bin/python bench/roster.py --rows 1000000
"""

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import asyncpg
from rich.console import Console
from rich.table import Table
from stdnum.cn import ric

from registry.policy.book import SHIPPED_POLICIES, PolicyBook

REGION = "341823"  # Jing county: its policy lists townships, so every row's township is checked
TOWNSHIPS = [t.name for t in PolicyBook.load(SHIPPED_POLICIES).find(REGION, 2023).townships]
# Inside Jing's 2023 window, so every listed person is also enrolled (the heavier path).
CLOCK_START = "2022-11-01T09:00:00+08:00"
HEADER = ["序号", "姓名", "身份证号码", "乡镇", "村(居)委会", "村民组", "备注"]


def unique_ids(count: int) -> list[str]:
    """Distinct valid ID numbers: one per (birth date, sequence) pair, birth dates from 1940 on."""
    ids: list[str] = []
    day, seq = date(1940, 1, 1), 0
    while len(ids) < count:
        body = f"{REGION}{day:%Y%m%d}{seq:03d}"
        ids.append(body + ric.calc_check_digit(body + "0"))
        seq += 1
        if seq == 1000:
            day, seq = day + timedelta(days=1), 0
    return ids


def write_roster(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        handle.write("泾县2023年度资助参保人员花名册\n人员类别：低保对象\n")
        writer.writerow(HEADER)
        for i, id_number in enumerate(unique_ids(rows), start=1):
            town = TOWNSHIPS[i % len(TOWNSHIPS)]
            writer.writerow([i, f"居民{i}", id_number, town, f"{town[:2]}村", f"{i % 12 + 1}组", ""])


class Phase(NamedTuple):
    wall_s: float
    cpu_s: float  # the registry process's own (user + system)
    database_cpu_s: float  # PostgreSQL's backends serving this database, sampled from /proc
    peak_rss_mb: float  # the registry process's own


def registry_cli(env: dict[str, str], database: str, *args: str) -> Phase:
    watch = _BackendCpu(env["REGISTRY_DATABASE_URL"].replace("+asyncpg", ""), database)
    watch.start()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "registry", *args], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)  # this process's own CPU and memory, not all children's
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, process.args)
    return Phase(wall, usage.ru_utime + usage.ru_stime, watch.stop(), usage.ru_maxrss / 1024)  # KiB on Linux


class _BackendCpu(threading.Thread):
    """CPU time of the PostgreSQL backends serving the bench's database (the server runs on this machine),
    sampled every 0.2 s: a backend's last fraction of a second before it exits is missed."""

    def __init__(self, dsn: str, database: str):
        super().__init__(daemon=True)
        self._dsn, self._database = dsn, database
        self._seen: dict[int, float] = {}
        self._done = threading.Event()

    def run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        try:
            while not self._done.is_set():
                pids = await connection.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    self._database,
                )
                for (pid,) in pids:
                    cpu = _process_cpu(pid)
                    if cpu is not None:
                        self._seen[pid] = cpu
                await asyncio.sleep(0.2)
        finally:
            await connection.close()

    def stop(self) -> float:
        self._done.set()
        self.join()
        return sum(self._seen.values())


def _process_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def recreate(server: str, name: str) -> None:
    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def copy_rows(dsn: str, path: Path) -> float:
    """The floor: the same file into a plain table with COPY, no checks at all."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE UNLOGGED TABLE bench_copy (seq text, name text, id_number text, township text, "
            "village text, village_group text, note text)"
        )
        started = time.perf_counter()
        with path.open("rb") as handle:
            for _ in range(2):  # the title lines above the header
                handle.readline()
            await connection.copy_to_table("bench_copy", source=handle, format="csv", header=True)
        return time.perf_counter() - started
    finally:
        await connection.close()


async def upload_id(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        value: str = await connection.fetchval("SELECT id FROM roster_uploads")
        return value
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgresql://127.0.0.1:5432", help="PostgreSQL, no database")
    parser.add_argument("--database", default="canbao_bench_roster")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=2000,
        help="rows per chunk, given to the import and approve commands as REGISTRY_ROSTER_CHUNK_ROWS "
        "(the service's own default is 500)",
    )
    parser.add_argument("--validate-only", action="store_true", help="Import and validate; apply nothing")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    asyncio.run(recreate(args.server, args.database))
    dsn = f"{args.server}/{args.database}"
    with tempfile.TemporaryDirectory() as tmp:
        roster = Path(tmp) / "低保花名册.csv"
        write_roster(roster, args.rows)
        env = os.environ | {
            "REGISTRY_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "REGISTRY_ROSTER_DIR": str(Path(tmp) / "rosters"),
            "REGISTRY_CLOCK_START": CLOCK_START,
            "REGISTRY_LOG_LEVEL": "warning",
            "REGISTRY_ROSTER_CHUNK_ROWS": str(args.chunk_rows),
        }
        registry_cli(env, args.database, "migrate")
        common = ["--kind", "subsidy", "--region", REGION, "--year", "2023", "--department", "县民政局"]
        validating = registry_cli(
            env, args.database, "roster", "import", str(roster), *common, "--by", "bench"
        )
        applying = None
        if not args.validate_only:
            identifier = asyncio.run(upload_id(dsn))
            applying = registry_cli(env, args.database, "roster", "approve", identifier, "--by", "bench")
        copy_s = asyncio.run(copy_rows(dsn, roster))
        size_mb = roster.stat().st_size / 1e6
    validate_s = validating.wall_s
    copy_rate = args.rows / copy_s
    figures: dict[str, float] = {
        "rows": args.rows,
        "chunk_rows": args.chunk_rows,
        "file_mb": round(size_mb, 1),
        "import_and_validate_s": round(validate_s, 1),
        "validate_rows_per_s": round(args.rows / validate_s),
        "copy_s": round(copy_s, 2),
        "copy_rows_per_s": round(copy_rate),
        # Each against the floor measured in the same run, on the same machine under the same load.
        "validate_vs_copy": round(args.rows / validate_s / copy_rate, 4),
        "validate_peak_rss_mb": round(validating.peak_rss_mb),
        # CPU per row, which the machine's load changes far less than the rates (start-up included).
        "validate_process_us_per_row": round(validating.cpu_s / args.rows * 1e6, 1),
        "validate_postgres_us_per_row": round(validating.database_cpu_s / args.rows * 1e6, 1),
    }
    if applying is not None:
        apply_s = applying.wall_s
        figures |= {
            "apply_s": round(apply_s, 1),
            "apply_rows_per_s": round(args.rows / apply_s),
            "end_to_end_rows_per_s": round(args.rows / (validate_s + apply_s)),
            "apply_vs_copy": round(args.rows / apply_s / copy_rate, 4),
            "peak_rss_mb": round(max(validating.peak_rss_mb, applying.peak_rss_mb)),
            "apply_peak_rss_mb": round(applying.peak_rss_mb),
            "apply_process_us_per_row": round(applying.cpu_s / args.rows * 1e6, 1),
            "apply_postgres_us_per_row": round(applying.database_cpu_s / args.rows * 1e6, 1),
        }
    # The machine's 1-minute load average before and after: other work on it slows every figure.
    figures |= {"load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    table = Table("figure", "value", title=f"roster of {args.rows:,} rows on PostgreSQL")
    for key, value in figures.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
