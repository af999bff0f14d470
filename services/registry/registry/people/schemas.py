from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from registry.people.models import DocumentType, IdentityReview, IdentityReviewState, Person
from shared.fields import Actor, PersonName


class PersonIn(BaseModel):
    """A person as a request names them: an identity document and a name (plus, for foreigners, what a
    resident ID number would have told)."""

    model_config = ConfigDict(extra="forbid")

    id_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = Field(
        description="Resident ID number (居民身份证号码); for foreigners the permanent-residence card or "
        "passport number",
        examples=["340104199003071235"],
    )
    name: PersonName = Field(examples=["张三"])
    document_type: DocumentType = DocumentType.RESIDENT_ID
    nationality: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3")
    birth_date: date | None = Field(default=None, description="Foreign documents only")
    sex: Literal["male", "female"] | None = Field(default=None, description="Foreign documents only")
    phone: str | None = Field(default=None, pattern=r"^1[3-9][0-9]{9}$", description="Mainland mobile number")


def person_in(person: Person) -> PersonIn:
    """A registered person as a request would name them (a resident ID carries its own birth date and sex)."""
    foreign = person.document_type is not DocumentType.RESIDENT_ID
    return PersonIn.model_validate(
        {
            "id_number": person.document_number,
            "name": person.name,
            "document_type": person.document_type,
            "nationality": person.nationality if foreign else None,
            "birth_date": person.birth_date if foreign else None,
            "sex": person.sex if foreign else None,
        }
    )


class IdentityDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "reverted"] = Field(
        description="`confirmed`: the person's verified name stands; `reverted`: the earlier name is restored"
    )
    decided_by: Actor
    note: str | None = Field(default=None, max_length=256)


class IdentityReviewOut(BaseModel):
    review_id: int
    person_id: str
    region_code: str | None
    recorded_name: str = Field(description="The provisional name another resident gave")
    recorded_by: str | None = Field(description="Who created the provisional record")
    claimed_name: str = Field(description="The person's own verified name, in effect")
    claimed_by: str
    state: IdentityReviewState
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None

    @classmethod
    def of(cls, r: IdentityReview) -> "IdentityReviewOut":
        return cls(
            review_id=r.id,
            person_id=r.person_id,
            region_code=r.region_code,
            recorded_name=r.recorded_name,
            recorded_by=r.recorded_by,
            claimed_name=r.claimed_name,
            claimed_by=r.claimed_by,
            state=r.state,
            created_at=r.created_at,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            note=r.note,
        )


class IdentityReviewList(BaseModel):
    items: list[IdentityReviewOut]
