"""Races on PostgreSQL with the real services: many trials of two requests (or a request and an event) that
change the same bill, enrollment or person at once. Every state change is serialised by a row lock or a
conditional update, so no trial loses or doubles a fen, no answer is a 500, and `canbao check` is clean."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.auth import Role, dev_token
from tests.support import SERVICES, Stack, canbao_check, eventually, recreate_pg_database, resident_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

YEAR = 2024
TRIALS = 30
OFFICER = dev_token(Role.TAX_OFFICER, sub="officer-1")
STAFF = dev_token(Role.STAFF, sub="staff-1", regions=["340102", "340103", "340104", "340111"])


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory, worker: str) -> Iterator[Stack]:
    urls = {s: recreate_pg_database(f"canbao_races_{worker}_{s}") for s in SERVICES}
    running = Stack(tmp_path_factory.mktemp("races"), urls)
    running.start()
    yield running
    running.stop()


async def enroll(stack: Stack, region: str) -> tuple[str, str]:
    """A new person enrolled and billed: (enrollment id, bill id)."""
    body = {"id_number": resident_id(region), "name": "孙八", "region_code": region, "coverage_year": YEAR}
    async with stack.client("registry") as registry:
        created = await registry.post("/v1/enrollments", json=body)
    assert created.status_code == 201, created.text
    enrollment_id: str = created.json()["enrollment_id"]
    async with stack.client("collection") as collection:

        async def bill() -> str | None:
            found = await collection.get("/v1/bills", params={"enrollment_id": enrollment_id})
            items = found.json()["items"]
            return str(items[0]["bill_id"]) if items else None

        return enrollment_id, await eventually(bill)


async def start_order(stack: Stack, bill_id: str, resident: str) -> dict[str, Any]:
    async with stack.client("collection", dev_token(Role.RESIDENT, sub=resident)) as client:
        response = await client.post(
            "/v1/payment-orders",
            json={"bill_ids": [bill_id], "channel": "wechat"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def sandbox_pay(stack: Stack, order: dict[str, Any], resident: str) -> httpx.Response:
    async with stack.client("collection", dev_token(Role.RESIDENT, sub=resident)) as client:
        return await client.post(f"/v1/sandbox/payment-orders/{order['order_id']}/payment")


async def enrollment(stack: Stack, enrollment_id: str) -> dict[str, Any]:
    async with stack.client("registry") as registry:
        found: dict[str, Any] = (await registry.get(f"/v1/enrollments/{enrollment_id}")).json()
    return found


async def refunds_of(stack: Stack, bill_id: str) -> list[dict[str, Any]]:
    async with stack.client("collection") as collection:
        items: list[dict[str, Any]] = (
            await collection.get("/v1/refunds", params={"bill_id": bill_id})
        ).json()["items"]
    return items


async def check(stack: Stack, region: str) -> dict[str, Any]:
    """`canbao check --no-repair`: nothing may need repairing after a race."""
    return await canbao_check(stack, region, YEAR, repair=False)


async def settled(
    stack: Stack, enrollment_id: str, status: str, paid: str | None = None
) -> dict[str, Any] | None:
    """The enrollment once it stands at `status` having been paid `paid`, and, if it ended, once what was
    paid came back."""
    found = await enrollment(stack, enrollment_id)
    if found["status"] != status or (paid is not None and found["paid"] != paid):
        return None
    if status == "cancelled" and found["paid"] is not None and found["paid"] != found["refunded"]:
        return None
    return found


async def at_once(*calls: Callable[[], Awaitable[httpx.Response]]) -> list[httpx.Response]:
    return list(await asyncio.gather(*(c() for c in calls)))


async def test_an_officers_refund_racing_a_death_report_refunds_once(pg_stack: Stack) -> None:
    region = "340102"
    paid: list[tuple[str, str]] = []
    for n in range(TRIALS):
        enrollment_id, bill_id = await enroll(pg_stack, region)
        resident = f"r-refund-{n}"
        assert (
            await sandbox_pay(pg_stack, await start_order(pg_stack, bill_id, resident), resident)
        ).status_code == 200
        paid.append((enrollment_id, bill_id))
    for enrollment_id, _ in paid:
        await eventually(lambda e=enrollment_id: settled(pg_stack, e, "active"))  # type: ignore[misc]

    async def trial(n: int, enrollment_id: str, bill_id: str) -> list[httpx.Response]:
        async with (
            pg_stack.client("collection", OFFICER) as collection,
            pg_stack.client("registry", STAFF) as registry,
        ):

            async def refund() -> httpx.Response:
                # The death report reaches collection an event hop later: staggered so that trials land
                # before, inside and after that hop.
                await asyncio.sleep((n % 30) * 0.04)
                return await collection.post(
                    "/v1/refunds",
                    json={"bill_id": bill_id, "reason": "death", "requested_by": "officer-1"},
                    headers={"Idempotency-Key": f"refund-{bill_id}"},
                )

            return await at_once(
                refund,
                lambda: registry.post(
                    f"/v1/enrollments/{enrollment_id}/cancellation",
                    json={"reason": "death", "evidence_ref": "死亡证明", "reported_by": "staff-1"},
                ),
            )

    answers = await asyncio.gather(*(trial(n, e, b) for n, (e, b) in enumerate(paid)))
    assert all(r.status_code < 500 for pair in answers for r in pair), [r.text for p in answers for r in p]
    for enrollment_id, bill_id in paid:
        await eventually(lambda e=enrollment_id: settled(pg_stack, e, "cancelled", "380.00"))  # type: ignore[misc]
        refunds = await refunds_of(pg_stack, bill_id)
        assert [r["amount"] for r in refunds] == ["380.00"], (bill_id, refunds)
    report = await check(pg_stack, region)
    assert report["ok"], report


async def test_a_payment_racing_the_cancellation_of_an_unpaid_enrollment_never_keeps_money(
    pg_stack: Stack,
) -> None:
    region = "340103"
    pending: list[tuple[str, str, dict[str, Any], str]] = []
    for n in range(40):
        enrollment_id, bill_id = await enroll(pg_stack, region)
        resident = f"r-cancel-{n}"
        pending.append((enrollment_id, bill_id, await start_order(pg_stack, bill_id, resident), resident))

    async def trial(n: int, enrollment_id: str, order: dict[str, Any], resident: str) -> list[httpx.Response]:
        async def pay() -> httpx.Response:
            await asyncio.sleep(n * 0.05)  # before, inside and after the cancellation's event hop
            return await sandbox_pay(pg_stack, order, resident)

        async with pg_stack.client("registry", STAFF) as registry:
            return await at_once(
                pay,
                lambda: registry.post(
                    f"/v1/enrollments/{enrollment_id}/cancellation",
                    json={"reason": "death", "evidence_ref": "死亡证明", "reported_by": "staff-1"},
                ),
            )

    answers = await asyncio.gather(*(trial(n, e, o, r) for n, (e, _, o, r) in enumerate(pending)))
    assert all(r.status_code < 500 for pair in answers for r in pair), [r.text for p in answers for r in p]
    assert all(pair[1].status_code == 200 for pair in answers), [p[1].text for p in answers]
    paid_first = 0
    for (enrollment_id, bill_id, _, _), (payment, _) in zip(pending, answers, strict=True):
        # Whichever came first, the enrollment ends cancelled and any money taken goes back in full.
        took = "380.00" if payment.status_code == 200 else None
        final = await eventually(lambda e=enrollment_id, p=took: settled(pg_stack, e, "cancelled", p))  # type: ignore[misc]
        refunds = await refunds_of(pg_stack, bill_id)
        if payment.status_code == 200:
            paid_first += 1
            assert [r["amount"] for r in refunds] == ["380.00"], (bill_id, refunds)
            assert final["paid"] == final["refunded"] == "380.00"
        else:
            assert refunds == []
    assert 0 < paid_first < len(pending)  # both orders happened
    report = await check(pg_stack, region)
    assert report["ok"], report


async def test_the_same_new_person_enrolled_at_once_is_enrolled_once(pg_stack: Stack) -> None:
    async def trial() -> list[httpx.Response]:
        body = {
            "id_number": resident_id("340111"),
            "name": "周九",
            "region_code": "340111",
            "coverage_year": YEAR,
        }
        async with pg_stack.client("registry") as registry:
            return await at_once(*[lambda: registry.post("/v1/enrollments", json=body)] * 3)

    for answers in await asyncio.gather(*(trial() for _ in range(TRIALS))):
        codes = sorted(r.status_code for r in answers)
        assert codes == [201, 409, 409], [r.text for r in answers]
        assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} <= {
            "already_enrolled",
            "concurrent_change",
        }


async def test_a_registered_person_enrolled_at_once_is_enrolled_once(pg_stack: Stack) -> None:
    """Someone on record with no live enrollment (theirs was cancelled): the enrollments racing for them
    each find nobody enrolled, and the one-live-enrollment index lets one through."""

    async def trial(n: int) -> list[httpx.Response]:
        body = {
            "id_number": resident_id("340111"),
            "name": "吴十",
            "region_code": "340111",
            "coverage_year": YEAR,
        }
        async with pg_stack.client("registry") as registry:
            first = await registry.post("/v1/enrollments", json=body)
            assert first.status_code == 201, first.text
            report = {"reason": "erroneous_enrollment", "evidence_ref": f"race-{n}", "reported_by": "staff-1"}
            ended = await registry.post(
                f"/v1/enrollments/{first.json()['enrollment_id']}/cancellation", json=report
            )
            assert ended.json()["status"] == "cancelled", ended.text
            return await at_once(*[lambda: registry.post("/v1/enrollments", json=body)] * 3)

    for answers in await asyncio.gather(*(trial(n) for n in range(TRIALS))):
        assert sorted(r.status_code for r in answers) == [201, 409, 409], [r.text for r in answers]
        assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {"already_enrolled"}


async def test_one_idempotency_key_with_two_bodies_at_once_records_one_payment(pg_stack: Stack) -> None:
    region = "340104"
    for n in range(TRIALS // 3):
        (_, first), (_, second) = await enroll(pg_stack, region), await enroll(pg_stack, region)
        async with pg_stack.client("collection", OFFICER) as collection:
            answers = await at_once(
                *[
                    lambda bill=bill, key=f"counter-{n}": collection.post(
                        "/v1/payments",
                        json={"bill_id": bill, "amount": "380.00", "channel": "tax_hall"},
                        headers={"Idempotency-Key": key},
                    )
                    for bill in (first, second)
                ]
            )
        assert sorted(r.status_code for r in answers) == [201, 422], [r.text for r in answers]
        refused = next(r for r in answers if r.status_code == 422)
        assert refused.json()["error"]["code"] == "idempotency_key_reused"
    report = await check(pg_stack, region)
    assert report["ok"], report
