"""/healthz (the process is up) and /readyz (its database and the broker answer)."""

import asyncio
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from shared.db import ping
from shared.kafka import KafkaLink

_PROBE_TIMEOUT_S = 3.0


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    database: bool
    broker: bool


router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Readiness, "description": "database or broker unreachable"}})
async def readyz(request: Request, response: Response) -> Readiness:
    link: KafkaLink = request.app.state.kafka

    async def database_ok() -> bool:
        try:
            await asyncio.wait_for(ping(request.app.state.engine), _PROBE_TIMEOUT_S)
        except Exception:
            return False
        return True

    async def broker_ok() -> bool:
        try:
            return await asyncio.wait_for(link.is_reachable(), _PROBE_TIMEOUT_S)
        except TimeoutError:
            return False

    database, broker = await asyncio.gather(database_ok(), broker_ok())
    ready = database and broker
    if not ready:
        response.status_code = 503
    return Readiness(status="ready" if ready else "not_ready", database=database, broker=broker)
