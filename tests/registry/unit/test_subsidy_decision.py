"""The assignment decision without a database: a category is held once per person and year, and a caller
assigns only where they may reprice the person's enrollment."""

from registry.subsidy.decision import Claim, decide
from registry.subsidy.errors import SubsidyAlreadyAssigned
from shared.auth import OutsideArea

JING, SHUSHAN, BAOHE = "341823", "340104", "340111"


def claim(person_id: str = "p1", category: str = "minimum_living", **kw: str | None) -> Claim:
    return Claim(person_id, category, 2023, kw.get("region_code") or JING, kw.get("enrolled_in"))


def test_a_new_category_is_assigned() -> None:
    assert decide([claim()], {}, within=None) == [None]


def test_a_category_already_held_is_refused_and_another_one_assigned() -> None:
    decided = decide(
        [claim(category="minimum_living"), claim(category="severe_disability")],
        {"p1": ["minimum_living"], "p2": ["severe_disability"]},
        within=None,
    )
    assert decided[1] is None
    assert isinstance(decided[0], SubsidyAlreadyAssigned)
    assert decided[0].details == {"category": "minimum_living", "coverage_year": 2023}


def test_the_same_category_twice_in_a_batch_is_assigned_once() -> None:
    first, second, other_person = decide([claim(), claim(), claim("p2")], {}, within=None)
    assert (first, other_person) == (None, None)
    assert isinstance(second, SubsidyAlreadyAssigned)


def test_someone_enrolled_outside_the_callers_area_is_refused() -> None:
    inside, outside = decide(
        [
            claim("p1", region_code=SHUSHAN, enrolled_in=SHUSHAN),
            claim("p2", region_code=SHUSHAN, enrolled_in=BAOHE),
        ],
        {},
        within=frozenset({SHUSHAN}),
    )
    assert inside is None
    assert isinstance(outside, OutsideArea)
    assert outside.details == {"reason": "enrolled_outside_area"}


def test_someone_not_enrolled_is_judged_by_the_region_the_request_names() -> None:
    here, there = decide(
        [claim("p1", region_code=SHUSHAN), claim("p2", region_code=BAOHE)], {}, within=frozenset({SHUSHAN})
    )
    assert here is None
    assert isinstance(there, OutsideArea)


def test_the_enrollment_decides_over_the_region_named() -> None:
    # Named in the caller's region, enrolled in another: the assignment would reprice what they owe there.
    (decided,) = decide([claim(region_code=SHUSHAN, enrolled_in=BAOHE)], {}, within=frozenset({SHUSHAN}))
    assert isinstance(decided, OutsideArea)


def test_a_refused_claim_does_not_take_the_category() -> None:
    # Refused for the area, the person's category is still free for a claim the caller may make.
    outside, inside = decide(
        [claim(region_code=BAOHE), claim(region_code=SHUSHAN)], {}, within=frozenset({SHUSHAN})
    )
    assert isinstance(outside, OutsideArea)
    assert inside is None
