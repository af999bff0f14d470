"""A file longer than the chunks a run judges and writes at a time: lines across the chunks' boundary are
judged as one file (a bill two lines name is recorded once, in either chunk), every line gets its history,
and each payment recorded from the file is confirmed once."""

from typing import Any

from sqlalchemy import select

from collection.database import OutboxMessage
from collection.reconciliation.repository import CHUNK
from shared.events import Envelope, PaymentConfirmed
from tests.collection.helpers import DAY, open_bill
from tests.collection.test_reconciliation import balances, history_of, ledger_ok, pay, reconcile
from tests.conftest import Harness


async def all_lines(h: Harness) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after = 0
    while True:
        page = (
            await h.client.get(
                f"/v1/reconciliations/wechat/{DAY}/lines", params={"after": after, "limit": 1000}
            )
        ).json()
        found |= {line["reference"]: line for line in page["items"]}
        if page["next_after"] is None:
            return found
        after = page["next_after"]


async def confirmations(h: Harness) -> list[PaymentConfirmed]:
    async with h.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    events = [Envelope.from_bytes(row.payload) for row in rows]
    return [e.payload(PaymentConfirmed) for e in events if e.type == PaymentConfirmed.event_type]


async def test_a_file_of_more_lines_than_a_chunk_is_judged_as_one(collection: Harness) -> None:
    matched, twice_in_a_chunk, across_chunks = [await open_bill(collection) for _ in range(3)]
    await pay(collection, matched, reference="WXA")
    before = len(await confirmations(collection))
    at = f"{DAY} 10:00:00"
    rows: list[list[object]] = [["WXA", at, "380.00", matched["bill_id"], ""]]
    rows += [[f"WXN{i}", at, "380.00", f"no-such-bill-{i}", ""] for i in range(CHUNK - 2)]
    rows += [["WXD1", at, "380.00", across_chunks["bill_id"], ""]]  # the first chunk's last line
    rows += [["WXD2", at, "380.00", across_chunks["bill_id"], ""]]  # the second chunk's first
    rows += [["WXC1", f"{DAY} 09:15:00", "380.00", twice_in_a_chunk["bill_id"], ""]]
    rows += [["WXC2", at, "380.00", twice_in_a_chunk["bill_id"], ""]]

    response = await reconcile(collection, rows)

    assert response.status_code == 201, response.text
    run = response.json()
    assert run["changes"] == {"matched": 1, "recorded": 2, "unrecordable": CHUNK}
    judged = await all_lines(collection)
    assert len(judged) == CHUNK + 3
    assert {
        ref: (judged[ref]["state"], judged[ref]["reason"]) for ref in ("WXA", "WXD1", "WXD2", "WXC1", "WXC2")
    } == {
        "WXA": ("matched", "matched"),
        "WXD1": ("recorded", "recorded_from_file"),
        "WXD2": ("unrecordable", "bill_already_paid"),
        "WXC1": ("recorded", "recorded_from_file"),
        "WXC2": ("unrecordable", "bill_already_paid"),
    }
    assert (judged["WXN7"]["state"], judged["WXN7"]["reason"]) == ("unrecordable", "bill_not_found")
    assert [line["line_no"] for line in judged.values()] == list(range(2, CHUNK + 5))
    history = await history_of(collection, judged["WXC1"]["id"])
    assert [(h["from_state"], h["to_state"], h["run_id"]) for h in history] == [
        (None, "recorded", run["run_id"])
    ]
    # Recorded as the channel took it, and confirmed to the registry once each.
    paid = (await collection.client.get(f"/v1/bills/{twice_in_a_chunk['bill_id']}")).json()
    assert (paid["status"], paid["paid_at"]) == ("paid", "2023-10-08T01:15:00Z")
    confirmed = (await confirmations(collection))[before:]
    assert sorted(c.enrollment_id for c in confirmed) == sorted(
        [across_chunks["enrollment_id"], twice_in_a_chunk["enrollment_id"]]
    )
    assert {c.payment_id for c in confirmed} == {judged["WXD1"]["payment_id"], judged["WXC1"]["payment_id"]}
    books = await balances(collection)
    assert (books["treasury"], books["channel_clearing:wechat"]) == ("1140.00", "0.00")
    await ledger_ok(collection)

    # The same file again changes nothing; a corrected one withdraws what it no longer lists.
    again = await reconcile(collection, rows)
    assert (again.status_code, again.json()["run_id"]) == (200, run["run_id"])
    corrected = await reconcile(collection, rows[:1] + rows[-4:], filename="wechat-更正.csv")
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["changes"] == {"kept": 3, "unchanged": 2, "withdrawn": CHUNK - 2}
    assert len(await confirmations(collection)) == before + 2
    await ledger_ok(collection)


async def test_a_chunk_naming_more_bills_than_one_statement_binds_is_judged(collection: Harness) -> None:
    """1,200 lines of 30 bills each: 36,000 bill ids in one chunk, past the 32,766 values SQLite binds in one
    statement when built with its default limit."""
    bill = await open_bill(collection)
    at = f"{DAY} 10:00:00"
    rows: list[list[object]] = [
        [f"WXM{i}", at, "380.00", ";".join(f"b{i}-{j}" for j in range(30)), ""] for i in range(1200)
    ]
    rows.append(["WXM-last", at, "380.00", bill["bill_id"], ""])

    response = await reconcile(collection, rows)

    assert response.status_code == 201, response.text
    assert response.json()["changes"] == {"recorded": 1, "unrecordable": 1200}
    await ledger_ok(collection)
