"""The repair job: lost events come back without an operator.

The broker can lose what it acknowledged (the embedded one keeps nothing across a restart), so an event can be
published and never consumed: a bill never issued, a payment never seen by the registry. Every `every_s`
seconds this job asks both services what changed since it last looked (`…/standings/changed`), fetches the
other side of each changed enrollment (`…/standings/of`), and where the two stand differently for longer than
`grace_s` (longer than an event in flight takes), has both services publish that enrollment's events again
with their original ids (`POST /v1/events/republications`); consumers apply an id once, so what had arrived
changes nothing. A flow therefore stalls at most about `every_s + grace_s`.

It never moves its watermark past a difference it is still repairing, and reads `overlap_s` (five minutes)
back every round, so a change committed well after its timestamp, or stamped by a clock a little off, is still
seen. A difference that five republications over a quarter of an hour did not resolve is not one lost events
explain: the job stops republishing it, logs `repair_gave_up`, and moves on; `canbao check` remains the full
audit."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from canbao.check import Difference, difference_of, republish
from shared.clock import utc_now
from shared.crosscheck import (
    IDS_LIMIT,
    PAGE_LIMIT,
    ChangedStanding,
    ChangePage,
    EnrollmentStanding,
    StandingPage,
)

log = structlog.get_logger(__name__)

CHANGED = {"registry": "/v1/enrollments/standings/changed", "collection": "/v1/bills/standings/changed"}
OF = {"registry": "/v1/enrollments/standings/of", "collection": "/v1/bills/standings/of"}


@dataclass
class RepairRound:
    since: datetime
    changed: int = 0
    differences: list[Difference] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)
    waiting: int = 0  # differences younger than the grace period: events possibly still in flight
    given_up: list[str] = field(
        default_factory=list
    )  # republishing did not help: for `canbao check` and people


async def _changed(client: httpx.AsyncClient, path: str, since: datetime) -> dict[str, ChangedStanding]:
    found: dict[str, ChangedStanding] = {}
    after: str | None = ""
    while after is not None:
        params: dict[str, Any] = {"since": since.isoformat(), "after": after, "limit": PAGE_LIMIT}
        response = await client.get(path, params=params)
        response.raise_for_status()
        page = ChangePage.model_validate(response.json())
        found.update((item.enrollment_id, item) for item in page.items)
        after = page.next_after
    return found


async def _of(
    client: httpx.AsyncClient, path: str, enrollment_ids: list[str]
) -> dict[str, EnrollmentStanding]:
    found: dict[str, EnrollmentStanding] = {}
    for start in range(0, len(enrollment_ids), IDS_LIMIT):
        params = {"enrollment_id": enrollment_ids[start : start + IDS_LIMIT]}
        response = await client.get(path, params=params)
        response.raise_for_status()
        found.update((s.enrollment_id, s) for s in StandingPage.model_validate(response.json()).items)
    return found


@dataclass
class Repairer:
    registry: httpx.AsyncClient
    collection: httpx.AsyncClient
    grace: timedelta
    watermark: datetime
    # Every round reads this far back again: a change stamped at its flush may commit later (a long
    # transaction), and the services' clocks may differ from this one's.
    overlap: timedelta = timedelta(minutes=5)
    # A difference that this many republications over this long did not resolve is not one lost events
    # explain (a broker still recovering takes a few rounds to deliver what was republished).
    max_attempts: int = 5
    give_up_after: timedelta = timedelta(minutes=15)
    requested_by: str = "canbao-repair"
    attempts: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # how often, since when

    async def round(self) -> RepairRound:
        """Compare what changed since the watermark, republish what has differed for longer than the grace."""
        started = utc_now()
        result = RepairRound(since=self.watermark)
        changed = {
            "registry": await _changed(self.registry, CHANGED["registry"], self.watermark),
            "collection": await _changed(self.collection, CHANGED["collection"], self.watermark),
        }
        ids = sorted(changed["registry"].keys() | changed["collection"].keys())
        result.changed = len(ids)
        held: dict[str, dict[str, EnrollmentStanding]] = {}
        for side, client in (("registry", self.registry), ("collection", self.collection)):
            held[side] = {i: s.as_standing() for i, s in changed[side].items()}
            held[side] |= await _of(client, OF[side], [i for i in ids if i not in changed[side]])
        oldest_open: datetime | None = None
        due: list[str] = []
        for enrollment_id in ids:
            difference = difference_of(
                enrollment_id, held["registry"].get(enrollment_id), held["collection"].get(enrollment_id)
            )
            if difference is None:
                continue
            result.differences.append(difference)
            tried, since = self.attempts.get(enrollment_id, (0, started))
            if tried >= self.max_attempts and started - since >= self.give_up_after:
                result.given_up.append(enrollment_id)
                continue
            sides = (changed["registry"].get(enrollment_id), changed["collection"].get(enrollment_id))
            moved = max(s.changed_at for s in sides if s is not None)
            oldest_open = moved if oldest_open is None else min(oldest_open, moved)
            if started - moved >= self.grace:
                due.append(enrollment_id)
                self.attempts[enrollment_id] = (tried + 1, since)
            else:
                result.waiting += 1
        if due:
            sent = set(await republish(self.registry, due, self.requested_by))
            sent |= set(await republish(self.collection, due, self.requested_by))
            result.republished = sorted(sent)
            log.warning("repair_republished", enrollments=len(due), with_events=len(sent))
        if result.given_up:
            # Not lost events: an operator looks (`canbao check` lists them); the watermark moves on.
            log.error("repair_gave_up", enrollments=result.given_up[:20], count=len(result.given_up))
        for resolved in set(self.attempts) - {d.enrollment_id for d in result.differences}:
            del self.attempts[resolved]
        self.watermark = min(started - max(self.grace, self.overlap), oldest_open or started)
        return result


async def run(
    registry_url: str,
    collection_url: str,
    token: str,
    *,
    every_s: float,
    grace_s: float,
    lookback_s: float,
    overlap_s: float = 300.0,
    rounds: int | None = None,
) -> None:
    """Repair every `every_s` seconds (forever, or `rounds` times); a service that cannot be reached is
    tried again next round."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=registry_url, timeout=60, headers=headers) as registry,
        httpx.AsyncClient(base_url=collection_url, timeout=60, headers=headers) as collection,
    ):
        repairer = Repairer(
            registry,
            collection,
            timedelta(seconds=grace_s),
            utc_now() - timedelta(seconds=lookback_s),
            overlap=timedelta(seconds=overlap_s),
        )
        done = 0
        while rounds is None or done < rounds:
            try:
                result = await repairer.round()
                log.info(
                    "repair_round",
                    since=result.since.isoformat(),
                    changed=result.changed,
                    differences=len(result.differences),
                    republished=len(result.republished),
                    waiting=result.waiting,
                    given_up=len(result.given_up),
                )
            except Exception as exc:  # a service away or answering oddly: the next round tries again
                log.warning("repair_round_failed", error=repr(exc))
            done += 1
            if rounds is None or done < rounds:
                await asyncio.sleep(every_s)
