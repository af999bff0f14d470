"""Reconciliation with the tax side's daily payment files: every kind of match, a state machine that
never changes a settled line, channel money settled into the treasury, and bad files refused whole with a
report of their lines."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from collection.database import OutboxMessage
from shared.events import Envelope, PaymentConfirmed
from tests.collection.helpers import DAY, HEADER, deliver, enrollment_event, open_bill, pay_online
from tests.conftest import Harness
from tests.spreadsheets import csv_bytes, read_xlsx, xlsx
from tests.support import problem

NEXT_DAY = "2023-10-09"


async def pay(h: Harness, bill: dict[str, Any], channel: str = "wechat", reference: str | None = None) -> str:
    """A resident pays online: the order, then the channel's notification quoting its transaction id."""
    payment = await pay_online(h, [bill["bill_id"]], channel, transaction_id=reference)
    payment_id: str = payment["payment_id"]
    return payment_id


async def pay_at_counter(h: Harness, bill: dict[str, Any], key: str, reference: str | None = None) -> Any:
    """A tax officer records money handed over at the tax hall, with the hall's transaction number if any."""
    body = {"bill_id": bill["bill_id"], "amount": bill["amount_due"], "channel": "tax_hall"}
    if reference is not None:
        body["channel_reference"] = reference
    return await h.client.post("/v1/payments", json=body, headers={"Idempotency-Key": key})


async def reconcile(
    h: Harness,
    rows: list[list[object]],
    *,
    day: str = DAY,
    channel: str = "wechat",
    content: bytes | None = None,
    filename: str = "wechat-20231008.csv",
) -> httpx.Response:
    data = content if content is not None else csv_bytes(HEADER, rows, "utf-8")
    return await h.client.post(
        "/v1/reconciliations",
        data={"channel": channel, "business_day": day, "uploaded_by": "税务对账员"},
        files={"file": (filename, data)},
    )


async def lines(h: Harness, day: str = DAY, channel: str = "wechat") -> dict[str, dict[str, Any]]:
    """A day's lines by reference (a payment missing from the file: by its payment id)."""
    page = (await h.client.get(f"/v1/reconciliations/{channel}/{day}/lines")).json()
    assert page["next_after"] is None
    return {line["reference"]: line for line in page["items"]}


async def balances(h: Harness) -> dict[str, str]:
    body = (await h.client.get("/v1/ledger/balances")).json()
    return {item["account"]: item["balance"] for item in body["items"]}


async def history_of(h: Harness, line_id: int) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = (await h.client.get(f"/v1/reconciliation-lines/{line_id}")).json()[
        "history"
    ]
    return history


async def ledger_ok(h: Harness) -> None:
    check = (await h.client.get("/v1/ledger/check")).json()
    assert check["ok"], check


async def test_each_kind_of_line_is_judged_and_matched_money_reaches_the_treasury(
    collection: Harness,
) -> None:
    bills = [await open_bill(collection, 38000) for _ in range(7)]
    matched, plain, short, late, found, _, missing = bills
    await pay(collection, matched, reference="WX1")
    await pay(collection, plain, reference="WX2")  # the file writes its amount and channel plainly
    await pay(collection, short, reference="WX3")
    await pay(collection, late, reference="WX4")
    missing_payment = await pay(collection, missing, reference="WX7")
    at = f"{DAY} 10:00:00"
    response = await reconcile(
        collection,
        [
            ["WX1", at, "380.00", matched["bill_id"], "微信"],
            ["WX2", at, "380", plain["bill_id"], "wechat"],
            ["WX3", at, "390.00", short["bill_id"], ""],
            ["WX4", f"{NEXT_DAY} 00:05:00", "380.00", late["bill_id"], ""],
            ["WX5", "2023-10-08 09:30:00", "380.00", found["bill_id"], ""],
            ["WX6", at, "380.00", "no-such-bill", ""],
        ],
    )

    assert response.status_code == 201, response.text
    run = response.json()
    judged = await lines(collection)
    assert {ref: (line["state"], line["reason"]) for ref, line in judged.items()} == {
        "WX1": ("matched", "matched"),
        "WX2": ("matched", "matched"),
        "WX3": ("amount_mismatch", "amount_differs"),
        "WX4": ("date_mismatch", "date_differs"),
        "WX5": ("recorded", "recorded_from_file"),
        "WX6": ("unrecordable", "bill_not_found"),
        missing_payment: ("missing_from_file", "not_in_file"),
    }
    summary = run["summary"]
    assert summary["lines"] == {
        "matched": 2,
        "amount_mismatch": 1,
        "date_mismatch": 1,
        "recorded": 1,
        "unrecordable": 1,
        "missing_from_file": 1,
    }
    assert (summary["file_amount"], summary["settled_amount"], summary["missing_amount"]) == (
        "2290.00",
        "1140.00",
        "380.00",
    )
    assert (summary["open_lines"], summary["reconciled"]) == (4, False)
    assert run["changes"] == summary["lines"]

    # In the file and never recorded: recorded now, as the channel took it, and confirmed to the registry.
    recorded_bill = (await collection.client.get(f"/v1/bills/{found['bill_id']}")).json()
    assert (recorded_bill["status"], recorded_bill["paid_at"]) == ("paid", "2023-10-08T01:30:00Z")
    payment_id = judged["WX5"]["payment_id"]
    async with collection.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    confirmation = Envelope.from_bytes(rows[-1].payload).payload(PaymentConfirmed)
    assert (confirmation.payment_id, confirmation.enrollment_id) == (payment_id, found["enrollment_id"])
    receipt = (await collection.client.get(f"/v1/receipts/{confirmation.receipt_no}")).json()
    assert receipt["amount"] == "380.00"
    history = await history_of(collection, judged["WX5"]["id"])
    assert [(h["from_state"], h["to_state"], h["actor"], h["run_id"]) for h in history] == [
        (None, "recorded", "税务对账员", run["run_id"])
    ]

    # Matched money left the channel's clearing.
    books = await balances(collection)
    assert (books["treasury"], books["channel_clearing:wechat"]) == ("1140.00", "1140.00")
    await ledger_ok(collection)


