"""The cross-service check (核对): the invariants that span both services, for regions and a coverage year.

- Every enrollment the registry holds has a bill in collection, and both stand alike: owed the same amount at
  the same price version, or paid by the same payment for the same amount (a person's payment, or the funders'
  settlement of a fully subsidised one), or ended alike, with the same refunds.
- Collection's books hold: the ledger balances and agrees with bills and payments, each payment belongs to the
  bills it settled, each paid bill to one payment (`GET /v1/ledger/check`).
- No event is left behind: both outboxes drained, no dead letter open.

A difference is repaired by having both services publish every event about that enrollment again, with the
original ids (`POST /v1/events/republications`): consumers apply an event id once, so what had arrived changes
nothing and what was lost (e.g. when the broker lost its storage) is applied. The check runs outside both
services because neither reads the other's database."""

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from shared.crosscheck import PAGE_LIMIT, EnrollmentStanding, StandingPage
from shared.delivery import REPUBLISH_LIMIT

REGISTRY_STANDINGS = "/v1/enrollments/standings"
COLLECTION_STANDINGS = "/v1/bills/standings"
REPUBLISH = "/v1/events/republications"
BACKLOG = "/v1/events/backlog"
LEDGER_CHECK = "/v1/ledger/check"


class DifferenceKind(StrEnum):
    UNKNOWN_TO_COLLECTION = "unknown_to_collection"  # the registry has the enrollment, collection no bill
    UNKNOWN_TO_REGISTRY = "unknown_to_registry"  # a bill for an enrollment the registry does not have
    STANDINGS_DIFFER = "standings_differ"  # both have it, standing differently


@dataclass(frozen=True)
class Difference:
    enrollment_id: str
    kind: DifferenceKind
    registry: EnrollmentStanding | None
    collection: EnrollmentStanding | None


@dataclass
class Side:
    """What one service holds: how many enrollments it listed, what waits in its event delivery."""

    listed: int = 0
    backlog: dict[str, Any] = field(default_factory=dict)

    @property
    def drained(self) -> bool:
        return self.backlog.get("unpublished") == 0 and self.backlog.get("dead_letters_open") == 0


@dataclass
class CheckReport:
    region_codes: list[str]
    coverage_year: int
    registry: Side = field(default_factory=Side)
    collection: Side = field(default_factory=Side)
    differences: list[Difference] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)
    remaining: list[Difference] = field(default_factory=list)
    ledger: dict[str, Any] = field(default_factory=dict)

    @property
    def repaired(self) -> list[str]:
        left = {d.enrollment_id for d in self.remaining}
        return [d.enrollment_id for d in self.differences if d.enrollment_id not in left]

    @property
    def ok(self) -> bool:
        return (
            not self.remaining
            and self.ledger.get("ok") is True
            and self.registry.drained
            and self.collection.drained
        )


async def _standings(
    client: httpx.AsyncClient, path: str, regions: list[str], year: int
) -> dict[str, EnrollmentStanding]:
    found: dict[str, EnrollmentStanding] = {}
    for region in regions:
        after: str | None = ""
        while after is not None:
            params: dict[str, Any] = {"region_code": region, "coverage_year": year, "after": after}
            response = await client.get(path, params=params | {"limit": PAGE_LIMIT})
            response.raise_for_status()
            page = StandingPage.model_validate(response.json())
            found.update((item.enrollment_id, item) for item in page.items)
            after = page.next_after
    return found


async def compare(
    registry: httpx.AsyncClient, collection: httpx.AsyncClient, report: CheckReport
) -> list[Difference]:
    held = await _standings(registry, REGISTRY_STANDINGS, report.region_codes, report.coverage_year)
    billed = await _standings(collection, COLLECTION_STANDINGS, report.region_codes, report.coverage_year)
    report.registry.listed, report.collection.listed = len(held), len(billed)
    found = (difference_of(i, held.get(i), billed.get(i)) for i in sorted(held.keys() | billed.keys()))
    return [d for d in found if d is not None]


def difference_of(
    enrollment_id: str, registry: EnrollmentStanding | None, collection: EnrollmentStanding | None
) -> Difference | None:
    """How one enrollment stands differently in the two services, if it does."""
    if collection is None:
        kind = DifferenceKind.UNKNOWN_TO_COLLECTION
    elif registry is None:
        kind = DifferenceKind.UNKNOWN_TO_REGISTRY
    elif registry != collection:
        kind = DifferenceKind.STANDINGS_DIFFER
    else:
        return None
    return Difference(enrollment_id, kind, registry, collection)


async def _backlog(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(BACKLOG)
    response.raise_for_status()
    backlog: dict[str, Any] = response.json()
    return backlog


async def drain(clients: list[httpx.AsyncClient], wait_s: float, poll_s: float = 0.5) -> None:
    """Wait up to wait_s for both outboxes to be published, so events in flight are not taken for lost."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        backlogs = [await _backlog(c) for c in clients]
        if all(b["unpublished"] == 0 for b in backlogs):
            return
        await asyncio.sleep(poll_s)


async def republish(client: httpx.AsyncClient, subjects: list[str], requested_by: str) -> list[str]:
    """Ask a service to publish every event about these enrollments again; returns those it had events for."""
    sent: list[str] = []
    for start in range(0, len(subjects), REPUBLISH_LIMIT):
        body = {"subjects": subjects[start : start + REPUBLISH_LIMIT], "requested_by": requested_by}
        response = await client.post(REPUBLISH, json=body)
        response.raise_for_status()
        sent.extend(response.json()["subjects"])
    return sent


async def settle(
    registry: httpx.AsyncClient,
    collection: httpx.AsyncClient,
    report: CheckReport,
    wait_s: float,
    poll_s: float = 0.5,
) -> list[Difference]:
    """Compare until nothing differs or wait_s has passed; what still differs then."""
    deadline = time.monotonic() + wait_s
    while True:
        differences = await compare(registry, collection, report)
        if not differences or time.monotonic() >= deadline:
            return differences
        await asyncio.sleep(poll_s)


async def run(
    registry_url: str,
    collection_url: str,
    region_codes: list[str],
    coverage_year: int,
    *,
    repair: bool,
    wait_s: float,
    requested_by: str,
    token: str,
) -> CheckReport:
    report = CheckReport(region_codes, coverage_year)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=registry_url, timeout=60, headers=headers) as registry,
        httpx.AsyncClient(base_url=collection_url, timeout=60, headers=headers) as collection,
    ):
        await drain([registry, collection], wait_s)
        # Events just published may still be on their way to the other side: let them land first.
        report.differences = await settle(registry, collection, report, min(wait_s, 5.0))
        report.remaining = report.differences
        if repair and report.differences:
            subjects = [d.enrollment_id for d in report.differences]
            sent = {*await republish(registry, subjects, requested_by)}
            sent |= {*await republish(collection, subjects, requested_by)}
            report.republished = sorted(sent)
            report.remaining = await settle(registry, collection, report, wait_s)
            # The republished rows wait in the outboxes again (a relay restarting after a broker outage may
            # not have sent them yet, though the first sending arrived): let them go out before judging.
            await drain([registry, collection], wait_s)
        report.registry.backlog = await _backlog(registry)
        report.collection.backlog = await _backlog(collection)
        response = await collection.get(LEDGER_CHECK)
        response.raise_for_status()
        report.ledger = response.json()
    return report
