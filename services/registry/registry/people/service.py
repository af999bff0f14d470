"""Who a person is: identity documents checked, and one record per document."""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from registry.people import repository
from registry.people.errors import (
    DocumentNumberBadFormat,
    ForeignDocumentDetailsMissing,
    IdentityReviewClosed,
    IdentityReviewNotFound,
    PersonNameMismatch,
    PersonNotFound,
)
from registry.people.identity import birth_date_of, parse_resident_id, sex_of
from registry.people.models import (
    DocumentType,
    IdentityReview,
    IdentityReviewState,
    Person,
    PersonShown,
    PersonSource,
)
from registry.people.schemas import IdentityDecision, PersonIn
from shared import bulk
from shared.errors import DomainError

_FOREIGN_NUMBER = re.compile(r"^[A-Z0-9]{5,20}$")


# A named tuple, not a frozen dataclass: a roster chunk makes thousands, at a third of the cost each.
class Identity(NamedTuple):
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


def accepted_resident(number: str) -> Identity:
    """The identity a resident ID number that was checked already (`identify`, e.g. when a roster row was
    validated) gives: what it says of birth date and sex, without checking it again."""
    return Identity(DocumentType.RESIDENT_ID, number, "CHN", birth_date_of(number), sex_of(number))


def identity_of(person: Person) -> Identity:
    """A registered person's identity, as `identify` gave it when they were registered."""
    return Identity(
        person.document_type, person.document_number, person.nationality, person.birth_date, person.sex
    )


@dataclass(frozen=True)
class Claimant:
    """Who names the people of a request, which decides what their naming may do. Staff, departments and
    rosters are official. A resident names themselves with their own verified identity (their token's ID
    number), and anyone else only provisionally: such a record never overrides another, and the person's own
    verified name later replaces it (with a review for staff)."""

    subject: str | None = None
    own_number: str | None = None
    official: bool = True
    region_code: str | None = None

    def source_for(self, document_number: str) -> PersonSource:
        if self.own_number is not None and document_number == self.own_number:
            return PersonSource.SELF
        return PersonSource.OFFICIAL if self.official else PersonSource.OTHER_RESIDENT


OFFICIAL = Claimant()


# Up to this many new people in one request are registered at once (a household, a single enrollment).
_REGISTERED_AT_ONCE = 50
# The people find_or_register_many registered in the session's current transaction.
_REGISTERED = "canbao_registered_people"


async def find_or_register_many(
    session: AsyncSession,
    entries: Sequence[tuple[Identity, str, str | None]],
    *,
    claimant: Claimant = OFFICIAL,
    now: datetime | None = None,
) -> list[Person | DomainError]:
    """The person with each document, registered now if new, in one query; each entry gets its person or its
    refusal. A known document with another name is refused rather than overwritten: it is either a typing
    error or someone else's number (but see Claimant)."""
    documents = [(identity.document_type, identity.document_number) for identity, _, _ in entries]
    known = await repository.by_documents(session, documents)
    new: dict[tuple[DocumentType, str], Person] = {}
    for identity, name, phone in entries:
        key = (identity.document_type, identity.document_number)
        if key not in known and key not in new:
            new[key] = new_person(identity, name, phone, claimant)
    if len(new) <= _REGISTERED_AT_ONCE:
        # Written at once, unless a concurrent request registers the same person first: the unique index
        # makes this one wait for it, and it then finds that person instead of failing. (A roster chunk is
        # larger: a clash there fails its flush and the worker redoes the chunk row by row, through here.)
        inserted = await repository.register(session, list(new.values()))
        if taken := [key for key in new if key not in inserted]:
            known |= await repository.by_documents(session, taken)
        new = {key: new[key] for key in inserted}
        _registered(session).update(person.id for person in new.values())
    else:
        for person in new.values():
            repository.add(session, person)
    results: list[Person | DomainError] = []
    for identity, name, phone in entries:
        key = (identity.document_type, identity.document_number)
        if key in new:
            results.append(known.setdefault(key, new[key]))  # later entries of the same person are checked
            continue
        person = known[key]
        source = claimant.source_for(identity.document_number)
        refusal = _named(session, person, name, phone=phone, source=source, claimant=claimant, now=now)
        results.append(refusal or person)
    return results


