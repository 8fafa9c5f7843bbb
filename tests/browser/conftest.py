"""A real `tally serve` process, seeded over HTTP, and Debian's Chromium driven by Playwright.

One server and one browser per module; each test opens its own browser context, so the API key
in sessionStorage never leaks from one test to the next.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests import templates

OPERATOR = "tly_op_browser-tests"
CHROMIUM = os.environ.get("TALLY_TEST_CHROMIUM", "/usr/bin/chromium")
# The flags this machine needs: no sandbox as root, and no background calls to Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TALLY_TEST_ARTIFACTS", ROOT / "test-artifacts" / "browser"))

RECORD = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
  __typename ... on Charge { id actions dataCredits } ... on Refusal { code message } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`tally serve` on a free port, on its own SQLite file, without the scheduler; `settings`
    adds to (or replaces) its environment's TALLY_ settings."""

    def __init__(self, workdir: Path, settings: dict[str, str] | None = None) -> None:
        self.base = f"http://127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "TALLY_DATABASE_URL": f"sqlite://{workdir}/tally.sqlite3",
            "TALLY_OPERATOR_KEY": OPERATOR,
            "TALLY_SCHEDULER": "off",
            **(settings or {}),
        }
        templates.migrated(env["TALLY_DATABASE_URL"], workdir)
        self.log_path = workdir / "server.log"
        self.log = self.log_path.open("w")
        port = self.base.rsplit(":", 1)[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tally", "serve", "--port", port],
            cwd=workdir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.base, timeout=10)
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.log_path.read_text())
            try:
                if self.client.get("/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("server did not become healthy in 30 s")

    def gql(self, query: str, variables: dict | None = None, key: str = OPERATOR) -> Any:
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {key}"},
        )
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=20)
        self.log.close()


@dataclass(frozen=True)
class Seeded:
    """What the tests log in with and expect to see."""

    admin_key: str
    member_key: str
    launch_admin_key: str
    workbooks: dict[str, str]  # name -> id


def create_workspace(server: Server, name: str, plan: str) -> str:
    data = server.gql(
        """mutation($n: String!, $p: String!) {
             createWorkspace(input: {name: $n, plan: $p}) { adminKey } }""",
        {"n": name, "p": plan},
    )
    return data["createWorkspace"]["adminKey"]


def create_workbook(server: Server, key: str, name: str) -> str:
    data = server.gql("mutation($n: String!) { createWorkbook(name: $n) { id } }", {"n": name}, key)
    return data["createWorkbook"]["id"]


# (workbook, table, kind, provider, dataType, results): 314 Actions and 145 Data Credits.
USAGE = [
    ("Leads", "people", "ENRICHMENT", "linkedin", "profile", 100),  # 100 Actions, 50 credits
    ("Leads", "emails", "ENRICHMENT", "hunter", "email", 90),  # 90 Actions, 45 credits
    ("Leads", "people", "ENRICHMENT", "zerobounce", "email_validation", 90),  # 90, 0
    ("Accounts", "companies", "SOURCING", None, None, 200),  # free (R3)
    ("Accounts", "companies", "ENRICHMENT", "clearbit", "company", 30),  # 30 Actions, 30 credits
    ("Accounts", "companies", "ENRICHMENT", "apollo", "phone", 4),  # 4 Actions, 20 credits
]


def seed(server: Server) -> Seeded:
    admin = create_workspace(server, "Acme Enterprise", "enterprise")
    workbooks = {name: create_workbook(server, admin, name) for name in ("Leads", "Accounts")}
    for n, (workbook, table, kind, provider, data_type, results) in enumerate(USAGE):
        usage = {
            "workbookId": workbooks[workbook],
            "tableId": table,
            "kind": kind,
            "provider": provider,
            "dataType": data_type,
            "results": results,
            "idempotencyKey": f"seed-{n}",
        }
        charge = server.gql(RECORD, {"i": usage}, admin)["recordUsage"]
        assert charge["__typename"] == "Charge", charge
    member = server.gql(
        'mutation { createApiKey(name: "analyst", role: MEMBER) { secret } }', key=admin
    )["createApiKey"]["secret"]
    launch = create_workspace(server, "Small Co", "launch")
    create_workbook(server, launch, "Trials")
    return Seeded(admin, member, launch, workbooks)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("browser-server"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def seeded(server: Server) -> Seeded:
    return seed(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's package "
            "(apt-get install -y chromium) or set TALLY_TEST_CHROMIUM",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        # Never Playwright's own browser download: Debian's Chromium, at its path.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, server: Server) -> Iterator[Page]:
    """A tab on the dashboard that fails its test on any script error in the page."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    tab.goto(f"{server.base}/")
    yield tab
    assert errors == [], errors


SCREENSHOTS: list[Path] = []  # printed at the end of the run, where CI logs will show them


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in SCREENSHOTS:
        terminalreporter.write_line(f"browser screenshot: {path}")
