"""The dashboard's alerts, events, webhooks and auto top-up (issue 17), in headless Chromium.

An admin adds and deletes alerts, adds a webhook endpoint and sees its secret exactly once,
sends a test event to a real receiver and finds it in the delivery log, resends it, disables,
enables and deletes the endpoint, and sets auto top-up (refused on the free plan). A member reads
alerts, events and auto top-up, and sees no control that only an admin may use.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Route, expect

from tests.browser.conftest import SCREENSHOTS, Server, create_workspace
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

ALERTS = "{ alerts { id meter threshold } }"
ENDPOINTS = "{ webhookEndpoints { id url eventTypes description enabled disabledReason } }"
AUTO_TOP_UP = "{ autoTopUp { enabled threshold credits maxPerCycle usedThisCycle } }"
CREATE_ENDPOINT = """mutation($i: WebhookEndpointInput!) {
  createWebhookEndpoint(input: $i) { secret endpoint { id } } }"""
TOP_UP = """mutation($i: TopUpInput!) { purchaseTopUp(input: $i) {
  __typename ... on Refusal { message } } }"""


@dataclass(frozen=True)
class Keys:
    admin: str  # Enterprise (a paid plan)
    member: str  # the same workspace's
    free_admin: str  # a workspace on the free plan


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # http to 127.0.0.1, where the test's receiver listens, is a private address
    running = Server(
        tmp_path_factory.mktemp("browser-webhooks"), {"TALLY_WEBHOOK_ALLOW_PRIVATE": "on"}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def keys(server: Server) -> Keys:
    admin = create_workspace(server, "Acme Enterprise", "enterprise")
    member = server.gql(
        'mutation { createApiKey(name: "analyst", role: MEMBER) { secret } }', key=admin
    )["createApiKey"]["secret"]
    return Keys(admin, member, create_workspace(server, "Free Co", "free"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(autouse=True)
def nothing_left_over(server: Server, keys: Keys) -> Iterator[None]:
    """Each test starts without alerts, endpoints or auto top-up, whatever the last one did."""
    yield
    admin = keys.admin
    for alert in server.gql(ALERTS, key=admin)["alerts"]:
        server.gql("mutation($id: ID!) { deleteAlert(id: $id) { id } }", {"id": alert["id"]}, admin)
    for endpoint in server.gql(ENDPOINTS, key=admin)["webhookEndpoints"]:
        server.gql(
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { id } }",
            {"id": endpoint["id"]},
            admin,
        )
    server.gql("mutation { setAutoTopUp(input: null) { __typename } }", key=admin)


def login(page: Page, key: str) -> None:
    page.fill("#login-key", key)
    page.click("#login-submit")
    expect(page.locator("#dashboard")).to_be_visible()
    for status in ["#alerts-status", "#autotopup-status", "#events-status"]:
        expect(page.locator(status)).not_to_have_text("Loading…")


def table_rows(page: Page, selector: str) -> list[list[str]]:
    return page.locator(f"{selector} tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )


def endpoint_row(page: Page) -> Locator:
    return page.locator("#endpoints tbody tr").first


def refresh_until(page: Page, cell: Locator, text: str, timeout: float = 10) -> None:
    """Clicks the delivery log's Refresh until `cell` reads `text` (delivery is asynchronous)."""
    deadline = time.monotonic() + timeout
    while cell.text_content() != text:
        assert time.monotonic() < deadline, f"{cell} never read {text!r}"
        page.wait_for_timeout(100)
        page.click("#deliveries-refresh")
        expect(page.locator("#deliveries-status")).to_be_hidden()


