from sqlalchemy.ext.asyncio import AsyncSession

from collection.payments.models import Payment


async def get(session: AsyncSession, payment_id: str) -> Payment | None:
    return await session.get(Payment, payment_id)


def add(session: AsyncSession, payment: Payment) -> None:
    session.add(payment)
