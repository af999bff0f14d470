"""Faults with real processes on PostgreSQL: the broker killed and restarted empty, a service killed with
SIGKILL while it consumes, replicas leaving their consumer group mid-run, the database going away. After each,
`canbao check` finds both services in step: every enrollment billed once and standing alike, every payment on
one bill, the ledger balanced, nothing left unpublished or dead-lettered."""

import asyncio
import json
import signal
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from canbao.harness import Parts
from shared.events import REGISTRY_ENROLLMENTS, EnrollmentCreated, dead_letter_topic
from tests.collection.helpers import enrollment_event
from tests.e2e.paying import pay_online
from tests.metrics import scrape
from tests.support import (
    SERVICES,
    Activity,
    activity,
    allow_connections,
    canbao_check,
    eventually,
    recreate_pg_database,
    resident_id,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

YEAR = 2024


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory, worker: str) -> Iterator[Parts]:
    urls = {s: recreate_pg_database(f"canbao_faults_{worker}_{s}") for s in SERVICES}
    log_json = {f"{s.upper()}_LOG_JSON": "true" for s in SERVICES}  # read by `activity`
    running = Parts(tmp_path_factory.mktemp("faults"), urls, extra_env=log_json)
    running.start()
    yield running
    running.stop()


async def enroll_many(parts: Parts, count: int, region: str, replicas: int = 1) -> list[str]:
    """Enroll `count` new people, a few at a time, spread over the registry's replicas."""
    gate = asyncio.Semaphore(6)

    async def one(n: int) -> str:
        body = {
            "id_number": resident_id(region),
            "name": "钱七",
            "region_code": region,
            "coverage_year": YEAR,
        }
        async with gate, parts.client("registry") as client:
            client.base_url = parts.url("registry", n % replicas)
            response = await client.post("/v1/enrollments", json=body)
        assert response.status_code == 201, response.text
        enrollment_id: str = response.json()["enrollment_id"]
        return enrollment_id

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def standings(parts: Parts, service: str, region: str) -> dict[str, dict[str, Any]]:
    path = "/v1/enrollments/standings" if service == "registry" else "/v1/bills/standings"
    async with parts.client(service) as client:
        response = await client.get(path, params={"region_code": region, "coverage_year": YEAR})
    assert response.status_code == 200, response.text
    return {item["enrollment_id"]: item for item in response.json()["items"]}


async def billed(parts: Parts, region: str, at_least: int) -> bool:
    return len(await standings(parts, "collection", region)) >= at_least


async def pay(parts: Parts, enrollment_id: str) -> str:
    """A resident pays the bill online: a payment order, then the sandbox channel's notification."""
    async with parts.client("collection") as client:
        bills = await client.get("/v1/bills", params={"enrollment_id": enrollment_id})
    bill = bills.json()["items"][0]
    paid = await pay_online(parts, [bill["bill_id"]], "wechat")
    payment_id: str = paid["payment_id"]
    return payment_id


async def check(parts: Parts, region: str) -> dict[str, Any]:
    """`canbao check` as an operator runs it; asserts both services are in step."""
    return await canbao_check(parts, region, YEAR)


async def in_step(parts: Parts, region: str, enrollments: list[str], paid: dict[str, str]) -> None:
    """Every enrollment once on each side, standing alike, the paid ones by their one payment."""
    held, bills = await standings(parts, "registry", region), await standings(parts, "collection", region)
    assert sorted(held) == sorted(bills) == sorted(enrollments)
    assert held == bills
    assert {e: s["payment_id"] for e, s in held.items() if s["standing"] == "paid"} == paid


async def test_the_broker_killed_and_restarted_empty_loses_nothing(parts: Parts) -> None:
    region = "340103"
    before = await enroll_many(parts, 20, region)
    await eventually(lambda: billed(parts, region, 20))

    parts.kill_broker()
    during = await enroll_many(parts, 10, region)  # accepted: held in the registry's outbox
    paid = {e: await pay(parts, e) for e in before[:5]}  # confirmations held in collection's outbox
    async with parts.client("registry") as registry:
        backlog = (await registry.get("/v1/events/backlog")).json()
    assert backlog["unpublished"] >= 10
    parts.start_broker()  # same address, nothing stored

    report = await check(parts, region)

    assert report["ok"] is True
    await in_step(parts, region, before + during, paid)


async def test_a_consumer_killed_mid_batch_resumes_without_doubling(parts: Parts) -> None:
    region = "340104"
    enrolling = asyncio.create_task(enroll_many(parts, 150, region))
    await eventually(lambda: billed(parts, region, 10))
    parts.signal(
        "collection", signal.SIGKILL
    )  # mid-stream: records fetched, some applied, offsets not committed
    enrollments = await enrolling
    parts.start_service("collection")

    await eventually(lambda: billed(parts, region, 150), timeout_s=120)
    report = await check(parts, region)

    assert report["differences"] == []  # the inbox absorbed the redelivery: nothing needed repair
    await in_step(parts, region, enrollments, {})


