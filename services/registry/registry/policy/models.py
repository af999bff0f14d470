"""The shape of a policy file: one region and coverage year (筹资标准, 集中参保期, 待遇享受期).

Amounts are yuan decimal strings in the file and integer fen once loaded.
"""

from datetime import date
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.money import YuanInput


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Strict):
    code: str = Field(pattern=r"^[0-9]{6}$")
    name: str = Field(min_length=1)


class Contribution(_Strict):
    """筹资标准: what a person pays and what public finance adds per person."""

    personal: YuanInput
    fiscal_subsidy: YuanInput

    @property
    def total_financing(self) -> int:
        return self.personal + self.fiscal_subsidy


class Period(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


class Policy(_Strict):
    policy_id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    source_document: str
    coverage_year: int = Field(ge=2000, le=2100)
    regions: list[Region] = Field(
        min_length=1, description="The area and every division enrollments may name"
    )
    contribution: Contribution
    enrollment_window: Period = Field(description="集中参保缴费期")
    coverage: Period = Field(description="待遇享受期")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        codes = [r.code for r in self.regions]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"regions: duplicate codes {duplicates}")
        if self.coverage.start.year != self.coverage_year:
            raise ValueError(
                f"coverage.start {self.coverage.start} is not in coverage_year {self.coverage_year}"
            )
        return self