@dataclass(frozen=True)
class Registration:
    """Each entry's person id or refusal, and the ids of the people registered now."""

    people: list[str | DomainError]
    new: frozenset[str]


async def find_or_register_bulk(
    session: AsyncSession, entries: Sequence[tuple[Identity, str]], *, now: datetime
) -> Registration:
    """`find_or_register_many` for an official list of thousands (a roster chunk; no phone numbers), giving
    each entry its person's id or its refusal. People known under the same name are found with one query and
    new ones registered with one bulk insert; the rest (a known number under another name or on a record
    another resident made, a document given twice, a handful of new people) go through
    `find_or_register_many`, whose rules decide them."""
    known = await repository.refs_by_documents(
        session, [(i.document_type, i.document_number) for i, _ in entries]
    )
    results: list[str | DomainError | None] = [None] * len(entries)
    seen: set[tuple[DocumentType, str]] = set()
    new: list[int] = []
    others: list[int] = []
    for i, (identity, name) in enumerate(entries):
        key = (identity.document_type, identity.document_number)
        ref = known.get(key)
        if key in seen:
            others.append(i)
        elif ref is None:
            new.append(i)
        elif ref.name == name and ref.source is not PersonSource.OTHER_RESIDENT:
            results[i] = ref.id
        else:
            others.append(i)
        seen.add(key)
    registered: set[str] = set()
    if len(new) > _REGISTERED_AT_ONCE:
        for i, person_id in await _register_in_bulk(session, [(i, *entries[i]) for i in new], now):
            results[i] = person_id
            registered.add(person_id)
    else:
        others += new
    others.sort()
    rest = [(entries[i][0], entries[i][1], None) for i in others]
    found = await find_or_register_many(session, rest, now=now)
    for i, person in zip(others, found, strict=True):
        results[i] = person if isinstance(person, DomainError) else person.id
        if not isinstance(person, DomainError) and registered_now(session, person):
            registered.add(person.id)
    return Registration([r for r in results if r is not None], frozenset(registered))


async def _register_in_bulk(
    session: AsyncSession, entries: Sequence[tuple[int, Identity, str]], now: datetime
) -> list[tuple[int, str]]:
    """New people of an official list, written with one bulk insert; each entry's index and person id."""
    rows = []
    ids = []
    new_ids = bulk.new_ids()  # in order: the indexes they lead grow at one end
    for i, identity, name in entries:
        person_id = next(new_ids)
        rows.append(
            (
                person_id,
                identity.document_type,
                identity.document_number,
                identity.nationality,
                name,
                identity.birth_date,
                identity.sex,
                None,
                PersonSource.OFFICIAL,
                None,
                now,
            )
        )
        ids.append((i, person_id))
    await repository.insert_many(session, rows)
    return ids


def registered_now(session: AsyncSession, person: Person) -> bool:
    """Whether this person was registered in the session's current transaction: someone that new has nothing
    else on record yet."""
    return inspect(person).pending or person.id in _registered(session)


def _registered(session: AsyncSession) -> set[str]:
    transaction = session.sync_session.get_transaction()
    entry: tuple[object, set[str]] | None = session.info.get(_REGISTERED)
    if entry is None or entry[0] is not transaction:
        entry = session.info[_REGISTERED] = (transaction, set())
    return entry[1]


def new_person(identity: Identity, name: str, phone: str | None, claimant: Claimant) -> Person:
    return Person(**_new_person(identity, name, phone, claimant))


def new_person_row(identity: Identity, name: str, phone: str | None, claimant: Claimant) -> dict[str, Any]:
    """A new person's columns, every one of them, as a row to write: building the mapped Person to read it
    back (each attribute set through the ORM's instrumentation) cost ~30 us of an enrollment that writes the
    row with a statement of its own."""
    return _UNSET | _new_person(identity, name, phone, claimant)


def _new_person(identity: Identity, name: str, phone: str | None, claimant: Claimant) -> dict[str, Any]:
    source = claimant.source_for(identity.document_number)
    return {
        "id": str(uuid.uuid4()),
        "document_type": identity.document_type,
        "document_number": identity.document_number,
        "nationality": identity.nationality,
        "name": name,
        "birth_date": identity.birth_date,
        "sex": identity.sex,
        # Another resident never sets someone's contact data (reminders would go to them).
        "phone": None if source is PersonSource.OTHER_RESIDENT else phone,
        "source": source,
        "recorded_by": claimant.subject,
        "created_at": datetime.now(UTC),
    }