async def test_replicas_leaving_their_consumer_groups_mid_run_lose_and_double_nothing(parts: Parts) -> None:
    region = "340102"
    logs = {(s, r): parts.workdir / f"{s}-{r}.log" for s in SERVICES for r in (0, 1)}
    # Read from here on: a replica started again appends to the log of its earlier runs.
    since = {key: path.stat().st_size if path.exists() else 0 for key, path in logs.items()}
    for service in SERVICES:
        parts.start_service(service, replica=1)

    def doing(service: str, replica: int) -> Activity:
        pid = parts.replicas[(service, replica)].pid
        return activity(logs[(service, replica)], since[(service, replica)]).get(pid, Activity())

    # Each group has both members, each with a share of the partitions, before the load: a replica that
    # leaves has work to hand over.
    await eventually(lambda: held_by_both(doing), timeout_s=60)
    enrolling = asyncio.create_task(enroll_many(parts, 120, region, replicas=2))
    await eventually(lambda: billed(parts, region, 30), timeout_s=60)
    await eventually(lambda: applied_by_both(doing, "collection"), timeout_s=60)
    parts.signal("collection", signal.SIGTERM, replica=1)  # leaves the group: its partitions move over
    enrollments = await enrolling
    await eventually(lambda: billed(parts, region, 120), timeout_s=120)
    paid: dict[str, str] = {}
    left = False
    for n, enrollment_id in enumerate(enrollments[:30]):
        if n >= 10 and not left and doing("registry", 1).applied:
            parts.signal("registry", signal.SIGTERM, replica=1)  # the payments' consumer group loses a member
            left = True
        paid[enrollment_id] = await pay(parts, enrollment_id)
    # It left once it had applied payments of its own: with a share of the partitions, one of the first
    # few payments was all but certain to be its.
    assert left, doing("registry", 1)

    async def all_confirmed() -> bool | None:
        held = await standings(parts, "registry", region)
        return all(held[e]["payment_id"] == p for e, p in paid.items()) or None

    # The group rebalances after a member leaves (longer on a loaded machine); then everything has arrived
    # and nothing needs repairing.
    await eventually(all_confirmed, timeout_s=120)
    report = await check(parts, region)

    assert report["differences"] == []
    await in_step(parts, region, enrollments, paid)


async def held_by_both(doing: Callable[[str, int], Activity]) -> bool:
    """Whether each service's two replicas both hold partitions of what it consumes (their logs)."""
    return all(doing(s, r).partitions for s in SERVICES for r in (0, 1))


async def applied_by_both(doing: Callable[[str, int], Activity], service: str) -> bool:
    return all(doing(service, r).applied for r in (0, 1))


async def test_the_database_going_away_answers_503_and_everything_resumes(parts: Parts) -> None:
    region = "340103"
    [waiting] = await enroll_many(parts, 1, region)
    await eventually(lambda: billed_one(parts, region, waiting))
    database = parts.database_urls["registry"].rsplit("/", 1)[1]

    await allow_connections(database, False)
    try:
        payment_id = await pay(parts, waiting)  # collection is up; its confirmation waits for the registry
        async with parts.client("registry") as registry:
            refused = await registry.post(
                "/v1/enrollments",
                json={
                    "id_number": resident_id(region),
                    "name": "孙八",
                    "region_code": region,
                    "coverage_year": YEAR,
                },
            )
            ready = await registry.get("/readyz")
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "service_unavailable"
        assert refused.headers["Retry-After"]
        assert (ready.status_code, ready.json()["database"]) == (503, False)
    finally:
        await allow_connections(database, True)

    async def active() -> bool:
        return bool((await standings(parts, "registry", region))[waiting]["payment_id"] == payment_id)

    await eventually(active, timeout_s=60)  # the consumer waited, then applied it
    [after] = await enroll_many(parts, 1, region)  # requests succeed again; the relay publishes
    report = await check(parts, region)
    assert report["differences"] == []
    assert after in await standings(parts, "collection", region)


