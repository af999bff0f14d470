from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.payments.models import Channel, Payment, PaymentItem


async def get(session: AsyncSession, payment_id: str) -> Payment | None:
    return await session.get(Payment, payment_id)


def add(session: AsyncSession, payment: Payment) -> None:
    session.add(payment)


async def totals_by_channel(session: AsyncSession) -> dict[Channel, int]:
    query = select(Payment.channel, func.sum(Payment.amount_fen)).group_by(Payment.channel)
    return {channel: int(total) for channel, total in (await session.execute(query)).all()}


async def settled_by_channel(session: AsyncSession) -> dict[Channel, int]:
    """Money each channel settled into the treasury (confirmed by reconciliation)."""
    query = (
        select(Payment.channel, func.sum(Payment.amount_fen))
        .where(Payment.settled_at.is_not(None))
        .group_by(Payment.channel)
    )
    return {channel: int(total) for channel, total in (await session.execute(query)).all()}


async def by_receipt_no(session: AsyncSession, receipt_no: str) -> Payment | None:
    return (await session.scalars(select(Payment).where(Payment.receipt_no == receipt_no))).one_or_none()


async def item_for_bill(session: AsyncSession, bill_id: str) -> tuple[PaymentItem, Payment] | None:
    query = select(PaymentItem, Payment).join(Payment, Payment.id == PaymentItem.payment_id)
    row = (await session.execute(query.where(PaymentItem.bill_id == bill_id))).first()
    return (row[0], row[1]) if row else None


async def by_channel_reference(session: AsyncSession, channel: Channel, reference: str) -> Payment | None:
    query = select(Payment).where(Payment.channel == channel, Payment.channel_reference == reference)
    return (await session.scalars(query)).one_or_none()
