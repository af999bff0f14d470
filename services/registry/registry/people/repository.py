from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.people.models import DocumentType, Person


async def get_by_document(session: AsyncSession, document_type: DocumentType, number: str) -> Person | None:
    query = select(Person).where(Person.document_type == document_type, Person.document_number == number)
    return (await session.scalars(query)).one_or_none()


def add(session: AsyncSession, person: Person) -> Person:
    session.add(person)
    return person
