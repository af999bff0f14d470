from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.payments.models import Channel, Payment
from collection.refunds.models import Refund


def add(session: AsyncSession, refund: Refund) -> None:
    session.add(refund)


async def for_bill(session: AsyncSession, bill_id: str) -> list[Refund]:
    query = select(Refund).where(Refund.bill_id == bill_id).order_by(Refund.refunded_at, Refund.id)
    return list((await session.scalars(query)).all())


async def totals_by_source(session: AsyncSession) -> dict[tuple[Channel, str | None], int]:
    """Refunded money by the channel (and agent) it was paid through."""
    query = (
        select(Payment.channel, Payment.agent_id, func.sum(Refund.amount_fen))
        .join(Payment, Payment.id == Refund.payment_id)
        .group_by(Payment.channel, Payment.agent_id)
    )
    return {(channel, agent): int(total) for channel, agent, total in (await session.execute(query)).all()}
