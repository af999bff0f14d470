"""A resident's online payment against the running system, as the front-end and the channel make it: the
resident starts a payment order, then the sandbox payment provider plays the channel and sends the signed
notification that records the payment. Tax officers record only counter payments (`POST /v1/payments`)."""

import uuid
from typing import Any

from canbao.harness import Stack
from shared.auth import Role, dev_token


def resident_token(id_number: str | None = None, sub: str | None = None) -> str:
    """A resident's token: their own ID number, or (paying for family) just their account."""
    account = sub or id_number or f"resident-{uuid.uuid4().hex[:12]}"
    return dev_token(Role.RESIDENT, sub=account, id_number=id_number)


async def start_order(
    stack: Stack, token: str, bill_ids: list[str], channel: str = "wechat", key: str | None = None
) -> dict[str, Any]:
    """`POST /v1/payment-orders`: the order waits for its channel; nothing is paid yet."""
    async with stack.client("collection", token) as collection:
        response = await collection.post(
            "/v1/payment-orders",
            json={"bill_ids": bill_ids, "channel": channel},
            headers={"Idempotency-Key": key or str(uuid.uuid4())},
        )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    assert (order["status"], order["payment_id"]) == ("awaiting_channel", None), order
    return order


async def sandbox_pay(stack: Stack, token: str, order: dict[str, Any]) -> dict[str, Any]:
    """The sandbox channel takes the order's money and notifies collection; the payment recorded."""
    async with stack.client("collection", token) as collection:
        response = await collection.post(f"/v1/sandbox/payment-orders/{order['order_id']}/payment")
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()
    assert (payment["origin"], payment["channel"], payment["amount"]) == (
        "notification",
        order["channel"],
        order["amount"],
    ), payment
    return payment


async def pay_online(
    stack: Stack, bill_ids: list[str], channel: str = "wechat", id_number: str | None = None
) -> dict[str, Any]:
    """A resident's whole online payment of the bills: the order, then the channel's notification."""
    token = resident_token(id_number)
    order = await start_order(stack, token, bill_ids, channel)
    return await sandbox_pay(stack, token, order)


async def order_of(stack: Stack, token: str, order_id: str) -> dict[str, Any]:
    async with stack.client("collection", token) as collection:
        response = await collection.get(f"/v1/payment-orders/{order_id}")
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order