def test_admin_adds_and_deletes_alerts(page: Page, server: Server, keys: Keys) -> None:
    # given
    login(page, keys.admin)
    expect(page.locator("#alerts-status")).to_have_text("No alerts yet.")
    expect(page.locator("#alerts-member")).to_be_hidden()

    # when: a Data Credits alert, typed with a thousands separator
    page.select_option("#alert-meter", "DATA_CREDITS")
    page.fill("#alert-threshold", "1,000.5")
    page.click("#alert-add")

    # then
    expect(page.locator("#alert-message")).to_have_text(
        "Alert added: Data Credits, below 1,000.5 available."
    )
    expect(page.locator("#alerts tbody tr")).to_have_count(1)
    assert table_rows(page, "#alerts") == [
        ["Data Credits", "below 1,000.5 available", "Armed", "Never", "Delete"]
    ]

    # when: an Actions alert out of range is caught before it is sent, then one in range
    page.select_option("#alert-meter", "ACTIONS")
    expect(page.locator("#alert-threshold")).to_have_attribute("placeholder", "Percent, 1–100")
    page.fill("#alert-threshold", "150")
    page.click("#alert-add")
    expect(page.locator("#alert-message.error")).to_have_text(
        "Enter a whole percent of Actions capacity, from 1 to 100."
    )
    page.fill("#alert-threshold", "80%")
    page.click("#alert-add")

    # then: both, as the API orders them (by meter), and stored
    expect(page.locator("#alerts tbody tr")).to_have_count(2)
    assert [row[:2] for row in table_rows(page, "#alerts")] == [
        ["Actions", "80% of capacity used"],
        ["Data Credits", "below 1,000.5 available"],
    ]
    stored = server.gql(ALERTS, key=keys.admin)["alerts"]
    assert {(a["meter"], a["threshold"]) for a in stored} == {
        ("ACTIONS", "80"),
        ("DATA_CREDITS", "1000.5"),
    }

    # when: the same alert again is the one already set
    page.fill("#alert-threshold", "80")
    page.click("#alert-add")
    expect(page.locator("#alert-message")).to_have_text(
        "That alert is already set: Actions, 80% of capacity used."
    )

    # when: the Data Credits one is deleted
    page.locator("#alerts tbody tr").nth(1).get_by_role("button").click()

    # then
    expect(page.locator("#alert-message")).to_have_text(
        "Alert deleted: Data Credits, below 1,000.5 available."
    )
    expect(page.locator("#alerts tbody tr")).to_have_count(1)
    assert [a["meter"] for a in server.gql(ALERTS, key=keys.admin)["alerts"]] == ["ACTIONS"]


