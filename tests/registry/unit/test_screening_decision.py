"""排查 decided without a database: who is listed as not enrolled and why, where to find them, the 60+ and
student flags, and which cases a run closes or leaves to staff."""

from datetime import date
from typing import Any

import pytest

from registry.enrollment.models import EnrollmentStatus
from registry.exclusion.models import ExclusionKind
from registry.screening.decision import (
    CaseNow,
    Closing,
    Listing,
    PersonFacts,
    Place,
    Sighting,
    closing_state,
    decide,
    sightings,
)
from registry.screening.models import FollowUpState

HERE, ELSEWHERE = "341823", "340104"
TODAY = date(2023, 11, 20)
ADULT = date(1980, 5, 5)
SEEN = Sighting(["enrolled_2022"], Place("云岭镇"), False)


def facts(person_id: str = "p1", **kw: Any) -> PersonFacts:
    """An adult seen in last year's enrollees, with no enrollment, exclusion or case unless said."""
    values: dict[str, Any] = {"birth_date": ADULT, "sighting": SEEN, **kw}
    return PersonFacts(person_id, **values)


# --- Who the comparison finds ------------------------------------------------------------------------


def test_the_last_two_years_and_the_register_are_merged_with_the_latest_place() -> None:
    found = sightings(
        [
            ("a", 2023, "茂林镇", False),
            ("a", 2022, "云岭镇", True),
            ("b", 2022, None, False),
        ],
        [("b", Place("泾川镇", "城东社区", "一组")), ("c", Place("琴溪镇"))],
    )
    assert found == {
        # years in order whatever order the rows came in; the later year's place; a student once is flagged
        "a": Sighting(["enrolled_2022", "enrolled_2023"], Place("茂林镇"), True),
        # the household register's place wins over an enrollment's
        "b": Sighting(["enrolled_2022", "registered"], Place("泾川镇", "城东社区", "一组"), False),
        "c": Sighting(["registered"], Place("琴溪镇"), False),
    }


# --- Why a case closes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "state"),
    [
        ({}, None),
        ({"status": EnrollmentStatus.PENDING_PAYMENT}, None),  # enrolled but unpaid: still followed up
        ({"status": EnrollmentStatus.ACTIVE}, FollowUpState.ENROLLED),
        ({"status": EnrollmentStatus.ACTIVE, "deceased": True}, FollowUpState.ENROLLED),
        ({"deceased": True}, FollowUpState.NOT_REQUIRED),
        ({"exclusions": frozenset({ExclusionKind.EMPLOYEE_INSURANCE})}, FollowUpState.NOT_REQUIRED),
        ({"exclusions": frozenset({ExclusionKind.ENROLLED_ELSEWHERE})}, FollowUpState.ENROLLED_ELSEWHERE),
        (
            {"exclusions": frozenset(ExclusionKind), "moved_away": True},
            FollowUpState.NOT_REQUIRED,  # employee insurance says more than enrolled elsewhere
        ),
        ({"moved_away": True}, FollowUpState.MOVED_AWAY),
        (
            {"moved_away": True, "exclusions": frozenset({ExclusionKind.ENROLLED_ELSEWHERE})},
            FollowUpState.ENROLLED_ELSEWHERE,
        ),
    ],
)
def test_the_data_says_who_need_not_be_followed_up(kw: dict[str, Any], state: FollowUpState | None) -> None:
    assert closing_state(facts(**kw)) is state


# --- The run's decision ----------------------------------------------------------------------------------


def test_someone_not_enrolled_is_listed_with_where_to_find_them() -> None:
    seen = Sighting(["enrolled_2021", "registered"], Place("泾川镇", "城东社区", "三组"), True)
    decided = decide(HERE, TODAY, [facts(sighting=seen, birth_date=date(2005, 1, 1))])
    assert decided.actions == [
        Listing(
            person_id="p1",
            new=True,
            moved_in=False,
            place=Place("泾川镇", "城东社区", "三组"),
            found_in=["enrolled_2021", "registered"],
            aged_60_plus=False,
            student=True,
            pending_payment=False,
        )
    ]
    assert (decided.added, decided.moved_in, decided.closed) == (1, 0, {})


