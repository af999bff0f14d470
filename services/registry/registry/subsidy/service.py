"""Assigning and removing subsidy categories (资助类别) for a person and year. Single assignments by staff
and department rosters both come through here, so repricing follows every change."""

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.enrollment import bulk as enrollment_bulk
from registry.enrollment import repository as enrollments_repo
from registry.enrollment import service as enrollments
from registry.enrollment.schemas import RepriceOutcome
from registry.people import service as people
from registry.people.models import Person
from registry.people.service import Identity
from registry.policy import rules
from registry.policy.book import PolicyBook
from registry.policy.errors import UnknownSubsidyCategory
from registry.policy.models import Charge, EligibilityKind, LateCaseKind, Policy, SubsidyCategory
from registry.subsidy import decision, repository
from registry.subsidy.errors import (
    SubsidyAssignmentAlreadyRemoved,
    SubsidyAssignmentNotFound,
)
from registry.subsidy.models import SubsidyAssignment
from registry.subsidy.schemas import (
    AdjustmentResult,
    AssignmentCreate,
    MobilisationItem,
    MobilisationList,
    RosterLayout,
    TownshipCount,
    TownshipSummary,
)
from shared.auth import OutsideArea
from shared.errors import DomainError
from shared.logging import mask_id_number


def resolve_category(policy: Policy, text: str) -> SubsidyCategory:
    """The category a text names (code, document name, alias, included group), or UnknownSubsidyCategory
    listing what the policy knows."""
    found = policy.find_category(text)
    if found is None:
        raise UnknownSubsidyCategory(
            {
                "category": text,
                "known": [c.code for c in policy.subsidy_categories],
                "names": [c.label for c in policy.subsidy_categories],
            }
        )
    return found


async def assign(
    session: AsyncSession,
    registry: Registry,
    request: AssignmentCreate,
    *,
    within: frozenset[str] | None = None,
) -> tuple[SubsidyAssignment, RepriceOutcome]:
    (result,) = await assign_many(session, registry, [request], within=within)
    if isinstance(result, DomainError):
        raise result
    return result


async def assign_many(
    session: AsyncSession,
    registry: Registry,
    requests: Sequence[AssignmentCreate],
    *,
    within: frozenset[str] | None = None,
) -> list[tuple[SubsidyAssignment, RepriceOutcome] | DomainError]:
    """Assign each request's category, or say why not, and reprice the enrollments concerned: one staff
    assignment and a department roster take the same path. `within`: the regions whose enrollments the
    caller may reprice (a staff member's or department's area, a roster's region); a person enrolled
    elsewhere is refused, since the assignment would change what they owe there."""
    today = registry.clock.today()
    results: list[tuple[SubsidyAssignment, RepriceOutcome] | DomainError | None] = [None] * len(requests)
    checked: list[_Checked] = []
    for i, request in enumerate(requests):
        try:
            checked.append(_check(registry.policies, i, request, today))
        except DomainError as exc:
            results[i] = exc
    found = await people.find_or_register_many(
        session, [(c.identity, c.request.person.name, c.request.person.phone) for c in checked]
    )
    registered: list[tuple[_Checked, Person]] = []
    for candidate, person in zip(checked, found, strict=True):
        if isinstance(person, DomainError):
            results[candidate.index] = person
        else:
            registered.append((candidate, person))
    # Their categories taken before anything of theirs is read (their enrollments' area, what they hold).
    await people.take_categories(session, [p.id for _, p in registered])
    for year in sorted({c.policy.coverage_year for c, _ in registered}):
        of_year = [(c, p) for c, p in registered if c.policy.coverage_year == year]
        claims, held = await _claims(session, of_year, year)
        added: list[tuple[int, SubsidyAssignment]] = []
        for (candidate, person), refused in zip(
            of_year, decision.decide(claims, held, within=within), strict=True
        ):
            if refused is None:
                added.append((candidate.index, _assignment(registry, candidate, person)))
            else:
                results[candidate.index] = refused
        for i, outcome in await _add_and_reprice(session, registry, added, year):
            results[i] = outcome
    return [r for r in results if r is not None]


@dataclass(frozen=True)
class _Checked:
    index: int
    request: AssignmentCreate  # naming the category by its code
    identity: Identity
    policy: Policy


def _check(book: PolicyBook, index: int, request: AssignmentCreate, today: date) -> _Checked:
    """A request's checks of its own: the identity, the policy, the category it names, the place."""
    identity = people.identify(request.person, today)
    policy = book.find(request.region_code, request.coverage_year)
    request = request.model_copy(update={"category": resolve_category(policy, request.category).code})
    rules.check_place(policy, request.region_code, request.township, request.village)
    return _Checked(index, request, identity, policy)


async def _claims(
    session: AsyncSession, of_year: list[tuple[_Checked, Person]], year: int
) -> tuple[list[decision.Claim], dict[str, list[str]]]:
    """What the decision needs for one year: each claim with where its person is enrolled, and the
    categories the people hold."""
    person_ids = [p.id for _, p in of_year]
    enrolled_in = {
        e.person_id: e.region_code
        for e in (await enrollments_repo.live_for_people(session, person_ids, year)).values()
    }
    held = await repository.active_codes_many(session, person_ids, year)
    claims = [
        decision.Claim(p.id, c.request.category, year, c.request.region_code, enrolled_in.get(p.id))
        for c, p in of_year
    ]
    return claims, held


