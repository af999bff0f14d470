from fastapi import APIRouter, Response, status

from collection.agents import service
from collection.agents.errors import (
    AgentExists,
    AgentNotFound,
    RemittanceExceedsCash,
    RemittanceReferenceUsed,
)
from collection.agents.schemas import AgentCreate, AgentList, AgentOut, RemittanceCreate, RemittanceOut
from collection.idempotency.service import IdempotencyKey, IdempotencyKeyRequired, IdempotencyKeyReused
from shared.auth import Role, allow
from shared.clock import AppClock
from shared.db import DbSession
from shared.errors import error_responses
from shared.fields import RegionCodeQuery

router = APIRouter(prefix="/v1/agents", tags=["agents"], dependencies=[allow(Role.TAX_OFFICER)])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a township or village collecting agent (代收单位)",
    responses=error_responses(AgentExists),
)
async def register_agent(body: AgentCreate, session: DbSession, clock: AppClock) -> AgentOut:
    return await service.register(session, clock, body)


@router.get("", summary="Agents with the cash each has collected, remitted and still owes the treasury")
async def list_agents(session: DbSession, region_code: RegionCodeQuery | None = None) -> AgentList:
    return AgentList(items=await service.listing(session, region_code=region_code))


@router.get("/{agent_id}", summary="One agent and its cash", responses=error_responses(AgentNotFound))
async def get_agent(agent_id: str, session: DbSession) -> AgentOut:
    return await service.describe(session, agent_id)


@router.post(
    "/{agent_id}/remittances",
    status_code=status.HTTP_201_CREATED,
    summary="Record cash an agent paid into the treasury (解缴国库)",
    description="Requires an Idempotency-Key. No more than the agent holds; a treasury receipt once per "
    "agent.",
    responses=error_responses(
        IdempotencyKeyRequired,
        IdempotencyKeyReused,
        AgentNotFound,
        RemittanceExceedsCash,
        RemittanceReferenceUsed,
    ),
)
async def remit(
    agent_id: str,
    body: RemittanceCreate,
    key: IdempotencyKey,
    session: DbSession,
    clock: AppClock,
    response: Response,
) -> RemittanceOut:
    result, replayed = await service.remit(session, clock, agent_id, body, key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result