async def test_the_same_file_again_is_the_first_run(collection: Harness) -> None:
    bill = await open_bill(collection)
    await pay(collection, bill, reference="WX1")
    rows: list[list[object]] = [["WX1", f"{DAY} 10:00:00", "380.00", bill["bill_id"], ""]]
    first = await reconcile(collection, rows)
    again = await reconcile(collection, rows)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["run_id"] == first.json()["run_id"]
    day = (await collection.client.get(f"/v1/reconciliations/wechat/{DAY}")).json()
    assert len(day["runs"]) == 1
    assert (await balances(collection))["treasury"] == "380.00"
    await ledger_ok(collection)


async def test_a_corrected_file_settles_open_lines_and_never_changes_a_settled_one(
    collection: Harness,
) -> None:
    first_bill, second_bill, third_bill = [await open_bill(collection) for _ in range(3)]
    await pay(collection, first_bill, reference="WX1")
    await pay(collection, second_bill, reference="WX2")
    at = f"{DAY} 10:00:00"
    await reconcile(
        collection,
        [
            ["WX1", at, "380.00", first_bill["bill_id"], ""],
            ["WX2", at, "38.00", second_bill["bill_id"], ""],
            ["WX9", at, "380.00", "no-such-bill", ""],
        ],
    )
    corrected = await reconcile(
        collection,
        [
            ["WX1", at, "1.00", first_bill["bill_id"], ""],  # a settled line: kept as it was
            ["WX2", at, "380.00", second_bill["bill_id"], ""],
            ["WX3", at, "380.00", third_bill["bill_id"], ""],
        ],
        filename="wechat-20231008-更正.csv",
    )

    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["changes"] == {"kept": 1, "matched": 1, "recorded": 1, "withdrawn": 1}
    judged = await lines(collection)
    assert {ref: line["state"] for ref, line in judged.items()} == {
        "WX1": "matched",
        "WX2": "matched",
        "WX3": "recorded",
        "WX9": "withdrawn",
    }
    assert judged["WX1"]["file_amount"] == "380.00"
    history = await history_of(collection, judged["WX2"]["id"])
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        (None, "amount_mismatch"),
        ("amount_mismatch", "matched"),
    ]
    assert (await balances(collection))["treasury"] == "1140.00"

    rerun = await collection.client.post(
        f"/v1/reconciliations/wechat/{DAY}/rerun", json={"started_by": "税务对账员"}
    )
    assert rerun.status_code == 201, rerun.text
    assert rerun.json()["changes"] == {}
    assert rerun.json()["summary"]["reconciled"] is True
    assert {ref: line["state"] for ref, line in (await lines(collection)).items()} == {
        ref: line["state"] for ref, line in judged.items()
    }
    assert (await balances(collection))["treasury"] == "1140.00"
    await ledger_ok(collection)


