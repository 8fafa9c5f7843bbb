"""Optional OpenTelemetry traces: a span for each HTTP request and each job run, exported over
OTLP/HTTP. Off unless the `otel` extra is installed (pip install 'tally[otel]') and an OTLP
endpoint is configured with OpenTelemetry's own variables (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the
exporter's headers too). Off, a request pays one check of a module global.

A span carries what the request's log line does (operation, workspace id, outcome, request
id), never a key or a body.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

log = logging.getLogger("tally.tracing")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_tracer: Any = None  # an opentelemetry Tracer once configured
_provider: Any = None


def wanted() -> bool:
    if (os.environ.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def configure_tracing() -> bool:
    """Start exporting this process's spans when an endpoint is configured; True if on.
    Call once per process (each server worker, the scheduler), after any fork."""
    global _tracer, _provider
    if _tracer is not None or not wanted():
        return _tracer is not None
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "an OTLP endpoint is set but OpenTelemetry is not installed"
            " (pip install 'tally[otel]'): no traces"
        )
        return False
    # "tally" unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name the service (given
    # attributes would win over theirs).
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {"service.name": "tally"})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    _tracer = trace.get_tracer("tally")
    return True


def shutdown_tracing() -> None:
    """Send the spans still buffered (at the end of a lifespan or of the scheduler)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


def _headers_carrier(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}


@contextlib.contextmanager
def server_span(name: str, headers: Iterable[tuple[bytes, bytes]]) -> Iterator[Any]:
    """A SERVER span for a request, child of the caller's `traceparent` when it sends one."""
    from opentelemetry import propagate, trace

    parent = propagate.extract(_headers_carrier(headers))
    with _tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.SERVER) as span:
        yield span


@contextlib.contextmanager
def job_span(name: str) -> Iterator[Any]:
    """A span around one job run; nothing when tracing is off."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(f"job {name}", attributes={"tally.job": name}) as span:
        yield span


def mark_failed(span: Any, description: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, description))


def set_attributes(span: Any, attributes: Mapping[str, Any]) -> None:
    """Attributes of simple types only, None left out (OpenTelemetry refuses others)."""
    if span is None:
        return
    for key, value in attributes.items():
        if isinstance(value, bool | int | float | str):
            span.set_attribute(key, value)
