"""What one poll of the broker brings is applied in one transaction, in its order; a record that fails sends
that batch back to one by one, so the others are still applied exactly once and only that one is set aside."""

from aiokafka.structs import ConsumerRecord
from sqlalchemy import func, select
from structlog.testing import capture_logs

from collection.database import DeadLetter, InboxMessage
from shared.events import Envelope, SubsidyLineData
from tests.collection.helpers import (
    consumer,
    enrollment_event,
    record,
    repricing_event,
)
from tests.conftest import Harness
from tests.support import all_statements, commits, statements


def records(*events: Envelope) -> list[ConsumerRecord[bytes, bytes]]:
    return [record(e.to_bytes(), key=e.subject) for e in events]


async def amounts_due(h: Harness, *events: Envelope) -> list[list[str]]:
    found = []
    for e in events:
        response = await h.client.get("/v1/bills", params={"enrollment_id": e.subject})
        found.append([bill["amount_due"] for bill in response.json()["items"]])
    return found


async def inbox_size(h: Harness) -> int:
    async with h.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(InboxMessage)) or 0)


async def test_a_batch_is_one_commit_and_applies_its_events_in_order(collection: Harness) -> None:
    first, second = enrollment_event(38000), enrollment_event(38000)
    repriced = repricing_event(first, 20000, version=2)  # after its enrollment, in the same poll

    with commits() as committed, capture_logs() as logs:
        await consumer(collection).handle_batch(records(first, second, repriced))

    assert len(committed) == 1
    assert await amounts_due(collection, first, second) == [["200.00"], ["380.00"]]
    assert await inbox_size(collection) == 3
    assert [e["event"] for e in logs if e["event"].startswith("event_")] == ["event_applied"] * 3
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True


async def test_a_batch_delivered_again_or_repeating_an_event_applies_each_once(collection: Harness) -> None:
    event, other = enrollment_event(), enrollment_event()
    c = consumer(collection)

    with capture_logs() as logs:
        await c.handle_batch(records(event, event, other))
        await c.handle_batch(records(other, event))

    assert await amounts_due(collection, event, other) == [["380.00"], ["380.00"]]
    assert await inbox_size(collection) == 2
    skipped = [e["event_id"] for e in logs if e["event"] == "event_redelivered_skipped"]
    assert sorted(skipped) == sorted([event.id, other.id, event.id])


async def test_a_failing_record_is_set_aside_alone_and_the_rest_of_its_batch_applied(
    collection: Harness,
) -> None:
    good, later = enrollment_event(), enrollment_event()
    # A repricing whose bill does not exist: retried, then set aside (the helper's consumer tries twice).
    orphan = repricing_event(enrollment_event(), 0, version=2)
    missing_field = enrollment_event()
    del missing_field.data["personal_due_fen"]
    batch = [
        *records(good),
        record(b"{not json"),
        *records(orphan, missing_field, later),
    ]

    with capture_logs() as logs:
        await consumer(collection).handle_batch(batch)

    assert await amounts_due(collection, good, later, missing_field) == [["380.00"], ["380.00"], []]
    assert await inbox_size(collection) == 2
    async with collection.sessionmaker() as s:
        reasons = sorted((await s.scalars(select(DeadLetter.reason))).all())
    assert reasons == ["handler_failed", "invalid_payload", "malformed_envelope"]
    # A message that is not an event is seen before any transaction: the batch goes one by one at once.
    assert [e for e in logs if e["event"] == "event_batch_retried_one_by_one"] == []
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True


async def test_a_handler_failing_inside_a_batch_undoes_the_batch_before_one_by_one(
    collection: Harness,
) -> None:
    good = enrollment_event()
    orphan = repricing_event(enrollment_event(), 0, version=2)

    with capture_logs() as logs:
        await consumer(collection).handle_batch(records(good, orphan))

    [retried] = [e for e in logs if e["event"] == "event_batch_retried_one_by_one"]
    assert retried["size"] == 2
    assert await amounts_due(collection, good) == [["380.00"]]
    assert await inbox_size(collection) == 1  # the good one once, not twice: the batch left nothing behind
    async with collection.sessionmaker() as s:
        assert (await s.scalars(select(DeadLetter.reason))).all() == ["handler_failed"]


