"""The audit trail (审计日志): who read or changed which person's record, when, and through which endpoint.

Each service keeps its own `audit_events` table. A row is written for every change, for every read that
touched a person's record, for every request an auditor makes, and (registry) for every sign-in attempt and
sign-out; auditors and admins query it with `GET /v1/audit-events`.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import BigInteger, Index, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from shared.auth import Access, Role, allow
from shared.db import BIGINT_MAX, DbSession, UTCDateTime
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
    def __init__(self, model: type[AuditMixin]):
        self.model = model

    def record(self, session: AsyncSession, access: Access) -> None:
        read = access.method in _READS
        touched: list[tuple[str | None, str | None]] = list(access.touched)
        if not touched and (not read or access.role is Role.AUDITOR):
            touched = [(None, None)]  # a change, or an auditor's read, that named no person
        for person, record in touched:
            session.add(
                self.model(  # type: ignore[call-arg]
                    actor=access.principal.subject,
                    role=access.role.value,
                    action="read" if read else "change",
                    method=access.method,
                    route=access.route,
                    person=person,
                    record=record,
                )
            )

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
