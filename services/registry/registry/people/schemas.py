from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from registry.people.models import DocumentType, Person

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class PersonIn(BaseModel):
    """A person as a request names them: an identity document and a name (plus, for foreigners, what a
    resident ID number would have told)."""

    model_config = ConfigDict(extra="forbid")

    id_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = Field(
        description="Resident ID number (居民身份证号码); for foreigners the permanent-residence card or "
        "passport number",
        examples=["340104199003071235"],
    )
    name: Name = Field(examples=["张三"])
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