@pytest.mark.parametrize(
    ("born", "elderly"),
    [(date(1963, 11, 20), True), (date(1963, 11, 21), False), (date(1940, 1, 1), True)],
)
def test_people_aged_60_and_over_on_the_day_of_the_run_are_flagged(born: date, elderly: bool) -> None:
    (listing,) = decide(HERE, TODAY, [facts(birth_date=born)]).actions
    assert isinstance(listing, Listing)
    assert listing.aged_60_plus is elderly


def test_an_unpaid_enrollment_is_listed_and_said_to_be_pending() -> None:
    (listing,) = decide(HERE, TODAY, [facts(status=EnrollmentStatus.PENDING_PAYMENT)]).actions
    assert isinstance(listing, Listing)
    assert listing.pending_payment is True


def test_a_paid_enrollment_closes_the_open_case_and_lists_nobody() -> None:
    decided = decide(
        HERE,
        TODAY,
        [
            facts("a", status=EnrollmentStatus.ACTIVE, case=CaseNow(HERE, FollowUpState.REMINDED)),
            facts("b", status=EnrollmentStatus.ACTIVE),  # never listed: nothing to close
            facts("c", deceased=True, case=CaseNow(HERE, FollowUpState.VISITED)),
            facts("d", moved_away=True, case=CaseNow(HERE, FollowUpState.NOT_CONTACTED)),
        ],
    )
    assert decided.actions == [
        Closing("a", FollowUpState.ENROLLED),
        Closing("c", FollowUpState.NOT_REQUIRED),
        Closing("d", FollowUpState.MOVED_AWAY),
    ]
    assert (decided.added, decided.closed) == (0, {"enrolled": 1, "not_required": 1, "moved_away": 1})


def test_a_closed_case_stays_closed() -> None:
    # Staff's word (refused is open, moved away closed) and earlier runs' closings are kept.
    decided = decide(
        HERE,
        TODAY,
        [
            facts("a", case=CaseNow(HERE, FollowUpState.MOVED_AWAY)),
            facts("b", status=EnrollmentStatus.ACTIVE, case=CaseNow(HERE, FollowUpState.ENROLLED)),
        ],
    )
    assert decided.actions == []


def test_an_open_case_is_kept_with_the_data_brought_up_to_date() -> None:
    (listing,) = decide(HERE, TODAY, [facts(case=CaseNow(HERE, FollowUpState.REFUSED))]).actions
    assert isinstance(listing, Listing)
    assert (listing.new, listing.moved_in, listing.place) == (False, False, Place("云岭镇"))


def test_an_open_case_of_another_region_moves_here() -> None:
    decided = decide(HERE, TODAY, [facts(case=CaseNow(ELSEWHERE, FollowUpState.REMINDED))])
    (listing,) = decided.actions
    assert isinstance(listing, Listing)
    assert (listing.new, listing.moved_in) == (False, True)
    assert (decided.added, decided.moved_in) == (0, 1)


def test_another_regions_cases_are_closed_by_their_own_run_not_this_one() -> None:
    decided = decide(
        HERE,
        TODAY,
        [
            facts("a", case=CaseNow(ELSEWHERE, FollowUpState.ENROLLED_ELSEWHERE)),
            facts("b", status=EnrollmentStatus.ACTIVE, case=CaseNow(ELSEWHERE, FollowUpState.REMINDED)),
        ],
    )
    assert decided.actions == []


def test_an_open_case_the_data_no_longer_mentions_is_left_to_staff() -> None:
    decided = decide(HERE, TODAY, [facts(sighting=None, case=CaseNow(HERE, FollowUpState.VISITED))])
    assert decided.actions == []


def test_people_are_decided_in_a_stable_order() -> None:
    decided = decide(HERE, TODAY, [facts("c"), facts("a"), facts("b")])
    assert [a.person_id for a in decided.actions] == ["a", "b", "c"]
    assert decided.added == 3
