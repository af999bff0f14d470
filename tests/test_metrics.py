"""GET /metrics on both services: served without a token to the allowed addresses only, labelled by route
template, business counters moved by what committed, database figures read at most once per cache period.
(The figures during the whole flow against the running system: tests/e2e/test_metrics.py.)"""

from ipaddress import ip_network

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from registry.main import create_app as create_registry_app
from registry.settings import RegistrySettings
from shared.db import create_engine
from shared.metrics import count_on_commit
from tests.collection.helpers import open_bill
from tests.conftest import DEFAULT_NOW, Harness
from tests.metrics import personal_labels, scrape
from tests.registry.helpers import HEFEI, enrolled, person, processed, review, upload
from tests.spreadsheets import csv_bytes
from tests.support import problem, resident_id, with_wrong_check


def from_address(h: Harness, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=h.app, client=(host, 41234)), base_url="http://testserver"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_metrics_need_no_token_from_loopback(registry: Harness, host: str) -> None:
    async with from_address(registry, host) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert "canbao_http_requests_total" in response.text


@pytest.mark.parametrize("host", ["10.1.2.3", "192.0.2.10", "2001:db8::1"])
async def test_metrics_are_refused_to_other_addresses(collection: Harness, host: str) -> None:
    async with from_address(collection, host) as client:
        response = await client.get(
            "/metrics", headers={"Authorization": collection.client.headers["Authorization"]}
        )
    assert (response.status_code, problem(response)["code"]) == (403, "metrics_not_allowed")


async def test_the_allowed_networks_are_a_setting(registry: Harness) -> None:
    registry.app.state.settings = registry.app.state.settings.model_copy(
        update={"metrics_allowed_networks": [ip_network("10.89.0.0/24")]}
    )
    async with from_address(registry, "10.89.0.7") as inside, from_address(registry, "127.0.0.1") as local:
        assert (await inside.get("/metrics")).status_code == 200
        assert (await local.get("/metrics")).status_code == 403  # the setting replaces the default


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Forwarded-For": "203.0.113.5, 10.89.0.7"},
        {"Forwarded": "for=203.0.113.5"},
        {"X-Real-IP": "203.0.113.5"},
    ],
)
async def test_a_request_through_a_proxy_is_refused_whatever_address_it_shows(
    registry: Harness, forwarded: dict[str, str]
) -> None:
    """An ingress on the monitoring network (or any proxy uvicorn does not trust) connects from an allowed
    address on behalf of anyone: what it forwards is not a scrape."""
    registry.app.state.settings = registry.app.state.settings.model_copy(
        update={"metrics_allowed_networks": [ip_network("10.89.0.0/24")]}
    )
    async with from_address(registry, "10.89.0.7") as ingress:
        response = await ingress.get("/metrics", headers=forwarded)
        assert (response.status_code, problem(response)["code"]) == (403, "metrics_not_allowed")
        assert (await ingress.get("/metrics")).status_code == 200  # Prometheus itself, asking directly


async def test_requests_are_counted_by_route_template_never_by_raw_path(registry: Harness) -> None:
    before = await scrape(registry.client)
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await registry.client.get(f"/v1/enrollments/{missing}")).status_code == 404
    assert (await registry.client.get(f"/no/such/path/{missing}")).status_code == 404
    after = await scrape(registry.client)

    route = {"method": "GET", "route": "/v1/enrollments/{enrollment_id}", "status": "404"}
    assert (
        after.value("canbao_http_requests_total", **route)
        - before.value("canbao_http_requests_total", **route)
        == 1
    )
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        after.value("canbao_http_requests_total", **unmatched)
        == before.value("canbao_http_requests_total", **unmatched) + 1
    )
    duration = {"method": "GET", "route": "/v1/enrollments/{enrollment_id}"}
    assert after.value("canbao_http_request_duration_seconds_count", **duration) > before.value(
        "canbao_http_request_duration_seconds_count", **duration
    )
    assert not personal_labels(after)


async def test_enrollments_by_status_and_region_are_read_at_most_once_per_cache_period(
    registry: Harness,
) -> None:
    registry.app.state.metrics.database.max_age_s = 3600.0  # one read for the whole test
    first = await scrape(registry.client)
    who = person(name="周九")
    await enrolled(registry, who, HEFEI)
    second = await scrape(registry.client)
    assert second.value("canbao_metrics_database_reads_total") == first.value(
        "canbao_metrics_database_reads_total"
    )
    pending = {"status": "pending_payment", "region": "340104", "coverage_year": "2024"}
    assert second.value("canbao_enrollments", **pending) == first.value("canbao_enrollments", **pending)

    registry.app.state.metrics.database.max_age_s = 0.0
    third = await scrape(registry.client)
    assert (
        third.value("canbao_metrics_database_reads_total")
        == first.value("canbao_metrics_database_reads_total") + 1
    )
    assert third.value("canbao_enrollments", **pending) == first.value("canbao_enrollments", **pending) + 1
    assert third.value("canbao_metrics_database_up") == 1
    assert third.value("canbao_outbox_unpublished_events", topic="registry.enrollments.v1") >= 1
    assert not personal_labels(third, who["name"])


