"""The cross-service check (核对): what the registry holds as paid against what collection recorded, for one
region and business day. A confirmation the registry never applied is repaired by having collection publish it
again (the registry applies a payment once, so a confirmation still in flight is not applied twice); any other
difference is reported for people to look into."""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import httpx

from shared.crosscheck import PAGE_LIMIT, PaidEnrollment, PaidPage

REGISTRY_PAID = "/v1/enrollments/paid"
COLLECTION_CONFIRMED = "/v1/payments/confirmed"
REPUBLISH = "/v1/payments/confirmations"


class DifferenceKind(StrEnum):
    CONFIRMATION_MISSING = "confirmation_missing"  # collection has the payment, the registry never applied it
    UNKNOWN_TO_COLLECTION = "unknown_to_collection"  # the registry holds it paid, collection has no payment
    PAYMENT_DIFFERS = "payment_differs"  # both hold it paid, by different payments or amounts


@dataclass(frozen=True)
class Difference:
    enrollment_id: str
    kind: DifferenceKind
    registry: PaidEnrollment | None
    collection: PaidEnrollment | None


@dataclass
class CheckReport:
    region_code: str
    day: date
    registry_paid: int
    collection_paid: int
    differences: list[Difference]
    republished: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Difference]:
        return [d for d in self.differences if d.enrollment_id not in self.repaired]

    @property
    def ok(self) -> bool:
        return not self.unresolved


async def _paid(
    client: httpx.AsyncClient, path: str, region_code: str, day: date
) -> dict[str, PaidEnrollment]:
    found: dict[str, PaidEnrollment] = {}
    after: str | None = ""
    while after is not None:
        params: dict[str, str | int] = {
            "region_code": region_code,
            "day": day.isoformat(),
            "after": after,
            "limit": PAGE_LIMIT,
        }
        response = await client.get(path, params=params)
        response.raise_for_status()
        page = PaidPage.model_validate(response.json())
        found.update((item.enrollment_id, item) for item in page.items)
        after = page.next_after
    return found


async def compare(
    registry: httpx.AsyncClient, collection: httpx.AsyncClient, region_code: str, day: date
) -> CheckReport:
    held = await _paid(registry, REGISTRY_PAID, region_code, day)
    recorded = await _paid(collection, COLLECTION_CONFIRMED, region_code, day)
    differences: list[Difference] = []
    for enrollment_id in sorted(held.keys() | recorded.keys()):
        in_registry, in_collection = held.get(enrollment_id), recorded.get(enrollment_id)
        if in_registry is None:
            kind = DifferenceKind.CONFIRMATION_MISSING
        elif in_collection is None:
            kind = DifferenceKind.UNKNOWN_TO_COLLECTION
        elif (in_registry.payment_id, in_registry.amount) != (in_collection.payment_id, in_collection.amount):
            kind = DifferenceKind.PAYMENT_DIFFERS
        else:
            continue
        differences.append(Difference(enrollment_id, kind, in_registry, in_collection))
    return CheckReport(region_code, day, len(held), len(recorded), differences)


async def republish(collection: httpx.AsyncClient, report: CheckReport, requested_by: str) -> None:
    """Ask collection to publish again every confirmation the registry is missing."""
    missing = [d.enrollment_id for d in report.differences if d.kind is DifferenceKind.CONFIRMATION_MISSING]
    for start in range(0, len(missing), PAGE_LIMIT):
        body = {"enrollment_ids": missing[start : start + PAGE_LIMIT], "requested_by": requested_by}
        response = await collection.post(REPUBLISH, json=body)
        response.raise_for_status()
        report.republished.extend(response.json()["republished"])


async def verify(
    registry: httpx.AsyncClient, report: CheckReport, wait_s: float, poll_s: float = 0.5
) -> None:
    """Wait up to wait_s for the registry to apply what was published again; what it applied is repaired."""
    deadline = time.monotonic() + wait_s
    while True:
        held = await _paid(registry, REGISTRY_PAID, report.region_code, report.day)
        report.repaired = sorted(e for e in report.republished if e in held)
        if len(report.repaired) == len(report.republished) or time.monotonic() >= deadline:
            return
        await asyncio.sleep(poll_s)


async def run(
    registry_url: str,
    collection_url: str,
    region_code: str,
    day: date,
    repair: bool,
    wait_s: float,
    requested_by: str,
    token: str,
) -> CheckReport:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=registry_url, timeout=60, headers=headers) as registry,
        httpx.AsyncClient(base_url=collection_url, timeout=60, headers=headers) as collection,
    ):
        report = await compare(registry, collection, region_code, day)
        if repair and report.differences:
            await republish(collection, report, requested_by)
            if report.republished:
                await verify(registry, report, wait_s)
        return report
