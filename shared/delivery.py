"""Operators' view of a service's event delivery: what is still waiting (the outbox not yet published, the
dead letters not yet resolved), and sending an enrollment's events again.

Sending again is how lost events are repaired, e.g. after the broker lost its storage: every outbox row
about the given subjects (enrollment ids) is marked unpublished, so the relay publishes them again in their
original order with their original ids. Consumers apply each event id once, so what had arrived changes
nothing and what was lost is applied. The outbox keeps published rows for this."""

from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select, update

from shared.auth import CurrentAccess, allow
from shared.db import DbSession
from shared.fields import Actor
from shared.inbox import DeadLetterMixin
from shared.outbox import OutboxMixin, wake_relay

log = structlog.get_logger(__name__)

REPUBLISH_LIMIT = 1000


class Backlog(BaseModel):
    unpublished: int = Field(description="Outbox events committed but not yet acknowledged by the broker")
    oldest_unpublished_at: datetime | None
    dead_letters_open: int = Field(description="Messages set aside and neither replayed nor discarded")


class Republication(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subjects: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=REPUBLISH_LIMIT, description="Enrollment ids (the events' subject and key)"
    )
    requested_by: Actor


class Republished(BaseModel):
    events: int = Field(description="Events marked for publishing again")
    subjects: list[str] = Field(description="The given subjects that had events; the others had none")


def delivery_router(outbox: type[OutboxMixin], dead_letters: type[DeadLetterMixin]) -> APIRouter:
    router = APIRouter(prefix="/v1/events", tags=["event delivery"], dependencies=[allow()])

    @router.get("/backlog", summary="Events not yet published, and dead letters not yet resolved")
    async def backlog(session: DbSession) -> Backlog:
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(outbox.created_at)).where(outbox.published_at.is_(None))
            )
        ).one()
        letters = await session.scalar(
            select(func.count()).select_from(dead_letters).where(dead_letters.resolution.is_(None))
        )
        return Backlog(unpublished=count, oldest_unpublished_at=oldest, dead_letters_open=letters or 0)

    @router.post(
        "/republications",
        summary="Publish every event about the given enrollments again (repairs events the broker lost)",
    )
    async def republish(body: Republication, session: DbSession, access: CurrentAccess) -> Republished:
        subjects = sorted(set(body.subjects))
        found = (await session.scalars(select(outbox.key).where(outbox.key.in_(subjects)).distinct())).all()
        result = await session.execute(
            update(outbox)
            .where(outbox.key.in_(subjects), outbox.published_at.is_not(None))
            .values(published_at=None)
            .execution_options(synchronize_session=False)
        )
        wake_relay(session)
        log.info("events_republished", subjects=len(found), requested_by=body.requested_by)
        for subject in found:
            access.touch(None, f"events:{subject}")
        return Republished(events=result.rowcount, subjects=sorted(found))  # type: ignore[attr-defined]

    return router
