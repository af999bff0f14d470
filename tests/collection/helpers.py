"""Delivering events to collection the way its Kafka consumer does, without a broker."""

import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from aiokafka.structs import ConsumerRecord

from collection.billing.events import HANDLERS, lock_bills
from collection.database import DeadLetter, InboxMessage, OutboxMessage
from collection.notifications.service import sign
from collection.sandbox.service import notification_for
from collection.settings import CollectionSettings
from shared.auth import Role, dev_token
from shared.events import (
    REGISTRY_ENROLLMENTS,
    EnrollmentCreated,
    EnrollmentRepriced,
    Envelope,
    SubsidyLineData,
    new_envelope,
)
from shared.inbox import IdempotentConsumer
from shared.money import parse_yuan
from tests.conftest import DEFAULT_NOW, Harness
from tests.support import consumer_record, free_port, resident_id

# A channel's day file (reconciliation): its columns, and the harness's business day.
HEADER = ["交易流水号", "缴费时间", "缴费金额", "账单号", "缴费渠道"]
DAY = "2023-10-08"


def enrollment_event(personal_due_fen: int = 38000, **overrides: Any) -> Envelope:
    enrollment_id = str(uuid.uuid4())
    data = EnrollmentCreated(
        **{
            "enrollment_id": enrollment_id,
            "document_type": "resident_id",
            "id_number": resident_id(),
            "name": "王五",
            "region_code": "340104",
            "coverage_year": 2024,
            "basis": "household_registration",
            "late_case": None,
            "personal_due_fen": personal_due_fen,
            "subsidy_lines": [],
            "fiscal_subsidy_fen": 64000,
            "total_financing_fen": 102000,
            "price_version": 1,
            "payable_until": date(2023, 12, 31),
            "coverage_start": date(2024, 1, 1),
            "coverage_end": date(2024, 12, 31),
        }
        | overrides
    )
    return new_envelope("/canbao/registry", enrollment_id, data)


def repricing_event(created: Envelope, personal_due_fen: int, version: int) -> Envelope:
    data = EnrollmentRepriced(
        enrollment_id=created.subject,
        personal_due_fen=personal_due_fen,
        subsidy_lines=[
            SubsidyLineData(
                category="minimum_living", funder="医疗救助资金", amount_fen=38000 - personal_due_fen
            )
        ]
        if personal_due_fen < 38000
        else [],
        fiscal_subsidy_fen=64000,
        total_financing_fen=102000,
        price_version=version,
        reason="test",
    )
    return new_envelope("/canbao/registry", created.subject, data)


def record(value: bytes, key: str = "k", topic: str = REGISTRY_ENROLLMENTS) -> ConsumerRecord[bytes, bytes]:
    return consumer_record(value, key=key, topic=topic)


def consumer(h: Harness) -> IdempotentConsumer:
    settings = CollectionSettings(
        environment="test", database_url="sqlite+aiosqlite://", consumer_max_attempts=2
    )
    return IdempotentConsumer(
        settings,
        [REGISTRY_ENROLLMENTS],
        h.sessionmaker,
        InboxMessage,
        DeadLetter,
        OutboxMessage,
        HANDLERS,
        batch_locks=lock_bills,  # as the service runs it (collection.main)
    )


async def deliver(h: Harness, envelope: Envelope) -> None:
    await consumer(h).handle(record(envelope.to_bytes(), key=envelope.subject))


async def open_bill(h: Harness, personal_due_fen: int = 38000) -> dict[str, Any]:
    event = enrollment_event(personal_due_fen)
    await deliver(h, event)
    response = await h.client.get("/v1/bills", params={"enrollment_id": event.subject})
    bill: dict[str, Any] = response.json()["items"][0]
    return bill


def resident_token(id_number: str = "", sub: str = "resident-1") -> str:
    return dev_token(Role.RESIDENT, sub=sub, id_number=id_number or None)


async def start_order(
    h: Harness,
    bill_ids: list[str],
    channel: str = "wechat",
    *,
    token: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """A resident starts paying bills online (POST /v1/payment-orders)."""
    response = await h.client.post(
        "/v1/payment-orders",
        json={"bill_ids": bill_ids, "channel": channel},
        headers={
            "Idempotency-Key": key or str(uuid.uuid4()),
            "Authorization": f"Bearer {token or resident_token()}",
        },
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def notify_order(
    h: Harness, order: dict[str, Any], *, amount: str | None = None, transaction_id: str | None = None
) -> httpx.Response:
    """The order's channel posts its signed notification that it took the money."""
    settings = h.app.state.settings
    sent = notification_for(
        settings,
        channel=order["channel"],
        reference=order["reference"],
        amount_fen=parse_yuan(amount or order["amount"]),
    )
    body = sent.body
    if transaction_id is not None:
        body = json.dumps(json.loads(body) | {"notification_id": transaction_id}).encode()
    timestamp = sent.headers["X-Canbao-Timestamp"]
    secret = settings.channel_secrets[order["channel"]].get_secret_value()
    headers = sent.headers | {"X-Canbao-Signature": sign(secret, timestamp, body)}
    return await h.client.post(
        f"/v1/channels/{order['channel']}/notifications", content=body, headers=headers
    )


async def pay_online(
    h: Harness, bill_ids: list[str], channel: str = "wechat", *, transaction_id: str | None = None
) -> dict[str, Any]:
    """A resident's whole online payment: the order, then the channel's notification recording it."""
    order = await start_order(h, bill_ids, channel)
    response = await notify_order(h, order, transaction_id=transaction_id)
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    return payment


def served_settings(database_url: str, tmp_path: Path, **settings: Any) -> CollectionSettings:
    """Collection's settings for a test that serves it as it runs (its own lifespan and engine), with no
    broker to reach: events wait in the outbox."""
    return CollectionSettings(
        environment="test",
        database_url=database_url,
        clock_start=DEFAULT_NOW,
        reconciliation_dir=tmp_path / "reconciliation",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        **settings,
    )