def test_a_new_endpoints_secret_is_shown_exactly_once(
    page: Page, context: BrowserContext, server: Server, keys: Keys
) -> None:
    # given
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, keys.admin)
    expect(page.locator("#endpoints-status")).to_have_text("No endpoints yet: add one below.")
    expect(page.locator("#deliveries-section")).to_be_hidden()

    # when: an https URL (never called here) for two types
    page.fill("#endpoint-url", "https://hooks.example.com/tally")
    page.fill("#endpoint-description", "Billing")
    page.select_option("#endpoint-types", ["test.ping", "credits.depleted"])
    page.click("#endpoint-add")

    # then: the secret, once, with the warning; the endpoint as stored
    box = page.locator("#secret-box")
    expect(box).to_be_visible()
    secret = page.locator("#secret-value").text_content() or ""
    assert secret.startswith("whsec_") and len(secret) > 20, secret
    expect(box).to_contain_text("Copy it now: you will not see it again.")
    expect(page.locator("#secret-for")).to_have_text("For https://hooks.example.com/tally.")
    [stored] = server.gql(ENDPOINTS, key=keys.admin)["webhookEndpoints"]
    assert stored["eventTypes"] == ["credits.depleted", "test.ping"]  # API.md's order
    assert stored["description"] == "Billing"
    row = endpoint_row(page)
    expect(row.locator("td").nth(0)).to_contain_text("https://hooks.example.com/tally")
    expect(row.locator("td").nth(1)).to_have_text("credits.depleted, test.ping")
    expect(row.locator("td").nth(2)).to_have_text("Enabled")
    expect(page.locator("#deliveries-status")).to_have_text("Nothing sent to this endpoint yet.")

    # when: copied
    page.click("#secret-copy")

    # then
    expect(page.locator("#secret-copied")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    # when: dismissed, the secret leaves the page; a reload does not bring it back
    page.click("#secret-dismiss")
    expect(box).to_be_hidden()
    assert secret not in page.content()
    page.reload()
    expect(endpoint_row(page)).to_be_visible()
    expect(box).to_be_hidden()
    assert secret not in page.content()
    assert secret not in page.evaluate("JSON.stringify(sessionStorage)")

    # when: the secret is rotated, the new one is shown once, and it is another
    endpoint_row(page).get_by_role("button", name="Rotate secret").click()
    expect(box).to_be_visible()
    rotated = page.locator("#secret-value").text_content() or ""
    assert rotated.startswith("whsec_") and rotated != secret
    expect(page.locator("#secret-title")).to_have_text("New signing secret")
    expect(page.locator("#secret-for")).to_contain_text("The previous secret keeps signing until")
    expect(endpoint_row(page).locator("td").nth(2)).to_contain_text(
        "The previous secret signs until"
    )
    page.reload()
    expect(endpoint_row(page)).to_be_visible()
    expect(box).to_be_hidden()
    assert rotated not in page.content()


def test_a_test_event_reaches_the_receiver_and_the_delivery_log_resends_it(
    page: Page, server: Server, keys: Keys, receiver: Receiver
) -> None:
    # given: an endpoint at a receiver that verifies every signature with its secret
    created = server.gql(
        CREATE_ENDPOINT, {"i": {"url": receiver.url, "description": "Receiver"}}, keys.admin
    )["createWebhookEndpoint"]
    receiver.secrets.append(created["secret"])
    login(page, keys.admin)
    expect(endpoint_row(page).locator("td").nth(1)).to_have_text("All event types")

    # when
    endpoint_row(page).get_by_role("button", name="Send test event").click()

    # then: a delivery in the log at once, posted and signed, then Succeeded
    expect(endpoint_row(page).locator(".row-message")).to_have_text(
        "A test.ping event is on its way: see the delivery log."
    )
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    [got] = receiver.wait_for(1)
    assert got.verified_by == [created["secret"]]
    assert got.json["type"] == "test.ping"
    log_row = page.locator("#deliveries tbody tr").first
    expect(log_row).to_have_attribute("data-event-id", got.webhook_id)
    expect(log_row.locator("td").nth(1)).to_have_text(f"{got.webhook_id[:8]}…")
    refresh_until(page, log_row.locator("td").nth(2), "Succeeded")
    row = table_rows(page, "#deliveries")[0]
    assert row[2:5] == ["Succeeded", "1", "HTTP 200"], row
    assert row[6] == "—"  # nothing more to try

    # when: resent from the log
    log_row.get_by_role("button", name="Resend").click()

    # then: a new delivery of the same event, with the same webhook-id
    expect(page.locator("#deliveries-message")).to_have_text(
        f"Event {got.webhook_id[:8]}… sent again: a new delivery is queued."
    )
    expect(page.locator("#deliveries tbody tr")).to_have_count(2)
    again = receiver.wait_for(2)[1]
    assert again.webhook_id == got.webhook_id and again.verified_by == [created["secret"]]
    refresh_until(page, page.locator("#deliveries tbody tr td:nth-child(3)").first, "Succeeded")

    # and the events list has the test event, once
    page.click("#events-refresh")
    expect(page.locator("#events tbody tr").first).to_have_attribute(
        "data-event-id", got.webhook_id
    )
    assert table_rows(page, "#events")[0][1:] == ["test.ping", "—"]


def test_admin_disables_enables_and_deletes_an_endpoint(
    page: Page, server: Server, keys: Keys
) -> None:
    # given
    server.gql(
        CREATE_ENDPOINT,
        {"i": {"url": "https://hooks.example.com/a", "eventTypes": ["topup.purchased"]}},
        keys.admin,
    )
    login(page, keys.admin)
    row = endpoint_row(page)

    # when
    row.get_by_role("button", name="Disable").click()

    # then: disabled by an admin, nothing to send to it; its types kept
    expect(row.locator("td").nth(2)).to_have_text("Disabled: disabled by an admin")
    expect(row.get_by_role("button", name="Send test event")).to_be_disabled()
    [stored] = server.gql(ENDPOINTS, key=keys.admin)["webhookEndpoints"]
    assert stored["enabled"] is False and stored["eventTypes"] == ["topup.purchased"]

    # when: enabled again
    row.get_by_role("button", name="Enable").click()

    # then
    expect(row.locator("td").nth(2)).to_have_text("Enabled")
    expect(row.locator(".row-message")).to_have_text("Enabled.")
    [stored] = server.gql(ENDPOINTS, key=keys.admin)["webhookEndpoints"]
    assert stored["enabled"] is True and stored["eventTypes"] == ["topup.purchased"]

    # when: deleted, which asks first
    row.get_by_role("button", name="Delete").click()
    expect(row).to_contain_text("Delete this endpoint? Its pending deliveries stop.")
    row.get_by_role("button", name="Cancel").click()
    expect(row.get_by_role("button", name="Delete")).to_be_visible()
    assert len(server.gql(ENDPOINTS, key=keys.admin)["webhookEndpoints"]) == 1
    row.get_by_role("button", name="Delete").click()
    row.get_by_role("button", name="Delete endpoint").click()

    # then
    expect(page.locator("#endpoint-message")).to_have_text(
        "Endpoint deleted: https://hooks.example.com/a."
    )
    expect(page.locator("#endpoints")).to_be_hidden()
    expect(page.locator("#deliveries-section")).to_be_hidden()
    assert server.gql(ENDPOINTS, key=keys.admin)["webhookEndpoints"] == []


def test_an_endpoint_refused_shows_why(page: Page, server: Server, keys: Keys) -> None:
    # given: the 20 endpoints a workspace may have
    for n in range(20):
        url = f"https://hooks.example.com/{n}"
        server.gql(CREATE_ENDPOINT, {"i": {"url": url}}, keys.admin)
    login(page, keys.admin)
    expect(page.locator("#endpoints tbody tr")).to_have_count(20)

    # when: not a URL, caught before it is sent
    page.fill("#endpoint-url", "hooks.example.com")
    page.click("#endpoint-add")
    expect(page.locator("#endpoint-message.error")).to_have_text(
        "That is not a URL: it should look like https://example.com/hooks."
    )

    page.fill("#endpoint-url", "ftp://hooks.example.com/x")
    page.click("#endpoint-add")
    expect(page.locator("#endpoint-message.error")).to_have_text(
        "The URL must start with https://."
    )

    # when: a good URL, one endpoint too many
    page.fill("#endpoint-url", "https://hooks.example.com/21")
    page.click("#endpoint-add")

    # then: the API's message; no secret, nothing added
    expect(page.locator("#endpoint-message.error")).to_have_text(
        "a workspace has at most 20 webhook endpoints"
    )
    expect(page.locator("#secret-box")).to_be_hidden()
    expect(page.locator("#endpoint-url")).to_have_value("https://hooks.example.com/21")
    assert len(server.gql(ENDPOINTS, key=keys.admin)["webhookEndpoints"]) == 20


def test_events_are_listed_newest_first_ten_at_a_time(
    page: Page, server: Server, keys: Keys
) -> None:
    # given: twelve top-ups, each an event
    for n in range(12):
        bought = server.gql(
            TOP_UP, {"i": {"credits": str(100 + n), "idempotencyKey": f"events-{n}"}}, keys.admin
        )["purchaseTopUp"]
        assert bought["__typename"] == "TopUp", bought

    # when: a member reads them (any key may)
    login(page, keys.member)

    # then: the newest ten, their data on one line
    expect(page.locator("#events tbody tr")).to_have_count(10)
    rows = table_rows(page, "#events")
    assert rows[0][1] == "topup.purchased"
    details = rows[0][2].split(" · ")
    assert details[0].startswith("top-up ") and details[0].endswith("…")
    assert details[1:] == ["credits 111", "price $5.77", "auto no"]  # 111 × 0.052

    # when / then: the top-ups only (an earlier test sent a test.ping); then the next ones,
    # after the last cursor, until there are no more
    page.select_option("#events-type", "topup.purchased")
    expect(page.locator("#events tbody tr").first).to_contain_text("credits 111")
    expect(page.locator("#events tbody tr")).to_have_count(10)
    page.click("#events-more")
    expect(page.locator("#events tbody tr")).to_have_count(12)
    assert table_rows(page, "#events")[-1][2].split(" · ")[1] == "credits 100"
    expect(page.locator("#events-more")).to_be_hidden()

    # when: filtered on a type with none
    page.select_option("#events-type", "credits.depleted")

    # then
    expect(page.locator("#events-status")).to_have_text("No credits.depleted events yet.")
    expect(page.locator("#events")).to_be_hidden()


def test_auto_top_up_is_set_and_turned_off_on_a_paid_plan(
    page: Page, server: Server, keys: Keys
) -> None:
    # given
    login(page, keys.admin)
    expect(page.locator("#autotopup-state")).to_have_text("Off")
    expect(page.locator("#autotopup-off")).to_be_hidden()

    # when: credits of 0 are caught before they are sent
    page.fill("#autotopup-threshold-input", "500")
    page.fill("#autotopup-credits-input", "0")
    page.click("#autotopup-save")
    expect(page.locator("#autotopup-message.error")).to_have_text(
        "Enter the Data Credits to buy each time: a number more than 0."
    )

    # when
    page.fill("#autotopup-credits-input", "1,000")
    page.fill("#autotopup-max-input", "2")
    page.click("#autotopup-save")

    # then: shown and stored
    expect(page.locator("#autotopup-message")).to_have_text(
        "Auto top-up is on: 1,000 Data Credits when available falls below 500, "
        "at most 2 times a cycle."
    )
    expected = {
        "#autotopup-state": "On",
        "#autotopup-threshold": "500 Data Credits",
        "#autotopup-credits": "1,000 Data Credits",
        "#autotopup-max": "2 a cycle",
        "#autotopup-used": "0 of 2",
    }
    for selector, text in expected.items():
        expect(page.locator(selector)).to_have_text(text)
    assert server.gql(AUTO_TOP_UP, key=keys.admin)["autoTopUp"] == {
        "enabled": True,
        "threshold": "500",
        "credits": "1000",
        "maxPerCycle": 2,
        "usedThisCycle": 0,
    }

    # when: a reload shows the settings in the form; then it is turned off
    page.reload()
    expect(page.locator("#autotopup-credits-input")).to_have_value("1000")
    page.click("#autotopup-off")

    # then
    expect(page.locator("#autotopup-message")).to_have_text("Auto top-up is off.")
    expect(page.locator("#autotopup-state")).to_have_text("Off")
    expect(page.locator("#autotopup-off")).to_be_hidden()
    assert server.gql(AUTO_TOP_UP, key=keys.admin)["autoTopUp"] is None


def test_auto_top_up_is_refused_on_the_free_plan(page: Page, server: Server, keys: Keys) -> None:
    # given
    login(page, keys.free_admin)

    # when
    page.fill("#autotopup-threshold-input", "10")
    page.fill("#autotopup-credits-input", "100")
    page.click("#autotopup-save")

    # then: the Refusal's message (PLAN_FEATURE_UNAVAILABLE); nothing changed
    expect(page.locator("#autotopup-message.error")).to_have_text(
        "auto top-up is for paid plans; a trial or the free plan cannot buy Data Credits"
    )
    expect(page.locator("#autotopup-state")).to_have_text("Off")
    assert server.gql(AUTO_TOP_UP, key=keys.free_admin)["autoTopUp"] is None


def test_a_member_reads_alerts_events_and_auto_top_up_without_admin_controls(
    page: Page, server: Server, keys: Keys
) -> None:
    # given: an alert, auto top-up and an endpoint, set by the admin
    server.gql(
        'mutation { setAlert(input: {meter: DATA_CREDITS, threshold: "250"}) { id } }',
        key=keys.admin,
    )
    server.gql(
        'mutation { setAutoTopUp(input: {threshold: "100", credits: "400"}) { __typename } }',
        key=keys.admin,
    )
    server.gql(CREATE_ENDPOINT, {"i": {"url": "https://hooks.example.com/m"}}, keys.admin)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.post_data or ""))

    # when
    login(page, keys.member)

    # then: what any key may read, without a form or a button to change it
    expect(page.locator("#who-key")).to_have_text("Key “analyst” · Member")
    alerts = table_rows(page, "#alerts")
    assert alerts == [["Data Credits", "below 250 available", "Armed", "Never"]]
    expect(page.locator("#alerts-delete-head")).to_be_hidden()
    expect(page.locator("#alerts").get_by_role("button")).to_have_count(0)
    expect(page.locator("#alert-form")).to_be_hidden()
    expect(page.locator("#alerts-member")).to_be_visible()
    expect(page.locator("#autotopup-state")).to_have_text("On")
    expect(page.locator("#autotopup-credits")).to_have_text("400 Data Credits")
    expect(page.locator("#autotopup-form")).to_be_hidden()
    expect(page.locator("#autotopup-member")).to_be_visible()
    # webhooks: a note, and the page never asks for what a member key may not see
    expect(page.locator("#webhooks-member")).to_be_visible()
    expect(page.locator("#webhooks-admin")).to_be_hidden()
    queries = [json.loads(body)["query"] for body in asked if body]
    assert queries and not any("webhook" in q for q in queries), queries
    expect(page.locator("#page-error")).to_be_hidden()


