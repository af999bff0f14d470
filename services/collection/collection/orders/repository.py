import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from collection.database import attached, held_rows, one_statement
from collection.ledger.accounts import Channel
from collection.orders.models import OrderStatus, PaymentOrder
from shared.db import DriverStatement


def add(session: AsyncSession, order: PaymentOrder) -> None:
    session.add(order)


async def get(session: AsyncSession, order_id: str) -> PaymentOrder | None:
    return await session.get(PaymentOrder, order_id)


async def by_reference_for_update(session: AsyncSession, reference: str) -> PaymentOrder | None:
    if one_statement(session):
        return _order(session, await held_rows(session, _BY_REFERENCE_FOR_UPDATE, {"reference": reference}))
    query = select(PaymentOrder).where(PaymentOrder.reference == reference).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def get_for_update(session: AsyncSession, order_id: str) -> PaymentOrder | None:
    if one_statement(session):
        return _order(session, await held_rows(session, _FOR_UPDATE, {"id": order_id}))
    query = select(PaymentOrder).where(PaymentOrder.id == order_id).with_for_update()
    return (await session.scalars(query)).one_or_none()


# The order a notification completes, locked, read as a plain row on PostgreSQL (`held_rows`).
_ORDER = """
SELECT id, reference, channel, bill_ids, amount_fen, status, created_by, created_at, expires_at, closed_at,
    payment_id
FROM payment_orders
"""
_FOR_UPDATE = DriverStatement(text(_ORDER + "WHERE id = :id FOR UPDATE"))
_BY_REFERENCE_FOR_UPDATE = DriverStatement(text(_ORDER + "WHERE reference = :reference FOR UPDATE"))


def _order(session: AsyncSession, rows: list[Any]) -> PaymentOrder | None:
    if not rows:
        return None
    row = rows[0]
    values = {**row, "channel": Channel(row["channel"]), "status": OrderStatus(row["status"])}
    return attached(session, PaymentOrder, values)


# A new order and the idempotency record of the request that made it, in one statement (PostgreSQL).
_ADD_REMEMBERED = DriverStatement(
    text(
        """
WITH remembered AS (
    INSERT INTO idempotency_keys (key, request_hash, status_code, response_body, created_at)
    VALUES (CAST(:record_key AS varchar), CAST(:request_hash AS varchar), CAST(:status_code AS integer),
        CAST(:response_body AS text), now())
)
INSERT INTO payment_orders
    (id, reference, channel, bill_ids, amount_fen, status, created_by, created_at, expires_at)
VALUES (CAST(:id AS varchar), CAST(:reference AS varchar), CAST(:channel AS varchar), CAST(:bill_ids AS json),
    CAST(:amount_fen AS bigint), CAST(:status AS varchar), CAST(:created_by AS varchar),
    CAST(:created_at AS timestamptz), CAST(:expires_at AS timestamptz))
"""
    )
)


async def add_remembered(
    session: AsyncSession, order: PaymentOrder, record: tuple[str, str, int, str]
) -> None:
    """Write the order with the idempotency record (key, request hash, status code, response body) of the
    request that made it, in one statement instead of a unit of work's two; the order stays out of the
    session (nothing later in the request changes it)."""
    record_key, request_hash, status_code, response_body = record
    await held_rows(
        session,
        _ADD_REMEMBERED,
        {
            "record_key": record_key,
            "request_hash": request_hash,
            "status_code": status_code,
            "response_body": response_body,
            "id": order.id,
            "reference": order.reference,
            "channel": order.channel.value,
            "bill_ids": json.dumps(order.bill_ids),
            "amount_fen": order.amount_fen,
            "status": order.status.value,
            "created_by": order.created_by,
            "created_at": order.created_at,
            "expires_at": order.expires_at,
        },
    )
