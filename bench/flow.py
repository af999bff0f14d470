"""End-to-end throughput: N enrollments through the resident's real flow, register -> bill -> payment order ->
the channel's signed notification (the sandbox payment provider) -> active, over real HTTP and Kafka.

Starts its own stack exactly as `make run` does (embedded default: SQLite files and the Tansu broker) in a
temporary directory, on free ports, unless --registry/--collection point at a running one; --postgres puts
both services on fresh PostgreSQL databases instead. Ends with `canbao check --no-repair` (nothing lost or
doubled).

    .venv/bin/python bench/flow.py --count 500 --concurrency 25
    .venv/bin/python bench/flow.py --count 1000 --concurrency 50 --postgres postgresql://127.0.0.1:5432
"""

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from canbao import check
from canbao.harness import Stack, resident_id
from canbao.stack import SERVICES
from shared.auth import Role, dev_token

REGION = "340104"

POLL_S = 0.05


async def one_flow(
    registry: httpx.AsyncClient, collection: httpx.AsyncClient, timeout_s: float
) -> tuple[float, float, int]:
    """One complete flow: its latency (-1 for a random ID that repeated), the time from the channel's
    notification to seeing the enrollment active, and how often the notification had to be sent again."""
    started = time.perf_counter()
    deadline = started + timeout_s
    id_number = resident_id()
    created = await registry.post(
        "/v1/enrollments",
        json={"id_number": id_number, "name": "测试", "region_code": REGION, "coverage_year": 2024},
    )
    if created.status_code == 409:  # a random ID that repeats: not a failure of the system
        return -1.0, -1.0, 0
    created.raise_for_status()
    enrollment_id = created.json()["enrollment_id"]
    while True:
        bills = (await collection.get("/v1/bills", params={"enrollment_id": enrollment_id})).json()["items"]
        if bills:
            break
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no bill for {enrollment_id}")
        await asyncio.sleep(POLL_S)
    # The resident starts paying through WeChat; the sandbox plays WeChat and sends its signed notification.
    resident = {"Authorization": f"Bearer {dev_token(Role.RESIDENT, sub=id_number, id_number=id_number)}"}
    order = await collection.post(
        "/v1/payment-orders",
        json={"bill_ids": [bills[0]["bill_id"]], "channel": "wechat"},
        headers=resident | {"Idempotency-Key": str(uuid.uuid4())},
    )
    order.raise_for_status()
    resent = 0
    paying = time.perf_counter()
    while True:
        paid = await collection.post(
            f"/v1/sandbox/payment-orders/{order.json()['order_id']}/payment", headers=resident
        )
        # A channel sends its notification again until it is answered 2xx; a 503 recorded nothing.
        if paid.status_code != 503 or time.perf_counter() > deadline:
            break
        resent += 1
        await asyncio.sleep(POLL_S)
    paid.raise_for_status()
    while (await registry.get(f"/v1/enrollments/{enrollment_id}")).json()["status"] != "active":
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{enrollment_id} not active")
        await asyncio.sleep(POLL_S)
    done = time.perf_counter()
    return done - started, done - paying, resent


async def run(count: int, concurrency: int, registry_url: str, collection_url: str, timeout_s: float) -> None:
    console = Console()
    # Idle connections retire before the server closes them (uvicorn: 5 s), so none is reused as it closes.
    limits = httpx.Limits(max_connections=concurrency * 2, keepalive_expiry=2.0)
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    to_active: list[float] = []
    resent: list[int] = []
    # A staff member of the district enrolls, a tax officer reads bills, the resident pays (the stack runs
    # with the development key and, outside production, the payment sandbox).
    staff = {"Authorization": f"Bearer {dev_token(Role.STAFF, regions=[REGION])}"}
    officer = {"Authorization": f"Bearer {dev_token(Role.TAX_OFFICER)}"}
    async with (
        httpx.AsyncClient(base_url=registry_url, timeout=60, limits=limits, headers=staff) as registry,
        httpx.AsyncClient(base_url=collection_url, timeout=60, limits=limits, headers=officer) as collection,
    ):
        with Progress(
            TextColumn("[bold]flows"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("flows", total=count)

            async def guarded() -> None:
                async with semaphore:
                    latency, activation, notifications_resent = await one_flow(
                        registry, collection, timeout_s
                    )
                if latency >= 0:
                    latencies.append(latency)
                    to_active.append(activation)
                    resent.append(notifications_resent)
                progress.advance(task)

            started = time.perf_counter()
            await asyncio.gather(*(guarded() for _ in range(count)))
            elapsed = time.perf_counter() - started
    console.print(
        f"{len(latencies)} complete flows in {elapsed:.1f}s: "
        f"[bold]{len(latencies) / elapsed:.1f} flows/s[/bold] (concurrency {concurrency}); "
        f"flow latency {_percentiles(latencies)}; payment -> active {_percentiles(to_active)}; "
        f"notifications answered 503 and sent again: {sum(resent)} (in {sum(1 for r in resent if r)} flows)"
    )
    report = await check.run(
        registry_url,
        collection_url,
        [REGION],
        2024,
        repair=False,
        wait_s=30.0,
        requested_by="bench-flow",
        token=dev_token(Role.ADMIN, sub="bench-flow"),
    )
    ledger = "ok" if report.ledger.get("ok") else report.ledger
    console.print(
        f"canbao check: {'clean' if report.ok else 'NOT CLEAN'} ({report.registry.listed} enrollments, "
        f"{len(report.differences)} differences, ledger {ledger}, "
        f"backlogs {report.registry.backlog} / {report.collection.backlog})"
    )


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p50, p95, p99 = (ordered[max(int(len(ordered) * q) - 1, 0)] for q in (0.50, 0.95, 0.99))
    return f"p50 {p50:.2f}s / p95 {p95:.2f}s / p99 {p99:.2f}s"


async def _fresh_databases(server: str, prefix: str) -> dict[str, str]:
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        for service in SERVICES:
            await admin.execute(f'DROP DATABASE IF EXISTS "{prefix}_{service}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{prefix}_{service}"')
    finally:
        await admin.close()
    url = server.replace("postgresql://", "postgresql+asyncpg://")
    return {s: f"{url}/{prefix}_{s}" for s in SERVICES}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one flow may take")
    parser.add_argument("--registry", help="URL of a running registry (default: start a stack)")
    parser.add_argument("--collection", help="URL of a running collection service")
    parser.add_argument("--postgres", help="a PostgreSQL server, postgresql://host:port (default: SQLite)")
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("CANBAO_TEST_DB_PREFIX", "canbao") + "_bench_flow",
        help="names of the PostgreSQL databases made (dropped first)",
    )
    args = parser.parse_args()
    if args.registry and args.collection:
        asyncio.run(run(args.count, args.concurrency, args.registry, args.collection, args.timeout))
        return
    with tempfile.TemporaryDirectory(prefix="canbao-bench-") as tmp:
        workdir = Path(tmp)
        urls = (
            asyncio.run(_fresh_databases(args.postgres, args.db_prefix))
            if args.postgres
            else {s: f"sqlite+aiosqlite:///{workdir / s}.db" for s in SERVICES}
        )
        stack = Stack(workdir, urls)
        stack.start()
        try:
            asyncio.run(
                run(
                    args.count, args.concurrency, stack.url("registry"), stack.url("collection"), args.timeout
                )
            )
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
