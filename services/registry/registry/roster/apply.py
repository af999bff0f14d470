"""Applying a roster's accepted rows (花名册入库): each row goes through the same rules and paths a single
request uses (subsidy assignment and enrollment, student enrollment, exclusion, registered residence), in
bulk, so that one refused row leaves the others alone."""

from collections.abc import Awaitable
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.enrollment import bulk as enrollment_bulk
from registry.enrollment.errors import AlreadyEnrolled
from registry.exclusion import service as exclusions
from registry.exclusion.errors import ExclusionAlreadyRecorded
from registry.exclusion.models import ExclusionKind
from registry.people import service as people
from registry.people.models import DocumentType
from registry.people.schemas import PersonIn
from registry.policy.models import EligibilityKind, Payer
from registry.population import service as population
from registry.roster.models import RosterKind, RosterUpload
from registry.roster.repository import Accepted
from registry.roster.validation import STUDENT_KINDS
from registry.subsidy import bulk as subsidy_bulk
from registry.subsidy import repository as subsidies
from registry.subsidy import service as subsidy_service
from registry.subsidy.errors import SubsidyAlreadyAssigned
from shared.errors import DomainError


async def apply_rows(
    session: AsyncSession, registry: Registry, upload: RosterUpload, rows: list[Accepted]
) -> list[str]:
    """What applying each row did. Rows go through the same rules single requests use, in bulk: a refusal
    is found before anything of that row is written, so one bad row leaves the others alone."""
    if upload.kind is RosterKind.EMPLOYEE_INSURANCE:
        return [await _refused_or(_exclude(session, registry, upload, row)) for row in rows]
    if upload.kind is RosterKind.SUBSIDY_REDUCTION:
        return [await _refused_or(_reduce(session, registry, upload, row)) for row in rows]
    if upload.kind in STUDENT_KINDS:
        return await _enroll_students(session, registry, upload, rows)
    if upload.kind is RosterKind.HOUSEHOLD_REGISTRATION:
        return await _record_residents(session, registry, upload, rows)
    return await _assign_and_enroll(session, registry, upload, rows)


async def _assign_and_enroll(
    session: AsyncSession, registry: Registry, upload: RosterUpload, rows: list[Accepted]
) -> list[str]:
    """A subsidy roster's rows: the category assigned (most generous wins, enrollments repriced), then the
    holders enrolled (`subsidy.service.enroll_holders`)."""
    policy = registry.policies.by_id(upload.policy_id)
    # The main roster speaks for the status on its cut-off day; an addition without a date, for today.
    undated = policy.subsidy_rosters.cut_off if upload.kind is RosterKind.SUBSIDY else None
    evidence = f"{upload.department} 花名册 {upload.id} 第"  # the upload's attributes read once, not per row
    listed = [_listed(row, evidence, undated) for row in rows]
    source = subsidy_bulk.Source(
        upload.region_code,
        upload.coverage_year,
        upload.reviewed_by or upload.uploaded_by,
        within=frozenset({upload.region_code}),
    )
    assigned = await subsidy_bulk.assign_listed(session, registry, source, listed)
    outcomes: list[str | None] = [
        f"refused:{r.code}" if r is not None and not isinstance(r, SubsidyAlreadyAssigned) else None
        for r in assigned.refusals
    ]
    waiting = [i for i, outcome in enumerate(outcomes) if outcome is None]
    holders = [
        subsidy_service.Holder(
            str(assigned.people[i]), listed[i].identity, listed[i].name, listed[i].township
        )
        for i in waiting
    ]
    enrolled = await subsidy_service.enroll_holders(
        session, registry, policy, upload.region_code, holders, standing=assigned.standing
    )
    for i, outcome in zip(waiting, enrolled, strict=True):
        outcomes[i] = outcome
    return [o or "" for o in outcomes]


def _listed(row: Accepted, evidence: str, undated: date | None) -> subsidy_bulk.Listed:
    values = row.values
    # Positional, in Listed's order: ten fields by keyword took three times as long to bind (1.5 us a row).
    return subsidy_bulk.Listed(
        people.accepted_resident(row.id_number),
        values["name"],
        values["category_code"],
        f"{evidence}{row.row_no}行",  # evidence_ref
        date.fromisoformat(values["event_date"]) if values.get("event_date") else undated,
        values.get("township") or None,
        values.get("village") or None,
        values.get("group") or None,  # village_group
        values.get("note") or None,
        values.get("reason") or None,
    )


async def _refused_or(work: Awaitable[str]) -> str:
    try:
        return await work
    except DomainError as exc:
        return f"refused:{exc.code}"


