import enum
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from registry.enrollment.schemas import RepriceOutcome
from registry.people.schemas import PersonIn
from registry.subsidy.models import SubsidyAssignment
from shared.fields import Actor, Township, Village, VillageGroup
from shared.money import Yuan
from shared.regions import REGION_CODE_PATTERN

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class AssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: PersonIn
    region_code: str = Field(
        pattern=REGION_CODE_PATTERN, description="Chooses the policy, with coverage_year"
    )
    coverage_year: int = Field(ge=2000, le=2100)
    category: str = Field(
        min_length=1,
        max_length=64,
        examples=["minimum_living", "低保对象", "事实无人抚养儿童"],
        description="The category's code, its name in the documents, an alias the policy lists, or a group "
        "it includes (事实无人抚养儿童 is counted with 特困人员)",
    )
    evidence_ref: Text = Field(description="Reference of the certifying department's document")
    effective_date: date | None = Field(default=None, description="When the person qualified; default today")
    assigned_by: Actor = Field(description="The staff member who records it")
    township: Township | None = Field(default=None, description="乡镇, one the policy lists")
    village: Village | None = Field(default=None, description="村(居)委会")
    village_group: VillageGroup | None = Field(default=None, description="村民组")
    note: Text | None = Field(default=None, description="备注")
    reason: Text | None = Field(default=None, description="新增原因, for an addition after the cut-off")


class AssignmentRemove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    removed_by: Actor
    reason: Text


class AssignmentOut(BaseModel):
    assignment_id: str
    region_code: str
    coverage_year: int
    policy_id: str
    category: str
    evidence_ref: str
    effective_date: date
    township: str | None
    village: str | None
    village_group: str | None
    note: str | None
    reason: str | None
    assigned_by: str
    assigned_at: datetime
    removed_at: datetime | None
    removed_by: str | None
    removal_reason: str | None
    named_as: str | None = Field(
        default=None,
        description="On creation: the name the category was given by, when not its code "
        "(e.g. 事实无人抚养儿童)",
    )
    enrollment: RepriceOutcome | None = Field(
        default=None,
        description="What the change did to the person's enrollment for the year: repriced (unpaid), "
        "unchanged, no_enrollment, paid_not_repriced (the policy refunds no paid contribution), or "
        "paid_refund_due (the policy refunds; the new price stands)",
    )

    @classmethod
    def of(
        cls, a: SubsidyAssignment, outcome: RepriceOutcome | None = None, named_as: str | None = None
    ) -> "AssignmentOut":
        return cls(
            named_as=named_as if named_as != a.category_code else None,
            assignment_id=a.id,
            region_code=a.region_code,
            coverage_year=a.coverage_year,
            policy_id=a.policy_id,
            category=a.category_code,
            evidence_ref=a.evidence_ref,
            effective_date=a.effective_date,
            township=a.township,
            village=a.village,
            village_group=a.village_group,
            note=a.note,
            reason=a.reason,
            assigned_by=a.assigned_by,
            assigned_at=a.assigned_at,
            removed_at=a.removed_at,
            removed_by=a.removed_by,
            removal_reason=a.removal_reason,
            enrollment=outcome,
        )


class AssignmentList(BaseModel):
    items: list[AssignmentOut]


class TownshipCount(BaseModel):
    township: str = Field(description="未填乡镇 for enrollments that name none")
    enrolled: int


class TownshipSummary(BaseModel):
    """资助参保人员汇总表 (Jing attachment 5): people of one category enrolled, per township."""

    region_code: str
    coverage_year: int
    category: str
    category_name: str
    category_label: str = Field(
        description="As attachment 5's 人员类别 line: the name with the groups it includes"
    )
    includes: list[str] = Field(description="Groups counted in the category (含…)")
    rows: list[TownshipCount]
    total: int = Field(description="The sum of the rows, computed here")


class RosterLayout(enum.StrEnum):
    """The attachments' roster layouts."""

    MAIN = "main"  # 附件4 资助参保人员花名册: status on the identification date
    ADDITIONS = "additions"  # 附件6 新增资助参保人员花名册: qualified after it
    REDUCTIONS = "reductions"  # 附件7 资助参保人员减少花名册: removed, with the reason


class AdjustmentRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region_code: str = Field(pattern=REGION_CODE_PATTERN)
    coverage_year: int = Field(ge=2000, le=2100)


class AdjustmentResult(BaseModel):
    """What a monthly adjustment run (动态调整) did."""

    region_code: str
    coverage_year: int
    run_on: date
    enrolled: int = Field(description="People enrolled by this run")
    fully_subsidised: int = Field(description="Of those, people who owe nothing")
    to_mobilise: int = Field(description="People with a partial subsidy listed for their township")
    refused: int = Field(description="People the enrollment rules refused (e.g. in employee insurance)")


class MobilisationItem(BaseModel):
    name: str
    id_number_masked: str
    township: str
    village: str | None
    village_group: str | None
    category: str = Field(description="The most generous category the person holds")
    category_name: str
    personal_due: Yuan = Field(description="What the person would pay after the subsidy")


class MobilisationList(BaseModel):
    """动员名单: people with a partial subsidy who have not enrolled, for their township to visit."""

    region_code: str
    coverage_year: int
    items: list[MobilisationItem]
