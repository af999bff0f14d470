from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from registry.progress.models import UnitKind

Percent = Decimal
"""A rate in percent with two decimals, e.g. "95.12"."""


class CategoryProgress(BaseModel):
    """资助参保对象: people holding a subsidy category as of the day, and how many of them are enrolled."""

    category: str
    category_name: str
    category_label: str = Field(
        description="The name as the attachments list it, with the groups it includes: 特困人员（含孤儿、…）"
    )
    includes: list[str] = Field(description="Groups counted in the category (含…), e.g. 事实无人抚养儿童")
    holders: int
    enrolled: int
    rate: Percent | None = Field(description="enrolled ÷ holders, percent; none without holders")
    meets_target: bool | None = Field(description="rate ≥ the policy's subsidised target (应保尽保)")


class ProgressRow(BaseModel):
    unit: str = Field(description="县(市)区、开发区, 乡镇, or 大学生")
    kind: UnitKind
    region_code: str | None
    in_baseline: bool = Field(
        description="false for a row the reference table lacks (enrollments outside it)"
    )
    resident_population: int | None = Field(description="常住人口 (people)")
    registered_population: int | None = Field(description="户籍人口 (people)")
    enrolled_last_year: int | None = Field(description="上年度居民参保人数")
    target: int | None = Field(description="目标任务数, where the table sets one")
    enrolled: int = Field(description="已参保人数: paid by the end of as_of and not ended by then")
    rate_of_registered: Percent | None = Field(description="enrolled ÷ registered population")
    rate_of_target: Percent | None = Field(description="enrolled ÷ the report's target basis")
    meets_target: bool | None = Field(description="rate_of_target ≥ the policy's coverage target")
    categories: list[CategoryProgress]


class ProgressReport(BaseModel):
    """参保进度统计表 as of a day (截止日期); the total is the sum of the rows, never a printed figure."""

    policy_id: str
    policy_name: str
    coverage_year: int
    campaign_year: int = Field(description="The year the enrollment window opens (the documents' 2023年)")
    as_of: date
    coverage_target_percent: Percent
    subsidised_target_percent: Percent
    target_basis: Literal["target", "enrolled_last_year"] = Field(
        description="What rate_of_target divides by: the table's target counts (Jing's 目标任务数) or, where "
        "it sets none (Hefei's attachment 2), last year's enrollees"
    )
    baseline_source: str = Field(description="The file the reference figures came from")
    rows: list[ProgressRow]
    total: ProgressRow
    categories: list[CategoryProgress]


class BaselineRowOut(BaseModel):
    unit: str
    kind: UnitKind
    region_code: str | None
    resident_population: int | None
    registered_population: int | None
    enrolled_last_year: int | None
    target: int | None


class BaselineOut(BaseModel):
    policy_id: str
    source: str
    loaded_by: str | None
    loaded_at: datetime | None
    rows: list[BaselineRowOut]


class DailyPayments(BaseModel):
    day: date
    enrolled: int = Field(description="Enrollments paid that day (still counted or not)")
    amount: str = Field(description="Yuan paid that day, two decimals")
