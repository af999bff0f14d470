"""排查 (mid-November to 31 December): compare the last two years' enrollees and the household-registration
population with this year's enrollees, list who has not enrolled (flagging people aged 60 and over and
students), leave out who need not (employee insurance, enrolled elsewhere, deceased, moved away), and keep
each listed person's follow-up by their township and village."""

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from registry.enrollment.models import EnrollmentStatus
from registry.enrollment.service import Registry
from registry.exclusion.models import ExclusionKind
from registry.people.models import Person
from registry.people.service import Identity
from registry.population.models import RegisteredResident
from registry.screening import repository
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

ELDERLY_AGE = 60
RUN = "screening"


@dataclass(frozen=True)
class _Place:
    township: str | None
    village: str | None = None
    village_group: str | None = None


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


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
    today, now = registry.clock.today(), registry.clock.now()
    compared = [year - 1, year - 2]

    # Where each person was found, and where to look for them.
    found_in: dict[str, list[str]] = {}
    place: dict[str, _Place] = {}
    student: dict[str, bool] = {}
    for person_id, enrolled_year, township, is_student in sorted(
        await repository.prior_enrollees(session, region_code, compared), key=lambda r: r[1]
    ):
        found_in.setdefault(person_id, []).append(f"enrolled_{enrolled_year}")
        place[person_id] = _Place(township)  # the later year's place wins
        student[person_id] = student.get(person_id, False) or is_student
    registered: dict[str, RegisteredResident] = {
        r.person_id: r for r in await repository.registered_in(session, region_code, year)
    }
    for person_id, r in registered.items():
        found_in.setdefault(person_id, []).append("registered")
        place[person_id] = _Place(r.township, r.village, r.village_group)

    existing_open = await repository.open_case_people(session, region_code, year, OPEN)
    everyone = set(found_in) | set(existing_open)
    statuses = await repository.live_statuses(session, everyone, year)
    dead = await repository.deceased(session, everyone)
    moved = await repository.registered_elsewhere(session, everyone - set(registered), region_code, year)
    people = await repository.people(session, everyone)
    ordered = sorted(everyone)
    kinds = dict(
        zip(
            ordered,
            await registry.exclusions.exclusions(session, [_identity(people[p]) for p in ordered], year),
            strict=True,
        )
    )

    def outcome(person_id: str) -> FollowUpState | None:
        """The state a case must close with, or None while the person is still to be followed up."""
        if statuses.get(person_id) is EnrollmentStatus.ACTIVE:
            return FollowUpState.ENROLLED
        if person_id in dead or ExclusionKind.EMPLOYEE_INSURANCE in kinds[person_id]:
            return FollowUpState.NOT_REQUIRED
        if ExclusionKind.ENROLLED_ELSEWHERE in kinds[person_id]:
            return FollowUpState.ENROLLED_ELSEWHERE
        if person_id in moved:
            return FollowUpState.MOVED_AWAY
        return None

    cases = await repository.cases_of_people(session, everyone, year)
    closed: Counter[str] = Counter()
    added = moved_in = 0
    new_rows: list[ScreeningCase | ScreeningCaseEvent] = []
    for person_id in ordered:
        case = cases.get(person_id)
        closing = outcome(person_id)
        if closing is not None:
            if case is not None and case.region_code == region_code and case.state in OPEN:
                new_rows.append(_move(case, closing, "screening run", run_by, now))
                closed[closing] += 1
            continue
        if person_id not in found_in:
            continue  # an open case the data no longer mentions: staff's follow-up decides
        where = place[person_id]
        if case is None:
            case = ScreeningCase(
                person_id=person_id,
                region_code=region_code,
                coverage_year=year,
                state=FollowUpState.NOT_CONTACTED,
                listed_at=now,
                updated_at=now,
                updated_by=run_by,
            )
            new_rows.append(case)
            added += 1
        elif case.region_code != region_code:
            if case.state not in OPEN:
                continue
            moved_in += 1
        elif case.state not in OPEN:
            continue
        case.region_code = region_code
        case.township, case.village, case.village_group = where.township, where.village, where.village_group
        case.found_in = found_in[person_id]
        case.aged_60_plus = age_on(people[person_id].birth_date, today) >= ELDERLY_AGE
        case.student = student.get(person_id, False)
        case.pending_payment = statuses.get(person_id) is EnrollmentStatus.PENDING_PAYMENT
    repository.add_all(session, new_rows)
    await session.flush()
    listed = len(await repository.open_case_people(session, region_code, year, OPEN))
    return ScreeningResult(
        region_code=region_code,
        coverage_year=year,
        compared_years=compared,
        listed=listed,
        added=added,
        moved_in=moved_in,
        closed=dict(closed),
    )


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
