from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.people.models import DocumentType, IdentityReview, IdentityReviewState, Person


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


def add_review(session: AsyncSession, review: IdentityReview) -> None:
    session.add(review)


async def reviews(
    session: AsyncSession, *, state: IdentityReviewState | None, regions: frozenset[str] | None, limit: int
) -> list[IdentityReview]:
    query = select(IdentityReview).order_by(IdentityReview.created_at.desc(), IdentityReview.id).limit(limit)
    if state is not None:
        query = query.where(IdentityReview.state == state)
    if regions is not None:
        query = query.where(IdentityReview.region_code.in_(sorted(regions)))
    return list((await session.scalars(query)).all())


async def review_for_update(session: AsyncSession, review_id: int) -> IdentityReview | None:
    query = select(IdentityReview).where(IdentityReview.id == review_id).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def get_for_update(session: AsyncSession, person_id: str) -> Person | None:
    return (
        await session.scalars(select(Person).where(Person.id == person_id).with_for_update())
    ).one_or_none()
