"""Assigning and removing subsidy categories (资助类别) for a person and year. Single assignments by staff
and department rosters both come through here, so repricing follows every change."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment import service as enrollments
from registry.enrollment.schemas import RepriceOutcome
from registry.people import service as people
from registry.policy.errors import UnknownSubsidyCategory
from registry.subsidy import repository
from registry.subsidy.errors import (
    SubsidyAlreadyAssigned,
    SubsidyAssignmentAlreadyRemoved,
    SubsidyAssignmentNotFound,
)
from registry.subsidy.models import SubsidyAssignment
from registry.subsidy.schemas import AssignmentCreate, TownshipCount, TownshipSummary


async def assign(
    session: AsyncSession, registry: enrollments.Registry, request: AssignmentCreate
) -> tuple[SubsidyAssignment, RepriceOutcome]:
    today = registry.clock.today()
    identity = people.identify(request.person, today)
    policy = registry.policies.find(request.region_code, request.coverage_year)
    if policy.category(request.category) is None:
        raise UnknownSubsidyCategory(
            {"category": request.category, "known": [c.code for c in policy.subsidy_categories]}
        )
    person = await people.find_or_register(session, identity, request.person.name, request.person.phone)
    if await repository.find_active(session, person.id, policy.coverage_year, request.category):
        raise SubsidyAlreadyAssigned({"category": request.category, "coverage_year": policy.coverage_year})
    assignment = SubsidyAssignment(
        id=str(uuid.uuid4()),
        person_id=person.id,
        policy_id=policy.policy_id,
        coverage_year=policy.coverage_year,
        category_code=request.category,
        evidence_ref=request.evidence_ref,
        effective_date=request.effective_date or today,
        assigned_by=request.assigned_by,
        assigned_at=registry.clock.now(),
    )
    repository.add(session, assignment)
    await session.flush()
    outcome = await enrollments.reprice(
        session, registry, person.id, policy.coverage_year, f"subsidy category {request.category} assigned"
    )
    return assignment, outcome


async def remove(
    session: AsyncSession, registry: enrollments.Registry, assignment_id: str, removed_by: str, reason: str
) -> tuple[SubsidyAssignment, RepriceOutcome]:
    assignment = await repository.get(session, assignment_id)
    if assignment is None:
        raise SubsidyAssignmentNotFound({"assignment_id": assignment_id})
    if assignment.removed_at is not None:
        raise SubsidyAssignmentAlreadyRemoved({"assignment_id": assignment_id})
    assignment.removed_at = registry.clock.now()
    assignment.removed_by = removed_by
    assignment.removal_reason = reason
    await session.flush()
    outcome = await enrollments.reprice(
        session,
        registry,
        assignment.person_id,
        assignment.coverage_year,
        f"subsidy category {assignment.category_code} removed",
    )
    return assignment, outcome


UNNAMED_TOWNSHIP = "未填乡镇"


async def township_summary(
    session: AsyncSession, registry: enrollments.Registry, region_code: str, coverage_year: int, category: str
) -> TownshipSummary:
    policy = registry.policies.find(region_code, coverage_year)
    found = policy.category(category)
    if found is None:
        raise UnknownSubsidyCategory({"category": category})
    counts = await repository.enrolled_per_township(session, region_code, policy.coverage_year, found.code)
    names = [t.name for t in policy.townships if t.region_code == region_code]
    rows = [TownshipCount(township=name, enrolled=counts.pop(name, 0)) for name in names]
    rows += [
        TownshipCount(township=name or UNNAMED_TOWNSHIP, enrolled=n)
        for name, n in sorted(counts.items(), key=lambda item: item[0] or "")
    ]
    return TownshipSummary(
        region_code=region_code,
        coverage_year=policy.coverage_year,
        category=found.code,
        category_name=found.name,
        rows=rows,
        total=sum(r.enrolled for r in rows),
    )
