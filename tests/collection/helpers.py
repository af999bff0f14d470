"""Delivering events to collection the way its Kafka consumer does, without a broker."""

import uuid
from datetime import date
from itertools import count
from typing import Any

from aiokafka.structs import ConsumerRecord

from collection.billing.events import HANDLERS
from collection.database import DeadLetter, InboxMessage, OutboxMessage
from collection.settings import CollectionSettings
from shared.events import (
    REGISTRY_ENROLLMENTS,
    EnrollmentCreated,
    EnrollmentRepriced,
    Envelope,
    SubsidyLineData,
    new_envelope,
)
from shared.inbox import IdempotentConsumer
from tests.conftest import Harness
from tests.support import resident_id

_offsets = count()


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
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=next(_offsets),
        timestamp=0,
        timestamp_type=0,
        key=key.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=(),
    )


def consumer(h: Harness) -> IdempotentConsumer:
    settings = CollectionSettings(
        environment="test", database_url="sqlite+aiosqlite://", consumer_max_attempts=2
    )
    return IdempotentConsumer(
        settings, [REGISTRY_ENROLLMENTS], h.sessionmaker, InboxMessage, DeadLetter, OutboxMessage, HANDLERS
    )


async def deliver(h: Harness, envelope: Envelope) -> None:
    await consumer(h).handle(record(envelope.to_bytes(), key=envelope.subject))


async def open_bill(h: Harness, personal_due_fen: int = 38000) -> dict[str, Any]:
    event = enrollment_event(personal_due_fen)
    await deliver(h, event)
    response = await h.client.get("/v1/bills", params={"enrollment_id": event.subject})
    bill: dict[str, Any] = response.json()["items"][0]
    return bill
