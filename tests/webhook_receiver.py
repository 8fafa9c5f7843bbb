"""A webhook receiver for tests: an HTTP server on 127.0.0.1, in a thread, that verifies every
request with standardwebhooks (as a customer's receiver would), answers as told and records
what it got."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

# An answer: an HTTP status, "slow" (200 after `slow_seconds`) or "redirect" (302 to /moved).
Answer = int | str


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_by: list[str]  # the secrets whose signature the request carries
    at: float  # time.monotonic() when it arrived

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen backlog: two workers open up to 32 connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a slow answer: the test expects it


class Receiver:
    def __init__(
        self, default: Answer = 200, slow_seconds: float = 2.0, delay: float = 0.0
    ) -> None:
        self.default = default
        self.slow_seconds = slow_seconds
        self.delay = delay  # seconds before every answer
        self.answers: deque[Answer] = deque()  # answered in order, then `default`
        self.secrets: list[str] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def got(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.got()
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"expected {count} requests in {timeout} s; got {len(self.got())}")

    def _answer(self) -> Answer:
        with self._lock:
            return self.answers.popleft() if self.answers else self.default

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        verified = []
        for secret in list(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(secret)
            except WebhookVerificationError:
                pass
        with self._lock:
            self.received.append(Received(path, headers, body, verified, time.monotonic()))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender died mid-request (a SIGKILL test): nothing arrived
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._record(self.path, headers, body)
                answer = receiver._answer()
                time.sleep(receiver.delay)
                if answer == "slow":
                    time.sleep(receiver.slow_seconds)
                    answer = 200
                if answer == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/moved")
                else:
                    self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
