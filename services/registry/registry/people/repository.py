from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from registry.people.models import DocumentType, IdentityReview, IdentityReviewState, Person, PersonSource
from shared import bulk


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
        chosen = {"document_type": document_type, "numbers": sorted(numbers)}
        for person in (await session.scalars(_BY_DOCUMENTS, chosen)).all():
            found[(person.document_type, person.document_number)] = person
    return found


# Built once: each use only binds its values (every enrollment and registration looks people up).
_BY_DOCUMENTS = select(Person).where(
    Person.document_type == bindparam("document_type"),
    Person.document_number.in_(bindparam("numbers", expanding=True)),
)


def _registering(insert: Any) -> Any:
    table = Person.__table__
    registering = insert(table).on_conflict_do_nothing(index_elements=["document_number", "document_type"])
    return registering.returning(table.c.document_type, table.c.document_number)


# INSERT … ON CONFLICT DO NOTHING, by dialect: built once, so each use only binds its rows.
_REGISTER = {"postgresql": _registering(postgresql.insert), "sqlite": _registering(sqlite.insert)}


async def register(session: AsyncSession, people: Sequence[Person]) -> set[tuple[DocumentType, str]]:
    """Insert these people now, but none whose document is registered already: committed, or being registered
    by a concurrent transaction, whose end the unique index waits for. Returns the documents inserted; those
    people join the session as records already written."""
    if not people:
        return set()
    columns = [column.key for column in Person.__table__.columns]
    rows = [{key: getattr(person, key) for key in columns} for person in people]
    statement = _REGISTER[session.get_bind().dialect.name]
    inserted = {(kind, number) for kind, number in (await session.execute(statement, rows)).all()}
    for person in people:
        if (person.document_type, person.document_number) in inserted:
            make_transient_to_detached(person)
            session.add(person)
    return inserted


class PersonRef(NamedTuple):
    id: str
    name: str
    source: PersonSource


async def refs_by_documents(
    session: AsyncSession, keys: Iterable[tuple[DocumentType, str]]
) -> dict[tuple[DocumentType, str], PersonRef]:
    """`by_documents` as plain rows (id, name, source), for thousands of documents at once."""
    by_type: dict[DocumentType, set[str]] = {}
    for document_type, number in keys:
        by_type.setdefault(document_type, set()).add(number)
    found: dict[tuple[DocumentType, str], PersonRef] = {}
    for document_type, numbers in by_type.items():
        person = Person.__table__.c  # table columns: plain rows, without the ORM's loading
        query = select(person.document_number, person.id, person.name, person.source).where(
            bulk.among(session, person.document_number, sorted(numbers)),
            person.document_type == document_type,
        )
        for number, person_id, name, source in (await session.execute(query)).all():
            found[(document_type, number)] = PersonRef(person_id, name, source)
    return found


# The columns of a person registered in bulk, in the order `insert_many` takes them.
PERSON_COLUMNS = (
    "id",
    "document_type",
    "document_number",
    "nationality",
    "name",
    "birth_date",
    "sex",
    "phone",
    "source",
    "recorded_by",
    "created_at",
)


async def insert_many(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    await bulk.insert_rows(session, Person, PERSON_COLUMNS, rows)


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


async def take_categories(session: AsyncSession, person_ids: Sequence[str]) -> None:
    """Lock these people's rows, in id order (two batches never wait for each other in a circle), and move
    their category epoch: the row lock is held to the end of the transaction, and the moved epoch tells a
    statement that priced on the old categories, waiting for the lock meanwhile, that they were taken."""
    if not person_ids:
        return
    # Not FOR UPDATE: a row inserted meanwhile that refers to the person (an assignment's foreign key) holds a
    # KEY SHARE lock on them, which FOR UPDATE would wait for, and two such assignments for each other.
    locked = (
        select(Person.id)
        .where(Person.id.in_(sorted(set(person_ids))))
        .order_by(Person.id)
        .with_for_update(key_share=True)
    )
    taking = (
        update(Person)
        .where(Person.id.in_(locked))
        .values(category_epoch=func.coalesce(Person.category_epoch, 0) + 1)
        .execution_options(synchronize_session=False)
    )
    await session.execute(taking)