async def test_a_run_of_enrollments_is_billed_with_one_lookup_and_one_write_per_table(
    collection: Harness,
) -> None:
    created = [enrollment_event(38000) for _ in range(8)]
    # The same enrollment again under a new event id (a republication): billed once.
    again = created[0].model_copy(update={"id": "republished-" + created[0].id})
    subsidised = enrollment_event(0)  # nothing to pay: settled by its funders at once

    with statements() as sent:
        await consumer(collection).handle_batch(records(*created, again, subsidised))

    bills = [s for s in sent if s.lstrip().upper().startswith("INSERT INTO BILLS ")]
    lookups = [s for s in sent if "SELECT DISTINCT BILLS.ENROLLMENT_ID" in s.upper()]
    assert (len(bills), len(lookups)) == (1, 1)
    assert await amounts_due(collection, *created, subsidised) == [["380.00"]] * 8 + [["0.00"]]
    standing = await collection.client.get("/v1/bills", params={"enrollment_id": subsidised.subject})
    assert standing.json()["items"][0]["status"] == "paid"
    assert await inbox_size(collection) == 10
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True


async def test_a_run_of_enrollments_created_locks_no_bill(collection: Harness) -> None:
    # A creation changes no bill that exists: the batch's bill locks (for the order payments lock in) are
    # taken only for events that change one.
    created = [enrollment_event() for _ in range(3)]
    repriced = repricing_event(created[0], 20000, version=2)

    with statements() as sent:
        await consumer(collection).handle_batch(records(*created))
    assert [s for s in sent if "FOR UPDATE" in s.upper()] == []

    with statements() as sent:
        await consumer(collection).handle_batch(records(repriced, enrollment_event()))
    locks = [s for s in sent if "FOR UPDATE" in s.upper()]
    if collection.backend == "postgresql":  # SQLite has no row locks (its one writer serialises)
        assert len(locks) >= 1
    assert await amounts_due(collection, *created) == [["200.00"], ["380.00"], ["380.00"]]


async def test_a_run_of_enrollments_is_billed_in_one_statement_on_postgresql_one_per_table_on_sqlite(
    collection: Harness,
) -> None:
    # Part subsidised: each bill has a subsidy line and a ledger transaction of three entries.
    line = SubsidyLineData(category="minimum_living", funder="医疗救助资金", amount_fen=18000)
    created = [enrollment_event(20000, subsidy_lines=[line]) for _ in range(5)]
    again = created[0].model_copy(update={"id": "republished-" + created[0].id})

    with all_statements() as sent:
        await consumer(collection).handle_batch(records(*created, again))
        await consumer(collection).handle_batch(records(created[1]))  # delivered again

    billing = [s for s in sent if any(t in s.upper() for t in ("BILLS", "LEDGER_", "BILL_SUBSIDY_LINES"))]
    if collection.backend == "postgresql":
        assert [s.startswith("driver: ") for s in billing] == [True], billing
    else:  # no lookup of those billed (the unique index skips them), each table's rows in one statement
        tables = ["bills", "bill_subsidy_lines", "ledger_transactions", "ledger_entries"]
        assert [s.split()[2].strip('"').lower() for s in billing] == tables, billing
    assert await amounts_due(collection, *created) == [["200.00"]] * 5
    assert await inbox_size(collection) == 6
    funder = await collection.client.get("/v1/ledger/balances", params={"prefix": "department_receivable"})
    assert [item["balance"] for item in funder.json()["items"]] == ["900.00"]
    assert (await collection.client.get("/v1/ledger/check")).json()["ok"] is True
