from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collection.agents.models import Agent, Remittance
from collection.payments.models import Payment


async def get(session: AsyncSession, agent_id: str, *, for_update: bool = False) -> Agent | None:
    query = select(Agent).where(Agent.id == agent_id)
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def in_region(session: AsyncSession, *, region_code: str | None = None) -> list[Agent]:
    query = select(Agent).order_by(Agent.region_code, Agent.id)
    if region_code:
        query = query.where(Agent.region_code == region_code)
    return list((await session.scalars(query)).all())


async def collected(session: AsyncSession, *, agent_ids: list[str] | None = None) -> dict[str, int]:
    query = select(Payment.agent_id, func.sum(Payment.amount_fen)).where(Payment.agent_id.is_not(None))
    if agent_ids is not None:
        query = query.where(Payment.agent_id.in_(agent_ids))
    rows = (await session.execute(query.group_by(Payment.agent_id))).all()
    return {agent_id: int(total) for agent_id, total in rows if agent_id is not None}


async def remitted(session: AsyncSession, *, agent_ids: list[str] | None = None) -> dict[str, int]:
    query = select(Remittance.agent_id, func.sum(Remittance.amount_fen))
    if agent_ids is not None:
        query = query.where(Remittance.agent_id.in_(agent_ids))
    rows = (await session.execute(query.group_by(Remittance.agent_id))).all()
    return {agent_id: int(total) for agent_id, total in rows}


async def remittance_by_reference(session: AsyncSession, agent_id: str, reference: str) -> Remittance | None:
    query = select(Remittance).where(Remittance.agent_id == agent_id, Remittance.reference == reference)
    return (await session.scalars(query)).one_or_none()


def add(session: AsyncSession, item: Agent | Remittance) -> None:
    session.add(item)
