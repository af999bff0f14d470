"""`POST /v1/enrollments` against its floor, side by side in one run (issue 19: at least 0.40x the floor).

Starts the whole system as `canbao run` starts it, on fresh PostgreSQL databases (or SQLite files with
--sqlite), and the floor app (bench/floor.py: the same body checked by pydantic, one row inserted into the
registry's database, the same engine factory and uvicorn settings); then drives each in turn with the same
driver (bench/load.py), the same number of connections and the same duration: floor, POST, floor, POST...
Each request enrolls a distinct valid resident ID number as a staff member of the district. Prints, per
round and in total, requests/s, the server's CPU per request (the floor's process, the registry's process:
request loop and event thread), PostgreSQL's CPU per request (the backends serving that database), the ratio
and the load average before and after.

    .venv/bin/python -m bench.enrollment --duration 10 --connections 20 --rounds 2
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.load import RequestFactory, Result, drive
from canbao.harness import ROOT, Stack, drop_databases, free_port, fresh_databases, resident_id
from canbao.stack import SERVICES
from shared.auth import Role, dev_token

REGION = "340104"
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int, *, main_thread: bool = False) -> float:
    """A process's CPU time so far (user and system), from /proc: all its threads, or its main thread alone
    (a service's request loop; its outbox relay and consumer run on a thread of their own)."""
    path = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def children_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_s(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # a backend that ended meanwhile
    return total


def service_pid(parent: int, service: str) -> int:
    """The process `canbao run` (pid `parent`) started to serve `service`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and service.encode() in cmdline:
            return int(entry.name)
    raise RuntimeError(f"no {service} process under {parent}")


@dataclass
class Round:
    what: str
    result: Result
    server_cpu_s: float
    loop_cpu_s: float
    database_cpu_s: float | None

    def line(self) -> str:
        n = max(self.result.requests, 1)
        database = f", PostgreSQL {self.database_cpu_s / n * 1000:.2f} ms" if self.database_cpu_s else ""
        return (
            f"{self.what:>6}: {self.result.per_second:7.1f} req/s, server CPU "
            f"{self.server_cpu_s / n * 1000:.2f} ms/request (request loop {self.loop_cpu_s / n * 1000:.2f})"
            f"{database}; {self.result.summary()}"
        )


class Bodies:
    """Enrollment bodies, each with an ID number no other request of the run has."""

    def __init__(self) -> None:
        self.next = 0

    def factory(self, path: str) -> RequestFactory:
        def make(_: int) -> tuple[str, str, bytes]:
            n = self.next
            self.next += 1
            birth = (date(1950, 1, 1) + timedelta(days=n // 1000)).strftime("%Y%m%d")
            body = {
                "id_number": resident_id(REGION, birth, n % 1000),
                "name": "测试",
                "region_code": REGION,
                "coverage_year": 2024,
            }
            return "POST", path, json.dumps(body).encode()

        return make


async def backends(server: str | None, database: str) -> list[int]:
    """The PostgreSQL backends serving `database` now."""
    if server is None:
        return []
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    finally:
        await conn.close()
    return [row["pid"] for row in rows]


async def one_round(
    what: str,
    port: int,
    path: str,
    pid: int,
    bodies: Bodies,
    args: argparse.Namespace,
    database: str,
    headers: dict[str, str],
) -> Round:
    db_before = {pid: children_cpu_s([pid]) for pid in await backends(args.postgres, database)}
    cpu_before, loop_before = cpu_s(pid), cpu_s(pid, main_thread=True)
    result = await drive(
        "127.0.0.1",
        port,
        bodies.factory(path),
        connections=args.connections,
        duration_s=args.duration,
        headers=headers,
    )
    cpu_after, loop_after = cpu_s(pid), cpu_s(pid, main_thread=True)
    # Backends that began during the round count from zero; one that ended loses its share (rare: the pool
    # keeps its connections).
    database_cpu = (
        sum(children_cpu_s([p]) - db_before.get(p, 0.0) for p in await backends(args.postgres, database))
        if args.postgres
        else None
    )
    return Round(what, result, cpu_after - cpu_before, loop_after - loop_before, database_cpu)


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


async def run(args: argparse.Namespace, stack: Stack, floor_port: int, floor_pid: int, database: str) -> None:
    registry_pid = service_pid(stack.process.pid if stack.process else 0, "registry")
    registry_port = stack.ports["registry"]
    await wait_up(f"http://127.0.0.1:{floor_port}/docs")
    staff = {"Authorization": f"Bearer {dev_token(Role.STAFF, regions=[REGION])}"}
    bodies = Bodies()
    # Warm both (pools filled, statements prepared) before measuring.
    warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
    await one_round("warm", floor_port, "/floor", floor_pid, bodies, warm, database, {})
    await one_round("warm", registry_port, "/v1/enrollments", registry_pid, bodies, warm, database, staff)
    rounds: list[Round] = []
    for _ in range(args.rounds):
        rounds.append(await one_round("floor", floor_port, "/floor", floor_pid, bodies, args, database, {}))
        print(rounds[-1].line(), flush=True)
        post = await one_round(
            "POST", registry_port, "/v1/enrollments", registry_pid, bodies, args, database, staff
        )
        rounds.append(post)
        print(rounds[-1].line(), flush=True)
    summarise(rounds)


def summarise(rounds: list[Round]) -> None:
    def total(what: str) -> tuple[float, float, float, float | None]:
        mine = [r for r in rounds if r.what == what]
        requests = sum(r.result.requests for r in mine)
        per_s = requests / sum(r.result.elapsed_s for r in mine)
        cpu = sum(r.server_cpu_s for r in mine) / requests * 1000
        loop = sum(r.loop_cpu_s for r in mine) / requests * 1000
        db = [r.database_cpu_s for r in mine if r.database_cpu_s is not None]
        return per_s, cpu, loop, (sum(db) / requests * 1000 if db else None)

    floor, post = total("floor"), total("POST")
    for what, (per_s, cpu, loop, db) in (("floor", floor), ("POST", post)):
        database = f", PostgreSQL {db:.2f} ms" if db is not None else ""
        print(
            f"{what:>6} overall: {per_s:.1f} req/s, server CPU {cpu:.2f} ms/request (request loop {loop:.2f})"
            f"{database}"
        )
    print(
        f"ratio POST/floor: {post[0] / floor[0]:.2f} by requests/s, {floor[1] / post[1]:.2f} by server CPU "
        f"per request, {floor[2] / post[2]:.2f} by the request loop's"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each round")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up for each")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of floor then POST")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432", help="a PostgreSQL server")
    parser.add_argument("--sqlite", action="store_true", help="SQLite files instead of PostgreSQL")
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=90.0,
        help="seconds the system may take to start (a loaded machine)",
    )
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("CANBAO_TEST_DB_PREFIX", "canbao") + "_bench_enrollment",
        help="names of the PostgreSQL databases made (dropped first, and at the end)",
    )
    args = parser.parse_args()
    if args.sqlite:
        args.postgres = None
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="canbao-bench-") as tmp:
        workdir = Path(tmp)
        urls = (
            asyncio.run(fresh_databases(args.postgres, args.db_prefix))
            if args.postgres
            else {s: f"sqlite+aiosqlite:///{workdir / s}.db" for s in SERVICES}
        )
        stack = Stack(workdir, urls)
        floor: subprocess.Popen[bytes] | None = None
        try:
            stack.start(timeout_s=args.start_timeout)
            floor_port = free_port()
            floor = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).parent / "floor.py"),
                    "--database-url",
                    urls["registry"],
                    "--port",
                    str(floor_port),
                ],
                cwd=ROOT,
            )
            asyncio.run(run(args, stack, floor_port, floor.pid, f"{args.db_prefix}_registry"))
        finally:
            if floor is not None:
                floor.terminate()
                floor.wait(30)
            stack.stop()
            if args.postgres:
                time.sleep(1)
                asyncio.run(drop_databases(args.postgres, args.db_prefix))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
