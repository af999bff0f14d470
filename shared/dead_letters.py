"""Operators' view of the dead-letter table: list what the consumer set aside, replay it once the cause is
fixed, or discard it with a note. A replay applies the stored message through the same handler and inbox as
the consumer, in the request's transaction, so it takes effect once or not at all."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import CurrentAccess, allow
from shared.db import BigRowId, DbSession, database_unavailable
from shared.errors import DomainError, error_responses
from shared.events import Envelope
from shared.inbox import DeadLetterMixin, Handler, InboxMixin, apply_once
from shared.logging import mask_pii

_PREVIEW_CHARS = 4000


class DeadLetterNotFound(DomainError):
    status_code = 404
    code = "dead_letter_not_found"
    message_zh = "死信记录不存在"
    message_en = "No such dead letter"


class DeadLetterResolved(DomainError):
    status_code = 409
    code = "dead_letter_resolved"
    message_zh = "该死信已处理（已重放或已丢弃）"
    message_en = "This dead letter was already replayed or discarded"


class ReplayFailed(DomainError):
    status_code = 409
    code = "replay_failed"
    message_zh = "重放失败，消息仍保留在死信表中"
    message_en = "The replay failed; the message stays in the dead-letter table"


class DeadLetterOut(BaseModel):
    id: int
    topic: str
    partition: int
    offset: int
    key: str | None
    reason: str = Field(
        description="malformed_envelope, unknown_event_type, unsupported_version, invalid_payload or "
        "handler_failed"
    )
    error: str
    attempts: int
    created_at: datetime
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None
    payload: str = Field(description="The message as received (personal data masked, long ones cut)")

    @classmethod
    def of(cls, row: DeadLetterMixin) -> "DeadLetterOut":
        text = row.payload.decode(errors="replace")
        return cls(
            id=row.id,
            topic=row.topic,
            partition=row.partition,
            offset=row.offset,
            key=row.key,
            reason=row.reason,
            error=mask_pii(row.error),
            attempts=row.attempts,
            created_at=row.created_at,
            resolution=row.resolution,
            resolved_by=row.resolved_by,
            resolved_at=row.resolved_at,
            note=row.note,
            payload=mask_pii(text[:_PREVIEW_CHARS]),
        )


class DeadLetterList(BaseModel):
    items: list[DeadLetterOut]


class Discard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=500, description="Why it is dropped")


async def _apply(
    session: AsyncSession, inbox: type[InboxMixin], handlers: dict[str, Handler], row: DeadLetterMixin
) -> bool:
    """Apply a set-aside message as the consumer would; False if the inbox already holds its event."""
    try:
        envelope = Envelope.from_bytes(row.payload)
    except ValidationError as exc:
        raise ReplayFailed({"reason": "malformed_envelope", "error": mask_pii(str(exc))}) from exc
    handler = handlers.get(envelope.type)
    if handler is None:
        raise ReplayFailed({"reason": "unknown_event_type", "error": envelope.type})
    try:
        async with session.begin_nested():
            return await apply_once(session, inbox, handler, envelope, row.topic, row.partition, row.offset)
    except Exception as exc:
        if database_unavailable(exc):
            raise  # the request's session answers 503: the database, not the message, failed
        # As the consumer: any other failure is the message's.
        raise ReplayFailed({"reason": "handler_failed", "error": mask_pii(repr(exc))}) from exc


def dead_letter_router(
    model: type[DeadLetterMixin], inbox: type[InboxMixin], handlers: dict[str, Handler]
) -> APIRouter:
    router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"], dependencies=[allow()])

    async def open_letter(session: DbSession, letter_id: BigRowId) -> DeadLetterMixin:
        row = await session.get(model, letter_id, with_for_update=True)
        if row is None:
            raise DeadLetterNotFound({"id": letter_id})
        if row.resolution is not None:
            raise DeadLetterResolved({"id": letter_id, "resolution": row.resolution})
        return row

    @router.get("", summary="Messages the consumer set aside, oldest first")
    async def list_dead_letters(
        session: DbSession,
        state: Literal["open", "resolved", "all"] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> DeadLetterList:
        query = select(model).order_by(model.id).limit(limit)
        if state != "all":
            unresolved = model.resolution.is_(None)
            query = query.where(unresolved if state == "open" else ~unresolved)
        return DeadLetterList(items=[DeadLetterOut.of(r) for r in (await session.scalars(query)).all()])

    @router.post(
        "/{letter_id}/replay",
        summary="Apply a set-aside message now (once its cause is fixed)",
        responses=error_responses(DeadLetterNotFound, DeadLetterResolved, ReplayFailed),
    )
    async def replay(letter_id: BigRowId, session: DbSession, access: CurrentAccess) -> DeadLetterOut:
        row = await open_letter(session, letter_id)
        applied = await _apply(session, inbox, handlers, row)
        row.resolution = "replayed"
        row.resolved_by = access.principal.subject
        row.resolved_at = datetime.now(UTC)
        row.note = None if applied else "already applied (the inbox holds its event id)"
        return DeadLetterOut.of(row)

    @router.post(
        "/{letter_id}/discard",
        summary="Drop a set-aside message, with the reason",
        responses=error_responses(DeadLetterNotFound, DeadLetterResolved),
    )
    async def discard(
        letter_id: BigRowId, body: Discard, session: DbSession, access: CurrentAccess
    ) -> DeadLetterOut:
        row = await open_letter(session, letter_id)
        row.resolution = "discarded"
        row.resolved_by = access.principal.subject
        row.resolved_at = datetime.now(UTC)
        row.note = body.note
        return DeadLetterOut.of(row)

    return router
