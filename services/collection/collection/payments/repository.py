from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing.models import Bill, BillStatus
from collection.ledger.accounts import Channel
from collection.payments.models import Payment, PaymentItem

# A paid or refunded bill was settled by exactly one payment; an open or cancelled one by none.
_SETTLED = (BillStatus.PAID, BillStatus.REFUNDED)


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


async def payments_not_matching_items(session: AsyncSession) -> list[str]:
    """Payments whose amount is not what their items put on bills."""
    items = (
        select(PaymentItem.payment_id, func.sum(PaymentItem.amount_fen).label("fen"))
        .group_by(PaymentItem.payment_id)
        .subquery()
    )
    query = (
        select(Payment.id)
        .outerjoin(items, items.c.payment_id == Payment.id)
        .where(func.coalesce(items.c.fen, -1) != Payment.amount_fen)
        .order_by(Payment.id)
    )
    return list((await session.scalars(query)).all())


async def bills_not_settled_once(session: AsyncSession) -> list[str]:
    """Bills paid by more than one payment, paid without one, or holding a payment while not paid."""
    count = func.count(PaymentItem.payment_id)
    query = (
        select(Bill.id)
        .outerjoin(PaymentItem, PaymentItem.bill_id == Bill.id)
        .group_by(Bill.id, Bill.status)
        .having(((Bill.status.in_(_SETTLED)) & (count != 1)) | ((Bill.status.not_in(_SETTLED)) & (count > 0)))
        .order_by(Bill.id)
    )
    return list((await session.scalars(query)).all())
