from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing.models import Bill, BillStatus
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


async def paid_between(
    session: AsyncSession, region_code: str, start: datetime, end: datetime, after: str, limit: int
) -> list[tuple[Bill, PaymentItem]]:
    """A region's bills paid in [start, end) and still paid (not refunded in full), by enrollment id."""
    query = (
        select(Bill, PaymentItem)
        .join(PaymentItem, PaymentItem.bill_id == Bill.id)
        .where(
            Bill.region_code == region_code,
            Bill.status == BillStatus.PAID,
            Bill.paid_at >= start,
            Bill.paid_at < end,
            Bill.enrollment_id > after,
        )
        .order_by(Bill.enrollment_id)
        .limit(limit)
    )
    return [(bill, item) for bill, item in (await session.execute(query)).all()]


async def paid_for_enrollments(
    session: AsyncSession, enrollment_ids: list[str]
) -> list[tuple[Bill, PaymentItem, Payment]]:
    query = (
        select(Bill, PaymentItem, Payment)
        .join(PaymentItem, PaymentItem.bill_id == Bill.id)
        .join(Payment, Payment.id == PaymentItem.payment_id)
        .where(Bill.enrollment_id.in_(enrollment_ids), Bill.status == BillStatus.PAID)
    )
    return [(bill, item, payment) for bill, item, payment in (await session.execute(query)).all()]
