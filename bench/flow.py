"""End-to-end throughput: N enrollments through the resident's real flow, register -> bill -> payment order ->
the channel's signed notification (the sandbox payment provider) -> active, over real HTTP and Kafka.

Starts its own stack exactly as `make run` does (embedded default: SQLite files and the Tansu broker) in a
temporary directory, on free ports, unless --registry/--collection point at a running one.

    .venv/bin/python bench/flow.py --count 500 --concurrency 25
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from canbao.harness import Stack, resident_id
from canbao.stack import SERVICES
from shared.auth import Role, dev_token

REGION = "340104"

POLL_S = 0.05


async def one_flow(
    registry: httpx.AsyncClient, collection: httpx.AsyncClient, timeout_s: float
) -> tuple[float, int]:
    """One complete flow: its latency (-1 for a random ID that repeated) and how often the channel's
    notification had to be sent again."""
    started = time.perf_counter()
    deadline = started + timeout_s
    id_number = resident_id()
    created = await registry.post(
        "/v1/enrollments",
        json={"id_number": id_number, "name": "测试", "region_code": REGION, "coverage_year": 2024},
    )
    if created.status_code == 409:  # a random ID that repeats: not a failure of the system
        return -1.0, 0
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
    return time.perf_counter() - started, resent


async def run(count: int, concurrency: int, registry_url: str, collection_url: str, timeout_s: float) -> None:
    console = Console()
    limits = httpx.Limits(max_connections=concurrency * 2)
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
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
                    latency, notifications_resent = await one_flow(registry, collection, timeout_s)
                if latency >= 0:
                    latencies.append(latency)
                    resent.append(notifications_resent)
                progress.advance(task)

            started = time.perf_counter()
            await asyncio.gather(*(guarded() for _ in range(count)))
            elapsed = time.perf_counter() - started
    latencies.sort()
    console.print(
        f"{len(latencies)} complete flows in {elapsed:.1f}s: "
        f"[bold]{len(latencies) / elapsed:.1f} flows/s[/bold]; "
        f"flow latency p50 {statistics.median(latencies):.2f}s, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.2f}s (concurrency {concurrency}); "
        f"notifications answered 503 and sent again: {sum(resent)} (in {sum(1 for r in resent if r)} flows)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one flow may take")
    parser.add_argument("--registry", help="URL of a running registry (default: start a stack)")
    parser.add_argument("--collection", help="URL of a running collection service")
    args = parser.parse_args()
    if args.registry and args.collection:
        asyncio.run(run(args.count, args.concurrency, args.registry, args.collection, args.timeout))
        return
    with tempfile.TemporaryDirectory(prefix="canbao-bench-") as tmp:
        workdir = Path(tmp)
        stack = Stack(workdir, {s: f"sqlite+aiosqlite:///{workdir / s}.db" for s in SERVICES})
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
