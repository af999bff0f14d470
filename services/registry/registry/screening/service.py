"""排查 (mid-November to 31 December): compare the last two years' enrollees and the household-registration
population with this year's enrollees, list who has not enrolled (flagging people aged 60 and over and
students), leave out who need not (employee insurance, enrolled elsewhere, deceased, moved away), and keep
each listed person's follow-up by their township and village."""

from collections import Counter
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.enrollment.models import EnrollmentStatus
from registry.people.models import Person
from registry.people.service import Identity
from registry.screening import decision, repository
from registry.screening.errors import NotEnrolledYet, ScreeningCaseClosed, ScreeningCaseNotFound
from registry.screening.models import OPEN, FollowUpState, ScreeningCase, ScreeningCaseEvent
from registry.screening.schemas import (
    CaseDetail,
    CaseEventOut,
    CaseOut,
    FollowUpSummary,
    FollowUpUpdate,
    ScreeningResult,
    TownshipFollowUp,
)
from registry.subsidy.service import UNNAMED_TOWNSHIP, per_township

RUN = "screening"


def _identity(person: Person) -> Identity:
    return Identity(
        person.document_type, person.document_number, person.nationality, person.birth_date, person.sex
    )


async def screen(
    session: AsyncSession, registry: Registry, region_code: str, coverage_year: int, run_by: str
) -> ScreeningResult:
    """Bring the region's list up to date. Running it again changes only what the data changed: new people
    are added, people who since enrolled (or need not) are closed, staff's follow-up is kept."""
    policy = registry.policies.find(region_code, coverage_year)
    year = policy.coverage_year
    compared = [year - 1, year - 2]
    facts, cases = await _gather(session, registry, region_code, year, compared)
    decided = decision.decide(region_code, registry.clock.today(), facts)
    _write(session, region_code, year, decided, cases, run_by, registry.clock.now())
    await session.flush()
    listed = len(await repository.open_case_people(session, region_code, year, OPEN))
    return ScreeningResult(
        region_code=region_code,
        coverage_year=year,
        compared_years=compared,
        listed=listed,
        added=decided.added,
        moved_in=decided.moved_in,
        closed=decided.closed,
    )


async def _gather(
    session: AsyncSession, registry: Registry, region_code: str, year: int, compared: list[int]
) -> tuple[list[decision.PersonFacts], dict[str, ScreeningCase]]:
    """Everyone the comparison finds or an open case names, with what the data says of them for the year,
    and their cases."""
    registered = await repository.registered_in(session, region_code, year)
    sightings = decision.sightings(
        await repository.prior_enrollees(session, region_code, compared),
        [(r.person_id, decision.Place(r.township, r.village, r.village_group)) for r in registered],
    )
    existing_open = await repository.open_case_people(session, region_code, year, OPEN)
    everyone = sorted(set(sightings) | set(existing_open))
    statuses = await repository.live_statuses(session, everyone, year)
    dead = await repository.deceased(session, everyone)
    in_register = {r.person_id for r in registered}
    moved = await repository.registered_elsewhere(
        session, [p for p in everyone if p not in in_register], region_code, year
    )
    people = await repository.people(session, everyone)
    kinds = await registry.exclusions.exclusions(session, [_identity(people[p]) for p in everyone], year)
    cases = await repository.cases_of_people(session, everyone, year)
    facts = [
        decision.PersonFacts(
            person_id=person_id,
            birth_date=people[person_id].birth_date,
            status=statuses.get(person_id),
            deceased=person_id in dead,
            exclusions=frozenset(found),
            moved_away=person_id in moved,
            sighting=sightings.get(person_id),
            case=decision.CaseNow(case.region_code, case.state) if (case := cases.get(person_id)) else None,
        )
        for person_id, found in zip(everyone, kinds, strict=True)
    ]
    return facts, cases


