"""The audit trail (审计日志): who read or changed which person's record, when, and through which endpoint.

Each service keeps its own `audit_events` table. A row is written for every change, for every read that
touched a person's record, for every request an auditor makes, and (registry) for every sign-in attempt and
sign-out; auditors and admins query it with `GET /v1/audit-events`.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import BigInteger, Index, Integer, String, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from shared.auth import Access, Role, allow
from shared.db import BIGINT_MAX, DbSession, UTCDateTime, after_commit, database_unavailable
from shared.logging import mask_id_number

_READS = frozenset({"GET", "HEAD"})
PAGE_LIMIT = 500


class AuditMixin:
    """Columns of the audit table; the concrete class sets __tablename__."""

    __tablename__: str

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(8), doc="read, change, sign_in or sign_out")
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(256), doc="The endpoint's path template")
    person: Mapped[str | None] = mapped_column(String(32), doc="The ID number whose record was touched")
    record: Mapped[str | None] = mapped_column(String(128), doc="Which record, e.g. enrollment:<id>")

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Index, ...]:
        name = cls.__tablename__
        return (Index(f"ix_{name}_person_at", "person", "at"), Index(f"ix_{name}_actor_at", "actor", "at"))


class AuditTrail:
    """Writes the trail. A change's rows join the request's own transaction, so the change and its record
    commit together or not at all. A read changed nothing to commit with: its rows are written once the
    request's transaction has ended and before the response is sent (`shared.db.after_commit`), by a group
    commit that writes the rows of every read waiting at that moment with one INSERT and one commit. A read
    whose rows could not be written is answered with the error (503 when the database is away), never with
    the record: no audited read goes unrecorded. Without `sessionmaker_of` reads join the request's
    transaction too."""

    def __init__(
        self,
        model: type[AuditMixin],
        sessionmaker_of: Callable[[], async_sessionmaker[AsyncSession]] | None = None,
        *,
        batch_max: int = 1000,
    ):
        self.model = model
        self._insert = insert(model.__table__)  # type: ignore[attr-defined]
        self._reads = _GroupCommit(model, sessionmaker_of, batch_max) if sessionmaker_of else None

    async def record(self, session: AsyncSession, access: Access) -> None:
        if access.audited and not access.touched:
            return  # the endpoint wrote them with its change
        read = access.method in _READS
        rows = self._rows(access)
        if not rows:
            return
        if read and self._reads is not None:
            after_commit(session, partial(self._reads.write, rows))
            return
        # A plain INSERT in the request's transaction: the session has nothing to track about these rows.
        await session.execute(self._insert, rows[0] if len(rows) == 1 else rows)

    def claim(self, access: Access) -> list[dict[str, Any]]:
        """A change's audit rows so far, for the endpoint to write in the same statement as the change (one
        round trip fewer); `record` then writes only rows for what the request touches later."""
        rows = self._rows(access)
        access.touched.clear()
        access.audited = True
        return rows

    def _rows(self, access: Access) -> list[dict[str, Any]]:
        read = access.method in _READS
        # A record read twice in one request (a long-poll reads it again when it changes) is one row.
        touched: list[tuple[str | None, str | None]] = list(dict.fromkeys(access.touched))
        if not touched and (not read or access.role is Role.AUDITOR):
            touched = [(None, None)]  # a change, or an auditor's read, that named no person
        at = datetime.now(UTC)
        return [
            {
                "at": at,
                "actor": access.principal.subject,
                "role": access.role.value,
                "action": "read" if read else "change",
                "method": access.method,
                "route": access.route,
                "person": person,
                "record": record,
            }
            for person, record in touched
        ]

    def note(
        self, session: AsyncSession, *, actor: str, role: str, action: str, route: str, record: str
    ) -> None:
        """An event with no verified caller's request behind it: a sign-in attempt (`actor` is the account
        name it gave), a sign-out."""
        session.add(
            self.model(  # type: ignore[call-arg]
                actor=actor[:128],
                role=role,
                action=action,
                method="POST",
                route=route,
                person=None,
                record=record,
            )
        )


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    method: str
    route: str
    person: str | None = Field(description="Masked ID number")
    record: str | None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last")


def audit_router(model: type[AuditMixin]) -> APIRouter:
    router = APIRouter(prefix="/v1/audit-events", tags=["audit"])

    @router.get("", summary="The audit trail (审计日志), oldest first", dependencies=[allow(Role.AUDITOR)])
    async def list_audit_events(
        session: DbSession,
        person: Annotated[str | None, Query(max_length=32, description="Whose record (ID number)")] = None,
        actor: Annotated[str | None, Query(max_length=128)] = None,
        since: AwareDatetime | None = None,
        until: AwareDatetime | None = None,
        after: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
        limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 100,
    ) -> AuditPage:
        query = select(model).where(model.id > after).order_by(model.id).limit(limit + 1)
        if person is not None:
            query = query.where(model.person == person.upper())
        if actor is not None:
            query = query.where(model.actor == actor)
        if since is not None:
            query = query.where(model.at >= since)
        if until is not None:
            query = query.where(model.at < until)
        rows = list((await session.scalars(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        items = [
            AuditEventOut(
                id=r.id,
                at=r.at,
                actor=r.actor,
                role=r.role,
                action=r.action,
                method=r.method,
                route=r.route,
                person=mask_id_number(r.person) if r.person else None,
                record=r.record,
            )
            for r in rows
        ]
        return AuditPage(items=items, next_after=rows[-1].id if more else None)

    return router


class _GroupCommit:
    """Rows written by whoever waits together: the first writer starts a round that takes every row waiting,
    writes them with one INSERT and one commit, and goes on while more arrived meanwhile; each writer returns
    once its own rows are committed, or raises what failed them."""

    def __init__(
        self,
        model: type[AuditMixin],
        sessionmaker_of: Callable[[], async_sessionmaker[AsyncSession]],
        batch_max: int,
    ):
        self._insert = insert(model.__table__)  # type: ignore[attr-defined]
        self._sessionmaker_of = sessionmaker_of
        self._batch_max = batch_max
        self._waiting: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._round: asyncio.Task[None] | None = None

    async def write(self, rows: list[dict[str, Any]]) -> None:
        written = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, written))
        if self._round is None or self._round.done():
            self._round = asyncio.create_task(self._rounds())
        await written

    async def _rounds(self) -> None:
        while self._waiting:
            batch: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
            size = 0
            while self._waiting and (not batch or size + len(self._waiting[0][0]) <= self._batch_max):
                batch.append(self._waiting.pop(0))
                size += len(batch[-1][0])
            failure = await self._store([row for rows, _ in batch for row in rows])
            alone = failure is not None and len(batch) > 1 and not database_unavailable(failure)
            for rows, written in batch:
                if written.done():  # its request went away meanwhile
                    continue
                # One writer's rows may be what the database refused (a value it cannot store): each
                # writer's rows on their own then, so only that writer's read is refused.
                outcome = await self._store(rows) if alone else failure
                if written.done():
                    continue
                if outcome is None:
                    written.set_result(None)
                else:
                    written.set_exception(outcome)

    async def _store(self, rows: list[dict[str, Any]]) -> BaseException | None:
        """Write the rows in one transaction; what failed it, if anything."""
        try:
            async with self._sessionmaker_of()() as session, session.begin():
                await session.execute(self._insert, rows)
        except Exception as exc:
            return exc
        return None