async def test_a_payment_missing_from_its_days_file_is_found_in_the_next_days(collection: Harness) -> None:
    collection.at(f"{DAY}T23:50:00+08:00")
    bill = await open_bill(collection)
    payment_id = await pay(collection, bill, reference="WX-LATE")
    await reconcile(collection, [["WX-OTHER", f"{DAY} 09:00:00", "1.00", "", ""]])
    assert (await lines(collection))[payment_id]["state"] == "missing_from_file"

    collection.at(f"{NEXT_DAY}T09:00:00+08:00")
    # The channel's cut-off put it in the next day's file, with the time the resident paid.
    response = await reconcile(
        collection, [["WX-LATE", f"{DAY} 23:50:00", "380.00", bill["bill_id"], ""]], day=NEXT_DAY
    )

    assert response.status_code == 201, response.text
    assert (await lines(collection, NEXT_DAY))["WX-LATE"]["state"] == "matched"
    missing = (await lines(collection))[payment_id]
    assert (missing["state"], missing["reason"]) == ("found", "found_in_other_file")
    days = (await collection.client.get("/v1/reconciliations", params={"channel": "wechat"})).json()
    assert [(d["business_day"], d["lines"]) for d in days] == [
        (DAY, {"found": 1, "unrecordable": 1}),
        (NEXT_DAY, {"matched": 1}),
    ]
    await ledger_ok(collection)


async def test_an_officer_accepts_a_date_mismatch_and_dismisses_what_was_handled_outside(
    collection: Harness,
) -> None:
    late_bill, missing_bill = await open_bill(collection), await open_bill(collection)
    await pay(collection, late_bill, reference="WX4")
    missing_payment = await pay(collection, missing_bill, reference="WX7")
    await reconcile(collection, [["WX4", f"{NEXT_DAY} 00:01:00", "380.00", late_bill["bill_id"], ""]])
    judged = await lines(collection)

    accepted = await collection.client.post(
        f"/v1/reconciliation-lines/{judged['WX4']['id']}/resolution",
        json={"action": "accept", "officer": "张科长", "note": "渠道日切晚于零点"},
    )
    dismissed = await collection.client.post(
        f"/v1/reconciliation-lines/{judged[missing_payment]['id']}/resolution",
        json={"action": "dismiss", "officer": "张科长", "note": "渠道已线下退回"},
    )
    again = await collection.client.post(
        f"/v1/reconciliation-lines/{judged['WX4']['id']}/resolution",
        json={"action": "dismiss", "officer": "张科长", "note": "again"},
    )

    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["state"], accepted.json()["history"][-1]["actor"]) == ("accepted", "张科长")
    assert accepted.json()["history"][-1]["note"] == "渠道日切晚于零点"
    assert dismissed.json()["state"] == "dismissed"
    assert (again.status_code, problem(again)["code"]) == (409, "reconciliation_transition_not_allowed")
    books = await balances(collection)
    assert (books["treasury"], books["channel_clearing:wechat"]) == ("380.00", "380.00")
    day = (await collection.client.get(f"/v1/reconciliations/wechat/{DAY}")).json()
    assert day["summary"]["reconciled"] is True
    await ledger_ok(collection)


async def test_the_day_as_a_spreadsheet(collection: Harness) -> None:
    bill = await open_bill(collection)
    await pay(collection, bill, reference="WX1")
    content = xlsx(HEADER, [["WX1", f"{DAY} 10:00:00", "380.00", bill["bill_id"], "微信"]])
    assert (await reconcile(collection, [], content=content, filename="对账.xlsx")).status_code == 201

    response = await collection.client.get(f"/v1/reconciliations/wechat/{DAY}/report.xlsx")

    assert response.status_code == 200
    summary, detail = read_xlsx(response.content, 0), read_xlsx(response.content, 1)
    assert ["matched", "一致", 1] in summary
    assert detail[1][3:6] == ["WX1", bill["bill_id"], "380.00"]
    assert detail[1][10:12] == ["matched", "一致"]


async def test_a_gbk_csv_is_read(collection: Harness) -> None:
    bill = await open_bill(collection)
    await pay(collection, bill, reference="WX1")
    content = csv_bytes(
        HEADER, [["WX1", "2023/10/08", "380.00", bill["bill_id"], "微信"]], "gbk", title=["微信缴费对账单"]
    )
    response = await reconcile(collection, [], content=content)
    assert response.status_code == 201, response.text
    assert response.json()["summary"]["lines"] == {"matched": 1}


