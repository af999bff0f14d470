"""One flow, one trace: the request that enrolls a fully subsidised person, the registry's outbox, the broker,
collection's consumer (which settles the bill and confirms it), collection's outbox, the broker again and the
registry's consumer that activates the enrollment — both services' apps in this process with their own
lifespans (relay and consumer running), joined by a real broker, each exporting to an in-memory exporter."""

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select

from collection.main import create_app as create_collection_app
from collection.settings import CollectionSettings
from registry.database import OutboxMessage
from registry.main import create_app as create_registry_app
from registry.settings import RegistrySettings
from shared.auth import Role, dev_token
from shared.events import Envelope
from shared.tracing import provider_for
from tests.conftest import DEFAULT_NOW, Harness
from tests.support import SERVICES, eventually, migrate, own_broker, resident_id

ADMIN = {"Authorization": f"Bearer {dev_token(Role.ADMIN)}"}
# A caller upstream (a front-end's gateway) that is itself traced passes its trace on in this header.
UPSTREAM_TRACE = "0af7651916cd43dd8448eb211c80319c"
UPSTREAM = f"00-{UPSTREAM_TRACE}-b7ad6b7169203331-01"


@dataclass
class Joined:
    apps: dict[str, FastAPI]
    exporter: InMemorySpanExporter

    def client(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.apps[service]), base_url="http://testserver", headers=ADMIN
        )

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()


@pytest.fixture
async def joined(tmp_path: Path) -> AsyncIterator[Joined]:
    with own_broker(tmp_path) as bootstrap:
        urls = {s: f"sqlite+aiosqlite:///{tmp_path / s}.db" for s in SERVICES}
        for service, url in urls.items():
            migrate(service, url)
        common: dict[str, Any] = {
            "environment": "test",
            "kafka_bootstrap_servers": bootstrap,
            "kafka_topic_partitions": 1,
            "clock_start": DEFAULT_NOW,
            "outbox_poll_interval_s": 0.2,
        }
        registry_settings = RegistrySettings(
            database_url=urls["registry"],
            roster_dir=tmp_path / "rosters",
            reminder_log=tmp_path / "reminders.log",
            **common,
        )
        collection_settings = CollectionSettings(
            database_url=urls["collection"], reconciliation_dir=tmp_path / "reconciliation", **common
        )
        exporter = InMemorySpanExporter()
        registry = create_registry_app(
            registry_settings, tracer_provider=provider_for("registry", registry_settings, exporter=exporter)
        )
        collection = create_collection_app(
            collection_settings,
            tracer_provider=provider_for("collection", collection_settings, exporter=exporter),
        )
        async with registry.router.lifespan_context(registry), collection.router.lifespan_context(collection):
            yield Joined({"registry": registry, "collection": collection}, exporter)


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def texts_of(span: ReadableSpan) -> list[str]:
    """Every text a span carries out of the process: its name, attributes, events and status."""
    values = [span.name, span.status.description or ""]
    values += [str(v) for v in (span.attributes or {}).values()]
    for event in span.events:
        values += [event.name, *(str(v) for v in (event.attributes or {}).values())]
    return values


