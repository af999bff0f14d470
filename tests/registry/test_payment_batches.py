"""A run of payment confirmations in one consumer batch is applied together (one locking read of their
enrollments, one flush, one commit) with every check a confirmation alone gets: an ended enrollment is not
activated, a confirmation of another amount than priced is set aside, and the rest of the batch is applied."""

from typing import Any

from sqlalchemy import select

from registry.database import DeadLetter
from shared.events import PaymentConfirmed, new_envelope
from tests.conftest import Harness
from tests.registry.helpers import (
    JING,
    JING_WINDOW,
    current,
    enrolled,
    payment_of,
    payments_record,
    person,
    registry_consumer,
)
from tests.support import commits, resident_id, statements

PAID_AT = "2022-11-15T10:00:00+08:00"


async def some_enrolled(h: Harness, count: int) -> list[dict[str, Any]]:
    h.at(JING_WINDOW)
    return [await enrolled(h, person(resident_id(region="341823")), JING) for _ in range(count)]


async def apply_together(h: Harness, *confirmations: PaymentConfirmed, max_attempts: int = 1) -> None:
    envelopes = [new_envelope("/tests", c.enrollment_id, c) for c in confirmations]
    batch = [payments_record(e.to_bytes(), e.subject) for e in envelopes]
    await registry_consumer(h, max_attempts=max_attempts).handle_batch(batch)


async def statuses(h: Harness, enrollments: list[dict[str, Any]]) -> list[str]:
    return [(await current(h, e))["status"] for e in enrollments] if enrollments else []


async def dead_letter_reasons(h: Harness) -> list[str]:
    async with h.sessionmaker() as s:
        return sorted((await s.scalars(select(DeadLetter.reason))).all())


async def test_a_run_of_confirmations_takes_one_locking_read_and_one_write(registry: Harness) -> None:
    enrollments = await some_enrolled(registry, 6)
    confirmations = [payment_of(e, PAID_AT) for e in enrollments]
    # The same payment told again under a new event id (a republication) changes nothing.
    again = confirmations[0]

    with statements() as sent, commits() as committed:
        await apply_together(registry, *reversed(confirmations), again)

    reads = [s for s in sent if "FROM ENROLLMENTS" in s.upper() and s.lstrip().upper().startswith("SELECT")]
    writes = [s for s in sent if s.lstrip().upper().startswith("UPDATE ENROLLMENTS")]
    assert (len(reads), len(writes), len(committed)) == (1, 1, 1)
    assert await statuses(registry, enrollments) == ["active"] * 6
    paid = await current(registry, enrollments[0])
    assert (paid["paid"], paid["receipt_no"]) == (paid["personal_due"], confirmations[0].receipt_no)
    assert await dead_letter_reasons(registry) == []


async def test_a_confirmation_applied_alone_reads_its_enrollment_once(registry: Harness) -> None:
    [enrollment] = await some_enrolled(registry, 1)

    with statements() as sent:
        await apply_together(registry, payment_of(enrollment, PAID_AT))

    reads = [s for s in sent if "FROM ENROLLMENTS" in s.upper() and s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1
    assert await statuses(registry, [enrollment]) == ["active"]


async def test_an_ended_enrollment_in_a_batch_is_not_activated_and_the_others_are(registry: Harness) -> None:
    before, ended, after = await some_enrolled(registry, 3)
    report = {"reason": "death", "evidence_ref": "死亡证明 NO.0013", "reported_by": "staff-07"}
    cancelled = await registry.client.post(
        f"/v1/enrollments/{ended['enrollment_id']}/cancellation", json=report
    )
    assert cancelled.json()["status"] == "cancelled"

    await apply_together(registry, *(payment_of(e, PAID_AT) for e in (before, ended, after)))

    assert await statuses(registry, [before, ended, after]) == ["active", "cancelled", "active"]
    kept = await current(registry, ended)
    assert kept["paid"] == ended["personal_due"]  # kept for collection to refund, never activated
    assert await dead_letter_reasons(registry) == []


async def test_a_confirmation_of_another_amount_is_set_aside_and_the_rest_of_its_batch_applied(
    registry: Harness,
) -> None:
    first, wrong, last = await some_enrolled(registry, 3)
    underpaid = payment_of(wrong, PAID_AT, amount_fen=1)
    # A second payment of an enrollment the batch has just activated: not this enrollment's payment.
    paid_twice = payment_of(first, PAID_AT)

    await apply_together(
        registry, payment_of(first, PAID_AT), underpaid, payment_of(last, PAID_AT), paid_twice
    )

    assert await statuses(registry, [first, wrong, last]) == ["active", "pending_payment", "active"]
    assert (await current(registry, wrong))["paid"] is None
    assert await dead_letter_reasons(registry) == ["payment_does_not_match", "payment_does_not_match"]


async def test_a_confirmation_for_no_enrollment_is_set_aside(registry: Harness) -> None:
    [known] = await some_enrolled(registry, 1)
    unknown = payment_of(known, PAID_AT).model_copy(update={"enrollment_id": "no-such-enrollment"})

    await apply_together(registry, payment_of(known, PAID_AT), unknown)

    assert await statuses(registry, [known]) == ["active"]
    assert await dead_letter_reasons(registry) == ["payment_does_not_match"]