async def _enroll_students(
    session: AsyncSession, registry: Registry, upload: RosterUpload, rows: list[Accepted]
) -> list[str]:
    """Students are enrolled on the roster's word; the policy says whether their school pays for them as one
    payer (a university for its batch) or each family pays."""
    policy = registry.policies.by_id(upload.policy_id)
    rosters = policy.student_rosters
    payer = rosters.university_payer if upload.kind is RosterKind.UNIVERSITY else rosters.school_payer
    identities = [people.accepted_resident(row.id_number) for row in rows]
    found = (
        await people.find_or_register_bulk(
            session,
            [(i, row.values["name"]) for i, row in zip(identities, rows, strict=True)],
            now=registry.clock.now(),
        )
    ).people
    outcomes = [f"refused:{p.code}" if isinstance(p, DomainError) else "" for p in found]
    by_school: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if not outcomes[i]:
            by_school.setdefault(row.values.get("school") or upload.department, []).append(i)
    for school, indexes in by_school.items():
        terms = enrollment_bulk.RosterTerms(
            policy,
            upload.region_code,
            EligibilityKind.STUDENT,
            payer_organisation=school if payer is Payer.ORGANISATION else None,
            # Progress reports count university students city-wide (大学生).
            university=school if upload.kind is RosterKind.UNIVERSITY else None,
        )
        entrants = [
            enrollment_bulk.Entrant(
                str(found[i]), identities[i], rows[i].values["name"], rows[i].values.get("township") or None
            )
            for i in indexes
        ]
        results = await enrollment_bulk.enroll_roster(session, registry, terms, entrants)
        for i, result in zip(indexes, results, strict=True):
            outcomes[i] = _enrolled(result)
    return outcomes


def _enrolled(result: enrollment_bulk.Enrolled | DomainError) -> str:
    if isinstance(result, AlreadyEnrolled):
        return "already_enrolled"
    if isinstance(result, DomainError):
        return f"refused:{result.code}"
    return "enrolled"


async def _record_residents(
    session: AsyncSession, registry: Registry, upload: RosterUpload, rows: list[Accepted]
) -> list[str]:
    today = registry.clock.today()
    found = await people.find_or_register_many(
        session, [(people.identify(_person_in(row), today), row.values["name"], None) for row in rows]
    )
    outcomes = [f"refused:{p.code}" if isinstance(p, DomainError) else "" for p in found]
    residences = [
        population.Residence(
            person,
            row.values.get("township") or None,
            row.values.get("village") or None,
            row.values.get("group") or None,
            f"{upload.department} {upload.id} 第{row.row_no}行",
            row.values.get("household_no") or None,
        )
        for row, person in zip(rows, found, strict=True)
        if not isinstance(person, DomainError)
    ]
    recorded = iter(
        await population.record_many(session, registry, upload.region_code, upload.coverage_year, residences)
    )
    return [outcome or next(recorded) for outcome in outcomes]


def _person_in(row: Accepted) -> PersonIn:
    return PersonIn(id_number=row.values["id_number"], name=row.values["name"])


async def _exclude(session: AsyncSession, registry: Registry, upload: RosterUpload, row: Accepted) -> str:
    identity = people.identify(_person_in(row), registry.clock.today())
    try:
        await exclusions.record(
            session,
            registry.clock,
            identity,
            upload.coverage_year,
            ExclusionKind.EMPLOYEE_INSURANCE,
            f"{upload.department} 花名册 {upload.filename} 第{row.row_no}行",
            upload.reviewed_by or upload.uploaded_by,
        )
    except ExclusionAlreadyRecorded:
        return "already_excluded"
    return "excluded"


async def _reduce(session: AsyncSession, registry: Registry, upload: RosterUpload, row: Accepted) -> str:
    values = row.values
    person = await people.find_known(session, DocumentType.RESIDENT_ID, values["id_number"], values["name"])
    assignment = await subsidies.find_active(
        session, person.id, upload.coverage_year, values["category_code"]
    )
    if assignment is None:
        return "not_held"
    _, outcome = await subsidy_service.remove(
        session,
        registry,
        assignment.id,
        upload.reviewed_by or upload.uploaded_by,
        values["reason"],
        within=frozenset({upload.region_code}),
    )
    return f"removed:{outcome}"


async def apply_alone(session: AsyncSession, registry: Registry, upload: RosterUpload, row: Accepted) -> str:
    """One row on its own: a refusal is its outcome, and nothing of it is written."""
    try:
        async with session.begin_nested():
            (outcome,) = await apply_rows(session, registry, upload, [row])
    except DomainError as exc:
        return f"refused:{exc.code}"
    return outcome