@pytest.mark.parametrize(
    ("rows", "content", "filename", "reason", "problems"),
    [
        (
            [],
            csv_bytes(["交易流水号", "缴费金额"], [["WX1", "1.00"]], "utf-8"),
            "f.csv",
            "columns_missing",
            [],
        ),
        ([], b"PK\x03\x04 not a workbook", "f.xlsx", "unreadable", []),
        ([], csv_bytes(HEADER, [["WX1", DAY, "1.00", "b", ""]], "utf-16"), "f.csv", "unreadable", []),
        ([], b"a,b", "f.pdf", "unsupported_format", []),
        ([], csv_bytes(HEADER, [], "utf-8"), "f.csv", "no_lines", []),
        (
            [["WX1", f"{DAY} 10:00:00", "1.00", "b", ""], ["WX1", f"{DAY} 11:00:00", "2.00", "c", ""]],
            None,
            "f.csv",
            "lines_invalid",
            [(3, "reference", "duplicate_line")],
        ),
        (
            [
                ["WX1", "yesterday", "1.00", "b", ""],
                ["WX2", f"{DAY} 10:00:00", "1.005", "b", ""],
                ["WX3", f"{DAY} 10:00:00", "-1", "b", ""],
                ["WX4", f"{DAY} 10:00:00", "1.00", "b", "支付宝"],
                ["", f"{DAY} 10:00:00", "1.00", "b", ""],
            ],
            None,
            "f.csv",
            "lines_invalid",
            [
                (2, "paid_at", "paid_at_invalid"),
                (3, "amount", "amount_invalid"),
                (4, "amount", "amount_invalid"),
                (5, "channel", "channel_differs"),
                (6, "reference", "reference_invalid"),
            ],
        ),
    ],
)
async def test_a_bad_file_is_refused_whole_with_its_bad_lines(
    collection: Harness,
    rows: list[list[object]],
    content: bytes | None,
    filename: str,
    reason: str,
    problems: list[tuple[int, str, str]],
) -> None:
    bill = await open_bill(collection)
    await pay(collection, bill, reference="WX0")

    response = await reconcile(collection, rows, content=content, filename=filename)

    assert response.status_code == 422, response.text
    error = problem(response)
    assert (error["code"], error["details"]["reason"]) == ("reconciliation_file_invalid", reason)
    found = [(p["line"], p["column"], p["code"]) for p in error["details"].get("problems", [])]
    assert found == problems
    assert (await collection.client.get("/v1/reconciliations")).json() == []
    assert "treasury" not in await balances(collection)


async def test_agents_and_subsidies_are_not_reconciled_by_file(collection: Harness) -> None:
    response = await reconcile(collection, [["A1", f"{DAY} 10:00:00", "1.00", "b", ""]], channel="agent")
    assert (response.status_code, problem(response)["code"]) == (422, "channel_not_reconciled")
    missing = await collection.client.get(f"/v1/reconciliations/wechat/{DAY}")
    assert (missing.status_code, problem(missing)["code"]) == (404, "reconciliation_day_not_found")


async def test_a_refund_after_settlement_leaves_the_treasury(collection: Harness) -> None:
    event = enrollment_event(refundable_reasons=["erroneous_payment"])
    await deliver(collection, event)
    bills = await collection.client.get("/v1/bills", params={"enrollment_id": event.subject})
    bill = bills.json()["items"][0]
    await pay(collection, bill, reference="WX1")
    await reconcile(collection, [["WX1", f"{DAY} 10:00:00", "380.00", bill["bill_id"], ""]])

    refund = await collection.client.post(
        "/v1/refunds",
        json={"bill_id": bill["bill_id"], "reason": "erroneous_payment", "requested_by": "张科长"},
        headers={"Idempotency-Key": "refund-1"},
    )

    assert refund.status_code == 201, refund.text
    books = await balances(collection)
    assert (books["treasury"], books["channel_clearing:wechat"]) == ("0.00", "0.00")
    await ledger_ok(collection)


async def test_a_counter_payment_without_its_number_is_matched_by_its_bills_and_takes_the_number(
    collection: Harness,
) -> None:
    """Online payments always carry the channel's transaction id (their notification's); a tax hall payment
    may be recorded without one, and the day's file line that settled exactly its bills is its."""
    bill = await open_bill(collection)
    recorded = await pay_at_counter(collection, bill, key="counter")
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["channel_reference"] is None

    response = await reconcile(
        collection,
        [["TH2", f"{DAY} 10:00:00", "380", bill["bill_id"], "办税服务厅"]],
        channel="tax_hall",
        filename="tax-hall-20231008.csv",
    )

    assert response.status_code == 201, response.text
    judged = await lines(collection, channel="tax_hall")
    assert {ref: (line["state"], line["payment_id"]) for ref, line in judged.items()} == {
        "TH2": ("matched", recorded.json()["payment_id"])
    }
    payment = (await collection.client.get(f"/v1/payments/{recorded.json()['payment_id']}")).json()
    assert payment["channel_reference"] == "TH2"
    books = await balances(collection)
    assert (books["treasury"], books["channel_clearing:tax_hall"]) == ("380.00", "0.00")
    await ledger_ok(collection)


async def test_a_channel_reference_is_recorded_once(collection: Harness) -> None:
    first, second = await open_bill(collection), await open_bill(collection)
    assert (await pay_at_counter(collection, first, key="first", reference="TH1")).status_code == 201
    response = await pay_at_counter(collection, second, key="other", reference="TH1")
    assert (response.status_code, problem(response)["code"]) == (409, "channel_reference_used")
    assert (await collection.client.get(f"/v1/bills/{second['bill_id']}")).json()["status"] == "open"