# The columns a new person's row leaves unset, as a mapped Person reads them before its flush.
_UNSET: dict[str, Any] = dict.fromkeys(column.key for column in Person.__table__.columns)


def named_as_recorded(
    name: str | None,
    source: PersonSource | None,
    phone: str | None,
    given_name: str,
    given_phone: str | None,
    claimant: Claimant,
    identity: Identity,
) -> bool:
    """Whether naming a person recorded with `name`, `source` and `phone` as given changes nothing and refuses
    nothing (`_named` would leave the record as it is)."""
    if claimant.source_for(identity.document_number) is PersonSource.OTHER_RESIDENT:
        return True
    return (
        name == given_name
        and source is not PersonSource.OTHER_RESIDENT
        and (not given_phone or given_phone == phone)
    )


def as_recorded(identity: Identity, person_id: str, name: str) -> PersonShown:
    """A registered person as far as an enrollment shows them (id, document, name), not loaded."""
    return PersonShown(
        id=person_id,
        document_type=identity.document_type,
        document_number=identity.document_number,
        nationality=identity.nationality,
        name=name,
        birth_date=identity.birth_date,
        sex=identity.sex,
    )


def _named(
    session: AsyncSession,
    person: Person,
    name: str,
    *,
    phone: str | None,
    source: PersonSource,
    claimant: Claimant,
    now: datetime | None,
) -> DomainError | None:
    """What naming a known person does to their record, or the refusal."""
    if source is PersonSource.OTHER_RESIDENT:
        return None  # changes nothing and reveals nothing: the inviter's words stay on the invitation
    if person.name != name:
        if person.source is not PersonSource.OTHER_RESIDENT:
            return PersonNameMismatch({"field": "name"})
        # The person's own verified identity (or an official's) replaces a provisional record another
        # resident made, so nobody is locked out of their own enrollment; staff review the case.
        repository.add_review(
            session,
            IdentityReview(
                person_id=person.id,
                region_code=claimant.region_code,
                recorded_name=person.name,
                recorded_by=person.recorded_by,
                claimed_name=name,
                claimed_by=claimant.subject or "official",
                state=IdentityReviewState.OPEN,
                created_at=now or datetime.now(UTC),
            ),
        )
        person.name = name
    if person.source is PersonSource.OTHER_RESIDENT:
        person.source = source
    if phone:
        person.phone = phone
    return None


async def find_known(session: AsyncSession, document_type: DocumentType, number: str, name: str) -> Person:
    """An already registered person; the name must match too, so a number alone reveals nothing."""
    person = await repository.get_by_document(session, document_type, number.strip().upper())
    if person is None or person.name != name.strip():
        raise PersonNotFound()
    return person


async def reviews(
    session: AsyncSession, *, state: IdentityReviewState | None, regions: frozenset[str] | None, limit: int
) -> list[IdentityReview]:
    return await repository.reviews(session, state=state, regions=regions, limit=limit)


async def review(session: AsyncSession, review_id: int) -> IdentityReview:
    found = await repository.review_for_update(session, review_id)
    if found is None:
        raise IdentityReviewNotFound({"review_id": review_id})
    return found


async def decide(session: AsyncSession, review: IdentityReview, decision: IdentityDecision) -> IdentityReview:
    """Staff decide: the verified name stands, or (documents showed otherwise) the earlier name comes back."""
    if review.state is not IdentityReviewState.OPEN:
        raise IdentityReviewClosed({"state": review.state.value})
    if decision.decision == "reverted":
        person = await repository.get_for_update(session, review.person_id)
        if person is not None:
            person.name = review.recorded_name
    review.state = IdentityReviewState(decision.decision)
    review.decided_by, review.note = decision.decided_by, decision.note
    review.decided_at = datetime.now(UTC)
    await session.flush()
    return review


async def take_categories(session: AsyncSession, person_ids: Sequence[str]) -> None:
    """Before reading people's subsidy categories to price their enrollments, or changing them: take them, so
    that pricing and changing never overlap (a category assigned while someone enrolls is either seen by the
    enrollment or reprices it). The people's rows stay locked until the transaction ends."""
    await repository.take_categories(session, person_ids)
