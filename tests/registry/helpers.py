"""Requests the registry tests make again and again."""

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka.structs import ConsumerRecord
from sqlalchemy import func, select

from registry.database import DeadLetter, InboxMessage, OutboxMessage
from registry.enrollment.events import HANDLERS, lock_enrollments
from registry.enrollment.models import Enrollment
from registry.people.models import Person
from registry.settings import RegistrySettings
from shared.events import (
    COLLECTION_PAYMENTS,
    Envelope,
    EventData,
    PaymentConfirmed,
    PaymentRefunded,
    new_envelope,
)
from shared.inbox import IdempotentConsumer
from shared.money import parse_yuan
from tests.conftest import DEFAULT_NOW, Harness
from tests.support import consumer_record, resident_id

HEFEI: dict[str, Any] = {"region_code": "340104", "coverage_year": 2024}
JING: dict[str, Any] = {"region_code": "341823", "coverage_year": 2023}
HEFEI_WINDOW = "2023-10-08T10:00:00+08:00"
JING_WINDOW = "2022-11-15T10:00:00+08:00"


def person(id_number: str | None = None, name: str = "张三", **extra: Any) -> dict[str, Any]:
    return {"id_number": id_number or resident_id(), "name": name} | extra


async def enroll(h: Harness, who: dict[str, Any], where: dict[str, Any], **terms: Any) -> Any:
    return await h.client.post("/v1/enrollments", json=who | where | terms)


async def exclude(h: Harness, who: dict[str, Any], kind: str, year: int = 2024) -> Any:
    return await h.client.post(
        "/v1/exclusions",
        json={
            "person": who,
            "coverage_year": year,
            "kind": kind,
            "source": "市职工医保参保名单",
            "recorded_by": "s1",
        },
    )


async def enrolled(h: Harness, who: dict[str, Any], where: dict[str, Any], **terms: Any) -> dict[str, Any]:
    response = await enroll(h, who, where, **terms)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def enrollment_of(h: Harness, who: dict[str, Any], where: dict[str, Any]) -> dict[str, Any]:
    """The person's live enrollment, found the way a front-end would: enrolling again names it."""
    again = await enroll(h, who, where)
    assert again.status_code == 409, again.text
    enrollment_id = again.json()["error"]["details"]["enrollment_id"]
    body: dict[str, Any] = (await h.client.get(f"/v1/enrollments/{enrollment_id}")).json()
    return body


async def assign(h: Harness, who: dict[str, Any], where: dict[str, Any], category: str, **extra: Any) -> Any:
    return await h.client.post(
        "/v1/subsidy-assignments",
        json={
            "person": who,
            "category": category,
            "evidence_ref": "民发〔2023〕1号",
            "assigned_by": "staff-01",
        }
        | where
        | extra,
    )


def payment_of(enrollment: dict[str, Any], paid_at: str, amount_fen: int | None = None) -> PaymentConfirmed:
    """Collection's confirmation of a payment of this enrollment (by default of what it was priced at)."""
    return PaymentConfirmed(
        payment_id=str(uuid.uuid4()),
        bill_id=str(uuid.uuid4()),
        enrollment_id=enrollment["enrollment_id"],
        amount_fen=amount_fen if amount_fen is not None else parse_yuan(enrollment["personal_due"]),
        price_version=enrollment["price_version"],
        channel="wechat",
        receipt_no="CB" + uuid.uuid4().hex[:16].upper(),
        paid_at=datetime.fromisoformat(paid_at),
    )


async def deliver_payment(
    h: Harness, enrollment: dict[str, Any], paid_at: str, amount_fen: int | None = None
) -> PaymentConfirmed:
    """Deliver collection's payment confirmation the way the registry's consumer receives it."""
    confirmation = payment_of(enrollment, paid_at, amount_fen)
    await deliver_to_registry(h, confirmation, enrollment["enrollment_id"])
    return confirmation


