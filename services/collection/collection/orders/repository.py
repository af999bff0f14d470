from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.orders.models import PaymentOrder


def add(session: AsyncSession, order: PaymentOrder) -> None:
    session.add(order)


async def get(session: AsyncSession, order_id: str) -> PaymentOrder | None:
    return await session.get(PaymentOrder, order_id)


async def by_reference_for_update(session: AsyncSession, reference: str) -> PaymentOrder | None:
    query = select(PaymentOrder).where(PaymentOrder.reference == reference).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def get_for_update(session: AsyncSession, order_id: str) -> PaymentOrder | None:
    query = select(PaymentOrder).where(PaymentOrder.id == order_id).with_for_update()
    return (await session.scalars(query)).one_or_none()
