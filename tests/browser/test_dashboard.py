"""The dashboard at `/`, in headless Chromium, against a real server seeded over the API.

What a customer sees: logging in with a key, plan and both meters, the daily chart, the
breakdown by workbook and table, the paged ledger, spend limits (set and removed by an admin,
refused to a member and on a plan without the feature) and the CSV export.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from graphql_schema.dashboard import NPM, OWN, SOURCE, asset_path
from tests.browser.conftest import SCREENSHOTS, Seeded, Server

pytestmark = pytest.mark.e2e

WORKSPACE = """{ workspace { currentPeriod { start end } actions { resetsAt }
                 workbooks { id name spendLimit spent } } }"""
LEDGER_DAYS = "{ ledger(first: 1) { edges { node { createdAt } } } }"
# usage.csv's figures after the grouped keys (app.history.rules.CSV_FIGURES)
FIGURES = ["actions", "dataCredits", "results", "ownKeyResults", "ownKeySavings"]


def login(page: Page, key: str) -> None:
    page.fill("#login-key", key)
    page.click("#login-submit")
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#ledger tbody tr").first).to_be_visible()


def us_date(iso: str) -> str:
    """How the page prints a date: "Nov 25, 2026" (UTC)."""
    day = datetime.fromisoformat(iso)
    return f"{day:%b} {day.day}, {day.year}"


def table_rows(page: Page, selector: str) -> list[list[str]]:
    return page.locator(f"{selector} tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )


def spend_limits(server: Server, seeded: Seeded) -> dict[str, str | None]:
    workbooks = server.gql(WORKSPACE, key=seeded.admin_key)["workspace"]["workbooks"]
    return {w["name"]: w["spendLimit"] for w in workbooks}


def workbook_row(page: Page, workbook_id: str) -> Locator:
    return page.locator(f'#workbooks tr[data-workbook-id="{workbook_id}"]')


def test_the_page_and_its_files_come_from_tally_itself(server: Server) -> None:
    # given / when
    page = server.client.get("/")

    # then: every script and style is one of Tally's own assets; nothing else is served
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    urls = [u for u in re.findall(r'(?:src|href)="([^"]+)"', page.text) if u != "data:,"]
    assert urls and all(u.startswith("/dashboard/assets/") for u in urls), urls
    for name in [*OWN, *NPM]:
        assert f"/dashboard/assets/{name}" in urls
        asset = server.client.get(f"/dashboard/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.content == asset_path(name).read_bytes()  # type: ignore[union-attr]
    for name in ["index.html", "..%2F..%2Fpyproject.toml", "uPlot.esm.js"]:
        assert server.client.get(f"/dashboard/assets/{name}").status_code == 404, name


def test_every_module_of_the_page_is_served_and_its_tests_are_not(server: Server) -> None:
    # given: the page's modules, and their node tests beside them
    modules = {path.name for path in SOURCE.glob("*.js")}
    tests = sorted((SOURCE / "test").glob("*.js"))

    # then: a module missing from OWN would be a 404 for the browser's import
    assert modules and modules <= set(OWN), modules - set(OWN)
    assert tests
    for test in tests:
        for name in [test.name, f"test%2F{test.name}", f"test/{test.name}"]:
            assert server.client.get(f"/dashboard/assets/{name}").status_code == 404, name
    assert ".test.js" not in server.client.get("/").text  # and the page loads none


def test_a_bad_key_is_not_accepted_and_nothing_is_kept(page: Page, server: Server) -> None:
    # given / when
    page.fill("#login-key", "tly_not-a-key")
    page.click("#login-submit")

    # then
    expect(page.locator("#login-error")).to_have_text(
        "That key was not accepted. Check that it is a current API key and try again."
    )
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    assert page.url == f"{server.base}/"

    page.fill("#login-key", "tly_op_browser-tests")  # the operator key has no workspace
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text(
        "That is the operator key. Open the dashboard with a workspace API key."
    )


def test_admin_sees_plan_meters_chart_breakdown_and_ledger(
    page: Page, server: Server, seeded: Seeded
) -> None:
    # given
    ws = server.gql(WORKSPACE, key=seeded.admin_key)["workspace"]
    period = ws["currentPeriod"]

    # when
    login(page, seeded.admin_key)

    # then: who, plan and both meters, with the seeded usage (314 Actions, 145 credits)
    expect(page.locator("#who-workspace")).to_have_text("Acme Enterprise")
    expect(page.locator("#who-key")).to_have_text("Key “Admin key” · Admin")
    expected = {
        "#plan-name": "Enterprise",
        "#plan-tier": "50,000 Data Credits a month",
        "#plan-interval": "Annual",
        "#plan-status": "Active",
        "#plan-cycle": f"{us_date(period['start'])} – {us_date(period['end'])}",
        "#actions-used": "314",
        "#actions-capacity": "100,000",
        "#actions-remaining": "99,686",
        "#actions-resets": us_date(ws["actions"]["resetsAt"]),
        "#credits-balance": "599,855",  # 12 × 50,000 granted, 145 spent
        "#credits-held": "0",
        "#credits-available": "599,855",
        "#credits-cap": "1,200,000",
        "#credits-grant": "50,000",
    }
    for selector, text in expected.items():
        expect(page.locator(selector)).to_have_text(text)
    expect(page.locator("#plan-pending")).to_be_hidden()
    expect(page.locator("#member-note")).to_be_hidden()

    # the chart: uPlot's canvas with both series, and the day's figures under the cursor
    chart = page.locator("#chart .uplot")
    expect(chart.locator("canvas")).to_have_count(1)
    # the day, then two series and the day-end balance line (R38)
    expect(chart.locator(".u-legend .u-series")).to_have_count(4)
    drawn = chart.locator("canvas").evaluate(
        """canvas => {
             const px = canvas.getContext("2d").getImageData(0, 0, canvas.width,
                                                             canvas.height).data;
             let blue = 0, orange = 0;
             for (let i = 0; i < px.length; i += 4) {
               if (px[i + 3] === 0) continue;
               if (Math.abs(px[i] - 53) < 25 && Math.abs(px[i + 1] - 99) < 25
                   && Math.abs(px[i + 2] - 217) < 25) blue++;
               if (Math.abs(px[i] - 217) < 25 && Math.abs(px[i + 1] - 130) < 25
                   && Math.abs(px[i + 2] - 43) < 25) orange++;
             }
             return { blue, orange };
           }"""
    )
    assert drawn["blue"] > 0 and drawn["orange"] > 0, drawn
    day = server.gql(LEDGER_DAYS, key=seeded.admin_key)["ledger"]["edges"][0]["node"]
    today = day["createdAt"][:10]
    over = chart.locator(".u-over")
    box = over.bounding_box()
    assert box is not None
    first_day = datetime.fromisoformat(period["start"]).date().isoformat()
    assert today == first_day  # the workspace was created just now: its usage is on day one
    legend = chart.locator(".u-legend .u-series .u-value")
    # the range's totals away from the cursor, and the balance now
    expect(legend).to_have_text(["Total", "314", "145", "599,855"])
    over.hover(position={"x": 1, "y": box["height"] / 2})
    expect(legend).to_have_text([today, "314", "145", "599,855"])

    # the breakdown, by workbook (the default), then by workbook and table
    expect(page.locator("#breakdown thead th")).to_have_text(
        ["Workbook", "Actions", "Data Credits", "Results"]
    )
    assert table_rows(page, "#breakdown") == [
        ["Accounts", "34", "50", "234"],
        ["Leads", "280", "95", "280"],
        ["Total", "314", "145", "514"],
    ]
    page.select_option("#group-by", "WORKBOOK,TABLE")
    expect(page.locator("#breakdown thead th")).to_have_text(
        ["Workbook", "Table", "Actions", "Data Credits", "Results"]
    )
    assert table_rows(page, "#breakdown") == [
        ["Accounts", "companies", "34", "50", "234"],
        ["Leads", "emails", "90", "45", "90"],
        ["Leads", "people", "190", "50", "190"],
        ["Total", "314", "145", "514"],
    ]

    # the ledger: ten entries a page, newest first; eleven in all (two grants, nine debits)
    rows = table_rows(page, "#ledger")
    assert len(rows) == 10
    assert [r[1:] for r in rows[:2]] == [
        ["Charge", "Data Credits", "Accounts", "−20", "599,855"],
        ["Charge", "Actions", "Accounts", "−4", "99,686"],
    ]
    assert rows[-1][1:] == ["Grant", "Data Credits", "—", "+600,000", "600,000"]
    expect(page.locator("#ledger-prev")).to_be_disabled()
    page.click("#ledger-next")
    expect(page.locator("#ledger-page")).to_have_text("Page 2")
    expect(page.locator("#ledger tbody tr")).to_have_count(1)
    assert table_rows(page, "#ledger")[0][1:] == ["Grant", "Actions", "—", "+100,000", "100,000"]
    expect(page.locator("#ledger-next")).to_be_disabled()
    page.click("#ledger-prev")
    expect(page.locator("#ledger-page")).to_have_text("Page 1")
    expect(page.locator("#ledger tbody tr")).to_have_count(10)


def test_the_key_lasts_the_tab_session_until_logout(page: Page, seeded: Seeded) -> None:
    # given
    login(page, seeded.admin_key)

    # when: a reload keeps the session
    page.reload()

    # then
    expect(page.locator("#actions-used")).to_have_text("314")
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_admin_sets_and_removes_a_workbook_spend_limit(
    page: Page, server: Server, seeded: Seeded
) -> None:
    # given
    leads = seeded.workbooks["Leads"]
    login(page, seeded.admin_key)
    row = workbook_row(page, leads)
    expect(row.locator("td").nth(2)).to_have_text("No limit")

    # when
    row.locator("input").fill("500")
    row.get_by_role("button", name="Set").click()

    # then: shown on the page and stored
    row = workbook_row(page, leads)
    expect(row.locator(".row-message")).to_have_text("Limit set to 500.")
    expect(row.locator("td").nth(1)).to_have_text("0")  # counted from when the limit was set
    expect(row.locator("td").nth(2)).to_have_text("500")
    assert spend_limits(server, seeded) == {"Leads": "500", "Accounts": None}

    # when it is removed
    row.get_by_role("button", name="Remove").click()

    # then
    row = workbook_row(page, leads)
    expect(row.locator(".row-message")).to_have_text("Limit removed.")
    expect(row.locator("td").nth(2)).to_have_text("No limit")
    expect(row.get_by_role("button", name="Remove")).to_have_count(0)
    assert spend_limits(server, seeded) == {"Leads": None, "Accounts": None}


def test_a_member_is_refused_a_spend_limit(page: Page, server: Server, seeded: Seeded) -> None:
    # given
    accounts = seeded.workbooks["Accounts"]
    login(page, seeded.member_key)
    expect(page.locator("#who-key")).to_have_text("Key “analyst” · Member")
    expect(page.locator("#member-note")).to_be_visible()
    expect(page.locator("#actions-used")).to_have_text("314")  # members read everything

    # when
    row = workbook_row(page, accounts)
    row.locator("input").fill("100")
    row.get_by_role("button", name="Set").click()

    # then: the server's FORBIDDEN message, next to the row; nothing changed
    expect(row.locator(".row-message.error")).to_have_text(
        "this operation needs an ADMIN key; this key is a MEMBER key"
    )
    expect(row.locator("td").nth(2)).to_have_text("No limit")
    assert spend_limits(server, seeded) == {"Leads": None, "Accounts": None}


def test_spend_limits_are_refused_below_enterprise_and_empty_states_read_well(
    page: Page, server: Server, seeded: Seeded
) -> None:
    # given: a Launch workspace with a workbook and no usage
    login(page, seeded.launch_admin_key)
    expect(page.locator("#plan-name")).to_have_text("Launch")
    expect(page.locator("#chart-status")).to_have_text("No usage in this range yet.")
    expect(page.locator("#breakdown-status")).to_have_text("No usage in this range yet.")
    expect(page.locator("#chart canvas")).to_have_count(0)
    expect(page.locator("#ledger tbody tr")).to_have_count(2)  # the cycle's two grants

    # when
    row = page.locator("#workbooks tbody tr").first
    row.locator("input").fill("100")
    row.get_by_role("button", name="Set").click()

    # then: the Refusal's message (PLAN_FEATURE_UNAVAILABLE)
    expect(row.locator(".row-message.error")).to_have_text(
        "workbook spend limits are an Enterprise feature; this workspace is on Launch"
    )
    expect(row.locator("td").nth(2)).to_have_text("No limit")

    # and a limit that is not a number is caught before it is sent
    row.locator("input").fill("lots")
    row.get_by_role("button", name="Set").click()
    expect(row.locator(".row-message.error")).to_have_text(
        "Enter a number of Data Credits, such as 500 or 12.5."
    )


def test_download_csv_exports_the_chosen_range_and_grouping(
    page: Page, server: Server, seeded: Seeded
) -> None:
    # given
    login(page, seeded.admin_key)
    page.select_option("#group-by", "WORKBOOK,TABLE")
    expect(page.locator("#breakdown thead th")).to_have_count(5)

    # when
    with page.expect_download() as info:
        page.click("#download-csv")
    download = info.value

    # then
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text("utf-8"))))
    leads, accounts = seeded.workbooks["Leads"], seeded.workbooks["Accounts"]
    assert rows == [
        ["workbookId", "workbookName", "tableId", *FIGURES],
        [accounts, "Accounts", "companies", "34", "50", "234", "0", "0"],
        [leads, "Leads", "emails", "90", "45", "90", "0", "0"],
        [leads, "Leads", "people", "190", "50", "190", "0", "0"],
    ]

    # when: one workbook, by day
    page.select_option("#range-workbook", leads)
    page.select_option("#group-by", "DAY")
    expect(page.locator("#breakdown tbody tr")).to_have_count(2)  # the day and the total
    with page.expect_download() as info:
        page.click("#download-csv")

    # then
    day = server.gql(LEDGER_DAYS, key=seeded.admin_key)["ledger"]["edges"][0]["node"]
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text("utf-8"))))
    assert rows == [
        ["day", *FIGURES],
        [day["createdAt"][:10], "280", "95", "280", "0", "0"],
    ]
    expect(page.locator("#csv-error")).to_be_hidden()


def test_screenshots_at_desktop_and_phone_width(
    page: Page, seeded: Seeded, artifacts: Path
) -> None:
    # given
    login(page, seeded.admin_key)
    expect(page.locator("#chart canvas")).to_have_count(1)

    # when / then: desktop
    desktop = artifacts / "dashboard-desktop.png"
    page.screenshot(path=desktop, full_page=True)

    # phone width: nothing scrolls sideways and the chart fits
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("document.querySelector('#chart canvas').clientWidth <= 390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone = artifacts / "dashboard-phone.png"
    page.screenshot(path=phone, full_page=True)
    assert desktop.stat().st_size > 0 and phone.stat().st_size > 0
    SCREENSHOTS.extend([desktop, phone])


def test_answers_arriving_after_logout_are_dropped(
    page: Page, server: Server, seeded: Seeded
) -> None:
    # given: a usage load, a ledger page and a spend limit on their way when the user logs out
    login(page, seeded.admin_key)
    held: list[Route] = []
    page.route("**/graphql", lambda route: held.append(route))
    page.select_option("#group-by", "KIND")
    page.click("#ledger-next")
    row = workbook_row(page, seeded.workbooks["Accounts"])
    row.locator("input").fill("700")
    row.get_by_role("button", name="Set").click()
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

    # then: the page stays logged out, without a script error (the `page` fixture checks)
    expect(page.locator("#dashboard")).to_be_hidden()
    # and the limit the server did set is removed again, as the other tests expect
    server.gql(
        "mutation($w: ID!) { setWorkbookSpendLimit(workbookId: $w, limit: null) { __typename } }",
        {"w": seeded.workbooks["Accounts"]},
        seeded.admin_key,
    )
    assert spend_limits(server, seeded) == {"Leads": None, "Accounts": None}