async def test_malformed_events_go_to_the_dead_letter_topic_and_table_and_the_consumer_keeps_going(
    parts: Parts,
) -> None:
    valid = json.loads(enrollment_event().to_bytes())
    bad = {
        b"{not json": "malformed_envelope",
        json.dumps(valid | {"type": "canbao.registry.payroll.v1"}).encode(): "unknown_event_type",
        json.dumps(valid | {"type": EnrollmentCreated.event_type[:-1] + "9"}).encode(): "unsupported_version",
        json.dumps(valid | {"specversion": "2.0"}).encode(): "malformed_envelope",
        json.dumps(valid | {"data": {"enrollment_id": valid["subject"]}}).encode(): "invalid_payload",
    }
    producer = AIOKafkaProducer(bootstrap_servers=parts.bootstrap)
    await producer.start()
    try:
        for value in bad:
            await producer.send_and_wait(REGISTRY_ENROLLMENTS, value, key=b"poison")
    finally:
        await producer.stop()
    region = "340104"
    [after] = await enroll_many(parts, 1, region)  # behind the bad ones on the topic

    await eventually(lambda: billed_one(parts, region, after))
    async with parts.client("collection") as collection:
        letters = (await collection.get("/v1/dead-letters")).json()["items"]
        assert sorted(letter["reason"] for letter in letters) == sorted(bad.values())
        set_aside = await dead_letter_topic_messages(parts, len(bad))
        assert sorted(set_aside) == sorted(bad)
        for letter in letters:  # operators look, then drop them
            dropped = await collection.post(f"/v1/dead-letters/{letter['id']}/discard", json={"note": "test"})
            assert dropped.status_code == 200, dropped.text
        assert (await collection.get("/v1/events/backlog")).json()["dead_letters_open"] == 0


async def billed_one(parts: Parts, region: str, enrollment_id: str) -> bool:
    return enrollment_id in await standings(parts, "collection", region)


async def dead_letter_topic_messages(parts: Parts, expected: int) -> list[bytes]:
    """What the dead-letter topic holds, read from its start until `expected` arrived or 30s passed."""
    consumer = AIOKafkaConsumer(
        dead_letter_topic(REGISTRY_ENROLLMENTS),
        bootstrap_servers=parts.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[bytes] = []
    deadline = asyncio.get_running_loop().time() + 30
    try:
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            found += [record.value or b"" for records in batches.values() for record in records]
    finally:
        await consumer.stop()
    return found


async def all_waiting(parts: Parts, service: str, count: int) -> bool:
    """Whether `count` requests wait on the service's two replicas together (their GET /metrics)."""
    gauge = "canbao_bill_waiters" if service == "collection" else "canbao_enrollment_waiters"
    waiting = 0.0
    for replica in (0, 1):
        async with parts.client(service) as client:
            client.base_url = parts.url(service, replica)
            waiting += (await scrape(client)).value(gauge)
    return waiting == count


async def long_poll(parts: Parts, service: str, replica: int, path: str, params: dict[str, Any]) -> Any:
    async with parts.client(service) as client:
        client.base_url = parts.url(service, replica)
        client.timeout = httpx.Timeout(60.0)
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_wait_on_either_replica_hears_what_the_other_replica_committed(parts: Parts) -> None:
    """Each enrollment's bill, then its payment, is waited for on both replicas at once: one of them has
    its consumer commit the change (woken at once), the other learns of it by its re-check. Events are held
    back at the broker until every wait has begun."""
    region = "340111"
    for service in SERVICES:
        parts.start_service(service, replica=1)
    replicas = (0, 1)
    assert parts.broker is not None
    parts.broker.send_signal(signal.SIGSTOP)
    try:
        enrollments = await enroll_many(parts, 6, region, replicas=2)
        bill_waits = [
            asyncio.create_task(
                long_poll(parts, "collection", r, "/v1/bills", {"enrollment_id": e, "wait_s": 30})
            )
            for e in enrollments
            for r in replicas
        ]

        await eventually(lambda: all_waiting(parts, "collection", len(bill_waits)))
    finally:
        parts.broker.send_signal(signal.SIGCONT)
    bills = [answer["items"] for answer in await asyncio.gather(*bill_waits)]
    assert [[b["enrollment_id"] for b in items] for items in bills] == [
        [e] for e in enrollments for _ in replicas
    ]

    active_waits = [
        asyncio.create_task(
            long_poll(
                parts,
                "registry",
                r,
                f"/v1/enrollments/{e}",
                {"wait_s": 30, "known_status": "pending_payment"},
            )
        )
        for e in enrollments
        for r in replicas
    ]
    await eventually(lambda: all_waiting(parts, "registry", len(active_waits)))
    paid = {e: await pay(parts, e) for e in enrollments}
    answers = await asyncio.gather(*active_waits)
    assert [(a["enrollment_id"], a["status"]) for a in answers] == [
        (e, "active") for e in enrollments for _ in replicas
    ]
    for service in SERVICES:
        parts.signal(service, signal.SIGTERM, replica=1)
    report = await check(parts, region)
    assert report["differences"] == []
    await in_step(parts, region, enrollments, paid)
