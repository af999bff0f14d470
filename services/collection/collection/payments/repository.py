from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.payments.models import Channel, Payment


async def get(session: AsyncSession, payment_id: str) -> Payment | None:
    return await session.get(Payment, payment_id)


def add(session: AsyncSession, payment: Payment) -> None:
    session.add(payment)


async def totals_by_channel(session: AsyncSession) -> dict[Channel, int]:
    query = select(Payment.channel, func.sum(Payment.amount_fen)).group_by(Payment.channel)
    return {channel: int(total) for channel, total in (await session.execute(query)).all()}


async def by_receipt_no(session: AsyncSession, receipt_no: str) -> Payment | None:
    return (await session.scalars(select(Payment).where(Payment.receipt_no == receipt_no))).one_or_none()
