"""The screening decision (排查), over plain data: who is listed for follow-up, where to find them, and which
cases the data closes. The service gathers the facts and writes what this decides; no database here."""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from registry.enrollment.models import EnrollmentStatus
from registry.exclusion.models import ExclusionKind
from registry.screening.models import OPEN, FollowUpState

ELDERLY_AGE = 60


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


@dataclass(frozen=True)
class Place:
    """Where to look for a person: township, village (村(居)委会) and village group (村民组)."""

    township: str | None
    village: str | None = None
    village_group: str | None = None


@dataclass(frozen=True)
class Sighting:
    """Where the comparison found a person: the lists they are on, the latest place, whether a student."""

    found_in: list[str]
    place: Place
    student: bool


def sightings(
    prior_enrollees: Iterable[tuple[str, int, str | None, bool]],
    registered: Iterable[tuple[str, Place]],
) -> dict[str, Sighting]:
    """Merge the last years' enrollees (person, year, township, student) with the household-registration
    population (person, place): the later year's place wins over the earlier, the register's over both."""
    found_in: dict[str, list[str]] = {}
    place: dict[str, Place] = {}
    student: dict[str, bool] = {}
    for person_id, enrolled_year, township, is_student in sorted(prior_enrollees, key=lambda r: r[1]):
        found_in.setdefault(person_id, []).append(f"enrolled_{enrolled_year}")
        place[person_id] = Place(township)
        student[person_id] = student.get(person_id, False) or is_student
    for person_id, where in registered:
        found_in.setdefault(person_id, []).append("registered")
        place[person_id] = where
    return {p: Sighting(found_in[p], place[p], student.get(p, False)) for p in found_in}


@dataclass(frozen=True)
class CaseNow:
    """A person's existing case for the year, as it stands (it may belong to another region)."""

    region_code: str
    state: FollowUpState


@dataclass(frozen=True)
class PersonFacts:
    """What the data says about one person for the year."""

    person_id: str
    birth_date: date
    status: EnrollmentStatus | None = None  # of their live enrollment for the year, anywhere
    deceased: bool = False
    exclusions: frozenset[ExclusionKind] = frozenset()
    moved_away: bool = False  # in another region's household register for the year
    sighting: Sighting | None = None  # None: only an open case of the region still names them
    case: CaseNow | None = None


def closing_state(facts: PersonFacts) -> FollowUpState | None:
    """The state a case must close with, or None while the person is still to be followed up."""
    if facts.status is EnrollmentStatus.ACTIVE:
        return FollowUpState.ENROLLED
    if facts.deceased or ExclusionKind.EMPLOYEE_INSURANCE in facts.exclusions:
        return FollowUpState.NOT_REQUIRED
    if ExclusionKind.ENROLLED_ELSEWHERE in facts.exclusions:
        return FollowUpState.ENROLLED_ELSEWHERE
    if facts.moved_away:
        return FollowUpState.MOVED_AWAY
    return None


@dataclass(frozen=True)
class Closing:
    """An open case of the region the data closes."""

    person_id: str
    state: FollowUpState


@dataclass(frozen=True)
class Listing:
    """A case to open (`new`), to bring over from another region (`moved_in`) or to keep open, with what the
    data says of the person now."""

    person_id: str
    new: bool
    moved_in: bool
    place: Place
    found_in: list[str]
    aged_60_plus: bool
    student: bool
    pending_payment: bool


@dataclass(frozen=True)
class ScreeningDecision:
    actions: list[Listing | Closing] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(1 for a in self.actions if isinstance(a, Listing) and a.new)

    @property
    def moved_in(self) -> int:
        return sum(1 for a in self.actions if isinstance(a, Listing) and a.moved_in)

    @property
    def closed(self) -> dict[str, int]:
        return dict(Counter(a.state.value for a in self.actions if isinstance(a, Closing)))


def decide(region_code: str, today: date, people: Sequence[PersonFacts]) -> ScreeningDecision:
    """Running again changes only what the data changed: people not yet listed are added, people who since
    enrolled (or need not) are closed, and a case that is closed, or open in another region for someone
    the data closes, is left as it is."""
    actions: list[Listing | Closing] = []
    for facts in sorted(people, key=lambda f: f.person_id):
        case = facts.case
        here_and_open = case is not None and case.region_code == region_code and case.state in OPEN
        closing = closing_state(facts)
        if closing is not None:
            if here_and_open:
                actions.append(Closing(facts.person_id, closing))
            continue
        if facts.sighting is None:
            continue  # an open case the data no longer mentions: staff's follow-up decides
        if case is not None and case.state not in OPEN:
            continue
        actions.append(
            Listing(
                person_id=facts.person_id,
                new=case is None,
                moved_in=case is not None and case.region_code != region_code,
                place=facts.sighting.place,
                found_in=facts.sighting.found_in,
                aged_60_plus=age_on(facts.birth_date, today) >= ELDERLY_AGE,
                student=facts.sighting.student,
                pending_payment=facts.status is EnrollmentStatus.PENDING_PAYMENT,
            )
        )
    return ScreeningDecision(actions)
