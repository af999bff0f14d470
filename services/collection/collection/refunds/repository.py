from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.billing.models import Bill, BillStatus
from collection.payments.models import PaymentItem
from collection.refunds.models import Refund


def add(session: AsyncSession, refund: Refund) -> None:
    session.add(refund)


async def for_bill(session: AsyncSession, bill_id: str) -> list[Refund]:
    query = select(Refund).where(Refund.bill_id == bill_id).order_by(Refund.refunded_at, Refund.id)
    return list((await session.scalars(query)).all())


async def totals_by_account(session: AsyncSession) -> dict[str, int]:
    """Refunded money by the ledger account it left."""
    query = select(Refund.from_account, func.sum(Refund.amount_fen)).group_by(Refund.from_account)
    return {account: int(total) for account, total in (await session.execute(query)).all()}


async def bills_with_refund_problems(session: AsyncSession) -> list[tuple[str, str, int, int]]:
    """Per bill (id, problem, paid, refunded) where refunds and payment disagree: refunds beyond what was
    paid, a refunded bill not refunded in full, or a bill whose refunded total differs from its refunds."""
    paid = (
        select(PaymentItem.bill_id, func.sum(PaymentItem.amount_fen).label("fen"))
        .group_by(PaymentItem.bill_id)
        .subquery()
    )
    refunded = (
        select(Refund.bill_id, func.sum(Refund.amount_fen).label("fen")).group_by(Refund.bill_id).subquery()
    )
    paid_fen = func.coalesce(paid.c.fen, 0)
    refunded_fen = func.coalesce(refunded.c.fen, 0)
    query = (
        select(Bill.id, Bill.status, Bill.refunded_fen, paid_fen, refunded_fen)
        .outerjoin(paid, paid.c.bill_id == Bill.id)
        .outerjoin(refunded, refunded.c.bill_id == Bill.id)
        .where(
            (refunded_fen > paid_fen)
            | ((Bill.status == BillStatus.REFUNDED) & (refunded_fen != paid_fen))
            | (Bill.refunded_fen != refunded_fen)
        )
        .order_by(Bill.id)
    )
    found: list[tuple[str, str, int, int]] = []
    for bill_id, status, _, paid_total, refunded_total in (await session.execute(query)).all():
        if refunded_total > paid_total:
            problem = "refunds_exceed_payment"
        elif status is BillStatus.REFUNDED and refunded_total != paid_total:
            problem = "refunded_bill_not_refunded_in_full"
        else:
            problem = "bill_refunded_total_differs"
        found.append((bill_id, problem, int(paid_total), int(refunded_total)))
    return found
