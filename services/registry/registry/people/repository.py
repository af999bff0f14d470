from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.people.models import Person


async def get_by_id_number(session: AsyncSession, id_number: str) -> Person | None:
    result = await session.scalars(select(Person).where(Person.id_number == id_number))
    return result.one_or_none()


def add(session: AsyncSession, person: Person) -> Person:
    session.add(person)
    return person
