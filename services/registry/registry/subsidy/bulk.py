"""Subsidy rosters (花名册), thousands of people at once: the categories they are assigned, by the rules of
`service.assign_many` — the category named, the place, the person's name (`people.find_or_register_bulk`),
`decision.decide` (a category is held once; only where the caller may reprice) — with a few queries for the
lot and one bulk insert of the new assignments. People already enrolled have that enrollment repriced
(`enrollment.service.reprice_many`); the holders are then enrolled by `service.enroll_holders`."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.enrollment import bulk as enrollment_bulk
from registry.enrollment import service as enrollments
from registry.people import service as people
from registry.people.service import Identity
from registry.policy import rules
from registry.policy.models import Policy
from registry.subsidy import decision, repository
from registry.subsidy.service import resolve_category
from shared import bulk
from shared.errors import DomainError


class Listed(NamedTuple):
    """A person a subsidy roster lists, with the category and what the row says of them."""

    identity: Identity
    name: str
    category: str  # a code, a name, an alias or an included group
    evidence_ref: str
    effective_date: date | None  # None: today
    township: str | None = None
    village: str | None = None
    village_group: str | None = None
    note: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Source:
    """Who assigns, for which region and year, and whose enrollments they may reprice."""

    region_code: str
    coverage_year: int
    assigned_by: str
    within: frozenset[str]


@dataclass(frozen=True)
class Assigned:
    """Each listed person's refusal or None (assigned), their person id where they have one, and the
    standing of those people for the year (their enrollments, locked, and categories, the new ones too)."""

    refusals: list[DomainError | None]
    people: list[str | None]
    standing: enrollment_bulk.Standing


async def assign_listed(
    session: AsyncSession, registry: Registry, source: Source, listed: Sequence[Listed]
) -> Assigned:
    """Assign each listed person's category, or say why not (SubsidyAlreadyAssigned for a category they hold
    already), as `service.assign_many` does."""
    results: list[DomainError | None] = [None] * len(listed)
    people_of: list[str | None] = [None] * len(listed)
    try:
        policy = registry.policies.find(source.region_code, source.coverage_year)
    except DomainError as exc:
        return Assigned([exc] * len(listed), people_of, enrollment_bulk.Standing({}, {}))
    codes = _checked(policy, source.region_code, listed, results)
    found = await people.find_or_register_bulk(
        session, [(listed[i].identity, listed[i].name) for i in codes], now=registry.clock.now()
    )
    registered: list[tuple[int, str]] = []
    for i, person in zip(codes, found.people, strict=True):
        if isinstance(person, DomainError):
            results[i] = person
        else:
            registered.append((i, person))
            people_of[i] = person
    standing = await enrollment_bulk.standing_of(
        session, [p for _, p in registered if p not in found.new], policy.coverage_year
    )
    repriced = await _assign(session, registry, policy, source, listed, codes, registered, standing, results)
    if repriced:
        reasons = {person_id: f"subsidy category {code} assigned" for person_id, code in repriced}
        await enrollments.reprice_many(session, registry, reasons, policy.coverage_year)
    return Assigned(results, people_of, standing)


def _checked(
    policy: Policy, region_code: str, listed: Sequence[Listed], results: list[DomainError | None]
) -> dict[int, str]:
    """The category code of each listed person whose own checks pass (the category named, the place); the
    others' refusals go into `results`. Each distinct category and place is judged once."""
    categories: dict[str, str | DomainError] = {}
    places: dict[tuple[str | None, str | None], DomainError | None] = {}
    codes: dict[int, str] = {}
    for i, item in enumerate(listed):
        if item.category not in categories:
            categories[item.category] = _code_or_refusal(policy, item.category)
        place = (item.township, item.village)
        if place not in places:
            places[place] = _place_refusal(policy, region_code, *place)
        code = categories[item.category]
        refused = code if isinstance(code, DomainError) else places[place]
        if refused is None:
            codes[i] = str(code)
        else:
            results[i] = refused
    return codes


def _code_or_refusal(policy: Policy, text: str) -> str | DomainError:
    try:
        return resolve_category(policy, text).code
    except DomainError as exc:
        return exc


def _place_refusal(
    policy: Policy, region_code: str, township: str | None, village: str | None
) -> DomainError | None:
    try:
        rules.check_place(policy, region_code, township, village)
    except DomainError as exc:
        return exc
    return None


async def _assign(
    session: AsyncSession,
    registry: Registry,
    policy: Policy,
    source: Source,
    listed: Sequence[Listed],
    codes: dict[int, str],
    registered: list[tuple[int, str]],
    standing: enrollment_bulk.Standing,
    results: list[DomainError | None],
) -> list[tuple[str, str]]:
    """Decide the claims and insert the assignments made (the standing holds them from then on); returns
    (person id, code) of the people enrolled already, whose enrollment the new category reprices."""
    year = policy.coverage_year
    claims = [
        decision.Claim(person_id, codes[i], year, source.region_code, _region(standing, person_id))
        for i, person_id in registered
    ]
    decided = decision.decide(claims, standing.held, within=source.within)
    today, now, ids = registry.clock.today(), registry.clock.now(), bulk.new_ids()
    rows: list[tuple[object, ...]] = []
    repriced: list[tuple[str, str]] = []
    for (i, person_id), refused in zip(registered, decided, strict=True):
        results[i] = refused
        if refused is not None:
            continue
        item = listed[i]
        rows.append(
            (
                next(ids),
                person_id,
                policy.policy_id,
                source.region_code,
                year,
                codes[i],
                item.evidence_ref,
                item.effective_date or today,
                item.township,
                item.village,
                item.village_group,
                item.note,
                item.reason,
                source.assigned_by,
                now,
            )
        )
        standing.holds(person_id, codes[i])
        if person_id in standing.live:
            repriced.append((person_id, codes[i]))
    await repository.insert_many(session, rows)
    return repriced


def _region(standing: enrollment_bulk.Standing, person_id: str) -> str | None:
    live = standing.live.get(person_id)
    return live.region_code if live else None
