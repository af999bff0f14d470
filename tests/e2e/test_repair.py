"""Lost events come back without an operator: the broker is killed and restarted empty while residents enroll
and pay, and the repair job (`canbao repair`, which `canbao run` and compose start) brings every flow to
`active` with no command run; `canbao check --no-repair` then finds nothing to repair."""

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from canbao.harness import Parts
from shared.auth import Role, dev_token
from tests.support import SERVICES, canbao_check, eventually, recreate_pg_database, resident_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

YEAR = 2024
REGION = "340104"
FLOWS = 60


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory, worker: str) -> Iterator[Parts]:
    urls = {s: recreate_pg_database(f"canbao_repair_{worker}_{s}") for s in SERVICES}
    running = Parts(tmp_path_factory.mktemp("repair"), urls)
    running.start()
    running.start_repair(every_s=2.0, grace_s=3.0)
    yield running
    running.stop()


async def flow(parts: Parts, n: int, gate: asyncio.Semaphore, enrolled: list[str]) -> str:
    """One resident's whole flow: enroll, wait for the bill, start a payment order, pay in the sandbox."""
    id_number = resident_id(REGION)
    resident = dev_token(Role.RESIDENT, sub=f"resident-{n}", id_number=id_number)
    async with gate, parts.client("registry") as registry, parts.client("collection", resident) as collection:
        created = await registry.post(
            "/v1/enrollments",
            json={"id_number": id_number, "name": "吴十", "region_code": REGION, "coverage_year": YEAR},
        )
        assert created.status_code == 201, created.text
        enrollment_id: str = created.json()["enrollment_id"]
        enrolled.append(enrollment_id)

    async def bill() -> str | None:
        async with parts.client("collection", resident) as collection:
            found = (await collection.get("/v1/bills", params={"enrollment_id": enrollment_id})).json()
        return str(found["items"][0]["bill_id"]) if found.get("items") else None

    bill_id = await eventually(bill, timeout_s=90)  # an enrollment event the broker lost: the job repairs it
    async with gate, parts.client("collection", resident) as collection:
        order = await collection.post(
            "/v1/payment-orders",
            json={"bill_ids": [bill_id], "channel": "wechat"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert order.status_code == 201, order.text
        paid = await collection.post(f"/v1/sandbox/payment-orders/{order.json()['order_id']}/payment")
        assert paid.status_code == 200, paid.text
    return enrollment_id


async def active_count(parts: Parts, enrollment_ids: list[str]) -> int:
    async with parts.client("registry") as registry:
        statuses = [(await registry.get(f"/v1/enrollments/{e}")).json()["status"] for e in enrollment_ids]
    return sum(status == "active" for status in statuses)


async def test_flows_stalled_by_a_broker_that_forgot_resume_with_nobody_at_the_keyboard(parts: Parts) -> None:
    gate = asyncio.Semaphore(6)
    enrolled: list[str] = []
    running = [asyncio.create_task(flow(parts, n, gate, enrolled)) for n in range(FLOWS)]
    await eventually(lambda: asyncio.sleep(0, len(enrolled) >= FLOWS // 3 or None))
    parts.kill_broker()  # everything it held and had not delivered is gone
    await asyncio.sleep(1.0)
    parts.start_broker()
    done = await asyncio.gather(*running)
    assert len(done) == FLOWS

    async def all_active() -> bool | None:
        return await active_count(parts, done) == FLOWS or None

    await eventually(all_active, timeout_s=120)
    log = (parts.workdir / "repair.log").read_text(errors="replace")
    assert "repair_republished" in log, log[-3000:]  # the job, not luck, brought them back

    report = await canbao_check(parts, REGION, YEAR, repair=False)
    assert report["differences"] == [], report
