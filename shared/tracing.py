"""Traces (OpenTelemetry): one trace from a request through the outbox and the broker to the consumer on the
other service, and on through whatever that consumer publishes back.

Off unless `TRACING_OTLP_ENDPOINT` is set (or a caller passes its own tracer provider, as the tests do), and
free when off: nothing is instrumented and the SDK is not even imported; an event enqueued outside a recorded
span carries no trace fields. When on, the FastAPI app, the service's SQLAlchemy engine and HTTPX clients are
instrumented, the outbox relay opens a producer span per event it sends and the consumer a consumer span per
message it handles, and the W3C trace context travels in the event envelope as the CloudEvents
distributed-tracing extension puts it (`traceparent`, `tracestate`).

Traces begin only where work comes in (an HTTP request, a consumed message; `TRACING_SAMPLE_RATIO` of them):
background polling (the relay's reads, the roster worker) is recorded only within such a trace. Spans are
scrubbed before they leave the process under the log policy: query strings keep their parameter names only,
and ID and mobile numbers and the values errors quote are cut from every text (shared.logging).
"""

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.logging import scrub_values

if TYPE_CHECKING:  # the SDK is imported only when tracing is on
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.settings import ServiceSettings

# The CloudEvents distributed-tracing extension's attributes, as the envelope carries them.
TRACE_FIELDS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
# Probes and scrapes are not traced: they are many and say nothing about one flow.
_UNTRACED_URLS = "/healthz$,/readyz$,/metrics$"
_URL_ATTRIBUTES = frozenset({"http.url", "url.full", "http.target"})
_QUERY_ATTRIBUTES = frozenset({"url.query"})


def provider_for(
    service: str, settings: "ServiceSettings", *, exporter: "SpanExporter | None" = None
) -> "TracerProvider | None":
    """The service's tracer provider: spans go to `exporter` as each ends (tests: an in-memory one), or in
    batches to the OTLP/HTTP endpoint of the settings; None when neither is given: tracing is off."""
    if exporter is None and settings.tracing_otlp_endpoint is None:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "canbao"}),
        sampler=ParentBased(root=_entry_points(settings.tracing_sample_ratio)),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(_scrubbing(exporter)))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Headers, certificates and timeouts come from the standard OTEL_EXPORTER_OTLP_* variables.
        otlp = OTLPSpanExporter(endpoint=str(settings.tracing_otlp_endpoint))
        provider.add_span_processor(BatchSpanProcessor(_scrubbing(otlp)))
    return provider


def _entry_points(ratio: float) -> Any:
    """A root sampler that starts traces only at a server or consumer span, `ratio` of them."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased

    class EntryPoints(Sampler):
        def __init__(self) -> None:
            self._ratio = TraceIdRatioBased(ratio)

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind not in (SpanKind.SERVER, SpanKind.CONSUMER):
                return SamplingResult(Decision.DROP)
            return self._ratio.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"EntryPoints{{{self._ratio.get_description()}}}"

    return EntryPoints()


def _scrubbing(inner: "SpanExporter") -> "SpanExporter":
    """`inner`, given spans with personal data cut out (module docstring)."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Status

    def scrubbed(span: ReadableSpan) -> ReadableSpan:
        status = span.status
        if status.description:
            status = Status(status.status_code, scrub_values(status.description))
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=_clean(span.attributes),
            events=[Event(e.name, _clean(e.attributes), e.timestamp) for e in span.events],
            links=span.links,
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    class Scrubbing(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return inner.export([scrubbed(span) for span in spans])

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return Scrubbing()


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if isinstance(value, str):
            if key in _URL_ATTRIBUTES:
                value = _without_query_values(value)
            elif key in _QUERY_ATTRIBUTES:
                value = _parameter_names(value)
            value = scrub_values(value)
        cleaned[key] = value
    return cleaned


def _without_query_values(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    return urlunsplit(parts._replace(query=_parameter_names(parts.query)))


def _parameter_names(query: str) -> str:
    """`id_number=…&name=…` → `id_number=&name=`: which parameters, never their values."""
    return "&".join(f"{part.split('=', 1)[0]}=" for part in query.split("&") if part)


def instrument_app(app: "FastAPI", provider: "TracerProvider") -> None:
    """A server span per request, named by method and route template; before the app first starts."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=_UNTRACED_URLS, exclude_spans=["receive", "send"]
    )


def instrument_engine(engine: "AsyncEngine", provider: "TracerProvider") -> None:
    """A client span per statement (its text, never its parameters). The instrumentation's EngineTracer is
    used for this one engine and provider: SQLAlchemyInstrumentor is one per process and would also trace
    every engine created after it with the first provider."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.metrics import NoOpMeter

    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__, provider)
    usage = NoOpMeter("canbao").create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]


def instrument_httpx(provider: "TracerProvider") -> None:
    """Client spans and trace headers on the process's HTTPX calls (a reminder gateway, say)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)


def uninstrument_httpx() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()


def trace_fields() -> dict[str, str]:
    """The current span's W3C trace context as envelope fields; empty outside a recorded span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return {name: carrier[name] for name in TRACE_FIELDS if carrier.get(name)}


def context_of(fields: Mapping[str, Any]) -> Context | None:
    """The trace context an event's fields carry, or None (an event from before tracing, or without)."""
    carrier = {name: fields[name] for name in TRACE_FIELDS if isinstance(fields.get(name), str)}
    return _PROPAGATOR.extract(carrier) if "traceparent" in carrier else None


def fields_of(payload: bytes) -> dict[str, Any]:
    """An event's top-level fields as sent, or none when it is not a JSON object (a malformed message)."""
    try:
        document = json.loads(payload)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


@contextmanager
def span(
    tracer: Tracer | None,
    name: str,
    kind: SpanKind,
    context: Context | None,
    attributes: Mapping[str, str | int],
) -> Iterator[trace.Span]:
    """A current span under `context` (the event's trace), or a no-op one when tracing is off."""
    if tracer is None:
        yield trace.INVALID_SPAN
        return
    with tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=dict(attributes), record_exception=False
    ) as current:
        yield current