def _assignment(registry: Registry, checked: _Checked, person: Person) -> SubsidyAssignment:
    request = checked.request
    return SubsidyAssignment(
        id=str(uuid.uuid4()),
        person_id=person.id,
        policy_id=checked.policy.policy_id,
        region_code=request.region_code,
        coverage_year=checked.policy.coverage_year,
        category_code=request.category,
        evidence_ref=request.evidence_ref,
        effective_date=request.effective_date or registry.clock.today(),
        township=request.township,
        village=request.village,
        village_group=request.village_group,
        note=request.note,
        reason=request.reason,
        assigned_by=request.assigned_by,
        assigned_at=registry.clock.now(),
    )


async def _add_and_reprice(
    session: AsyncSession, registry: Registry, added: list[tuple[int, SubsidyAssignment]], year: int
) -> list[tuple[int, tuple[SubsidyAssignment, RepriceOutcome]]]:
    """Store the year's new assignments and reprice their people's enrollments."""
    for _, assignment in added:
        repository.add(session, assignment)
    await session.flush()
    outcomes = await enrollments.reprice_many(
        session,
        registry,
        {a.person_id: f"subsidy category {a.category_code} assigned" for _, a in added},
        year,
    )
    return [(i, (a, outcomes[a.person_id])) for i, a in added]


async def remove(
    session: AsyncSession,
    registry: Registry,
    assignment_id: str,
    removed_by: str,
    reason: str,
    *,
    within: frozenset[str] | None = None,
) -> tuple[SubsidyAssignment, RepriceOutcome]:
    assignment = await repository.get(session, assignment_id)
    if assignment is None:
        raise SubsidyAssignmentNotFound({"assignment_id": assignment_id})
    # The person's categories first, then the assignment as it stands under the lock (two removals at once:
    # the second finds it removed).
    await people.take_categories(session, [assignment.person_id])
    assignment = await repository.get(session, assignment_id, for_update=True)
    assert assignment is not None  # assignments are never deleted
    if within is not None:
        enrolled = await enrollments_repo.live_for_people(
            session, [assignment.person_id], assignment.coverage_year
        )
        if any(e.region_code not in within for e in enrolled.values()):
            raise OutsideArea({"reason": "enrolled_outside_area"})
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


# Someone registered who holds a subsidy category, and the township they live in: enrolled as they are (one
# tuple a person, not two).
Holder = enrollment_bulk.Entrant


async def enroll_holders(
    session: AsyncSession,
    registry: Registry,
    policy: Policy,
    region_code: str,
    holders: list[Holder],
    *,
    standing: enrollment_bulk.Standing | None = None,
) -> list[str]:
    """People with a subsidy are enrolled for them: in the window all of them, at their share; after it, those
    with a full subsidy (the policy's late case for the newly subsidised), while the others are listed for
    their township to mobilise. Says for each what happened: enrolled, enrolled_fully_subsidised,
    already_enrolled, mobilise or refused:<code>. Thousands at once (a roster chunk) take a few queries;
    `standing`: the holders' standing for the year, when the caller gathered it in this transaction."""
    if standing is None:
        standing = await enrollment_bulk.standing_of(
            session, [h.person_id for h in holders], policy.coverage_year
        )
    in_window = registry.clock.today() <= policy.enrollment_window.end
    late_case = None if in_window else policy.late_case(LateCaseKind.NEWLY_SUBSIDISED)
    full: dict[frozenset[str], bool] = {}  # by the categories held: each distinct set priced once
    outcomes: list[str] = []
    entrants: list[tuple[int, enrollment_bulk.Entrant]] = []
    for holder in holders:
        if holder.person_id in standing.live:
            outcomes.append("already_enrolled")
            continue
        if not in_window:
            codes = frozenset(standing.held.get(holder.person_id, []))
            if codes not in full:
                full[codes] = _fully_subsidised(policy, codes)
            if late_case is None or not full[codes]:
                outcomes.append("mobilise")
                continue
        outcomes.append("")
        entrants.append((len(outcomes) - 1, holder))
    terms = enrollment_bulk.RosterTerms(
        policy,
        region_code,
        EligibilityKind.HOUSEHOLD_REGISTRATION,
        late_case=None if in_window else LateCaseKind.NEWLY_SUBSIDISED,
    )
    created = await enrollment_bulk.enroll_roster(
        session, registry, terms, [e for _, e in entrants], standing=standing
    )
    for (i, _), result in zip(entrants, created, strict=True):
        if isinstance(result, DomainError):
            outcomes[i] = f"refused:{result.code}"
        else:
            outcomes[i] = "enrolled_fully_subsidised" if result.personal_due_fen == 0 else "enrolled"
    return outcomes


