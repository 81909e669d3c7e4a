"""OpenTelemetry spans that join up across services and nodes through the events'
W3C ``traceparent``.

A service's spans continue the trace of what caused them: the registry's the HTTP request's
``traceparent`` header, sync's and notify's the event's. Events a span causes carry that
span's ``traceparent``, so a partner's spans become its children. Spans go to an OTLP
collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the standard OpenTelemetry
variables apply); without one they are still made, so every traceparent is a real span's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER = "yixian"


def configure_tracing(
    service: str, node: str, *, processors: list[SpanProcessor] | None = None
) -> None:
    """Install the process's tracer provider (once; later calls only add ``processors``)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(
            resource=Resource.create({"service.name": f"yixian-{service}", "yixian.node": node})
        )
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    for processor in processors or []:
        provider.add_span_processor(processor)


def current_traceparent() -> str | None:
    """The traceparent of the span now current, if there is a real one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(
    name: str, parent: str | None = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    **attributes: Any,
) -> Iterator[str]:  # fmt: skip
    """A span continuing ``parent`` (a traceparent); yields the traceparent to hand on."""
    context = _PROPAGATOR.extract({"traceparent": parent}) if parent else None
    tracer = trace.get_tracer(_TRACER)
    clean = {k: v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, context=context, kind=kind, attributes=clean):
        own = current_traceparent()
        if own is None or own == parent:  # no tracer provider installed: still hand on a child
            trace_id = parent.split("-")[1] if parent else secrets.token_hex(16)
            own = f"00-{trace_id}-{secrets.token_hex(8)}-01"
        yield own