async def deliver_refund(
    h: Harness, confirmation: PaymentConfirmed, amount_fen: int, reason: str, ends_enrollment: bool
) -> None:
    refunded = PaymentRefunded(
        refund_id=str(uuid.uuid4()),
        payment_id=confirmation.payment_id,
        bill_id=confirmation.bill_id,
        enrollment_id=confirmation.enrollment_id,
        amount_fen=amount_fen,
        reason=reason,
        ends_enrollment=ends_enrollment,
        refunded_at=confirmation.paid_at,
    )
    await deliver_to_registry(h, refunded, confirmation.enrollment_id)


async def deliver_to_registry(h: Harness, data: EventData, subject: str) -> None:
    """Deliver one of collection's events the way the registry's consumer receives it."""
    await deliver_envelope(h, new_envelope("/tests", subject, data))


async def deliver_envelope(h: Harness, envelope: Envelope) -> None:
    """Deliver a message on collection's topic to the registry's consumer."""
    await registry_consumer(h).handle(payments_record(envelope.to_bytes(), envelope.subject))


def registry_consumer(h: Harness, *, max_attempts: int = 1) -> IdempotentConsumer:
    """The registry's consumer of collection's events, as the service runs it (its batches' locks too)."""
    settings = RegistrySettings(
        environment="test", database_url="sqlite+aiosqlite://", consumer_max_attempts=max_attempts
    )
    return IdempotentConsumer(
        settings,
        [COLLECTION_PAYMENTS],
        h.sessionmaker,
        InboxMessage,
        DeadLetter,
        OutboxMessage,
        HANDLERS,
        batch_locks=lock_enrollments,
    )


def payments_record(value: bytes, key: str) -> ConsumerRecord[bytes, bytes]:
    """A record on collection's topic, as the broker hands it to the registry's consumer."""
    return consumer_record(value, key=key, topic=COLLECTION_PAYMENTS)


async def current(h: Harness, enrollment: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = (await h.client.get(f"/v1/enrollments/{enrollment['enrollment_id']}")).json()
    return body


async def row_counts(h: Harness) -> tuple[int, int, int]:
    """People, enrollments and outbox events written so far."""
    async with h.sessionmaker() as s:
        counts = [
            await s.scalar(select(func.count()).select_from(m)) for m in (Person, Enrollment, OutboxMessage)
        ]
    return counts[0] or 0, counts[1] or 0, counts[2] or 0


async def upload(h: Harness, data: bytes, filename: str, **form: Any) -> Any:
    fields = {"kind": "subsidy", "department": "县民政局", "uploaded_by": "dept-01"} | JING | form
    return await h.client.post("/v1/rosters", files={"file": (filename, data)}, data=fields)


async def processed(h: Harness, upload_id: str) -> dict[str, Any]:
    await h.app.state.roster_worker.run_until_idle()
    body: dict[str, Any] = (await h.client.get(f"/v1/rosters/{upload_id}")).json()
    return body


async def rows_of(h: Harness, upload_id: str, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    items: list[dict[str, Any]] = (await h.client.get(f"/v1/rosters/{upload_id}/rows", params=params)).json()[
        "items"
    ]
    return items


async def review(h: Harness, upload_id: str, approve: bool = True) -> Any:
    action = "approval" if approve else "rejection"
    return await h.client.post(
        f"/v1/rosters/{upload_id}/{action}", json={"reviewed_by": "bureau-01", "note": "核对无误"}
    )


async def applied(h: Harness, data: bytes, filename: str, **form: Any) -> dict[int, dict[str, Any]]:
    """Upload a roster, approve it, and return its rows once applied, by row number."""
    created = await upload(h, data, filename, **form)
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    await processed(h, upload_id)
    assert (await review(h, upload_id)).status_code == 200
    await processed(h, upload_id)
    return {r["row_no"]: r for r in await rows_of(h, upload_id)}


def served_settings(database_url: str, tmp_path: Path, **settings: Any) -> RegistrySettings:
    """The registry's settings for a test that serves it as it runs (its own lifespan and engine)."""
    return RegistrySettings(
        environment="test",
        database_url=database_url,
        clock_start=DEFAULT_NOW,
        roster_dir=tmp_path / "rosters",
        reminder_log=tmp_path / "reminders.log",
        **settings,
    )
