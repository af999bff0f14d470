"""不得重复参保: people in employee insurance or enrolled elsewhere for the year are refused.

`ExclusionLookup` is where a real lookup (the provincial platform's cross-region check) plugs in; the
registry's own list is the implementation it ships with.
"""

import uuid
from collections.abc import Sequence
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
from shared.errors import DomainError


class ExclusionLookup(Protocol):
    async def exclusions(
        self, session: AsyncSession, people: Sequence[Identity], coverage_year: int
    ) -> list[list[ExclusionKind]]:
        """For each person, the reasons, if any, they may not enroll here for the year."""
        ...


class RegistryExclusionList:
    async def exclusions(
        self, session: AsyncSession, people: Sequence[Identity], coverage_year: int
    ) -> list[list[ExclusionKind]]:
        found = await repository.active_kinds(
            session, [(p.document_type, p.document_number) for p in people], coverage_year
        )
        return [sorted(found.get((p.document_type, p.document_number)) or ()) for p in people]


def refusal(kinds: list[ExclusionKind], coverage_year: int) -> DomainError | None:
    """不得重复参保: why these exclusions refuse an enrollment, if they do."""
    if ExclusionKind.EMPLOYEE_INSURANCE in kinds:
        return InEmployeeInsurance({"coverage_year": coverage_year})
    if ExclusionKind.ENROLLED_ELSEWHERE in kinds:
        return EnrolledElsewhere({"coverage_year": coverage_year})
    return None


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
