"""Who a person is: identity documents checked, and one record per document."""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

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
from registry.people.identity import parse_resident_id
from registry.people.models import DocumentType, IdentityReview, IdentityReviewState, Person, PersonSource
from registry.people.schemas import IdentityDecision, PersonIn
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


# Up to this many new people in one request are registered under locks (a household, a single enrollment).
_LOCKED_REGISTRATIONS = 50


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
        source = claimant.source_for(identity.document_number)
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
                    # Another resident never sets someone's contact data (reminders would go to them).
                    phone=None if source is PersonSource.OTHER_RESIDENT else phone,
                    source=source,
                    recorded_by=claimant.subject,
                ),
            )
            results.append(person)
            continue
        refusal = _named(session, person, name, phone=phone, source=source, claimant=claimant, now=now)
        results.append(refusal or person)
    return results


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