async def test_an_unreachable_database_leaves_its_figures_out_and_says_so(registry: Harness) -> None:
    registry.app.state.metrics.database.max_age_s = 0.0
    assert (await scrape(registry.client)).exports("canbao_enrollments")
    broken = create_engine("sqlite+aiosqlite:////nonexistent-dir/none.db")
    kept = registry.app.state.sessionmaker
    registry.app.state.sessionmaker = async_sessionmaker(broken)
    try:
        down = await scrape(registry.client)
    finally:
        registry.app.state.sessionmaker = kept
        await broken.dispose()
    assert down.value("canbao_metrics_database_up") == 0
    assert not down.exports("canbao_enrollments")
    assert down.exports("canbao_http_requests_total")  # the process's own figures are still there


async def test_a_counter_payment_moves_the_payment_counters_by_its_amount(collection: Harness) -> None:
    collection.app.state.metrics.database.max_age_s = 0.0
    bill = await open_bill(collection)
    before = await scrape(collection.client)
    refused = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill["bill_id"], "amount": "1.00", "channel": "cash"},
        headers={"Idempotency-Key": "metrics-refused"},
    )
    assert refused.status_code == 422, refused.text
    paid = await collection.client.post(
        "/v1/payments",
        json={"bill_id": bill["bill_id"], "amount": "380.00", "channel": "cash"},
        headers={"Idempotency-Key": "metrics-paid"},
    )
    assert paid.status_code == 201, paid.text
    after = await scrape(collection.client)

    def moved(name: str) -> float:
        return after.value(name, channel="cash") - before.value(name, channel="cash")

    assert (moved("canbao_payments_total"), moved("canbao_payment_amount_fen_total")) == (1, 38000)
    assert after.value("canbao_bills", status="paid", region="340104", coverage_year="2024") >= 1
    assert not personal_labels(after)


async def test_counted_on_commit_only(registry: Harness) -> None:
    """A business counter moves when its transaction commits: not for a rollback, nor a savepoint undone."""
    facts = CollectorRegistry()
    counter = Counter("canbao_test_facts", "test", registry=facts)

    def counted() -> float | None:
        return facts.get_sample_value("canbao_test_facts_total")

    async with registry.sessionmaker() as session:
        async with session.begin():
            await session.execute(text("SELECT 1"))
            count_on_commit(session, counter, 1)
            try:
                async with session.begin_nested():
                    count_on_commit(session, counter, 10)
                    raise RuntimeError("undone")
            except RuntimeError:
                pass
            async with session.begin_nested():
                count_on_commit(session, counter, 100)
            assert counted() == 0  # nothing yet: the transaction is open
        assert counted() == 101
        async with session.begin():
            count_on_commit(session, counter, 1000)
            await session.rollback()
    assert counted() == 101


async def test_roster_rows_judged_and_applied_are_counted_by_kind(registry: Harness) -> None:
    registry.at("2022-11-15T10:00:00+08:00")
    registry.app.state.metrics.database.max_age_s = 0.0
    rows = [["褚三", resident_id(region="341823")], ["褚四", resident_id(region="341823")]]
    rows.append(["褚五", with_wrong_check(resident_id(region="341823"))])
    data = csv_bytes(["姓名", "身份证号码"], rows, "utf-8-sig")
    before = await scrape(registry.client)
    created = await upload(
        registry, data, "职工医保.csv", kind="employee_insurance", department="县医保局职工科"
    )
    assert created.status_code == 201, created.text
    await processed(registry, created.json()["upload_id"])
    await review(registry, created.json()["upload_id"])
    await processed(registry, created.json()["upload_id"])
    after = await scrape(registry.client)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    kind = {"kind": "employee_insurance"}
    assert moved("canbao_roster_rows_judged_total", **kind, status="accepted") == 2
    assert moved("canbao_roster_rows_judged_total", **kind, status="rejected") == 1
    assert moved("canbao_roster_rows_applied_total", **kind) == 2
    assert after.value("canbao_roster_uploads", **kind, status="applied") >= 1
    assert not personal_labels(after, "褚三", "褚四", "褚五")


def test_the_default_allows_loopback_only() -> None:
    settings = RegistrySettings(
        environment="test", database_url="sqlite+aiosqlite://", clock_start=DEFAULT_NOW
    )
    assert [str(n) for n in settings.metrics_allowed_networks] == ["127.0.0.1/32", "::1/128"]
    assert create_registry_app(settings).state.settings.tracing_otlp_endpoint is None  # no traces by default
