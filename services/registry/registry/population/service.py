"""户籍人口: household-registration population data from public security, kept per campaign year."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from registry.context import Registry
from registry.people.models import Person
from registry.population import repository
from registry.population.models import RegisteredResident
from registry.population.schemas import PopulationSummary, TownshipPopulation
from registry.subsidy.service import per_township


@dataclass(frozen=True)
class Residence:
    """Where a person is registered, as one row of the data gives it."""

    person: Person
    township: str | None
    village: str | None
    village_group: str | None
    source: str
    household_no: str | None = None


async def record_many(
    session: AsyncSession,
    registry: Registry,
    region_code: str,
    coverage_year: int,
    residences: list[Residence],
) -> list[str]:
    """Record each person's registration for the year: registered (new), updated (moved within the data), or
    unchanged (the same again: loading a file twice changes nothing)."""
    known = await repository.for_people(session, [r.person.id for r in residences], coverage_year)
    outcomes: list[str] = []
    new: list[RegisteredResident] = []
    for residence in residences:
        place = (region_code, residence.township, residence.village, residence.village_group)
        current = known.get(residence.person.id)
        if current is None:
            current = known[residence.person.id] = RegisteredResident(
                person_id=residence.person.id,
                region_code=region_code,
                coverage_year=coverage_year,
                township=residence.township,
                village=residence.village,
                village_group=residence.village_group,
                household_no=residence.household_no,
                source=residence.source,
                recorded_at=registry.clock.now(),
            )
            new.append(current)
            outcomes.append("registered")
        elif (current.region_code, current.township, current.village, current.village_group) == place and (
            current.household_no == residence.household_no
        ):
            outcomes.append("unchanged")
        else:
            current.region_code, current.township, current.village, current.village_group = place
            current.household_no = residence.household_no
            current.source, current.recorded_at = residence.source, registry.clock.now()
            outcomes.append("updated")
    repository.add_all(session, new)
    await session.flush()
    return outcomes


async def summary(
    session: AsyncSession, registry: Registry, region_code: str, coverage_year: int
) -> PopulationSummary:
    policy = registry.policies.find(region_code, coverage_year)
    counts = await repository.count_per_township(session, region_code, policy.coverage_year)
    rows = [
        TownshipPopulation(township=name, registered=n)
        for name, n in per_township(policy, region_code, counts)
    ]
    return PopulationSummary(
        region_code=region_code,
        coverage_year=policy.coverage_year,
        rows=rows,
        total=sum(r.registered for r in rows),
    )
