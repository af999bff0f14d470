import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from registry.people import repository
from registry.people.errors import PersonNameMismatch
from registry.people.identity import ResidentIdentity
from registry.people.models import Person


async def find_or_register(
    session: AsyncSession, identity: ResidentIdentity, name: str, phone: str | None
) -> Person:
    """The person with this ID number, registered now if new. A known ID with another name is refused
    rather than overwritten: it is either a typing error or someone else's number."""
    person = await repository.get_by_id_number(session, identity.id_number)
    if person is None:
        return repository.add(
            session,
            Person(
                id=str(uuid.uuid4()),
                id_number=identity.id_number,
                name=name,
                birth_date=identity.birth_date,
                sex=identity.sex,
                phone=phone,
            ),
        )
    if person.name != name:
        raise PersonNameMismatch({"field": "name"})
    if phone:
        person.phone = phone
    return person
