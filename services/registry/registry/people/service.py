"""Who a person is: identity documents checked, and one record per document."""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from registry.people import repository
from registry.people.errors import (
    DocumentNumberBadFormat,
    ForeignDocumentDetailsMissing,
    PersonNameMismatch,
    PersonNotFound,
)
from registry.people.identity import parse_resident_id
from registry.people.models import DocumentType, Person
from registry.people.schemas import PersonIn
from shared.db import lock_keys
from shared.errors import DomainError

_FOREIGN_NUMBER = re.compile(r"^[A-Z0-9]{5,20}$")


@dataclass(frozen=True)
class Identity:
    document_type: DocumentType
    document_number: str
    nationality: str
    birth_date: date
    sex: str


def identify(person: PersonIn, today: date) -> Identity:
    """Check the document; birth date and sex come from a resident ID number, or are given for foreigners."""
    if person.document_type is DocumentType.RESIDENT_ID:
        resident = parse_resident_id(person.id_number, today)
        return Identity(
            DocumentType.RESIDENT_ID, resident.id_number, "CHN", resident.birth_date, resident.sex
        )
    number = person.id_number.upper()
    if not _FOREIGN_NUMBER.fullmatch(number):
        raise DocumentNumberBadFormat({"field": "id_number"})
    missing = [f for f in ("nationality", "birth_date", "sex") if getattr(person, f) is None]
    if missing:
        raise ForeignDocumentDetailsMissing({"missing": missing})
    assert person.nationality is not None
    assert person.birth_date is not None
    assert person.sex is not None
    return Identity(person.document_type, number, person.nationality, person.birth_date, person.sex)


async def find_or_register(session: AsyncSession, identity: Identity, name: str, phone: str | None) -> Person:
    """The person with this document, registered now if new. A known document with another name is refused
    rather than overwritten: it is either a typing error or someone else's number."""
    (found,) = await find_or_register_many(session, [(identity, name, phone)])
    if isinstance(found, DomainError):
        raise found
    return found


# Up to this many new people in one request are registered under locks (a household, a single enrollment).
_LOCKED_REGISTRATIONS = 50


async def find_or_register_many(
    session: AsyncSession, entries: Sequence[tuple[Identity, str, str | None]]
) -> list[Person | DomainError]:
    """`find_or_register` for many people in one query; each entry gets its person or its refusal."""
    documents = [(identity.document_type, identity.document_number) for identity, _, _ in entries]
    known = await repository.by_documents(session, documents)
    new = [key for key in documents if key not in known]
    if 0 < len(new) <= _LOCKED_REGISTRATIONS:
        # Two requests registering the same new person wait for each other here, and the second finds the
        # first's person instead of failing on the unique index. (A roster chunk is larger: a clash there
        # fails its flush and the worker redoes the chunk row by row, through this path.)
        await lock_keys(session, [f"person:{kind.value}:{number}" for kind, number in new])
        known |= await repository.by_documents(session, new)
    results: list[Person | DomainError] = []
    for identity, name, phone in entries:
        key = (identity.document_type, identity.document_number)
        person = known.get(key)
        if person is None:
            person = known[key] = repository.add(
                session,
                Person(
                    id=str(uuid.uuid4()),
                    document_type=identity.document_type,
                    document_number=identity.document_number,
                    nationality=identity.nationality,
                    name=name,
                    birth_date=identity.birth_date,
                    sex=identity.sex,
                    phone=phone,
                ),
            )
        elif person.name != name:
            results.append(PersonNameMismatch({"field": "name"}))
            continue
        elif phone:
            person.phone = phone
        results.append(person)
    return results


async def find_known(session: AsyncSession, document_type: DocumentType, number: str, name: str) -> Person:
    """An already registered person; the name must match too, so a number alone reveals nothing."""
    person = await repository.get_by_document(session, document_type, number.strip().upper())
    if person is None or person.name != name.strip():
        raise PersonNotFound()
    return person
