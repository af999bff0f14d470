from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.people.models import DocumentType, Person


async def get_by_document(session: AsyncSession, document_type: DocumentType, number: str) -> Person | None:
    query = select(Person).where(Person.document_type == document_type, Person.document_number == number)
    return (await session.scalars(query)).one_or_none()


async def by_documents(
    session: AsyncSession, keys: Iterable[tuple[DocumentType, str]]
) -> dict[tuple[DocumentType, str], Person]:
    by_type: dict[DocumentType, set[str]] = {}
    for document_type, number in keys:
        by_type.setdefault(document_type, set()).add(number)
    found: dict[tuple[DocumentType, str], Person] = {}
    for document_type, numbers in by_type.items():
        query = select(Person).where(
            Person.document_type == document_type, Person.document_number.in_(sorted(numbers))
        )
        for person in (await session.scalars(query)).all():
            found[(person.document_type, person.document_number)] = person
    return found


def add(session: AsyncSession, person: Person) -> Person:
    session.add(person)
    return person


async def get(session: AsyncSession, person_id: str) -> Person | None:
    return await session.get(Person, person_id)
