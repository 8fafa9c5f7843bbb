"""The dashboard's alerts, events and auto top-up (issue 17), in headless Chromium.

An admin adds and deletes alerts and sets auto top-up (refused on the free plan). A member reads
alerts, events and auto top-up, and sees no control that only an admin may use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import SCREENSHOTS, Server, create_workspace

pytestmark = pytest.mark.e2e

ALERTS = "{ alerts { id meter threshold } }"
AUTO_TOP_UP = "{ autoTopUp { enabled threshold credits maxPerCycle usedThisCycle } }"
TOP_UP = """mutation($i: TopUpInput!) { purchaseTopUp(input: $i) {
  __typename ... on Refusal { message } } }"""


@dataclass(frozen=True)
class Keys:
    admin: str  # Enterprise (a paid plan)
    member: str  # the same workspace's
    free_admin: str  # a workspace on the free plan


@pytest.fixture(scope="module")
def keys(server: Server) -> Keys:
    admin = create_workspace(server, "Acme Enterprise", "enterprise")
    member = server.gql(
        'mutation { createApiKey(name: "analyst", role: MEMBER) { secret } }', key=admin
    )["createApiKey"]["secret"]
    return Keys(admin, member, create_workspace(server, "Free Co", "free"))


@pytest.fixture(autouse=True)
def nothing_left_over(server: Server, keys: Keys) -> Iterator[None]:
    """Each test starts without alerts or auto top-up, whatever the last one did."""
    yield
    admin = keys.admin
    for alert in server.gql(ALERTS, key=admin)["alerts"]:
        server.gql("mutation($id: ID!) { deleteAlert(id: $id) { id } }", {"id": alert["id"]}, admin)
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

    # when / then: the next ones, after the last cursor, until there are no more
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
    # given: an alert and auto top-up, set by the admin
    server.gql(
        'mutation { setAlert(input: {meter: DATA_CREDITS, threshold: "250"}) { id } }',
        key=keys.admin,
    )
    server.gql(
        'mutation { setAutoTopUp(input: {threshold: "100", credits: "400"}) { __typename } }',
        key=keys.admin,
    )

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
    expect(page.locator("#page-error")).to_be_hidden()


def test_answers_arriving_after_logout_are_dropped(page: Page, server: Server, keys: Keys) -> None:
    # given: a load of each panel and a change to each on their way when the user logs out
    login(page, keys.admin)
    held: list[Route] = []
    page.route("**/graphql", lambda route: held.append(route))
    page.click("#events-refresh")
    page.fill("#alert-threshold", "5")
    page.click("#alert-add")
    page.fill("#autotopup-threshold-input", "1")
    page.fill("#autotopup-credits-input", "2")
    page.click("#autotopup-save")
    for _ in range(250):  # up to 5 s for the three requests to be held
        if len(held) == 3:
            break
        page.wait_for_timeout(20)
    assert len(held) == 3, [route.request.post_data for route in held]
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()

    # when: their answers arrive
    for route in held:
        with page.expect_response(route.request.url):
            route.continue_()
    page.wait_for_timeout(200)  # for the page's handlers of those answers to run

    # then: still logged out, without a script error (the `page` fixture checks)
    expect(page.locator("#dashboard")).to_be_hidden()


def test_screenshots_of_the_new_panels_at_desktop_and_phone_width(
    page: Page, server: Server, keys: Keys, artifacts: Path
) -> None:
    # given: an alert and auto top-up
    server.gql(
        'mutation { setAlert(input: {meter: ACTIONS, threshold: "90"}) { id } }', key=keys.admin
    )
    server.gql(
        'mutation { setAutoTopUp(input: {threshold: "100", credits: "400"}) { __typename } }',
        key=keys.admin,
    )
    login(page, keys.admin)
    expect(page.locator("#alerts tbody tr")).to_have_count(1)

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
