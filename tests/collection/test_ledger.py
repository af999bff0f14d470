"""The double-entry ledger: every money movement balances, and the balances agree with bills and payments."""

from typing import Any

from sqlalchemy import insert

from collection.ledger.models import LedgerEntry
from shared.events import EnrollmentLapsed, SubsidyLineData, new_envelope
from tests.collection.helpers import deliver, enrollment_event, pay_online, repricing_event
from tests.conftest import Harness

ASSISTANCE = "医疗救助资金"


def line(amount_fen: int, funder: str = ASSISTANCE) -> SubsidyLineData:
    return SubsidyLineData(category="minimum_living", funder=funder, amount_fen=amount_fen)


async def bill_for(h: Harness, due_fen: int, lines: list[SubsidyLineData]) -> dict[str, Any]:
    event = enrollment_event(due_fen, subsidy_lines=lines)
    await deliver(h, event)
    bill: dict[str, Any] = (await h.client.get("/v1/bills", params={"enrollment_id": event.subject})).json()[
        "items"
    ][0]
    bill["event"] = event
    return bill


async def pay(h: Harness, bill_ids: list[str], amount: str, channel: str) -> None:
    """A resident's payment order, recorded by the channel's notification."""
    paid = await pay_online(h, bill_ids, channel)
    assert (paid["amount"], paid["channel"]) == (amount, channel)


async def balances(h: Harness) -> dict[str, str]:
    body = (await h.client.get("/v1/ledger/balances")).json()
    return {item["account"]: item["balance"] for item in body["items"]}


async def test_the_books_balance_after_bills_payments_repricing_and_lapses(collection: Harness) -> None:
    plain = await bill_for(collection, 38000, [])
    partial = await bill_for(collection, 3800, [line(34200)])
    full = await bill_for(collection, 0, [line(35000, "县卫健委")])  # settled by the subsidy at once
    repriced = await bill_for(collection, 38000, [])
    lapsing = await bill_for(collection, 19000, [line(19000)])
    assert full["status"] == "paid"

    await pay(collection, [plain["bill_id"]], "380.00", "wechat")
    await deliver(collection, repricing_event(repriced["event"], 3800, 2))  # now 低保: 342 from the fund
    await pay(collection, [partial["bill_id"], repriced["bill_id"]], "76.00", "alipay")
    lapsed = EnrollmentLapsed(enrollment_id=lapsing["enrollment_id"], replaced_by="new")
    await deliver(collection, new_envelope("/canbao/registry", lapsing["enrollment_id"], lapsed))

    assert await balances(collection) == {
        "channel_clearing:alipay": "76.00",
        "channel_clearing:wechat": "380.00",
        f"department_receivable:{ASSISTANCE}": "684.00",  # 342 + 342; the lapsed bill's 190 written off
        "department_receivable:县卫健委": "350.00",
        "resident_insurance_fiscal": "-1490.00",
        "resident_receivable": "0.00",  # every standing bill is paid
    }
    check = (await collection.client.get("/v1/ledger/check")).json()
    assert check["ok"] is True, check
    assert (check["unbalanced_transactions"], check["mismatches"]) == ([], [])
    # issued x5, repriced, payment x2, cancelled; the fully subsidised bill's settlement moves no money
    assert check["transactions"] == 9

    prefixed = (await collection.client.get("/v1/ledger/balances", params={"prefix": "department_"})).json()
    assert [i["account"] for i in prefixed["items"]] == [
        f"department_receivable:{ASSISTANCE}",
        "department_receivable:县卫健委",
    ]


async def test_the_check_finds_an_entry_that_breaks_the_books(collection: Harness) -> None:
    bill = await bill_for(collection, 38000, [])
    async with collection.sessionmaker() as session, session.begin():
        transaction_id = (
            await session.execute(
                insert(LedgerEntry)
                .from_select(
                    ["transaction_id", "account", "amount_fen"],
                    LedgerEntry.__table__.select()
                    .with_only_columns(
                        LedgerEntry.transaction_id,
                        LedgerEntry.account,
                        LedgerEntry.amount_fen,
                    )
                    .where(LedgerEntry.account == "resident_receivable"),
                )
                .returning(LedgerEntry.transaction_id)
            )
        ).scalar_one()

    check = (await collection.client.get("/v1/ledger/check")).json()
    assert check["ok"] is False
    assert check["unbalanced_transactions"] == [transaction_id]
    assert {m["account"]: (m["ledger"], m["books"]) for m in check["mismatches"]} == {
        "resident_receivable": ("760.00", "380.00")
    }
    assert bill["status"] == "open"
