"""The cross-service check (核对) contract: each service lists the enrollments it holds as paid on a region's
business day, in pages ordered by enrollment id, so that an operator's check can compare the two."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from shared.money import Yuan
from shared.regions import REGION_CODE_PATTERN

PAGE_LIMIT = 1000


class PaidEnrollment(BaseModel):
    enrollment_id: str
    payment_id: str
    amount: Yuan = Field(description="What the person paid")
    paid_at: datetime


class PaidPage(BaseModel):
    items: list[PaidEnrollment]
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last")


@dataclass
class PaidQuery:
    """Which page of which region's day (query parameters of both services' listing)."""

    region_code: Annotated[str, Query(pattern=REGION_CODE_PATTERN)]
    day: Annotated[date, Query(description="Beijing business day")]
    after: Annotated[str, Query(max_length=36)] = ""
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_LIMIT


PaidFilter = Annotated[PaidQuery, Depends()]
