from pydantic import BaseModel, ConfigDict, Field

from registry.enrollment.schemas import EnrollmentOut, LateCaseIn
from registry.household.models import Household, HouseholdMember, MembershipStatus, Relation
from registry.people.schemas import PersonIn
from registry.policy.models import EligibilityKind
from shared.logging import mask_id_number
from shared.money import Yuan
from shared.regions import REGION_CODE_PATTERN


class MemberIn(PersonIn):
    relation: Relation


class HouseholdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[MemberIn] = Field(min_length=1, max_length=30)


class MemberOut(BaseModel):
    person_id: str
    name: str = Field(description="An invited member's name as the inviting resident gave it")
    id_number_masked: str
    relation: Relation
    status: MembershipStatus = Field(description="`invited` until the member accepts from their own account")

    @classmethod
    def of(cls, m: HouseholdMember) -> "MemberOut":
        return cls(
            person_id=m.person_id,
            name=m.person.name if m.established else m.claimed_name or "",
            id_number_masked=mask_id_number(m.person.document_number),
            relation=m.relation,
            status=m.status,
        )


class HouseholdOut(BaseModel):
    household_id: str
    members: list[MemberOut]

    @classmethod
    def of(cls, h: Household) -> "HouseholdOut":
        return cls(
            household_id=h.id,
            members=[MemberOut.of(m) for m in h.members],
        )


class MemberEnrollmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: str
    basis: EligibilityKind = EligibilityKind.HOUSEHOLD_REGISTRATION
    window_extension: str | None = Field(default=None, max_length=32)
    late_case: LateCaseIn | None = None


class HouseholdEnrollmentCreate(BaseModel):
    """Enroll several members at once: all of them, or none if any is refused."""

    model_config = ConfigDict(extra="forbid")

    region_code: str = Field(pattern=REGION_CODE_PATTERN)
    township: str | None = Field(default=None, max_length=32)
    coverage_year: int = Field(ge=2000, le=2100)
    members: list[MemberEnrollmentIn] | None = Field(
        default=None,
        description="Default: every member not yet enrolled for the year, on household registration",
    )


class HouseholdEnrollments(BaseModel):
    household_id: str
    coverage_year: int
    enrollments: list[EnrollmentOut]
    not_enrolled: list[MemberOut]
    total_due: Yuan = Field(description="Sum of what the unpaid enrollments still owe")
    total_paid: Yuan
