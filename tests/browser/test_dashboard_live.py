"""The dashboard's live updates, balance on date and audit log (issue 18), in headless Chromium.

A charge made over HTTP by another client shows on the open page without a reload; with its
socket closed the page says it is polling and still updates, then reconnects; a revoked key's
page stops and says so. The balance-on-date picker shows balanceAt's exact figures for an
instant between two charges. An admin pages through the audit log; a member never sees it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.browser.conftest import RECORD, SCREENSHOTS, Server, create_workbook, create_workspace

pytestmark = pytest.mark.e2e

LIVE = "Live: changes show here as they happen."
POLLING = "Live updates are interrupted: checking every 3 s and reconnecting."
LEDGER = "{ ledger(first: 1) { edges { node { createdAt balanceAfter } } } }"
BALANCE_AT = """query($at: DateTime!) { balanceAt(at: $at) {
  plan { name } actionsUsed actionsCapacity dataCredits held available } }"""
AUDIT = """{ auditLog(first: 100) { edges { node { action actor target requestId } } } }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("browser-live"))
    yield running
    running.stop()


def login(page: Page, key: str) -> None:
    page.fill("#login-key", key)
    page.click("#login-submit")
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#ledger tbody tr").first).to_be_visible()


def workspace(server: Server, name: str) -> str:
    """A Launch workspace (2,500 Data Credits, 15,000 Actions) with a workbook; its admin key."""
    key = create_workspace(server, name, "launch")
    WORKBOOKS[key] = create_workbook(server, key, "Leads")
    return key


WORKBOOKS: dict[str, str] = {}  # admin key -> the workspace's workbook


def charge(
    server: Server, key: str, emails: int, idempotency_key: str, own_key: bool = False
) -> None:
    usage = {
        "ownApiKey": own_key,
        "workbookId": WORKBOOKS[key],
        "tableId": "people",
        "kind": "ENRICHMENT",
        "provider": "hunter",
        "dataType": "email",
        "results": emails,  # 0.5 Data Credits and 1 Action each
        "idempotencyKey": idempotency_key,
    }
    assert server.gql(RECORD, {"i": usage}, key)["recordUsage"]["__typename"] == "Charge"