def _write(
    session: AsyncSession,
    region_code: str,
    year: int,
    decided: decision.ScreeningDecision,
    cases: dict[str, ScreeningCase],
    run_by: str,
    now: datetime,
) -> None:
    """Open, move and close cases as decided; every closing leaves an event."""
    new_rows: list[ScreeningCase | ScreeningCaseEvent] = []
    for action in decided.actions:
        if isinstance(action, decision.Closing):
            new_rows.append(_move(cases[action.person_id], action.state, "screening run", run_by, now))
            continue
        case = cases.get(action.person_id)
        if case is None:
            case = ScreeningCase(
                person_id=action.person_id,
                coverage_year=year,
                state=FollowUpState.NOT_CONTACTED,
                listed_at=now,
                updated_at=now,
                updated_by=run_by,
            )
            new_rows.append(case)
        case.region_code = region_code
        case.township = action.place.township
        case.village = action.place.village
        case.village_group = action.place.village_group
        case.found_in = action.found_in
        case.aged_60_plus = action.aged_60_plus
        case.student = action.student
        case.pending_payment = action.pending_payment
    repository.add_all(session, new_rows)


def _move(
    case: ScreeningCase, to: FollowUpState, note: str | None, by: str, now: datetime
) -> ScreeningCaseEvent:
    event = ScreeningCaseEvent(case_id=case.id, from_state=case.state, to_state=to, note=note, by=by, at=now)
    case.state, case.note, case.updated_by, case.updated_at = to, note, by, now
    return event


async def follow_up(
    session: AsyncSession, registry: Registry, case_id: int, update: FollowUpUpdate
) -> CaseDetail:
    """Community staff record what they did or learned. A closed case stays closed; `enrolled` needs a paid
    enrollment for the year (the system, not a word, says who has enrolled)."""
    case = await repository.get(session, case_id, for_update=True)
    if case is None:
        raise ScreeningCaseNotFound({"case_id": case_id})
    if case.state not in OPEN:
        raise ScreeningCaseClosed({"case_id": case_id, "state": case.state.value})
    to = FollowUpState(update.state)
    if to is FollowUpState.ENROLLED:
        statuses = await repository.live_statuses(session, [case.person_id], case.coverage_year)
        if statuses.get(case.person_id) is not EnrollmentStatus.ACTIVE:
            raise NotEnrolledYet({"case_id": case_id})
    session.add(_move(case, to, update.note, update.updated_by, registry.clock.now()))
    await session.flush()
    return await detail(session, case_id)


def mark_reminded(session: AsyncSession, case: ScreeningCase, at: datetime) -> None:
    """A reminder went out: the case says so, and a case nobody had contacted now counts as reminded."""
    case.last_reminded_at = at
    if case.state is FollowUpState.NOT_CONTACTED:
        session.add(_move(case, FollowUpState.REMINDED, "reminder sent", "reminder", at))


async def detail(session: AsyncSession, case_id: int) -> CaseDetail:
    case = await repository.get(session, case_id)
    if case is None:
        raise ScreeningCaseNotFound({"case_id": case_id})
    history = [CaseEventOut.of(e) for e in await repository.events(session, case_id)]
    return CaseDetail(**CaseOut.of(case).model_dump(), history=history)


async def summary(
    session: AsyncSession, registry: Registry, region_code: str, coverage_year: int
) -> FollowUpSummary:
    """Follow-up per township: every township of the region listed, then any other name; total from rows."""
    policy = registry.policies.find(region_code, coverage_year)
    tallies: dict[str, Counter[str]] = {}
    for township, state, elderly, is_student, n in await repository.state_counts(
        session, region_code, policy.coverage_year
    ):
        tally = tallies.setdefault(township or UNNAMED_TOWNSHIP, Counter())
        tally[state] += n
        if state in OPEN:
            tally["open"] += n
            tally["open_aged_60_plus"] += n if elderly else 0
            tally["open_students"] += n if is_student else 0
    present = {name: sum(c[s] for s in FollowUpState) for name, c in tallies.items()}
    ordered = per_township(
        policy, region_code, {None if n == UNNAMED_TOWNSHIP else n: t for n, t in present.items()}
    )
    rows = [_summary_row(name, tallies.get(name, Counter())) for name, _ in ordered]
    total: Counter[str] = Counter()
    for name, _ in ordered:
        total.update(tallies.get(name, Counter()))
    return FollowUpSummary(
        region_code=region_code,
        coverage_year=policy.coverage_year,
        rows=rows,
        total=_summary_row("合计", total),
    )


def _summary_row(name: str, tally: Counter[str]) -> TownshipFollowUp:
    states = {s: tally[s] for s in FollowUpState}
    return TownshipFollowUp(
        township=name,
        states=states,
        open=tally["open"],
        open_aged_60_plus=tally["open_aged_60_plus"],
        open_students=tally["open_students"],
        total=sum(states.values()),
    )
