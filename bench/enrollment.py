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
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import asyncpg

from bench.load import Client, RequestFactory, RequestFailed, Result, drive
from canbao.harness import ROOT, Stack, bench_stack, free_port, resident_id
from shared.auth import Role, dev_token

REGION = "340104"
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int, *, main_thread: bool = False) -> float:
    """A process's CPU time so far (user and system), from /proc: all its threads, or its main thread alone
    (a service's request loop; its outbox relay and consumer run on a thread of their own)."""
    path = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def server_cpu_s(pid: int) -> tuple[float, float]:
    """A server's CPU time so far, all of it and its request loops': its process, and with several workers
    (uvicorn's processes under it) theirs as well, whose main threads are then the request loops."""
    workers = children(pid)
    total = cpu_s(pid) + sum(cpu_s(worker) for worker in workers)
    if workers:
        return total, sum(cpu_s(worker, main_thread=True) for worker in workers)
    return total, cpu_s(pid, main_thread=True)


def stolen_s() -> float:
    """The machine's steal time so far, all cores (/proc/stat): time a shared host gave its other guests."""
    return int(Path("/proc/stat").read_text().split("\n", 1)[0].split()[8]) / _TICKS


def children_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_s(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # a backend that ended meanwhile
    return total


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def descendants(parent: int) -> list[int]:
    found = children(parent)
    for child in list(found):
        found += descendants(child)
    return found


def service_pid(parent: int, service: str) -> int:
    """The process `canbao run` (pid `parent`) started to serve `service`."""
    for pid in children(parent):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if service.encode() in cmdline:
            return pid
    raise RuntimeError(f"no {service} process under {parent}")


@dataclass
class Round:
    what: str
    result: Result
    server_cpu_s: float
    loop_cpu_s: float
    database_cpu_s: float | None
    others_cpu_s: float  # the rest of the system: collection (billing each enrollment), the broker
    stolen_s: float  # the machine's steal time during the round (a shared host's other guests)

    def line(self) -> str:
        n = max(self.result.requests, 1)
        database = f", PostgreSQL {self.database_cpu_s / n * 1000:.2f} ms" if self.database_cpu_s else ""
        database += f", collection and broker {self.others_cpu_s / n * 1000:.2f} ms"
        return (
            f"{self.what:>6}: {self.result.per_second:7.1f} req/s, server CPU "
            f"{self.server_cpu_s / n * 1000:.2f} ms/request (request loop {self.loop_cpu_s / n * 1000:.2f})"
            f"{database}; stolen {self.stolen_s:.2f} s; {self.result.summary()}"
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
    others: list[int],
    bodies: Bodies,
    args: argparse.Namespace,
    database: str,
    headers: dict[str, str],
) -> Round:
    db_before = {pid: children_cpu_s([pid]) for pid in await backends(args.postgres, database)}
    stolen_before, others_before = stolen_s(), children_cpu_s(others)
    cpu_before, loop_before = server_cpu_s(pid)
    result = await drive(
        "127.0.0.1",
        port,
        bodies.factory(path),
        connections=args.connections,
        duration_s=args.duration,
        headers=headers,
    )
    cpu_after, loop_after = server_cpu_s(pid)
    # Backends that began during the round count from zero; one that ended loses its share (rare: the pool
    # keeps its connections).
    database_cpu = (
        sum(children_cpu_s([p]) - db_before.get(p, 0.0) for p in await backends(args.postgres, database))
        if args.postgres
        else None
    )
    stolen, others_cpu = stolen_s() - stolen_before, children_cpu_s(others) - others_before
    return Round(
        what, result, cpu_after - cpu_before, loop_after - loop_before, database_cpu, others_cpu, stolen
    )


async def wait_up(url: str) -> None:
    async with Client(url, connections=1) as client:
        for _ in range(300):
            try:
                await client.get("/docs")
                return
            except RequestFailed:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


async def run(args: argparse.Namespace, stack: Stack, floor_port: int, floor_pid: int, database: str) -> None:
    parent = stack.process.pid if stack.process else 0
    registry_pid = service_pid(parent, "registry")
    # What else `canbao run` started (collection, its workers, the broker): the floor's rounds pay none of it.
    others = [pid for pid in descendants(parent) if pid != registry_pid and pid not in children(registry_pid)]
    registry_port = stack.ports["registry"]
    await wait_up(f"http://127.0.0.1:{floor_port}")
    staff = {"Authorization": f"Bearer {dev_token(Role.STAFF, regions=[REGION])}"}
    bodies = Bodies()
    # Warm both (pools filled, statements prepared) before measuring.
    warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
    await one_round("warm", floor_port, "/floor", floor_pid, others, bodies, warm, database, {})
    await one_round(
        "warm", registry_port, "/v1/enrollments", registry_pid, others, bodies, warm, database, staff
    )
    rounds: list[Round] = []
    for _ in range(args.rounds):
        rounds.append(
            await one_round("floor", floor_port, "/floor", floor_pid, others, bodies, args, database, {})
        )
        print(rounds[-1].line(), flush=True)
        post = await one_round(
            "POST", registry_port, "/v1/enrollments", registry_pid, others, bodies, args, database, staff
        )
        rounds.append(post)
        print(rounds[-1].line(), flush=True)
    summarise(rounds)


def summarise(rounds: list[Round]) -> None:
    def total(what: str) -> tuple[float, float, float, float | None, float]:
        mine = [r for r in rounds if r.what == what]
        requests = sum(r.result.requests for r in mine)
        per_s = requests / sum(r.result.elapsed_s for r in mine)
        cpu = sum(r.server_cpu_s for r in mine) / requests * 1000
        loop = sum(r.loop_cpu_s for r in mine) / requests * 1000
        db = [r.database_cpu_s for r in mine if r.database_cpu_s is not None]
        others = sum(r.others_cpu_s for r in mine) / requests * 1000
        return per_s, cpu, loop, (sum(db) / requests * 1000 if db else None), others

    floor, post = total("floor"), total("POST")
    for what, (per_s, cpu, loop, db, others) in (("floor", floor), ("POST", post)):
        database = f", PostgreSQL {db:.2f} ms" if db is not None else ""
        database += f", collection and broker {others:.2f} ms"
        print(
            f"{what:>6} overall: {per_s:.1f} req/s, server CPU {cpu:.2f} ms/request (request loop {loop:.2f})"
            f"{database}"
        )
    print(
        f"ratio POST/floor: {post[0] / floor[0]:.2f} by requests/s, {floor[1] / post[1]:.2f} by server CPU "
        f"per request, {floor[2] / post[2]:.2f} by the request loop's"
    )
    # Each POST round beside the floor round just before it: a shared machine's speed drifts over a run,
    # and a pair's two rounds are closest in time. The median is the least moved by one slow stretch.
    pairs = [
        p.result.per_second / f.result.per_second
        for f, p in zip(rounds[::2], rounds[1::2], strict=True)
        if f.what == "floor" and p.what == "POST" and f.result.per_second
    ]
    if pairs:
        print(
            f"ratio by requests/s, round pair by pair: {' '.join(f'{r:.2f}' for r in pairs)}; "
            f"median {statistics.median(pairs):.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each round")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up for each")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of floor then POST")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes of the registry and the floor (WORKERS)"
    )
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432", help="a PostgreSQL server")
    parser.add_argument("--sqlite", action="store_true", help="SQLite files instead of PostgreSQL")
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("CANBAO_TEST_DB_PREFIX", "canbao") + "_bench_enrollment",
        help="names of the PostgreSQL databases made (dropped first, and at the end)",
    )
    args = parser.parse_args()
    if args.sqlite:
        args.postgres = None
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with bench_stack(args.postgres, args.db_prefix, env={"REGISTRY_WORKERS": str(args.workers)}) as stack:
        floor_port = free_port()
        floor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.floor",
                "--database-url",
                stack.database_urls["registry"],
                "--port",
                str(floor_port),
                "--workers",
                str(args.workers),
            ],
            cwd=ROOT,
        )
        try:
            asyncio.run(run(args, stack, floor_port, floor.pid, f"{args.db_prefix}_registry"))
        finally:
            floor.terminate()
            floor.wait(30)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
