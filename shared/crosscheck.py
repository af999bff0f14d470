"""The cross-service check (核对) contract: each service lists where every enrollment of a region and coverage
year stands by its own books, in pages ordered by enrollment id, so that an operator's check can compare them.

Both sides speak one vocabulary (`Standing`); each service maps its own statuses onto it."""

import enum
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from shared.money import Yuan
from shared.regions import REGION_CODE_PATTERN

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

    region_code: Annotated[str, Query(pattern=REGION_CODE_PATTERN)]
    coverage_year: Annotated[int, Query(ge=2000, le=2100)]
    after: Annotated[str, Query(max_length=36)] = ""
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_LIMIT


StandingFilter = Annotated[StandingQuery, Depends()]
