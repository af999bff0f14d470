from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from collection.agents.models import Agent, Remittance
from shared.fields import Actor, Township
from shared.money import Yuan, YuanInput
from shared.regions import REGION_CODE_PATTERN

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = Field(
        description="The tax bureau's code for the agent"
    )
    name: Text = Field(examples=["泾川镇城东村村民委员会"])
    region_code: str = Field(pattern=REGION_CODE_PATTERN)
    township: Township | None = None


class AgentOut(BaseModel):
    agent_id: str
    name: str
    region_code: str
    township: str | None
    collected: Yuan = Field(description="Cash taken from residents")
    remitted: Yuan = Field(description="Paid into the treasury")
    outstanding: Yuan = Field(description="Owed to the treasury until remitted")

    @classmethod
    def of(cls, agent: Agent, collected: int, remitted: int) -> "AgentOut":
        return cls(
            agent_id=agent.id,
            name=agent.name,
            region_code=agent.region_code,
            township=agent.township,
            collected=collected,
            remitted=remitted,
            outstanding=collected - remitted,
        )


class AgentList(BaseModel):
    items: list[AgentOut]


class RemittanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: YuanInput
    reference: Text = Field(description="The treasury's receipt (缴库凭证号)")
    recorded_by: Actor


class RemittanceOut(BaseModel):
    remittance_id: str
    agent_id: str
    amount: Yuan
    reference: str
    recorded_by: str
    remitted_at: datetime
    outstanding_after: Yuan

    @classmethod
    def of(cls, r: Remittance, outstanding_after: int) -> "RemittanceOut":
        return cls(
            remittance_id=r.id,
            agent_id=r.agent_id,
            amount=r.amount_fen,
            reference=r.reference,
            recorded_by=r.recorded_by,
            remitted_at=r.remitted_at,
            outstanding_after=outstanding_after,
        )
