"""Optional OpenTelemetry traces (app.tracing): a served Tally exports a span per request and
per job run to an OTLP/HTTP receiver, the caller's traceparent is the parent, and no key is in
any span; without an endpoint, nothing is set up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from app import tracing
from tests.conftest import BACKENDS
from tests.e2e.test_server import OPERATOR, Server

pytestmark = pytest.mark.e2e
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Receiver:
    """An OTLP/HTTP trace endpoint (protobuf), keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: set[str] = set()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                received.paths.add(self.path)
                for resource in request.resource_spans:
                    service = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            received.spans.append(received.as_dict(span, service))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def as_dict(span: Any, service: dict[str, str]) -> dict[str, Any]:
        attributes = {}
        for a in span.attributes:
            kind = a.value.WhichOneof("value")
            attributes[a.key] = getattr(a.value, kind)
        return {
            "name": span.name,
            "trace_id": span.trace_id.hex(),
            "parent": span.parent_span_id.hex(),
            "status": span.status.code,
            "attributes": attributes,
            "service": service.get("service.name"),
        }

    def wait_for(self, condition, seconds: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [s for s in self.spans if condition(s)]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no such span in {self.spans}")


@pytest.fixture
def traced(tmp_path, monkeypatch) -> Iterator[tuple[Server, Receiver]]:
    if "sqlite" not in BACKENDS:
        pytest.skip("SQLite leg not selected")
    receiver = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # milliseconds between exports
    monkeypatch.setenv("OTEL_SERVICE_NAME", "tally-test")
    server = Server("", tmp_path)  # SQLite, the scheduler in the process
    yield server, receiver
    server.stop()
    receiver.server.shutdown()


def test_a_served_tally_exports_a_span_per_request_and_per_job(traced):
    server, receiver = traced
    with httpx.Client(base_url=server.base, timeout=10) as client:
        created = client.post(
            "/graphql",
            json={
                "query": 'mutation { createWorkspace(input: {name: "T", plan: "launch"}) '
                "{ adminKey workspace { id } } }"
            },
            headers={"Authorization": f"Bearer {OPERATOR}", "traceparent": TRACEPARENT},
        )
        assert created.status_code == 200, created.text
        data = created.json()["data"]["createWorkspace"]
        key, workspace = data["adminKey"], data["workspace"]["id"]
        asked = client.post(
            "/graphql",
            json={"query": "query Mine { workspace { id } }"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert asked.status_code == 200

    def is_create(span: dict[str, Any]) -> bool:
        return span["attributes"].get("tally.request_id") == created.headers["x-request-id"]

    [span] = receiver.wait_for(is_create)
    assert span["name"] == "POST graphql"
    assert span["service"] == "tally-test"
    assert span["trace_id"] == TRACE_ID and span["parent"] == "00f067aa0ba902b7"
    assert span["attributes"]["http.response.status_code"] == 200
    assert span["attributes"]["tally.operation"] == "mutation createWorkspace"
    assert span["attributes"]["tally.outcome"] == "ok"

    def is_query(span: dict[str, Any]) -> bool:
        return span["attributes"].get("tally.request_id") == asked.headers["x-request-id"]

    [query] = receiver.wait_for(is_query)
    assert query["attributes"]["tally.workspace_id"] == workspace
    assert query["trace_id"] != TRACE_ID and query["parent"] == ""  # a trace of its own

    jobs = receiver.wait_for(lambda s: s["name"] == "job renewals")
    assert jobs[0]["attributes"]["tally.job"] == "renewals"
    assert jobs[0]["attributes"]["tally.failed"] == 0
    assert receiver.paths == {"/v1/traces"}
    for sent in receiver.spans:  # no key, no secret, in any span
        for value in sent["attributes"].values():
            assert OPERATOR not in str(value) and key not in str(value)


def test_without_an_endpoint_tracing_stays_off(monkeypatch):
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not tracing.wanted()
    assert tracing.configure_tracing() is False
    assert not tracing.enabled()
    with tracing.job_span("renewals") as span:
        assert span is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.wanted()
