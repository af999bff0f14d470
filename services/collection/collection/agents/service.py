"""代收代缴: township and village agents collect cash for residents and owe it to the treasury until they
remit it. Their payments go through the payments API with channel `agent` and their `agent_id`."""

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from collection.agents import repository
from collection.agents.errors import (
    AgentExists,
    AgentNotFound,
    RemittanceExceedsCash,
    RemittanceReferenceUsed,
)
from collection.agents.models import Agent, Remittance
from collection.agents.schemas import AgentCreate, AgentOut, RemittanceCreate, RemittanceOut
from collection.idempotency import service as idempotency
from collection.ledger import accounts
from collection.ledger import service as ledger
from collection.ledger.models import TransactionKind
from shared.clock import Clock


async def register(session: AsyncSession, clock: Clock, body: AgentCreate) -> AgentOut:
    if await repository.get(session, body.agent_id) is not None:
        raise AgentExists({"agent_id": body.agent_id})
    agent = Agent(
        id=body.agent_id,
        name=body.name,
        region_code=body.region_code,
        township=body.township,
        created_at=clock.now(),
    )
    repository.add(session, agent)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise AgentExists({"agent_id": body.agent_id}) from exc
    return AgentOut.of(agent, 0, 0)


async def get(session: AsyncSession, agent_id: str, *, for_update: bool = False) -> Agent:
    agent = await repository.get(session, agent_id, for_update=for_update)
    if agent is None:
        raise AgentNotFound({"agent_id": agent_id})
    return agent


async def describe(session: AsyncSession, agent_id: str) -> AgentOut:
    agent = await get(session, agent_id)
    return (await _with_cash(session, [agent]))[0]


async def listing(session: AsyncSession, *, region_code: str | None = None) -> list[AgentOut]:
    return await _with_cash(session, await repository.in_region(session, region_code=region_code))


async def remit(
    session: AsyncSession, clock: Clock, agent_id: str, body: RemittanceCreate, key: str
) -> tuple[RemittanceOut, bool]:
    request = idempotency.Request.of(f"remittances:{agent_id}", key, body)
    stored = await idempotency.stored_response(session, request)
    if stored is not None:
        return RemittanceOut.model_validate(stored), True
    # The agent's row is locked so two remittances cannot both spend the same cash.
    agent = await get(session, agent_id, for_update=True)
    if await repository.remittance_by_reference(session, agent_id, body.reference) is not None:
        raise RemittanceReferenceUsed({"agent_id": agent_id, "reference": body.reference})
    holding = (await _with_cash(session, [agent]))[0].outstanding
    if body.amount > holding:
        raise RemittanceExceedsCash({"outstanding": str(holding), "agent_id": agent_id})
    remittance = Remittance(
        id=str(uuid.uuid4()),
        agent_id=agent_id,
        amount_fen=body.amount,
        reference=body.reference,
        recorded_by=body.recorded_by,
        remitted_at=clock.now(),
    )
    repository.add(session, remittance)
    await session.flush()
    ledger.post(
        session,
        TransactionKind.AGENT_REMITTANCE,
        remittance.id,
        remittance.remitted_at,
        {accounts.TREASURY: remittance.amount_fen, accounts.agent_cash(agent_id): -remittance.amount_fen},
    )
    result = RemittanceOut.of(remittance, holding - remittance.amount_fen)
    idempotency.remember(session, request, 201, result)
    return result, False


async def _with_cash(session: AsyncSession, agents: list[Agent]) -> list[AgentOut]:
    ids = [a.id for a in agents]
    collected = await repository.collected(session, agent_ids=ids)
    remitted = await repository.remitted(session, agent_ids=ids)
    return [AgentOut.of(a, collected.get(a.id, 0), remitted.get(a.id, 0)) for a in agents]
