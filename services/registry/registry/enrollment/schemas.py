from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from registry.enrollment.models import Enrollment, EnrollmentStatus
from shared.logging import mask_id_number
from shared.money import Yuan

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class EnrollmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = Field(
        description="18-character resident ID number (居民身份证号码)", examples=["340104199003071234"]
    )
    name: Name = Field(examples=["张三"])
    region_code: str = Field(
        pattern=r"^[0-9]{6}$", description="Division the person enrolls in", examples=["340104"]
    )
    coverage_year: int = Field(ge=2000, le=2100, examples=[2024])
    phone: str | None = Field(default=None, pattern=r"^1[3-9][0-9]{9}$", description="Mainland mobile number")


class EnrollmentOut(BaseModel):
    enrollment_id: str
    status: EnrollmentStatus
    name: str
    id_number_masked: str = Field(examples=["3401**********1234"])
    region_code: str
    coverage_year: int
    personal_due: Yuan
    fiscal_subsidy: Yuan
    total_financing: Yuan
    coverage_start: date
    coverage_end: date
    created_at: datetime
    paid: Yuan | None
    paid_at: datetime | None
    payment_id: str | None
    receipt_no: str | None

    @classmethod
    def of(cls, e: Enrollment) -> "EnrollmentOut":
        return cls(
            enrollment_id=e.id,
            status=e.status,
            name=e.person.name,
            id_number_masked=mask_id_number(e.person.id_number),
            region_code=e.region_code,
            coverage_year=e.coverage_year,
            personal_due=e.personal_due_fen,
            fiscal_subsidy=e.fiscal_subsidy_fen,
            total_financing=e.total_financing_fen,
            coverage_start=e.coverage_start,
            coverage_end=e.coverage_end,
            created_at=e.created_at,
            paid=e.paid_fen,
            paid_at=e.paid_at,
            payment_id=e.payment_id,
            receipt_no=e.receipt_no,
        )
