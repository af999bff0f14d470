"""The cross-service check (核对) contract: each service lists where every enrollment of a region and coverage
year stands by its own books, in pages ordered by enrollment id, so that an operator's check can compare them;
and what changed since a moment, and named enrollments, so that the repair job compares only what moved.

Both sides speak one vocabulary (`Standing`); each service maps its own statuses onto it."""

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import allow
from shared.db import DbSession
from shared.errors import DomainError, error_responses
from shared.fields import CoverageYearQuery, RegionCodeQuery
from shared.money import Yuan

PAGE_LIMIT = 1000


class Standing(enum.StrEnum):
    OPEN = "open"  # owed, not paid
    PAID = "paid"  # paid (or settled by its funders) and in force
    CLOSED_UNPAID = "closed_unpaid"  # ended without payment: lapsed, or cancelled before paying
    REFUNDED = "refunded"  # paid, then refunded in full: ended


class EnrollmentStanding(BaseModel):
    enrollment_id: str
    standing: Standing
    amount_due: Yuan = Field(description="What the person owes (owed) after subsidies")
    price_version: int = Field(description="The registry's price version the figures follow")
    payment_id: str | None = Field(description="The payment that settled it, if any")
    paid: Yuan = Field(description="What that payment put on this enrollment")
    refunded: Yuan = Field(description="What was given back of it")


class StandingPage(BaseModel):
    items: list[EnrollmentStanding]
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last")


@dataclass
class StandingQuery:
    """Which page of which region's coverage year (query parameters of both services' listing)."""

    region_code: RegionCodeQuery
    coverage_year: CoverageYearQuery
    after: Annotated[str, Query(max_length=36)] = ""
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_LIMIT


StandingFilter = Annotated[StandingQuery, Depends()]

# Enrollment ids one `…/standings/of` request may name.
IDS_LIMIT = 200


class ChangedStanding(EnrollmentStanding):
    changed_at: datetime = Field(description="When the service last changed it (wall clock, UTC)")

    def as_standing(self) -> EnrollmentStanding:
        """Without the service's own change time, to compare with the other side."""
        return EnrollmentStanding.model_validate(self.model_dump(exclude={"changed_at"}))


class ChangePage(BaseModel):
    items: list[ChangedStanding]
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last")


class CursorInvalid(DomainError):
    status_code = 422
    code = "cursor_invalid"
    message_zh = "分页游标无效，请使用上一页返回的 next_after"
    message_en = "The page cursor is not valid; pass the previous page's next_after"


class MomentOutOfRange(DomainError):
    status_code = 422
    code = "moment_out_of_range"
    message_zh = "时间须在 2000 年至 2100 年之间"
    message_en = "The moment must lie between the years 2000 and 2100"


# Changes are looked for within these (a moment far outside cannot be stored in UTC, and has no changes).
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass
class ChangeQuery:
    """What changed since a moment, in pages ordered by change time then enrollment id (the repair job)."""

    since: Annotated[AwareDatetime, Query(description="With its zone, e.g. 2026-11-30T08:00:00Z")]
    after: Annotated[str, Query(max_length=80)] = ""
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_LIMIT

    def position(self) -> tuple[datetime, str]:
        """Where the page starts: just after the cursor, or at `since`."""
        if not _EARLIEST <= self.since <= _LATEST:
            raise MomentOutOfRange({"since": self.since.isoformat()})
        if not self.after:
            return self.since, ""
        moment, _, enrollment_id = self.after.partition("|")
        try:
            at = datetime.fromisoformat(moment)
        except ValueError as exc:
            raise CursorInvalid({"after": self.after}) from exc
        if at.tzinfo is None or not _EARLIEST <= at <= _LATEST:
            raise CursorInvalid({"after": self.after})
        return at, enrollment_id


ChangeFilter = Annotated[ChangeQuery, Depends()]
EnrollmentIds = Annotated[list[str], Query(alias="enrollment_id", min_length=1, max_length=IDS_LIMIT)]


def change_page(items: list[ChangedStanding], limit: int) -> ChangePage:
    last = items[-1] if len(items) == limit else None
    return ChangePage(
        items=items, next_after=f"{last.changed_at.isoformat()}|{last.enrollment_id}" if last else None
    )


_Row = TypeVar("_Row")


@dataclass(frozen=True)
class StandingReader(Generic[_Row]):
    """A service's side of the check: the pages are alike on both sides, the rows and their reading are each
    service's own. The readers take what their names say and return rows ordered as the pages are."""

    of_region_year: Callable[[AsyncSession, str, int, str, int], Awaitable[Sequence[_Row]]]
    """(region code, coverage year, after enrollment id, limit) → rows by enrollment id"""
    changed_since: Callable[[AsyncSession, datetime, str, int], Awaitable[Sequence[_Row]]]
    """(moment, after enrollment id at that moment, limit) → rows by change time, then enrollment id"""
    of_enrollments: Callable[[AsyncSession, list[str]], Awaitable[Sequence[_Row]]]
    standing: Callable[[_Row], EnrollmentStanding]
    changed_at: Callable[[_Row], datetime]

    async def standings(self, session: AsyncSession, query: StandingQuery) -> StandingPage:
        """Where every enrollment of a region's coverage year stands, as this service holds it (核对)."""
        found = await self.of_region_year(
            session, query.region_code, query.coverage_year, query.after, query.limit
        )
        items = [self.standing(row) for row in found]
        return StandingPage(
            items=items, next_after=items[-1].enrollment_id if len(items) == query.limit else None
        )

    async def changes(self, session: AsyncSession, query: ChangeQuery) -> ChangePage:
        """Where the enrollments changed since a moment stand (the repair job)."""
        after_at, after_id = query.position()
        found = await self.changed_since(session, after_at, after_id, query.limit)
        return change_page(
            [
                ChangedStanding(**self.standing(row).model_dump(), changed_at=self.changed_at(row))
                for row in found
            ],
            query.limit,
        )

    async def standings_of(self, session: AsyncSession, enrollment_ids: list[str]) -> StandingPage:
        """Where the named enrollments stand; those this service holds nothing of are left out."""
        found = await self.of_enrollments(session, enrollment_ids)
        return StandingPage(items=[self.standing(row) for row in found], next_after=None)


ChangesOf = Callable[[AsyncSession, ChangeQuery], Awaitable[ChangePage]]
StandingsOf = Callable[[AsyncSession, list[str]], Awaitable[StandingPage]]


def add_repair_routes(router: APIRouter, *, records: str, changed: ChangesOf, of: StandingsOf) -> None:
    """`GET <prefix>/standings/changed` and `GET <prefix>/standings/of` on a service's router, for the repair
    job (administrators; auditors read). Added before the router's `/{id}` route, which would shadow them."""

    @router.get(
        "/standings/changed",
        summary=f"Where the {records} changed since a moment stand (the repair job)",
        description="Every region, by change time then enrollment id, paged by `after`: `canbao repair` "
        "compares both services' and has lost events published again.",
        responses=error_responses(CursorInvalid, MomentOutOfRange),
        dependencies=[allow()],
    )
    async def list_changed_standings(session: DbSession, query: ChangeFilter) -> ChangePage:
        return await changed(session, query)

    @router.get(
        "/standings/of",
        summary=f"Where the {records} of the named enrollments stand (the repair job)",
        description=f"Repeat `enrollment_id` (up to {IDS_LIMIT}); enrollments unknown here are left out.",
        dependencies=[allow()],
    )
    async def list_standings_of(session: DbSession, enrollment_ids: EnrollmentIds) -> StandingPage:
        return await of(session, enrollment_ids)
