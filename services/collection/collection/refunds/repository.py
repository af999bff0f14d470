from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

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
