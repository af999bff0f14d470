"""GET /metrics of both running services during a resident's whole flow — enrolled, billed, paid online,
activated, then reported dead and refunded — moves each figure by exactly what the flow did, and no label
carries personal data. Every metric the alert rules and the dashboard name is one these processes export."""

import asyncio
import time
from typing import Any

import pytest

from tests.e2e.paying import resident_token, sandbox_pay, start_order
from tests.metrics import PROMETHEUS_OWN, Scrape, named_metrics, panel_queries, personal_labels, rules, scrape
from tests.support import Stack, eventually, resident_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(__name__)]

ENROLLED = "canbao.registry.enrollment.created.v1"
CANCELLED = "canbao.registry.enrollment.cancelled.v1"
CONFIRMED = "canbao.collection.payment.confirmed.v1"
REFUNDED = "canbao.collection.payment.refunded.v1"
WHERE = {"region": "340102", "coverage_year": "2024"}


async def scrapes(stack: Stack) -> dict[str, Scrape]:
    found = {}
    for service in ("registry", "collection"):
        async with stack.client(service) as client:
            found[service] = await scrape(client)
    return found


def moved(before: dict[str, Scrape], after: dict[str, Scrape]) -> dict[str, float]:
    """What the flow moved, figure by figure (the name says which service's scrape)."""

    def delta(service: str, name: str, **labels: str) -> float:
        return after[service].value(name, **labels) - before[service].value(name, **labels)

    def requests(service: str, method: str, route: str, status: str) -> float:
        return delta(service, "canbao_http_requests_total", method=method, route=route, status=status)

    def handled(service: str, event_type: str) -> float:
        return delta(service, "canbao_event_handling_seconds_count", event_type=event_type, outcome="applied")

    def enrollments(status: str) -> float:
        return delta("registry", "canbao_enrollments", status=status, **WHERE)

    return {
        "registry: POST /v1/enrollments 201": requests("registry", "POST", "/v1/enrollments", "201"),
        "registry: cancellation 200": requests(
            "registry", "POST", "/v1/enrollments/{enrollment_id}/cancellation", "200"
        ),
        "collection: POST /v1/payment-orders 201": requests(
            "collection", "POST", "/v1/payment-orders", "201"
        ),
        "collection: sandbox payment 200": requests(
            "collection", "POST", "/v1/sandbox/payment-orders/{order_id}/payment", "200"
        ),
        "wechat payments": delta("collection", "canbao_payments_total", channel="wechat"),
        "wechat fen": delta("collection", "canbao_payment_amount_fen_total", channel="wechat"),
        "death refunds": delta("collection", "canbao_refunds_total", reason="death"),
        "death refund fen": delta("collection", "canbao_refund_amount_fen_total", reason="death"),
        "registry published": delta(
            "registry", "canbao_outbox_published_events_total", topic="registry.enrollments.v1"
        ),
        "collection published": delta(
            "collection", "canbao_outbox_published_events_total", topic="collection.payments.v1"
        ),
        "collection applied created": handled("collection", ENROLLED),
        "collection applied cancelled": handled("collection", CANCELLED),
        "registry applied confirmed": handled("registry", CONFIRMED),
        "registry applied refunded": handled("registry", REFUNDED),
        "enrollments cancelled": enrollments("cancelled"),
        "enrollments active": enrollments("active"),
        "enrollments pending": enrollments("pending_payment"),
    }


EXPECTED = {
    "registry: POST /v1/enrollments 201": 1,
    "registry: cancellation 200": 1,
    "collection: POST /v1/payment-orders 201": 1,
    "collection: sandbox payment 200": 1,
    "wechat payments": 1,
    "wechat fen": 38000,
    "death refunds": 1,
    "death refund fen": 38000,
    "registry published": 2,  # created, cancelled
    "collection published": 2,  # confirmed, refunded
    "collection applied created": 1,
    "collection applied cancelled": 1,
    "registry applied confirmed": 1,
    "registry applied refunded": 1,
    "enrollments cancelled": 1,  # it went pending, active, then cancelled: only that remains
    "enrollments active": 0,
    "enrollments pending": 0,
}


async def test_the_flow_moves_each_figure_by_what_it_did(stack: Stack) -> None:
    before = await scrapes(stack)
    id_number, name = resident_id("340102"), "欧阳明远"
    async with stack.client("registry") as registry:
        created = await registry.post(
            "/v1/enrollments",
            json={"id_number": id_number, "name": name, "region_code": "340102", "coverage_year": 2024},
        )
    assert created.status_code == 201, created.text
    enrollment_id = created.json()["enrollment_id"]

    async def bill() -> dict[str, Any] | None:
        async with stack.client("collection") as collection:
            items: list[dict[str, Any]] = (
                await collection.get("/v1/bills", params={"enrollment_id": enrollment_id})
            ).json()["items"]
        return items[0] if items else None

    async def in_state(status: str) -> bool:
        async with stack.client("registry") as registry:
            return bool((await registry.get(f"/v1/enrollments/{enrollment_id}")).json()["status"] == status)

    token = resident_token(id_number)
    order = await start_order(stack, token, [(await eventually(bill))["bill_id"]], "wechat")
    await sandbox_pay(stack, token, order)
    await eventually(lambda: in_state("active"))
    async with stack.client("registry") as registry:
        reported = await registry.post(
            f"/v1/enrollments/{enrollment_id}/cancellation",
            json={"reason": "death", "evidence_ref": "死亡证明 metrics", "reported_by": "staff-e2e"},
        )
    assert reported.status_code == 200, reported.text
    await eventually(lambda: in_state("cancelled"))

    # The last effects (the consumer's timing, the database figures' next read) land a moment later.
    deadline = time.monotonic() + 60
    while True:
        after = await scrapes(stack)
        if moved(before, after) == EXPECTED or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert moved(before, after) == EXPECTED

    for service, topic in (("registry", "registry.enrollments.v1"), ("collection", "collection.payments.v1")):
        assert after[service].value("canbao_outbox_unpublished_events", topic=topic) == 0
        assert after[service].value("canbao_outbox_oldest_unpublished_age_seconds", topic=topic) == 0
        assert after[service].total("canbao_dead_letters_open") == 0
        assert after[service].value("canbao_metrics_database_up") == 1
        assert after[service].value("canbao_db_pool_size") >= 1
    # Each consumer reports its partitions' lag, and nothing waits once the flow is through.
    assert after["collection"].total("canbao_consumer_lag_messages", topic="registry.enrollments.v1") == 0
    assert [k for k in after["collection"].samples if k[0] == "canbao_consumer_lag_messages"]
    assert after["registry"].total("canbao_consumer_lag_messages", topic="collection.payments.v1") == 0
    for found in after.values():
        assert not personal_labels(found, name), personal_labels(found, name)


async def test_every_metric_the_rules_and_dashboard_name_is_exported_by_the_running_services(
    stack: Stack,
) -> None:
    found = await scrapes(stack)
    named = named_metrics([rule["expr"] for rule in rules()]) | named_metrics(panel_queries())
    missing = {m for m in named - PROMETHEUS_OWN if not any(s.exports(m) for s in found.values())}
    assert not missing, missing
    # A real process exports only its own service's business figures.
    assert found["collection"].exports("canbao_payments_total")
    assert not found["registry"].exports("canbao_payments_total")
    assert found["registry"].exports("canbao_roster_rows_applied_total")
    assert not found["collection"].exports("canbao_roster_rows_applied_total")
