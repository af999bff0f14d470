"""The repair job's decisions, against two services that answer from memory: what it republishes, what it
waits for, when it gives up, and where its watermark goes."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from canbao.repair import Repairer
from shared.crosscheck import ChangedStanding, EnrollmentStanding, Standing

NOW = datetime.now(UTC)


def standing(enrollment_id: str, due: int, changed_at: datetime) -> ChangedStanding:
    return ChangedStanding(
        enrollment_id=enrollment_id,
        standing=Standing.OPEN,
        amount_due=due,
        price_version=1,
        payment_id=None,
        paid=0,
        refunded=0,
        changed_at=changed_at,
    )


class Service:
    """What one service holds, its answers, and the republications asked of it."""

    def __init__(self, held: list[ChangedStanding]):
        self.held = {s.enrollment_id: s for s in held}
        self.republished: list[list[str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/standings/changed"):
            since = datetime.fromisoformat(request.url.params["since"])
            items = [s.model_dump(mode="json") for s in self.held.values() if s.changed_at >= since]
            return httpx.Response(200, json={"items": items, "next_after": None})
        if request.url.path.endswith("/standings/of"):
            wanted = request.url.params.get_list("enrollment_id")
            items = [
                EnrollmentStanding.model_validate(s.model_dump(exclude={"changed_at"})).model_dump(
                    mode="json"
                )
                for i, s in self.held.items()
                if i in wanted
            ]
            return httpx.Response(200, json={"items": items, "next_after": None})
        subjects: list[str] = json.loads(request.content)["subjects"]
        self.republished.append(subjects)
        return httpx.Response(200, json={"events": len(subjects), "subjects": subjects})


def repairer(registry: Service, collection: Service, **options: Any) -> Repairer:
    return Repairer(
        httpx.AsyncClient(transport=httpx.MockTransport(registry.handle), base_url="http://registry"),
        httpx.AsyncClient(transport=httpx.MockTransport(collection.handle), base_url="http://collection"),
        grace=timedelta(seconds=30),
        watermark=NOW - timedelta(hours=1),
        **options,
    )


async def test_an_old_difference_is_republished_a_young_one_waits() -> None:
    now = datetime.now(UTC)
    old, young = now - timedelta(minutes=2), now - timedelta(seconds=5)
    registry = Service([standing("lost", 38000, old), standing("in-flight", 38000, young)])
    collection = Service([])  # neither bill issued: one event lost, one still on its way
    result = await repairer(registry, collection).round()
    assert [d.enrollment_id for d in result.differences] == ["in-flight", "lost"]
    assert (result.republished, result.waiting) == (["lost"], 1)
    assert registry.republished == collection.republished == [["lost"]]


async def test_a_difference_republishing_cannot_resolve_is_given_up_and_the_watermark_moves_on() -> None:
    """Both services hold the enrollment but disagree (not a lost event): after its republications the job
    stops, says so, and stops re-reading everything since that difference."""
    old = NOW - timedelta(hours=2)
    registry = Service([standing("stuck", 3800, old)])
    collection = Service([standing("stuck", 38000, old)])
    job = repairer(
        registry, collection, overlap=timedelta(minutes=5), max_attempts=3, give_up_after=timedelta(0)
    )
    job.watermark = old - timedelta(minutes=1)
    rounds = [await job.round() for _ in range(5)]
    assert [r.republished for r in rounds] == [["stuck"]] * 3 + [[]] * 2
    # Given up once, then no longer pinned to it: the watermark moves on and later rounds do not re-read it.
    assert [r.given_up for r in rounds] == [[]] * 3 + [["stuck"]] + [[]]
    assert job.watermark > datetime.now(UTC) - timedelta(minutes=6)


async def test_the_watermark_stays_behind_a_difference_being_repaired() -> None:
    old = NOW - timedelta(hours=2)
    registry = Service([standing("lost", 38000, old)])
    job = repairer(registry, Service([]))
    job.watermark = old - timedelta(minutes=1)
    await job.round()
    assert job.watermark == old
    registry.held.clear()  # resolved (here: the enrollment is gone from view)
    await job.round()
    assert job.watermark > datetime.now(UTC) - timedelta(minutes=6)
    assert job.attempts == {}
