"""End-to-end throughput: N enrollments through the resident's real flow, register -> bill -> payment order ->
the channel's signed notification (the sandbox payment provider) -> active, over real HTTP and Kafka.

Starts its own stack exactly as `make run` does (embedded default: SQLite files and the Tansu broker) in a
temporary directory, on free ports, unless --registry/--collection point at a running one; --postgres puts
both services on fresh PostgreSQL databases instead. The driver waits for the bill and for "active" with the
services' long-polls (`GET /v1/bills?wait_s=`, `GET /v1/enrollments/{id}?wait_s=`) as a front-end would;
`--poll 0.05` asks again every 0.05 s instead (the way before the waits). After `--warmup` flows it measures
`--count` flows and prints flows/s, latency percentiles, the CPU each process spent per flow (registry,
collection, broker, the PostgreSQL backends of its databases, the driver itself; read from /proc) and the load
average before and after, the flows that failed and the requests that got no whole answer. Ends with
`canbao check --no-repair` (nothing lost or doubled); exits 1 if a flow failed or the check is not clean.
The driver is bench/load.py's light client (keep-alive connections over asyncio streams), so that the
machine's two cores go to the system rather than to the load generator.

    .venv/bin/python bench/flow.py --count 500 --concurrency 25
    .venv/bin/python bench/flow.py --count 1000 --concurrency 50 --postgres postgresql://127.0.0.1:5432
    .venv/bin/python bench/flow.py --poll 0.05   # asking again and again, for comparison
"""

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import uvloop
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.load import Client, RequestFailed, UnexpectedAnswer
from bench.meter import CpuMeter
from canbao import check
from canbao.harness import bench_stack, resident_id
from canbao.stack import SERVICES
from shared.auth import Role, dev_token

REGION = "340104"

# A channel sends its notification again after this while it is answered 503.
RESEND_S = 0.05
# The longest a long-poll waits (both services accept 1-30 s).
WAIT_S = 30


class Timing(NamedTuple):
    """One complete flow: its latency (-1 for a random ID that repeated), the time from the enrollment's
    answer to seeing its bill and from the channel's notification to seeing the enrollment active, and how
    often the notification had to be sent again."""

    latency: float
    to_bill: float
    to_active: float
    resent: int


async def one_flow(registry: Client, collection: Client, timeout_s: float, poll_s: float | None) -> Timing:
    started = time.perf_counter()
    deadline = started + timeout_s
    id_number = resident_id()
    created = await registry.post(
        "/v1/enrollments",
        json={"id_number": id_number, "name": "测试", "region_code": REGION, "coverage_year": 2024},
    )
    if created.status == 409:  # a random ID that repeats: not a failure of the system
        return Timing(-1.0, -1.0, -1.0, 0)
    enrollment_id = created.expect(201)["enrollment_id"]
    enrolled = time.perf_counter()
    bills = await _bills(collection, enrollment_id, deadline, poll_s)
    billed = time.perf_counter()
    # The resident starts paying through WeChat; the sandbox plays WeChat and sends its signed notification.
    resident = {"Authorization": f"Bearer {dev_token(Role.RESIDENT, sub=id_number, id_number=id_number)}"}
    order = await collection.post(
        "/v1/payment-orders",
        json={"bill_ids": [bills[0]["bill_id"]], "channel": "wechat"},
        headers=resident | {"Idempotency-Key": str(uuid.uuid4())},
    )
    order_id = order.expect(201)["order_id"]
    resent = 0
    paying = time.perf_counter()
    while True:
        paid = await collection.post(f"/v1/sandbox/payment-orders/{order_id}/payment", headers=resident)
        # A channel sends its notification again until it is answered 2xx; a 503 recorded nothing.
        if paid.status != 503 or time.perf_counter() > deadline:
            break
        resent += 1
        await asyncio.sleep(RESEND_S)
    paid.expect(200)
    await _active(registry, enrollment_id, deadline, poll_s)
    done = time.perf_counter()
    return Timing(done - started, billed - enrolled, done - paying, resent)


async def _bills(
    collection: Client, enrollment_id: str, deadline: float, poll_s: float | None
) -> list[dict[str, Any]]:
    """The enrollment's bills once collection has issued one: a long-poll, or asking every `poll_s`."""
    params: dict[str, Any] = {"enrollment_id": enrollment_id}
    if poll_s is None:
        params["wait_s"] = WAIT_S
    while True:
        bills: list[dict[str, Any]] = (await collection.get("/v1/bills", params=params)).expect(200)["items"]
        if bills:
            return bills
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no bill for {enrollment_id}")
        if poll_s is not None:
            await asyncio.sleep(poll_s)


async def _active(registry: Client, enrollment_id: str, deadline: float, poll_s: float | None) -> None:
    """Until the registry has applied the payment: a long-poll, or asking every `poll_s`."""
    params: dict[str, Any] = {}
    if poll_s is None:
        params = {"wait_s": WAIT_S, "known_status": "pending_payment"}
    path = f"/v1/enrollments/{enrollment_id}"
    while (await registry.get(path, params=params)).expect(200)["status"] != "active":
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{enrollment_id} not active")
        if poll_s is not None:
            await asyncio.sleep(poll_s)


@dataclass(frozen=True)
class Options:
    count: int
    warmup: int
    concurrency: int
    timeout_s: float
    poll_s: float | None


@dataclass
class Flows:
    latencies: list[float] = field(default_factory=list)
    to_bill: list[float] = field(default_factory=list)
    to_active: list[float] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # flows that did not complete, by what happened


