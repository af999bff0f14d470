"""The walking skeleton, end to end: real processes, a real broker, real databases."""

import asyncio
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from collection.notifications.service import sign
from collection.settings import CollectionSettings
from shared.auth import Role, dev_token
from shared.clock import business_date
from shared.events import COLLECTION_PAYMENTS, REGISTRY_ENROLLMENTS, Envelope, PaymentConfirmed
from tests.collection.helpers import enrollment_event
from tests.e2e.paying import order_of, pay_online, resident_token, sandbox_pay, start_order
from tests.support import CANBAO, Stack, eventually, resident_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]


async def enroll(stack: Stack, id_number: str | None = None) -> dict[str, Any]:
    async with stack.client("registry") as registry:
        response = await registry.post(
            "/v1/enrollments",
            json={
                "id_number": id_number or resident_id(),
                "name": "赵六",
                "region_code": "340102",
                "coverage_year": 2024,
            },
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def bills_for(stack: Stack, enrollment_id: str) -> list[dict[str, Any]]:
    async with stack.client("collection") as collection:
        response = await collection.get("/v1/bills", params={"enrollment_id": enrollment_id})
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def enrollment(stack: Stack, enrollment_id: str) -> dict[str, Any]:
    async with stack.client("registry") as registry:
        body: dict[str, Any] = (await registry.get(f"/v1/enrollments/{enrollment_id}")).json()
    return body


async def publish_twice(stack: Stack, topic: str, envelope: Envelope) -> None:
    """Deliver one event twice, as a broker does after a consumer crash or a relay retry."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        for _ in range(2):
            await producer.send_and_wait(topic, envelope.to_bytes(), key=envelope.subject.encode())
    finally:
        await producer.stop()


async def test_both_services_are_healthy_and_ready(stack: Stack) -> None:
    for service in ("registry", "collection"):
        async with stack.client(service) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "database": True, "broker": True}
            assert (await client.get("/docs")).status_code == 200


async def test_an_enrollment_is_registered_billed_paid_online_and_activated(stack: Stack) -> None:
    id_number = resident_id()
    created = await enroll(stack, id_number)
    assert (created["status"], created["personal_due"]) == ("pending_payment", "380.00")

    [bill] = await eventually(lambda: bills_for(stack, created["enrollment_id"]))
    assert (bill["status"], bill["amount_due"]) == ("open", "380.00")

    # The resident starts paying through Alipay; the same request again is the same order.
    token = resident_token(id_number)
    key = str(uuid.uuid4())
    order = await start_order(stack, token, [bill["bill_id"]], "alipay", key=key)
    assert await start_order(stack, token, [bill["bill_id"]], "alipay", key=key) == order
    assert (order["amount"], order["bill_ids"]) == ("380.00", [bill["bill_id"]])
    assert (await bills_for(stack, created["enrollment_id"]))[0]["status"] == "open"  # nothing paid yet

    # The operator's sandbox plays Alipay: `canbao pay` posts the channel's signed notification over HTTP.
    env = {k: v for k, v in os.environ.items() if k != "CANBAO_TOKEN"}  # its default: a dev admin token
    paid = await asyncio.to_thread(
        subprocess.run,
        [str(CANBAO), "pay", order["order_id"]],
        env=env | {"CANBAO_COLLECTION_URL": stack.url("collection")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert paid.returncode == 0, paid.stdout + paid.stderr
    payment = json.loads(paid.stdout)
    assert (payment["origin"], payment["channel"], payment["amount"]) == ("notification", "alipay", "380.00")
    completed = await order_of(stack, token, order["order_id"])
    assert (completed["status"], completed["payment_id"]) == ("completed", payment["payment_id"])

    async def activated() -> dict[str, Any] | None:
        current = await enrollment(stack, created["enrollment_id"])
        return current if current["status"] == "active" else None

    active = await eventually(activated)
    assert (active["payment_id"], active["receipt_no"], active["paid"]) == (
        payment["payment_id"],
        payment["receipt_no"],
        "380.00",
    )


async def test_the_same_enrollment_event_delivered_twice_yields_one_bill(stack: Stack) -> None:
    event = enrollment_event()
    await publish_twice(stack, REGISTRY_ENROLLMENTS, event)

    await eventually(lambda: bills_for(stack, event.subject))
    await eventually(lambda: logged_skip(stack, event.id))
    assert len(await bills_for(stack, event.subject)) == 1


async def test_the_same_payment_event_delivered_twice_changes_nothing(stack: Stack) -> None:
    created = await enroll(stack)
    [bill] = await eventually(lambda: bills_for(stack, created["enrollment_id"]))
    # Cash handed over at the tax hall: the tax officer who holds the money records it.
    payment = {"bill_id": bill["bill_id"], "amount": "380.00", "channel": "tax_hall"}
    async with stack.client("collection", dev_token(Role.TAX_OFFICER, sub="officer-e2e")) as collection:
        paid = await collection.post(
            "/v1/payments", json=payment, headers={"Idempotency-Key": bill["bill_id"]}
        )
    assert paid.status_code == 201, paid.text

    async def active() -> dict[str, Any] | None:
        current = await enrollment(stack, created["enrollment_id"])
        return current if current["status"] == "active" else None

    before = await eventually(active)
    event = await published(stack, "collection", created["enrollment_id"], PaymentConfirmed.event_type)
    await publish_twice(stack, COLLECTION_PAYMENTS, event)

    await eventually(lambda: logged_skip(stack, event.id))
    assert await enrollment(stack, created["enrollment_id"]) == before
    assert before["payment_id"] == paid.json()["payment_id"]


async def published(stack: Stack, service: str, subject: str, event_type: str) -> Envelope:
    """An event as the service's outbox holds it (and the relay published it)."""
    engine = create_async_engine(stack.database_urls[service])
    async with engine.connect() as conn:
        payload = (
            await conn.execute(
                text("SELECT payload FROM outbox WHERE key = :key AND event_type = :type"),
                {"key": subject, "type": event_type},
            )
        ).scalar_one()
    await engine.dispose()
    return Envelope.from_bytes(payload)


async def logged_skip(stack: Stack, event_id: str) -> bool:
    """The consumer's inbox, not luck, absorbed the second delivery: it says so in its log."""
    return any(
        "event_redelivered_skipped" in line and f"event_id={event_id}" in line
        for line in stack.log().splitlines()
    )


async def assign(stack: Stack, who: dict[str, str], category: str) -> None:
    async with stack.client("registry") as registry:
        response = await registry.post(
            "/v1/subsidy-assignments",
            json={
                "person": who,
                "region_code": "340102",
                "coverage_year": 2024,
                "category": category,
                "evidence_ref": "民政认定2023-88",
                "assigned_by": "staff-e2e",
            },
        )
    assert response.status_code == 201, response.text


async def test_a_fully_subsidised_person_is_active_without_paying(stack: Stack) -> None:
    who = {"id_number": resident_id(), "name": "孙七"}
    await assign(stack, who, "extreme_poverty")
    async with stack.client("registry") as registry:
        created = (
            await registry.post(
                "/v1/enrollments", json=who | {"region_code": "340102", "coverage_year": 2024}
            )
        ).json()
    assert (created["personal_due"], created["subsidy_lines"][0]["amount"]) == ("0.00", "380.00")

    async def activated() -> dict[str, Any] | None:
        current = await enrollment(stack, created["enrollment_id"])
        return current if current["status"] == "active" else None

    active = await eventually(activated)
    assert active["paid"] == "0.00"
    [bill] = await bills_for(stack, created["enrollment_id"])
    assert (bill["status"], bill["amount_due"]) == ("paid", "0.00")


async def test_a_subsidy_added_before_payment_reaches_the_bill(stack: Stack) -> None:
    who = {"id_number": resident_id(), "name": "周八"}
    async with stack.client("registry") as registry:
        created = (
            await registry.post(
                "/v1/enrollments", json=who | {"region_code": "340102", "coverage_year": 2024}
            )
        ).json()
    await eventually(lambda: bills_for(stack, created["enrollment_id"]))

    await assign(stack, who, "minimum_living")

    async def repriced() -> list[dict[str, Any]] | None:
        bills = await bills_for(stack, created["enrollment_id"])
        return bills if bills[0]["amount_due"] == "38.00" else None

    [bill] = await eventually(repriced)
    paid = await pay_online(stack, [bill["bill_id"]], "wechat", id_number=who["id_number"])
    assert paid["amount"] == "38.00"

    async def activated() -> dict[str, Any] | None:
        current = await enrollment(stack, created["enrollment_id"])
        return current if current["status"] == "active" else None

    assert (await eventually(activated))["paid"] == "38.00"


async def test_a_household_enrolls_and_pays_for_its_members_at_once(stack: Stack) -> None:
    members = [
        {"id_number": resident_id(), "name": "吴父", "relation": "head"},
        {"id_number": resident_id(), "name": "郑母", "relation": "spouse"},
        {"id_number": resident_id(birth="20160910"), "name": "吴小", "relation": "child"},
    ]
    async with stack.client("registry") as registry:
        household = (await registry.post("/v1/households", json={"members": members})).json()
        url = f"/v1/households/{household['household_id']}/enrollments"
        summary = (await registry.post(url, json={"region_code": "340103", "coverage_year": 2024})).json()
    assert summary["total_due"] == "1140.00"
    ids = [e["enrollment_id"] for e in summary["enrollments"]]

    async def all_billed() -> list[dict[str, Any]] | None:
        async with stack.client("collection") as collection:
            bills = (await collection.get("/v1/bills", params=[("enrollment_id", i) for i in ids])).json()[
                "items"
            ]
        return bills if len(bills) == 3 else None

    bills = await eventually(all_billed)
    # The head pays the family's bills at once (为家人缴费): one order, one payment.
    paid = await pay_online(stack, [b["bill_id"] for b in bills], "wechat", id_number=members[0]["id_number"])
    assert (paid["amount"], len(paid["items"])) == ("1140.00", 3)

    async def all_active() -> dict[str, Any] | None:
        async with stack.client("registry") as registry:
            now = (await registry.get(url, params={"coverage_year": 2024})).json()
        return now if all(e["status"] == "active" for e in now["enrollments"]) else None

    settled = await eventually(all_active)
    assert (settled["total_due"], settled["total_paid"]) == ("0.00", "1140.00")
    assert {e["receipt_no"] for e in settled["enrollments"]} == {paid["receipt_no"]}


async def test_a_channel_notification_pays_and_a_reported_death_refunds_through_both_services(
    stack: Stack,
) -> None:
    id_number = resident_id()
    created = await enroll(stack, id_number)
    [bill] = await eventually(lambda: bills_for(stack, created["enrollment_id"]))
    order = await start_order(stack, resident_token(id_number), [bill["bill_id"]], "wechat")

    # WeChat's signed notification that it took the order's money, with the development key `make run` uses.
    raw = json.dumps(
        {"notification_id": uuid.uuid4().hex, "order_reference": order["reference"], "amount": "380.00"}
    ).encode()
    timestamp = str(int(datetime.now(UTC).timestamp()))
    secret = CollectionSettings().channel_secrets["wechat"].get_secret_value()
    headers = {
        "Content-Type": "application/json",
        "X-Canbao-Timestamp": timestamp,
        "X-Canbao-Signature": sign(secret, timestamp, raw),
    }
    async with stack.client("collection") as collection:
        paid = await collection.post("/v1/channels/wechat/notifications", content=raw, headers=headers)
        assert paid.status_code == 200, paid.text
        # The channel retries until it hears 2xx: the same notification records nothing new.
        again = await collection.post("/v1/channels/wechat/notifications", content=raw, headers=headers)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert again.json() == paid.json()

    async def in_state(status: str) -> dict[str, Any] | None:
        current = await enrollment(stack, created["enrollment_id"])
        return current if current["status"] == status else None

    await eventually(lambda: in_state("active"))
    async with stack.client("registry") as registry:
        reported = await registry.post(
            f"/v1/enrollments/{created['enrollment_id']}/cancellation",
            json={"reason": "death", "evidence_ref": "死亡证明 e2e", "reported_by": "staff-e2e"},
        )
    assert reported.status_code == 200, reported.text

    cancelled = await eventually(lambda: in_state("cancelled"))
    assert (cancelled["refunded"], cancelled["cancellation_reason"]) == ("380.00", "death")
    async with stack.client("collection") as collection:
        assert (await collection.get(f"/v1/bills/{bill['bill_id']}")).json()["status"] == "refunded"
        check = (await collection.get("/v1/ledger/check")).json()
    assert check["ok"] is True, check


async def test_reconciliation_records_a_payment_and_the_check_repairs_a_lost_confirmation(
    stack: Stack,
) -> None:
    first, second = await enroll(stack), await enroll(stack)
    [first_bill] = await eventually(lambda: bills_for(stack, first["enrollment_id"]))
    [second_bill] = await eventually(lambda: bills_for(stack, second["enrollment_id"]))
    token = resident_token()
    paid = await sandbox_pay(stack, token, await start_order(stack, token, [first_bill["bill_id"]]))
    wechat_id = paid["channel_reference"]  # WeChat's transaction id, from its notification
    day = business_date(datetime.fromisoformat(paid["paid_at"])).isoformat()
    async with stack.client("collection") as collection:
        # The tax side's file lists a payment collection never heard of: recorded from the file, confirmed.
        lines = f"交易流水号,缴费时间,缴费金额,账单号\n{wechat_id},{day},380.00,{first_bill['bill_id']}\n"
        lines += f"WXB,{day} 08:30:00,380.00,{second_bill['bill_id']}\n"
        reconciled = await collection.post(
            "/v1/reconciliations",
            data={"channel": "wechat", "business_day": day, "uploaded_by": "e2e"},
            files={"file": ("wechat.csv", lines.encode())},
        )
    assert reconciled.status_code == 201, reconciled.text
    # Other tests' WeChat payments of the day, not in this file, are reported missing from it.
    summary = reconciled.json()["summary"]
    assert (summary["lines"]["matched"], summary["lines"]["recorded"]) == (1, 1)
    assert summary["settled_amount"] == "760.00"

    async def active(enrollment_id: str) -> dict[str, Any] | None:
        current = await enrollment(stack, enrollment_id)
        return current if current["status"] == "active" else None

    await eventually(lambda: active(second["enrollment_id"]))
    await eventually(lambda: active(first["enrollment_id"]))
    # The registry loses the first confirmation (restored from a backup taken before it arrived: the
    # enrollment and the inbox both as they were).
    await restore_before_confirmation(stack, first["enrollment_id"])
    assert (await enrollment(stack, first["enrollment_id"]))["status"] == "pending_payment"

    checked = await asyncio.to_thread(
        subprocess.run,
        [str(CANBAO), "check", "--region", "340102", "--year", "2024", "--json", "--wait", "30"],
        env={
            **os.environ,
            "CANBAO_REGISTRY_URL": stack.url("registry"),
            "CANBAO_COLLECTION_URL": stack.url("collection"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert [(d["enrollment_id"], d["kind"]) for d in report["differences"]] == [
        (first["enrollment_id"], "standings_differ")
    ]
    assert report["repaired"] == [first["enrollment_id"]]
    assert report["remaining"] == []
    assert report["ledger"]["ok"] is True
    assert report["registry"]["backlog"]["unpublished"] == 0
    assert (await enrollment(stack, first["enrollment_id"]))["payment_id"] == paid["payment_id"]


async def restore_before_confirmation(stack: Stack, enrollment_id: str) -> None:
    confirmation = await published(stack, "collection", enrollment_id, PaymentConfirmed.event_type)
    registry = create_async_engine(stack.database_urls["registry"])
    async with registry.begin() as conn:
        await conn.execute(
            text(
                "UPDATE enrollments SET status = 'pending_payment', paid_fen = NULL, paid_at = NULL, "
                "payment_id = NULL, receipt_no = NULL WHERE id = :id"
            ),
            {"id": enrollment_id},
        )
        await conn.execute(text("DELETE FROM inbox WHERE event_id = :id"), {"id": confirmation.id})
    await registry.dispose()
