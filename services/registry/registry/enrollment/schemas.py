from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from registry.enrollment.models import EnrollmentStatus, Shown
from registry.people.schemas import PersonIn
from registry.policy.models import CoverageFrom, EligibilityKind, LateCaseKind
from shared.logging import mask_id_number
from shared.money import Yuan
from shared.regions import REGION_CODE_PATTERN

RepriceOutcome = Literal["repriced", "unchanged", "no_enrollment", "paid_not_repriced", "paid_refund_due"]


class LateCaseIn(BaseModel):
    """The late-enrollment case a person enrolls under after the window, with its evidence."""

    model_config = ConfigDict(extra="forbid")

    kind: LateCaseKind
    event_date: date | None = Field(
        default=None, description="Discharge, release, or the end of employee insurance (not for newborns)"
    )
    evidence_ref: str | None = Field(default=None, max_length=128, description="The certificate's number")


class EnrollmentTerms(BaseModel):
    """What decides an enrollment's price and coverage, besides who the person is."""

    model_config = ConfigDict(extra="forbid")

    region_code: str = Field(
        pattern=REGION_CODE_PATTERN, description="Division the person enrolls in", examples=["340104"]
    )
    coverage_year: int | None = Field(
        default=None,
        ge=2000,
        le=2100,
        examples=[2024],
        description="Default: the region's open campaign. A newborn who may take the year of birth or the "
        "next (Hefei) must say which: without it, 422 newborn_coverage_year_required lists both",
    )
    township: str | None = Field(default=None, max_length=32, description="乡镇, one the policy lists")
    basis: EligibilityKind = Field(default=EligibilityKind.HOUSEHOLD_REGISTRATION, description="参保身份")
    window_extension: str | None = Field(
        default=None, max_length=32, description="A group with a longer window, e.g. migrant_worker (泾县)"
    )
    late_case: LateCaseIn | None = None


class EnrollmentCreate(PersonIn, EnrollmentTerms):
    """Register a person (given by document and name) for a coverage year."""


class SubsidyLineOut(BaseModel):
    category: str
    category_name: str
    funder: str
    amount: Yuan


class Notice(BaseModel):
    """Something the registry did with the request that the caller did not ask for in so many words."""

    code: str
    message_zh: str
    message_en: str


class EnrollmentOut(BaseModel):
    enrollment_id: str
    status: EnrollmentStatus
    name: str
    id_number_masked: str = Field(examples=["3401**********1234"])
    household_id: str | None
    region_code: str
    township: str | None
    payer_organisation: str | None = Field(description="The school paying for this student, if one does")
    coverage_year: int
    basis: EligibilityKind
    late_case: LateCaseKind | None
    window_extension: str | None
    payable_until: date = Field(
        description="Last day (Beijing) this price may be paid; unpaid after it, it lapses"
    )
    personal_due: Yuan
    subsidy_lines: list[SubsidyLineOut]
    fiscal_subsidy: Yuan
    total_financing: Yuan
    price_version: int
    coverage_from: CoverageFrom
    coverage_start: date | None = Field(
        description="Null until paid when coverage starts the day after payment"
    )
    coverage_end: date
    created_at: datetime
    paid: Yuan | None
    paid_at: datetime | None
    payment_id: str | None
    receipt_no: str | None
    refunded: Yuan = Field(description="Paid money given back")
    cancelled_at: datetime | None
    cancellation_reason: str | None = Field(
        description="Why the enrollment ended: erroneous_payment, death, or the reason staff stated"
    )
    notices: list[Notice] = Field(
        default_factory=list,
        description="On creation: what was done with parts of the request not used as given (e.g. a late "
        "case inside the window)",
    )

    @classmethod
    def of(cls, e: Shown, notices: list[Notice] | None = None) -> "EnrollmentOut":
        return cls(
            notices=notices or [],
            enrollment_id=e.id,
            status=e.status,
            name=e.person.name,
            id_number_masked=mask_id_number(e.person.document_number),
            household_id=e.household_id,
            region_code=e.region_code,
            township=e.township,
            payer_organisation=e.payer_organisation,
            coverage_year=e.coverage_year,
            basis=e.basis,
            late_case=e.late_case,
            window_extension=e.window_extension,
            payable_until=e.payable_until,
            personal_due=e.personal_due_fen,
            subsidy_lines=[
                SubsidyLineOut(
                    category=line.category_code,
                    category_name=line.category_name,
                    funder=line.funder,
                    amount=line.amount_fen,
                )
                for line in e.subsidy_lines
            ],
            fiscal_subsidy=e.fiscal_subsidy_fen,
            total_financing=e.total_financing_fen,
            price_version=e.price_version,
            coverage_from=e.coverage_from,
            coverage_start=e.coverage_start,
            coverage_end=e.coverage_end,
            created_at=e.created_at,
            paid=e.paid_fen,
            paid_at=e.paid_at,
            payment_id=e.payment_id,
            receipt_no=e.receipt_no,
            refunded=e.refunded_fen,
            cancelled_at=e.cancelled_at,
            cancellation_reason=e.cancellation_reason,
        )


# The documents' words for the policy's refund reasons (五(4) 因错误缴费、自然减员等原因需退费的).
REASON_WORDS = {"错误缴费": "erroneous_payment", "自然减员": "death", "死亡": "death"}


def reason_code(text: str) -> str:
    """A stated reason as the policy names it: the documents' words become its codes, anything else stays."""
    return REASON_WORDS.get(text, text)


class CancellationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
        AfterValidator(reason_code),
    ] = Field(
        description="Any stated reason: `death` (自然减员) or `erroneous_payment` (错误缴费), or in words. "
        "An unpaid enrollment ends for any reason; a paid one only for a reason its policy refunds, "
        "otherwise 422 cancellation_not_allowed with the rule",
        examples=["death"],
    )
    evidence_ref: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    reported_by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