def test_answers_arriving_after_logout_are_dropped_and_no_secret_shows(
    page: Page, server: Server, keys: Keys
) -> None:
    # given: a load of each panel and a change to each on their way when the user logs out
    server.gql(CREATE_ENDPOINT, {"i": {"url": "https://hooks.example.com/late"}}, keys.admin)
    login(page, keys.admin)
    expect(page.locator("#deliveries-status")).to_have_text("Nothing sent to this endpoint yet.")
    held: list[Route] = []
    page.route("**/graphql", lambda route: held.append(route))
    page.click("#events-refresh")
    page.click("#deliveries-refresh")
    page.fill("#alert-threshold", "5")
    page.click("#alert-add")
    page.fill("#autotopup-threshold-input", "1")
    page.fill("#autotopup-credits-input", "2")
    page.click("#autotopup-save")
    page.fill("#endpoint-url", "https://hooks.example.com/late-2")
    page.click("#endpoint-add")
    for _ in range(250):  # up to 5 s for the five requests to be held
        if len(held) == 5:
            break
        page.wait_for_timeout(20)
    assert len(held) == 5, [route.request.post_data for route in held]
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()

    # when: their answers arrive (the new endpoint's secret among them)
    for route in held:
        with page.expect_response(route.request.url):
            route.continue_()
    page.wait_for_timeout(200)  # for the page's handlers of those answers to run

    # then: still logged out, and the secret is nowhere in the page (the `page` fixture checks
    # that no script failed)
    expect(page.locator("#dashboard")).to_be_hidden()
    expect(page.locator("#secret-box")).to_be_hidden()
    expect(page.locator("#secret-value")).to_have_text("")
    assert "whsec_" not in page.content()