async def run(options: Options, registry_url: str, collection_url: str, cpu: CpuMeter) -> bool:
    """The flows and their figures; whether every flow completed and `canbao check` is clean."""
    console = Console(soft_wrap=True)  # one line per figure, whatever the terminal
    # A staff member of the district enrolls, a tax officer reads bills, the resident pays (the stack runs
    # with the development key and, outside production, the payment sandbox).
    staff = {"Authorization": f"Bearer {dev_token(Role.STAFF, regions=[REGION])}"}
    officer = {"Authorization": f"Bearer {dev_token(Role.TAX_OFFICER)}"}
    connections = options.concurrency * 2
    async with (
        Client(registry_url, connections=connections, headers=staff) as registry,
        Client(collection_url, connections=connections, headers=officer) as collection,
    ):
        warm = Flows()
        if options.warmup:
            warm = await _flows(console, "warm-up", options.warmup, options, registry, collection)
        load_before = os.getloadavg()[0]
        await cpu.start()
        before = await cpu.mark()
        started = time.perf_counter()
        flows = await _flows(console, "flows", options.count, options, registry, collection)
        elapsed = time.perf_counter() - started
        spent = cpu.spent(before, await cpu.mark())
        await cpu.stop()
        load_after = os.getloadavg()[0]
        errors = registry.errors + collection.errors
    done = len(flows.latencies)
    console.print(
        f"{done} complete flows in {elapsed:.1f}s: "
        f"[bold]{done / elapsed:.1f} flows/s[/bold] (concurrency {options.concurrency}, "
        f"{'polling every ' + str(options.poll_s) + ' s' if options.poll_s else 'long-polls'}); "
        f"flow latency {_percentiles(flows.latencies)}; enrolled -> bill {_percentiles(flows.to_bill)}; "
        f"payment -> active {_percentiles(flows.to_active)}; "
        f"notifications answered 503 and sent again: {sum(flows.resent)} "
        f"(in {sum(1 for r in flows.resent if r)} flows)"
    )
    per_flow = " / ".join(f"{name} {seconds * 1000 / max(done, 1):.1f}" for name, seconds in spent.items())
    console.print(
        f"CPU per flow (ms): {per_flow} / total {sum(spent.values()) * 1000 / max(done, 1):.1f}; "
        f"load average (1 min) {load_before:.2f} -> {load_after:.2f}"
    )
    failed = sum(flows.failures.values()) + sum(warm.failures.values())
    console.print(
        f"flows failed: {sum(flows.failures.values())} measured, {sum(warm.failures.values())} in the warm-up"
        + "".join(f"\n  {n} × {problem}" for problem, n in (warm.failures + flows.failures).most_common(5))
        + f"; requests without a whole answer: {sum(errors.values())} {dict(errors) if errors else ''}"
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
    return report.ok and not failed


async def _flows(
    console: Console,
    label: str,
    count: int,
    options: Options,
    registry: Client,
    collection: Client,
) -> Flows:
    flows = Flows()
    semaphore = asyncio.Semaphore(options.concurrency)
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=2,  # each refresh costs the driver ~2 ms of CPU
    ) as progress:
        task = progress.add_task(label, total=count)

        async def guarded() -> None:
            try:
                async with semaphore:
                    timing = await one_flow(registry, collection, options.timeout_s, options.poll_s)
            except (RequestFailed, UnexpectedAnswer, TimeoutError) as exc:
                flows.failures[f"{type(exc).__name__}: {str(exc)[:200]}"] += 1
            else:
                if timing.latency >= 0:
                    flows.latencies.append(timing.latency)
                    flows.to_bill.append(timing.to_bill)
                    flows.to_active.append(timing.to_active)
                    flows.resent.append(timing.resent)
            progress.advance(task)

        await asyncio.gather(*(guarded() for _ in range(count)))
    return flows


def _percentiles(values: list[float]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    p50, p95, p99 = (ordered[max(int(len(ordered) * q) - 1, 0)] for q in (0.50, 0.95, 0.99))
    return f"p50 {p50:.2f}s / p95 {p95:.2f}s / p99 {p99:.2f}s"


def _run_on_uvloop(main: Coroutine[Any, Any, bool]) -> bool:
    """The driver on uvloop, as the services' loops: it shares the machine's cores with what it measures."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50, help="flows run before measuring")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one flow may take")
    parser.add_argument(
        "--poll", type=float, help="ask again every POLL seconds instead of long-polling (for comparison)"
    )
    parser.add_argument("--registry", help="URL of a running registry (default: start a stack)")
    parser.add_argument("--collection", help="URL of a running collection service")
    parser.add_argument("--postgres", help="a PostgreSQL server, postgresql://host:port (default: SQLite)")
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("CANBAO_TEST_DB_PREFIX", "canbao") + "_bench_flow",
        help="names of the PostgreSQL databases made (dropped first, and after the run)",
    )
    args = parser.parse_args()
    options = Options(args.count, args.warmup, args.concurrency, args.timeout, args.poll)
    if args.registry and args.collection:
        ok = _run_on_uvloop(run(options, args.registry, args.collection, CpuMeter(None, None, [])))
    else:
        with bench_stack(args.postgres, args.db_prefix) as stack:
            assert stack.process is not None
            databases = [f"{args.db_prefix}_{s}" for s in SERVICES]
            cpu = CpuMeter(stack.process.pid, args.postgres, databases)
            ok = _run_on_uvloop(run(options, stack.url("registry"), stack.url("collection"), cpu))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
