"""Whoever holds the money records the payment: a resident starts a payment order, only the channel's signed
notification completes it, and a genuine notification that cannot be recorded is kept for operators."""

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from collection.main import create_app
from collection.orders import service as orders_service
from collection.payments.models import Payment
from collection.settings import CollectionSettings
from shared.auth import Role, dev_token
from shared.logging import mask_pii
from tests.collection.helpers import notify_order, open_bill, pay_online, resident_token, start_order
from tests.conftest import Harness
from tests.support import PRODUCTION_KAFKA, problem

NOW = "2023-11-01T10:00:00+08:00"


async def payments(h: Harness) -> int:
    async with h.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Payment)) or 0)


async def bill_status(h: Harness, bill_id: str) -> str:
    status: str = (await h.client.get(f"/v1/bills/{bill_id}")).json()["status"]
    return status


async def rejections(h: Harness) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await h.client.get("/v1/notification-rejections")).json()["items"]
    return items


@pytest.mark.parametrize("channel", ["wechat", "alipay", "bank", "tax_hall", "cash", "provincial_app"])
async def test_a_resident_token_never_records_a_payment(collection: Harness, channel: str) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    response = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill["bill_id"], "amount": "380.00", "channel": channel},
        headers={"Idempotency-Key": str(uuid.uuid4()), "Authorization": f"Bearer {resident_token()}"},
    )
    assert (response.status_code, problem(response)["code"]) == (403, "role_not_allowed")
    assert await payments(collection) == 0
    assert await bill_status(collection, bill["bill_id"]) == "open"


@pytest.mark.parametrize("channel", ["wechat", "alipay", "provincial_app", "bank"])
async def test_the_counter_refuses_online_channels(collection: Harness, channel: str) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    officer = dev_token(Role.TAX_OFFICER)
    response = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill["bill_id"], "amount": "380.00", "channel": channel, "channel_reference": "WX1"},
        headers={"Idempotency-Key": str(uuid.uuid4()), "Authorization": f"Bearer {officer}"},
    )
    assert (response.status_code, problem(response)["code"]) == (422, "channel_records_itself")
    assert await payments(collection) == 0


async def test_an_order_waits_for_its_channel_and_the_notification_records_the_payment(
    collection: Harness,
) -> None:
    collection.at(NOW)
    bills = [await open_bill(collection), await open_bill(collection, 18000)]
    token = resident_token(sub="wx-openid-1")
    order = await start_order(collection, [b["bill_id"] for b in bills], "alipay", token=token)
    assert order["status"] == "awaiting_channel"
    assert (order["amount"], order["channel"], order["payment_id"]) == ("560.00", "alipay", None)
    assert order["expires_at"] > order["created_at"]
    assert order["reference"].startswith("CBO")
    assert len(order["reference"]) <= 32
    assert await payments(collection) == 0  # starting pays nothing
    assert {await bill_status(collection, b["bill_id"]) for b in bills} == {"open"}

    paid = await notify_order(collection, order, transaction_id="2088000001")
    assert paid.status_code == 200, paid.text
    payment = paid.json()
    assert (payment["origin"], payment["channel"], payment["amount"]) == ("notification", "alipay", "560.00")
    assert payment["channel_reference"] == "2088000001"
    assert {await bill_status(collection, b["bill_id"]) for b in bills} == {"paid"}

    own = {"Authorization": f"Bearer {token}"}
    shown = (await collection.client.get(f"/v1/payment-orders/{order['order_id']}", headers=own)).json()
    assert (shown["status"], shown["payment_id"]) == ("completed", payment["payment_id"])
    # The resident who started it sees the payment it became: its payer is the resident, not the channel.
    mine = await collection.client.get(f"/v1/payments/{payment['payment_id']}", headers=own)
    assert mine.status_code == 200, mine.text
    impostor = {"Authorization": f"Bearer {resident_token(sub='notification')}"}
    assert (
        await collection.client.get(f"/v1/payments/{payment['payment_id']}", headers=impostor)
    ).status_code == 403

    again = await notify_order(collection, order, transaction_id="2088000001")
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert await payments(collection) == 1
    assert await rejections(collection) == []