async def test_one_flow_is_one_trace_across_both_services_and_back(joined: Joined) -> None:
    who = {"id_number": resident_id(), "name": "孙七"}
    async with joined.client("registry") as registry:
        assigned = await registry.post(
            "/v1/subsidy-assignments",
            json={
                "person": who,
                "region_code": "340102",
                "coverage_year": 2024,
                "category": "extreme_poverty",
                "evidence_ref": "民政认定2023-88",
                "assigned_by": "staff-trace",
            },
        )
        assert assigned.status_code == 201, assigned.text
        created = await registry.post(
            "/v1/enrollments",
            json=who | {"region_code": "340102", "coverage_year": 2024},
            headers={"traceparent": UPSTREAM},
        )
        assert created.status_code == 201, created.text
        enrollment_id = created.json()["enrollment_id"]

        async def activated() -> bool:
            response = await registry.get(f"/v1/enrollments/{enrollment_id}")
            return bool(response.json()["status"] == "active")

        await eventually(activated, timeout_s=90)

    # The request continued its caller's trace, and everything the flow did is in that one trace.
    [request] = [s for s in joined.spans() if s.name == "POST /v1/enrollments"]
    assert request.context is not None
    assert format(request.context.trace_id, "032x") == UPSTREAM_TRACE
    assert (service_of(request), request.kind) == ("registry", SpanKind.SERVER)

    async def whole_trace() -> list[ReadableSpan] | None:
        trace = [s for s in joined.spans() if s.context and s.context.trace_id == request.context.trace_id]
        back = [s for s in trace if s.name == "process collection.payments.v1"]
        return trace if back else None

    trace = await eventually(whole_trace)
    hops = {
        (service_of(s), s.kind, s.name) for s in trace if s.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER)
    }
    assert hops >= {
        ("registry", SpanKind.PRODUCER, "send registry.enrollments.v1"),
        ("collection", SpanKind.CONSUMER, "process registry.enrollments.v1"),
        ("collection", SpanKind.PRODUCER, "send collection.payments.v1"),
        ("registry", SpanKind.CONSUMER, "process collection.payments.v1"),
    }, hops
    # Each hop hangs under the work that sent the event: the consumer under the request, the way back under
    # collection's consumer; the statements each ran are in the trace too.
    by_id = {s.context.span_id: s for s in trace if s.context}
    [there] = [s for s in trace if s.name == "process registry.enrollments.v1"]
    [back] = [s for s in trace if s.name == "process collection.payments.v1"]
    assert there.parent is not None
    assert by_id[there.parent.span_id] is request
    assert back.parent is not None
    assert by_id[back.parent.span_id] is there
    assert {s.attributes["canbao.outcome"] for s in (there, back) if s.attributes} == {"applied"}
    statements = {
        service_of(s) for s in trace if s.kind is SpanKind.CLIENT and "db.statement" in (s.attributes or {})
    }
    assert statements == {"registry", "collection"}
    assert not [t for s in trace for t in texts_of(s) if who["id_number"] in t or who["name"] in t]

    # The event on the wire carries the trace as the CloudEvents distributed-tracing extension does.
    async with joined.apps["registry"].state.sessionmaker() as session:
        payloads = (
            await session.scalars(select(OutboxMessage.payload).where(OutboxMessage.key == enrollment_id))
        ).all()
    [sent] = [Envelope.from_bytes(p) for p in payloads]
    assert sent.traceparent is not None
    assert sent.traceparent.split("-")[1] == UPSTREAM_TRACE

    # A lookup carries an ID number and a name in its query: its span keeps the parameters' names only.
    async with joined.client("collection") as collection:
        found = await collection.get("/v1/bills/lookup", params=who)
    assert found.status_code == 200, found.text
    [lookup] = [s for s in joined.spans() if s.name == "GET /v1/bills/lookup"]
    texts = texts_of(lookup)
    assert any("id_number=&name=" in t for t in texts), texts
    assert not [t for t in texts if who["id_number"] in t or who["name"] in t]


async def test_without_tracing_nothing_is_traced_and_events_carry_no_trace(registry: Harness) -> None:
    """Tracing is off by default: a caller's trace header is not taken up, and events go out as before."""
    who = {"id_number": resident_id(), "name": "李四"}
    created = await registry.client.post(
        "/v1/enrollments",
        json=who | {"region_code": "340104", "coverage_year": 2024},
        headers={"traceparent": UPSTREAM},
    )
    assert created.status_code == 201, created.text
    async with registry.sessionmaker() as session:
        [payload] = (
            await session.scalars(
                select(OutboxMessage.payload).where(OutboxMessage.key == created.json()["enrollment_id"])
            )
        ).all()
    assert not {"traceparent", "tracestate"} & set(json.loads(payload))


def test_events_with_and_without_trace_context_are_both_valid() -> None:
    before = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/canbao/registry",
        "type": "canbao.registry.enrollment.lapsed.v1",
        "time": "2023-10-08T02:00:00Z",
        "subject": str(uuid.uuid4()),
        "datacontenttype": "application/json",
        "data": {"enrollment_id": "e", "replaced_by": "f"},
    }
    old = Envelope.from_bytes(json.dumps(before).encode())
    assert (old.traceparent, old.tracestate) == (None, None)
    assert json.loads(old.to_bytes()) == before  # an absent extension is left out, not sent as null
    traced = Envelope.from_bytes(json.dumps(before | {"traceparent": UPSTREAM, "tracestate": "k=v"}).encode())
    assert (traced.traceparent, traced.tracestate) == (UPSTREAM, "k=v")
