"""不得重复参保: people in employee insurance or enrolled elsewhere for the year are refused.

`ExclusionLookup` is where a real lookup (the provincial platform's cross-region check) plugs in; the
registry's own list is the implementation it ships with.
"""

import uuid
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from registry.exclusion import repository
from registry.exclusion.errors import (
    EnrolledElsewhere,
    ExclusionAlreadyRecorded,
    ExclusionNotFound,
    InEmployeeInsurance,
)
from registry.exclusion.models import Exclusion, ExclusionKind
from registry.people.service import Identity
from shared.clock import Clock


class ExclusionLookup(Protocol):
    async def exclusions(
        self, session: AsyncSession, identity: Identity, coverage_year: int
    ) -> list[ExclusionKind]:
        """The reasons, if any, this person may not enroll here for the year."""
        ...


class RegistryExclusionList:
    async def exclusions(
        self, session: AsyncSession, identity: Identity, coverage_year: int
    ) -> list[ExclusionKind]:
        found = await repository.active_for(
            session, identity.document_type, identity.document_number, coverage_year
        )
        return [e.kind for e in found]


async def refuse_if_excluded(
    lookup: ExclusionLookup, session: AsyncSession, identity: Identity, coverage_year: int
) -> None:
    kinds = await lookup.exclusions(session, identity, coverage_year)
    if ExclusionKind.EMPLOYEE_INSURANCE in kinds:
        raise InEmployeeInsurance({"coverage_year": coverage_year})
    if ExclusionKind.ENROLLED_ELSEWHERE in kinds:
        raise EnrolledElsewhere({"coverage_year": coverage_year})


async def record(
    session: AsyncSession,
    clock: Clock,
    identity: Identity,
    coverage_year: int,
    kind: ExclusionKind,
    source: str,
    by: str,
) -> Exclusion:
    if await repository.find_active(
        session, identity.document_type, identity.document_number, coverage_year, kind
    ):
        raise ExclusionAlreadyRecorded({"coverage_year": coverage_year, "kind": kind.value})
    exclusion = Exclusion(
        id=str(uuid.uuid4()),
        document_type=identity.document_type,
        document_number=identity.document_number,
        coverage_year=coverage_year,
        kind=kind,
        source=source,
        recorded_by=by,
        recorded_at=clock.now(),
    )
    repository.add(session, exclusion)
    return exclusion


async def remove(session: AsyncSession, clock: Clock, exclusion_id: str, by: str) -> Exclusion:
    exclusion = await repository.get(session, exclusion_id)
    if exclusion is None or exclusion.removed_at is not None:
        raise ExclusionNotFound({"exclusion_id": exclusion_id})
    exclusion.removed_at = clock.now()
    exclusion.removed_by = by
    return exclusion