@pytest.mark.parametrize("how", ["expired", "cancelled", "completed", "other_amount", "other_channel"])
async def test_a_genuine_notification_that_cannot_be_recorded_is_refused_and_kept(
    collection: Harness, how: str
) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    token = resident_token()
    order = await start_order(collection, [bill["bill_id"]], token=token)
    amount = None
    if how == "expired":
        collection.at("2023-11-01T12:00:01+08:00")  # the default order waits two hours
    elif how == "cancelled":
        cancelled = await collection.client.post(
            f"/v1/payment-orders/{order['order_id']}/cancellation",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert cancelled.json()["status"] == "cancelled", cancelled.text
    elif how == "completed":
        assert (await notify_order(collection, order, transaction_id="WX-FIRST")).status_code == 200
    elif how == "other_amount":
        amount = "3.80"
    else:
        order = order | {"channel": "bank"}  # the bank quotes an order started for WeChat
    expected = {
        "expired": (409, "payment_order_expired"),
        "cancelled": (409, "payment_order_cancelled"),
        "completed": (409, "payment_order_completed"),
        "other_amount": (422, "amount_mismatch"),
        "other_channel": (409, "payment_order_channel_mismatch"),
    }[how]
    response = await notify_order(collection, order, amount=amount, transaction_id="WX-LATE")
    assert (response.status_code, problem(response)["code"]) == expected
    assert await payments(collection) == (1 if how == "completed" else 0)
    kept = await rejections(collection)
    assert [(r["transaction_id"], r["code"], r["order_reference"]) for r in kept] == [
        ("WX-LATE", expected[1], order["reference"])
    ]
    # The channel retries until answered 2xx: one row, counted.
    await notify_order(collection, order, amount=amount, transaction_id="WX-LATE")
    assert [r["attempts"] for r in await rejections(collection)] == [2]


async def test_an_order_is_refused_for_bills_that_cannot_be_paid(collection: Harness) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    await pay_online(collection, [bill["bill_id"]])
    for body, status, code in [
        ({"bill_ids": [bill["bill_id"]], "channel": "wechat"}, 409, "bill_already_paid"),
        ({"bill_ids": ["no-such-bill"], "channel": "wechat"}, 404, "bill_not_found"),
        ({"bill_ids": [bill["bill_id"]], "channel": "cash"}, 422, "channel_not_orderable"),
        ({"bill_ids": [bill["bill_id"], bill["bill_id"]], "channel": "wechat"}, 422, "validation_error"),
    ]:
        response = await collection.client.post(
            "/v1/payment-orders",
            json=body,
            headers={"Idempotency-Key": str(uuid.uuid4()), "Authorization": f"Bearer {resident_token()}"},
        )
        assert (response.status_code, problem(response)["code"]) == (status, code), body
    late = await open_bill(collection)
    collection.at("2024-01-01T00:00:30+08:00")
    response = await collection.client.post(
        "/v1/payment-orders",
        json={"bill_ids": [late["bill_id"]], "channel": "wechat"},
        headers={"Idempotency-Key": "k", "Authorization": f"Bearer {resident_token()}"},
    )
    assert (response.status_code, problem(response)["code"]) == (422, "payment_window_closed")


async def test_idempotency_keys_are_each_residents_own(collection: Harness) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    first = await start_order(collection, [bill["bill_id"]], token=resident_token(sub="a"), key="same")
    replay = await start_order(collection, [bill["bill_id"]], token=resident_token(sub="a"), key="same")
    other = await start_order(collection, [bill["bill_id"]], token=resident_token(sub="b"), key="same")
    assert replay["order_id"] == first["order_id"]
    assert other["order_id"] != first["order_id"]
    peek = await collection.client.get(
        f"/v1/payment-orders/{first['order_id']}",
        headers={"Authorization": f"Bearer {resident_token(sub='b')}"},
    )
    assert (peek.status_code, problem(peek)["code"]) == (403, "not_your_record")


async def test_a_transaction_id_is_claimed_only_by_its_own_channel(collection: Harness) -> None:
    """A counter payment quoting a WeChat transaction number cannot block WeChat's genuine notification."""
    collection.at(NOW)
    counter, online = await open_bill(collection), await open_bill(collection)
    officer = dev_token(Role.TAX_OFFICER)
    squat = await collection.client.post(
        "/v1/payments",
        json={
            "bill_id": counter["bill_id"],
            "amount": "380.00",
            "channel": "tax_hall",
            "channel_reference": "4200",
        },
        headers={"Idempotency-Key": "squat", "Authorization": f"Bearer {officer}"},
    )
    assert squat.status_code == 201, squat.text
    genuine = await pay_online(collection, [online["bill_id"]], transaction_id="4200")
    assert (genuine["channel"], genuine["channel_reference"]) == ("wechat", "4200")


async def test_the_sandbox_plays_the_channel_for_the_orders_owner(collection: Harness) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    token = resident_token(sub="dev-front-end")
    order = await start_order(collection, [bill["bill_id"]], "provincial_app", token=token)
    stranger = await collection.client.post(
        f"/v1/sandbox/payment-orders/{order['order_id']}/payment",
        headers={"Authorization": f"Bearer {resident_token(sub='someone-else')}"},
    )
    assert stranger.status_code == 403
    paid = await collection.client.post(
        f"/v1/sandbox/payment-orders/{order['order_id']}/payment",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert paid.status_code == 200, paid.text
    assert (paid.json()["channel"], paid.json()["origin"]) == ("provincial_app", "notification")
    assert paid.json()["channel_reference"].startswith("SANDBOX")
    twice = await collection.client.post(
        f"/v1/sandbox/payment-orders/{order['order_id']}/payment",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (twice.status_code, problem(twice)["code"]) == (409, "payment_order_completed")
    assert await payments(collection) == 1
    assert await rejections(collection) == []  # the sandbox charged nothing for a closed order


def test_production_refuses_the_sandbox() -> None:
    production: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql+asyncpg://u@db/x",
        "auth_keys": {"2026-11": "t" * 40},
        "channel_secrets": {c: "x" * 40 + c for c in ("wechat", "alipay", "provincial_app", "bank")},
        **PRODUCTION_KAFKA,
    }
    with pytest.raises(ValueError, match="payment_sandbox"):
        CollectionSettings(**production, payment_sandbox=True)
    settings = CollectionSettings(**production)
    assert settings.payment_sandbox is False
    paths = create_app(settings).openapi()["paths"]
    assert not [path for path in paths if path.startswith("/v1/sandbox")]
    assert "/v1/payment-orders" in paths


async def test_a_reference_with_a_run_of_digits_reaches_the_resident_unmasked(
    collection: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Masking hides phone and ID numbers from residents, not digits inside a reference: a mangled reference
    would make the channel's notification for money it took unrecordable."""
    collection.at(NOW)
    monkeypatch.setattr(orders_service, "_reference", lambda: "CBOA559FC16345671449BD73EEA")
    bill = await open_bill(collection)
    order = await start_order(collection, [bill["bill_id"]])
    assert order["reference"] == "CBOA559FC16345671449BD73EEA"
    assert (await notify_order(collection, order)).status_code == 200
    assert (
        mask_pii("联系电话13812345678，证件 340104199001011234")
        == "联系电话138****5678，证件 3401**********1234"
    )


async def test_concurrent_notifications_on_the_embedded_database_all_record(collection: Harness) -> None:
    """SQLite (the `make run` default) serialises writers: concurrent notifications wait their turn rather
    than fail. (PostgreSQL's races run against the real services in tests/e2e/test_races.py; this harness
    binds PostgreSQL tests to one connection.)"""
    if collection.backend != "sqlite":
        pytest.skip("one connection per PostgreSQL test here; see tests/e2e/test_races.py")
    collection.at(NOW)
    bills = [await open_bill(collection) for _ in range(12)]
    orders = [await start_order(collection, [b["bill_id"]]) for b in bills]
    answers = await asyncio.gather(*(notify_order(collection, order) for order in orders))
    assert [a.status_code for a in answers] == [200] * len(orders), [
        a.text for a in answers if a.status_code != 200
    ]
    assert await payments(collection) == len(orders)


async def record_from_file(h: Harness, transaction_id: str, bill_id: str) -> None:
    """The tax side's WeChat file shows a payment nobody recorded: reconciliation records it."""
    lines = f"交易流水号,缴费时间,缴费金额,账单号\n{transaction_id},2023-11-01,380.00,{bill_id}\n"
    response = await h.client.post(
        "/v1/reconciliations",
        data={"channel": "wechat", "business_day": "2023-11-01", "uploaded_by": "officer"},
        files={"file": ("wechat.csv", lines.encode())},
    )
    assert response.status_code == 201, response.text


async def test_a_notification_for_a_transaction_the_file_recorded_first_completes_its_order(
    collection: Harness,
) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    order = await start_order(collection, [bill["bill_id"]])
    await record_from_file(collection, "TXR0", bill["bill_id"])
    late = await notify_order(collection, order, transaction_id="TXR0")
    assert (late.status_code, late.headers.get("Idempotent-Replayed")) == (200, "true"), late.text
    shown = (await collection.client.get(f"/v1/payment-orders/{order['order_id']}")).json()
    assert (shown["status"], shown["payment_id"]) == ("completed", late.json()["payment_id"])
    assert await payments(collection) == 1


async def test_a_notification_quoting_a_transaction_recorded_for_other_bills_is_refused_and_kept(
    collection: Harness,
) -> None:
    collection.at(NOW)
    first, second = await open_bill(collection), await open_bill(collection)
    order = await start_order(collection, [second["bill_id"]])
    await record_from_file(collection, "TXR1", first["bill_id"])
    response = await notify_order(collection, order, transaction_id="TXR1")
    assert (response.status_code, problem(response)["code"]) == (409, "channel_reference_used")
    assert [r["transaction_id"] for r in await rejections(collection)] == ["TXR1"]
    assert await bill_status(collection, second["bill_id"]) == "open"


async def test_an_idempotency_key_of_any_length_from_any_resident_fits(collection: Harness) -> None:
    collection.at(NOW)
    bill = await open_bill(collection)
    token = resident_token(sub="o" * 128)
    order = await start_order(collection, [bill["bill_id"]], token=token, key="k" * 128)
    assert order["status"] == "awaiting_channel"


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01T00:00:00+01:00"},
        {"since": "2026-01-01T00:00:00Z", "after": "0001-01-01T00:00:00+01:00|a"},
    ],
)
async def test_moments_out_of_range_are_refused_not_failed(
    collection: Harness, params: dict[str, str]
) -> None:
    response = await collection.client.get("/v1/bills/standings/changed", params=params)
    assert response.status_code == 422, response.text
    assert problem(response)["code"] in {"moment_out_of_range", "cursor_invalid"}


async def test_a_file_line_naming_other_bills_than_its_transaction_paid_is_not_matched(
    collection: Harness,
) -> None:
    collection.at(NOW)
    first, second = await open_bill(collection), await open_bill(collection)
    await pay_online(collection, [second["bill_id"]], transaction_id="TXR2")
    lines = f"交易流水号,缴费时间,缴费金额,账单号\nTXR2,2023-11-01,380.00,{first['bill_id']}\n"
    response = await collection.client.post(
        "/v1/reconciliations",
        data={"channel": "wechat", "business_day": "2023-11-01", "uploaded_by": "officer"},
        files={"file": ("wechat.csv", lines.encode())},
    )
    assert response.status_code == 201, response.text
    assert response.json()["summary"]["lines"].get("bills_mismatch") == 1, response.json()["summary"]
