"""The assignment decision, over plain data: which subsidy category assignments of a coverage year are made
and which are refused. The service gathers the facts (the person, where they are enrolled, what they hold)
and writes what this decides."""

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from registry.subsidy.errors import SubsidyAlreadyAssigned
from shared.auth import OutsideArea
from shared.errors import DomainError


class Claim(NamedTuple):  # a roster chunk makes thousands: cheaper to make than a frozen dataclass
    """One request to assign a category to a registered person for a year."""

    person_id: str
    category: str  # the category's code
    coverage_year: int
    region_code: str  # the region the request names
    enrolled_in: str | None = None  # the region of the person's live enrollment for the year


def decide(
    claims: Sequence[Claim], held: Mapping[str, Collection[str]], *, within: frozenset[str] | None
) -> list[DomainError | None]:
    """For each claim of one year, None to assign it, or why not. `held`: the codes each person holds for the
    year already. `within`: the regions whose enrollments the caller may reprice; a person enrolled elsewhere
    (or, not enrolled, named in a region outside them) is refused. A category is held once: a second claim
    of the same person and category, in the data or in the batch, is refused."""
    taken = {(person_id, code) for person_id, codes in held.items() for code in codes}
    decided: list[DomainError | None] = []
    for claim in claims:
        region = claim.enrolled_in if claim.enrolled_in is not None else claim.region_code
        if within is not None and region not in within:
            decided.append(OutsideArea({"reason": "enrolled_outside_area"}))
        elif (claim.person_id, claim.category) in taken:
            decided.append(
                SubsidyAlreadyAssigned({"category": claim.category, "coverage_year": claim.coverage_year})
            )
        else:
            taken.add((claim.person_id, claim.category))
            decided.append(None)
    return decided