def _fully_subsidised(policy: Policy, held: Iterable[str]) -> bool:
    return rules.price(policy, held, Charge.PERSONAL).personal_due_fen == 0


async def monthly_adjustment(
    session: AsyncSession, registry: Registry, region_code: str, coverage_year: int
) -> AdjustmentResult:
    """The monthly run after the window (动态调整): everyone holding a category for the year who is not
    enrolled goes through `enroll_holders`; running it twice enrolls nobody twice."""
    policy = registry.policies.find(region_code, coverage_year)
    waiting = await repository.unenrolled_holders(session, region_code, policy.coverage_year)
    outcomes = await enroll_holders(
        session,
        registry,
        policy,
        region_code,
        [Holder(p.id, people.identity_of(p), p.name, a.township) for p, a in waiting],
    )
    counts = Counter(o.split(":")[0] for o in outcomes)
    return AdjustmentResult(
        region_code=region_code,
        coverage_year=policy.coverage_year,
        run_on=registry.clock.today(),
        enrolled=counts["enrolled"] + counts["enrolled_fully_subsidised"],
        fully_subsidised=counts["enrolled_fully_subsidised"],
        to_mobilise=counts["mobilise"],
        refused=counts["refused"],
    )


async def mobilisation_list(
    session: AsyncSession,
    registry: Registry,
    region_code: str,
    coverage_year: int,
    *,
    township: str | None,
) -> MobilisationList:
    """动员名单: people with a partial subsidy who have not enrolled, by township, and what they would pay."""
    policy = registry.policies.find(region_code, coverage_year)
    rules.check_place(policy, region_code, township)
    waiting = await repository.unenrolled_holders(
        session, region_code, policy.coverage_year, township=township
    )
    held = await repository.active_codes_many(session, [p.id for p, _ in waiting], policy.coverage_year)
    items = []
    for person, assignment in waiting:
        price = rules.price(policy, held.get(person.id, []), Charge.PERSONAL)
        if price.personal_due_fen == 0:
            continue  # a full subsidy is enrolled by the monthly run, not mobilised
        best = rules.most_generous(policy, held.get(person.id, []))
        items.append(
            MobilisationItem(
                name=person.name,
                id_number_masked=mask_id_number(person.document_number),
                township=assignment.township or UNNAMED_TOWNSHIP,
                village=assignment.village,
                village_group=assignment.village_group,
                category=best.code if best else assignment.category_code,
                category_name=best.name if best else assignment.category_code,
                personal_due=price.personal_due_fen,
            )
        )
    items.sort(key=lambda i: (i.township, i.village or "", i.village_group or "", i.name))
    return MobilisationList(region_code=region_code, coverage_year=policy.coverage_year, items=items)


async def roster(
    session: AsyncSession,
    registry: Registry,
    region_code: str,
    coverage_year: int,
    category: str,
    *,
    layout: RosterLayout,
) -> tuple[Policy, SubsidyCategory, list[tuple[Person, SubsidyAssignment]]]:
    """The people of one category in an attachment's layout: the main roster holds who qualified by the
    cut-off (the identification date, or the main roster's due date), additions who qualified after it,
    reductions who were removed."""
    policy = registry.policies.find(region_code, coverage_year)
    found = resolve_category(policy, category)
    cut_off = policy.subsidy_rosters.cut_off
    entries = await repository.roster_entries(session, region_code, policy.coverage_year, found.code)

    def belongs(a: SubsidyAssignment) -> bool:
        if layout is RosterLayout.REDUCTIONS:
            return a.removed_at is not None
        if a.removed_at is not None:
            return False
        after_cut_off = cut_off is not None and a.effective_date > cut_off
        return after_cut_off == (layout is RosterLayout.ADDITIONS)

    return policy, found, [(p, a) for p, a in entries if belongs(a)]


UNNAMED_TOWNSHIP = "未填乡镇"


def per_township(policy: Policy, region_code: str, counts: dict[str | None, int]) -> list[tuple[str, int]]:
    """Counts laid out as the attachments do: every township the policy lists, in its order (zero where there
    is none), then any other names, then people counted without a township. Totals come from these rows."""
    rest = dict(counts)
    rows = [(t.name, rest.pop(t.name, 0)) for t in policy.townships if t.region_code == region_code]
    rows += [
        (name or UNNAMED_TOWNSHIP, n) for name, n in sorted(rest.items(), key=lambda item: item[0] or "")
    ]
    return rows


async def township_summary(
    session: AsyncSession, registry: Registry, region_code: str, coverage_year: int, category: str
) -> TownshipSummary:
    policy = registry.policies.find(region_code, coverage_year)
    found = resolve_category(policy, category)
    counts = await repository.enrolled_per_township(session, region_code, policy.coverage_year, found.code)
    rows = [TownshipCount(township=name, enrolled=n) for name, n in per_township(policy, region_code, counts)]
    return TownshipSummary(
        region_code=region_code,
        coverage_year=policy.coverage_year,
        category=found.code,
        category_name=found.name,
        category_label=found.label,
        includes=found.includes,
        rows=rows,
        total=sum(r.enrolled for r in rows),
    )