def test_screenshots_of_the_new_panels_at_desktop_and_phone_width(
    page: Page, server: Server, keys: Keys, receiver: Receiver, artifacts: Path
) -> None:
    # given: an alert, auto top-up, an endpoint with a delivery and a new one's secret showing
    server.gql(
        'mutation { setAlert(input: {meter: ACTIONS, threshold: "90"}) { id } }', key=keys.admin
    )
    server.gql(
        'mutation { setAutoTopUp(input: {threshold: "100", credits: "400"}) { __typename } }',
        key=keys.admin,
    )
    server.gql(CREATE_ENDPOINT, {"i": {"url": receiver.url, "description": "CRM"}}, keys.admin)
    login(page, keys.admin)
    page.fill("#endpoint-url", "https://hooks.example.com/screenshot")
    page.select_option("#endpoint-types", ["credits.depleted", "topup.purchased"])
    page.click("#endpoint-add")
    expect(page.locator("#secret-box")).to_be_visible()
    expect(page.locator("#endpoints tbody tr")).to_have_count(2)
    crm = page.locator("#endpoints tbody tr", has_text="CRM")
    crm.get_by_role("button", name="Send test event").click()
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
    receiver.wait_for(1)
    refresh_until(page, page.locator("#deliveries tbody td:nth-child(3)").first, "Succeeded")

    # when / then: desktop
    desktop = artifacts / "dashboard-notifications-desktop.png"
    page.screenshot(path=desktop, full_page=True)

    # phone width: nothing scrolls sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.documentElement.scrollWidth <= 390")
    phone = artifacts / "dashboard-notifications-phone.png"
    page.screenshot(path=phone, full_page=True)
    assert desktop.stat().st_size > 0 and phone.stat().st_size > 0
    SCREENSHOTS.extend([desktop, phone])
