"""Both services served by two worker processes each (`WORKERS=2`, PostgreSQL), each on one port: under a
load of whole flows every enrollment is billed and every payment lands, `canbao check` finds nothing lost or
doubled, and each worker of each service answered requests and consumed events (each log line names the
process that wrote it)."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.enrollment import children
from canbao.harness import Parts
from shared.events import COLLECTION_PAYMENTS, REGISTRY_ENROLLMENTS
from tests.e2e.paying import pay_online
from tests.e2e.test_faults import check, enroll_many, in_step, long_poll
from tests.support import SERVICES, Activity, activity, recreate_pg_database

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

WORKERS = 2
FLOWS = 60
CONSUMED = {"registry": COLLECTION_PAYMENTS, "collection": REGISTRY_ENROLLMENTS}


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory, worker: str) -> Iterator[Parts]:
    urls = {s: recreate_pg_database(f"canbao_workers_{worker}_{s}") for s in SERVICES}
    env = {f"{s.upper()}_WORKERS": str(WORKERS) for s in SERVICES}
    env |= {f"{s.upper()}_LOG_JSON": "true" for s in SERVICES}  # read by `activity`
    running = Parts(tmp_path_factory.mktemp("workers"), urls, extra_env=env)
    try:
        running.start()
        # Healthy is one worker answering; the load starts once every worker has.
        for service in SERVICES:
            wait_for_workers(running, service)
        yield running
    finally:
        running.stop()


def log_path(parts: Parts, service: str) -> Path:
    return parts.workdir / f"{service}-0.log"


def worker_pids(parts: Parts, service: str) -> set[int]:
    """The replica's worker processes (uvicorn spawns them), seen by the kernel, not by their logs."""
    supervisor = parts.replicas[(service, 0)].pid
    return {pid for pid in children(supervisor) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def wait_for_workers(parts: Parts, service: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        started = {pid for pid, doing in activity(log_path(parts, service)).items() if doing.started}
        if len(started) == WORKERS:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{service}: {len(started)} of {WORKERS} workers started\n{parts.log()}")
        time.sleep(0.2)


async def flow(parts: Parts, region: str, pays: bool) -> tuple[str, str | None]:
    """One resident's whole flow: enrolled, the bill waited for, and (if `pays`) paid online and the
    enrollment waited for until active. The enrollment and its payment id."""
    [enrollment_id] = await enroll_many(parts, 1, region)
    waiting = {"enrollment_id": enrollment_id, "wait_s": 30}
    bills = await long_poll(parts, "collection", 0, "/v1/bills", waiting)
    assert len(bills["items"]) == 1, (enrollment_id, bills)
    if not pays:
        return enrollment_id, None
    payment = await pay_online(parts, [bills["items"][0]["bill_id"]])
    enrollment = await long_poll(
        parts,
        "registry",
        0,
        f"/v1/enrollments/{enrollment_id}",
        {"wait_s": 30, "known_status": "pending_payment"},
    )
    assert (enrollment["status"], enrollment["payment_id"]) == ("active", payment["payment_id"]), enrollment
    return enrollment_id, payment["payment_id"]


async def test_two_workers_of_each_service_share_a_load_of_flows_and_lose_and_double_nothing(
    parts: Parts,
) -> None:
    region = "340104"
    gate = asyncio.Semaphore(12)

    async def gated(n: int) -> tuple[str, str | None]:
        async with gate:
            return await flow(parts, region, pays=n % 3 != 0)  # two in three pay

    done = await asyncio.gather(*(gated(n) for n in range(FLOWS)))
    enrollments = [enrollment_id for enrollment_id, _ in done]
    paid = {enrollment_id: payment_id for enrollment_id, payment_id in done if payment_id is not None}

    await in_step(parts, region, enrollments, paid)
    report = await check(parts, region)
    assert report["ok"] is True
    assert report["differences"] == []
    # Each worker answered requests and applied events, its consumer holding a share of the topic's
    # partitions (between them all three, none twice); each event applied by one of them only (a
    # redelivery is logged as skipped, not applied).
    for service, events in (("collection", FLOWS), ("registry", len(paid))):
        doing = worker_activity(parts, service)
        summary = {pid: (d.requests, d.applied, d.partitions) for pid, d in doing.items()}
        worked = [d.requests > 0 and d.applied > 0 and bool(d.partitions) for d in doing.values()]
        assert all(worked), (service, summary)
        held = sorted(p for d in doing.values() for p in d.partitions)
        assert held == [f"{CONSUMED[service]}[{n}]" for n in range(3)], (service, summary)
        assert sum(d.applied for d in doing.values()) == events, (service, summary)


def worker_activity(parts: Parts, service: str) -> dict[int, Activity]:
    """What each of the service's worker processes logged doing, by pid; every one of them, and none else,
    logged its start."""
    logged = activity(log_path(parts, service))
    workers = worker_pids(parts, service)
    assert len(workers) == WORKERS
    assert {pid for pid, doing in logged.items() if doing.started} == workers
    return {pid: logged[pid] for pid in workers}