def mark_page(page: Page) -> None:
    """A flag in the page's window: still there later means the page was never reloaded."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true")


def test_a_charge_over_http_shows_on_the_open_page_within_a_second(
    page: Page, server: Server
) -> None:
    # given: a Launch workspace (2,500 Data Credits, 15,000 Actions) open and live
    key = workspace(server, "Live Co")
    charge(server, key, 10, "first")
    login(page, key)
    expect(page.locator("#live-status")).to_have_text(LIVE)
    expect(page.locator("#credits-balance")).to_have_text("2,495")
    mark_page(page)

    # when: another client charges 7 emails over HTTP
    started = time.monotonic()
    charge(server, key, 7, "second")

    # then: the meters follow within about a second, without a reload
    expect(page.locator("#credits-balance")).to_have_text("2,491.5", timeout=2_000)
    took = time.monotonic() - started
    expect(page.locator("#actions-used")).to_have_text("17")
    expect(page.locator("#credits-available")).to_have_text("2,491.5")
    # and the ledger's first page and the breakdown reload with it
    first = page.locator("#ledger tbody tr").first
    expect(first.locator('td[data-label="Amount"]')).to_have_text("−3.5")
    expect(first.locator('td[data-label="Balance after"]')).to_have_text("2,491.5")
    expect(page.locator("#breakdown tr.total")).to_contain_text("8.5")
    expect(page.locator("#chart-status")).to_be_hidden()
    assert_not_reloaded(page)
    assert took < 1.5, took


def test_an_event_committed_elsewhere_appears_in_the_events_list(
    page: Page, server: Server
) -> None:
    # given: the page open on a workspace without events
    key = workspace(server, "Eventful Co")
    login(page, key)
    expect(page.locator("#live-status")).to_have_text(LIVE)
    expect(page.locator("#events-status")).to_have_text("No events yet.")
    mark_page(page)

    # when: another client buys a top-up (topup.purchased)
    bought = server.gql(
        "mutation($i: TopUpInput!) { purchaseTopUp(input: $i) { __typename } }",
        {"i": {"credits": "100", "idempotencyKey": "top-up"}},
        key,
    )["purchaseTopUp"]
    assert bought["__typename"] != "Refusal", bought

    # then: the event and the balance show without a reload
    first = page.locator("#events tbody tr").first
    expect(first.locator('td[data-label="Type"]')).to_have_text("topup.purchased", timeout=2_000)
    expect(page.locator("#credits-balance")).to_have_text("2,600")
    assert_not_reloaded(page)


def test_the_usage_card_says_what_own_keys_saved_and_follows_live(
    page: Page, server: Server
) -> None:
    # given: no own-key usage yet, the page open
    key = workspace(server, "Own Keys Co")
    charge(server, key, 10, "paid")
    login(page, key)
    expect(page.locator("#live-status")).to_have_text(LIVE)
    savings = page.locator("#own-key-savings")
    expect(savings).to_be_hidden()

    # when: 90 emails found with the customer's own hunter key (0.5 each at the catalog's price)
    charge(server, key, 90, "own", own_key=True)

    # then: 90 Actions, no Data Credits, and the saving said for the range
    expect(savings).to_have_text(
        "You saved 45 Data Credits with your own keys (90 results).", timeout=2_000
    )
    expect(page.locator("#actions-used")).to_have_text("100")
    expect(page.locator("#credits-balance")).to_have_text("2,495")

    # when: one more, exactly 0.5 more saved
    charge(server, key, 1, "own-one", own_key=True)
    expect(savings).to_have_text("You saved 45.5 Data Credits with your own keys (91 results).")


def test_with_its_socket_closed_the_page_polls_then_reconnects(page: Page, server: Server) -> None:
    # given: the page's sockets pass through the test, which can close them or refuse new ones
    key = workspace(server, "Flaky Network Co")
    sockets: list[WebSocketRoute] = []
    refuse = {"on": False}

    def route(ws: WebSocketRoute) -> None:
        if refuse["on"]:
            ws.close(code=1001, reason="test: no socket")
            return
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket("**/graphql", route)
    page.reload()
    login(page, key)
    expect(page.locator("#live-status")).to_have_text(LIVE)
    mark_page(page)

    # when: the socket is lost and no new one gets through
    refuse["on"] = True
    sockets[-1].close(code=1001, reason="test: connection lost")

    # then: the page says it polls, and a charge made meanwhile still shows
    status = page.locator("#live-status")
    expect(status).to_have_text(POLLING)
    expect(status).to_have_attribute("data-phase", "polling")
    charge(server, key, 20, "while-polling")
    expect(page.locator("#credits-balance")).to_have_text("2,490", timeout=5_000)
    expect(page.locator("#ledger tbody tr").first.locator('td[data-label="Amount"]')).to_have_text(
        "−10"
    )
    assert len(sockets) == 1

    # when: sockets get through again, the page reconnects and is live
    refuse["on"] = False
    expect(status).to_have_text(LIVE, timeout=20_000)
    assert len(sockets) == 2
    charge(server, key, 2, "live-again")
    expect(page.locator("#credits-balance")).to_have_text("2,489", timeout=2_000)
    assert_not_reloaded(page)


def test_a_revoked_keys_page_stops_and_says_so(page: Page, server: Server) -> None:
    # given: a member's page, live
    admin = workspace(server, "Revoking Co")
    created = server.gql(
        'mutation { createApiKey(name: "temp", role: MEMBER) { secret apiKey { id } } }', key=admin
    )["createApiKey"]
    login(page, created["secret"])
    expect(page.locator("#live-status")).to_have_text(LIVE)

    # when: an admin revokes the key
    server.gql(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        {"id": created["apiKey"]["id"]},
        admin,
    )

    # then: the socket is closed with 4403 and the page stops, saying why
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-phase", "stopped", timeout=5_000)
    expect(status).to_contain_text("This API key is no longer accepted")
    expect(status).to_have_attribute("role", "alert")
    charge(server, admin, 4, "after-revocation")  # nothing updates any more, nor polls
    page.wait_for_timeout(3_500)
    expect(page.locator("#credits-balance")).to_have_text("2,500")
    expect(status).to_have_attribute("data-phase", "stopped")


def test_the_balance_on_date_picker_shows_exact_figures_for_a_past_instant(
    page: Page, server: Server, artifacts: Path
) -> None:
    # given: 10 emails charged, then an instant, then 7 more
    key = workspace(server, "History Co")
    charge(server, key, 10, "before")
    charged = datetime.fromisoformat(
        server.gql(LEDGER, key=key)["ledger"]["edges"][0]["node"]["createdAt"]
    )
    instant = charged.replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max(0.0, (instant - datetime.now(UTC)).total_seconds()) + 0.1)
    charge(server, key, 7, "after")
    expected = server.gql(BALANCE_AT, {"at": instant.isoformat()}, key)["balanceAt"]
    assert expected == {
        "plan": {"name": "Launch"},
        "actionsUsed": 10,
        "actionsCapacity": 15000,
        "dataCredits": "2495",
        "held": "0",
        "available": "2495",
    }
    login(page, key)

    # when
    page.fill("#balance-at-input", instant.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#balance-at-submit")

    # then: the snapshot then, not the balance now (2,491.5)
    expect(page.locator("#balance-at-facts")).to_be_visible()
    expect(page.locator("#balance-at-when")).to_have_text(f"{instant:%Y-%m-%d %H:%M:%S} UTC")
    expect(page.locator("#balance-at-plan")).to_have_text("Launch")
    expect(page.locator("#balance-at-credits")).to_have_text("2,495")
    expect(page.locator("#balance-at-held")).to_have_text("0")
    expect(page.locator("#balance-at-available")).to_have_text("2,495")
    expect(page.locator("#balance-at-actions")).to_have_text("10 of 15,000")
    expect(page.locator("#credits-balance")).to_have_text("2,491.5")

    # when: an instant before the workspace existed
    page.fill("#balance-at-input", "2020-01-01T00:00:00")
    page.click("#balance-at-submit")

    # then: the API's refusal, and no figures
    expect(page.locator("#balance-at-error")).to_contain_text("No balance for that instant:")
    expect(page.locator("#balance-at-facts")).to_be_hidden()

    # and the chart's balance line ends on today's balance, the one shown
    today = datetime.now(UTC).date().isoformat()
    balances = page.locator("#chart").get_attribute("data-balances")
    assert balances == f'{{"{today}":"2491.5"}}', balances
    shot = artifacts / "dashboard-balance-on-date.png"
    page.locator("#balance-at-title").locator("xpath=..").screenshot(path=shot)
    SCREENSHOTS.append(shot)


def test_an_admin_pages_through_the_audit_log_and_a_member_never_sees_it(
    page: Page, server: Server, artifacts: Path
) -> None:
    # given: created by the operator, a member key made with a request id, ten alerts set
    admin = workspace(server, "Audited Co")
    response = server.client.post(
        "/graphql",
        json={"query": 'mutation { createApiKey(name: "analyst", role: MEMBER) { secret } }'},
        headers={"Authorization": f"Bearer {admin}", "X-Request-Id": "req-browser-audit"},
    )
    member = response.json()["data"]["createApiKey"]["secret"]
    for n in range(10):
        server.gql(
            "mutation($t: Decimal!) { setAlert(input: {meter: DATA_CREDITS, threshold: $t}) "
            "{ id } }",
            {"t": str(100 + n)},
            admin,
        )
    stored = [e["node"] for e in server.gql(AUDIT, key=admin)["auditLog"]["edges"]]
    assert [e["action"] for e in stored] == ["alert.set"] * 10 + [
        "api_key.create",
        "workspace.create",
    ]
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.post_data or "") if r.method == "POST" else None)

    # when
    login(page, admin)

    # then: the newest ten, then the rest with Load more
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(10)
    newest = rows.first
    expect(newest.locator('td[data-label="Actor"]')).to_have_text("Admin key")
    expect(newest.locator('td[data-label="Action"]')).to_have_text("alert.set")
    expect(newest.locator('td[data-label="Target"]')).to_contain_text("alert ")
    # in Data Credits as set, not in the ledger's units (1090000)
    expect(newest.locator('td[data-label="Change"]')).to_have_text(
        "meter: DATA_CREDITS; threshold: 109"
    )
    page.click("#audit-more")
    expect(rows).to_have_count(12)
    expect(page.locator("#audit-more")).to_be_hidden()
    key_row = rows.nth(10)
    expect(key_row.locator('td[data-label="Action"]')).to_have_text("api_key.create")
    expect(key_row.locator('td[data-label="Change"]')).to_contain_text("name: analyst")
    expect(key_row.locator('td[data-label="Change"]')).to_contain_text("role: MEMBER")
    expect(key_row.locator('td[data-label="Request id"]')).to_have_text("req-browser-audit")
    created = rows.nth(11)
    expect(created.locator('td[data-label="Actor"]')).to_have_text("operator")
    expect(created.locator('td[data-label="Action"]')).to_have_text("workspace.create")
    assert any("auditLog" in body for body in asked)
    shot = artifacts / "dashboard-audit-log.png"
    page.locator("#audit-section").screenshot(path=shot)
    SCREENSHOTS.append(shot)
    shot = artifacts / "dashboard-live-top.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=shot)
    SCREENSHOTS.append(shot)

    # when: a member opens the same workspace
    page.click("#logout")
    asked.clear()
    login(page, member)

    # then: no audit section, and the page never asked for it
    expect(page.locator("#live-status")).to_have_text(LIVE)
    expect(page.locator("#audit-section")).to_be_hidden()
    expect(page.locator("#audit tbody tr")).to_have_count(0)
    assert asked and not any("auditLog" in body for body in asked), asked


def test_logging_in_and_out_at_once_leaves_no_script_error_and_live_again(
    page: Page, server: Server
) -> None:
    # given / when: logged in and out again at once, the socket caught in every stage of opening
    key = workspace(server, "Hasty Co")
    for delay in (0, 5, 20, 50, 100):
        page.fill("#login-key", key)
        page.click("#login-submit")
        expect(page.locator("#dashboard")).to_be_visible()
        page.wait_for_timeout(delay)
        page.click("#logout")
        expect(page.locator("#login")).to_be_visible()

    # then: the `page` fixture finds no console error; logged in again, the page is live
    login(page, key)
    expect(page.locator("#live-status")).to_have_text(LIVE)
