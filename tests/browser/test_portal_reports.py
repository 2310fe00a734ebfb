"""Reports and health in a real browser: the figures on the page are sla's and assignment's, its CSVs the same.

A few tickets are made first: emergency ones under a policy of seconds (they breach), normal ones answered
at once (met), one resolved, one waiting in a team without agents. Then an admin, a team lead and a plain
agent open the pages.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from services.portal.domain import CLOCK_NAMES
from tests.browser.helpers import assert_accessible
from tests.browser.portal_system import ADMIN_EMAIL, PASSWORD, STAFF, portal_system, unique_email  # noqa: F401
from tests.harness import wait_until

SECONDS_POLICY = {"first_response_minutes": 0.02, "next_response_minutes": 0.02, "resolution_minutes": 0.05,
                  "warn_at_percent": [80], "calendar": "24x7"}  # fmt: skip
PHONE = {"width": 390, "height": 844}
CELLS = """rows => rows.map(row => Array.from(row.children).map(cell => {
  const figure = cell.querySelector("data"), day = cell.querySelector("time");
  if (figure) return figure.getAttribute("value");
  if (day) return day.getAttribute("datetime");
  return cell.querySelector(".visually-hidden") && cell.textContent.includes("—") ? "" : cell.textContent.trim();
}))"""


def sign_in(page: Page, portal: str, email: str) -> None:
    page.goto(portal + "/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()


@pytest.fixture(scope="module")
def desk(portal_system):  # noqa: F811
    """The module's tickets, once the services have counted them: {"breached": [...], "met": [...], "waiting": id}."""
    system = portal_system
    system.call("PUT", "sla", "/policies/emergency", json=SECONDS_POLICY)
    system.call("PATCH", "assignment", "/agents/bob", json={"lead_of": ["network"]})
    breached = [open_ticket(system, "emergency", "network") for _ in range(3)]
    met = [open_ticket(system, "normal", "network") for _ in range(2)]
    waiting = open_ticket(system, "normal", "hardware")  # team general: nobody to assign it to
    for ticket_id in [*breached, *met]:
        wait_until(lambda t=ticket_id: system.work(t).get("agent_id") == "ada", timeout=30)
    # breached[0] is answered late: only once its first response has breached (1.2 s; a fast machine replies sooner)
    wait_until(lambda: system.call("GET", "sla", f"/tickets/{breached[0]}")["clocks"]["first_response"]["state"]
               == "breached", timeout=60)  # fmt: skip
    for ticket_id in [*met, breached[0]]:
        system.call("POST", "assignment", f"/tickets/{ticket_id}/replies", role="agent", agent_id="ada",
                    json={"body": "On it."})  # fmt: skip
    system.call("POST", "assignment", f"/tickets/{met[0]}/resolve", role="agent", agent_id="ada",
                json={"resolution": "Done."})  # fmt: skip
    wait_until(lambda: len(system.call("GET", "sla", "/breaches", params={"limit": 200})["items"]) == 6, timeout=60)
    judged = {("emergency", "first_response"): (0, 3), ("normal", "first_response"): (2, 0),
              ("emergency", "resolution"): (0, 3), ("normal", "resolution"): (1, 0)}  # fmt: skip
    wait_until(lambda: counted(system) == judged, timeout=60)
    system.call("PATCH", "assignment", "/agents/ada", json={"capacity": 4})  # her 4 open tickets: at capacity
    return {"breached": breached, "met": met, "waiting": waiting}


def open_ticket(system, priority: str, topic: str) -> str:
    body = {"subject": f"{priority} {topic} {unique_email('s')[:10]}", "description": "Broken.", "topic": topic,
            "priority": priority, "requester": {"name": "Ana Ruiz", "email": unique_email("ana")}}  # fmt: skip
    return system.call("POST", "intake", "/tickets", json=body)["id"]


def counted(system) -> dict:
    rows = system.call("GET", "sla", "/stats")["items"]
    return {(r["priority"], r["clock"]): (r["met"], r["breached"]) for r in rows if r["met"] or r["breached"]}


def table_rows(page: Page, name: str) -> list[list[str]]:
    return page.locator(f"#{name}-table tbody tr").evaluate_all(CELLS)


def compliance(stats: list[dict], priority: str) -> str:
    """met / (met + breached) over every clock of the priority, as the weekly table shows it."""
    met = sum(r["met"] for r in stats if r["priority"] == priority)
    judged = met + sum(r["breached"] for r in stats if r["priority"] == priority)
    return str(round(100 * met / judged, 1)) if judged else ""


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))[1:]


def text(value) -> str:
    return "" if value is None else str(value)


def test_an_admin_reads_sla_figures_and_downloads_the_same_as_csv(portal_system, desk, new_context, screenshot):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    page = new_context().new_page()
    sign_in(page, portal, ADMIN_EMAIL)
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()
    since = page.locator("#period").get_attribute("data-since")

    stats = system.call("GET", "sla", "/stats", params={"since": since})["items"]
    figures = ("met", "breached", "open", "stopped", "compliance_percent", "median_seconds", "p90_seconds")
    expected = [[r["priority"].capitalize(), CLOCK_NAMES[r["clock"]], *(text(r[k]) for k in figures)] for r in stats]
    assert table_rows(page, "summary") == expected

    breaches = system.call("GET", "sla", "/breaches", params={"since": since, "limit": 200})["items"]
    per_clock = [str(sum(b["clock"] == clock for b in breaches)) for clock in CLOCK_NAMES]
    assert table_rows(page, "breaches") == [["Network", *per_clock, str(len(breaches))]]  # the team by its name
    expect(page.get_by_role("img", name="SLA breaches per team")).to_be_visible()

    last_week, *weekly = table_rows(page, "compliance")[-1]
    week = system.call("GET", "sla", "/stats", params={"since": f"{last_week}T00:00:00Z"})["items"]
    assert weekly == [compliance(week, priority) for priority in ("emergency", "high", "normal", "low")]
    assert weekly == ["0.0", "", "100.0", ""]  # emergency: every clock breached; normal: every one met

    answered = sum(int(row[-1]) for row in table_rows(page, "first-response"))
    assert answered == sum(r["measured"] for r in stats if r["clock"] == "first_response") == 3
    queue = system.call("GET", "assignment", "/queue", params={"limit": 200})["items"]
    backlog = {row[0]: row[-1] for row in table_rows(page, "backlog")}
    names = {team["id"]: team["name"] for team in system.call("GET", "assignment", "/teams")["items"]}
    assert backlog == {names[team]: str(sum(t["team"] == team for t in queue)) for team in {t["team"] for t in queue}}
    assert [row[:2] for row in table_rows(page, "capacity")] == [["Ada Lovelace", "ada"]]
    expect(page.get_by_role("link", name="hardware", exact=False).first).to_be_visible()  # the oldest waiting
    assert_accessible(page)

    # The CSVs: the same figures as the tables
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV: Compliance per priority and clock").click()
    assert csv_rows(Path(download.value.path()).read_text(encoding="utf-8")) == expected
    assert re.fullmatch(r"ticketflow-summary-\d{8}-\d{8}\.csv", download.value.suggested_filename)  # from, to
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    for name in ("compliance", "first-response", "resolution", "breaches", "satisfaction", "backlog", "capacity"):
        href = page.locator(f"#{name} .download a").get_attribute("href")
        answer = requests.get(portal + href, cookies=cookies, timeout=30)
        assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert answer.content.startswith(b"\xef\xbb\xbf")  # the byte order mark Excel needs for UTF-8
        assert answer.headers["Content-Disposition"].startswith("attachment; filename=")
        assert csv_rows(answer.text) == table_rows(page, name), name

    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]  # no sideways page
    screenshot(page, "reports-desktop")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # wide tables scroll in place
    screenshot(page, "reports-phone")


def test_a_chosen_period_ends_where_it_says_and_a_wrong_date_is_named(portal_system, desk, new_context):  # noqa: F811
    page = new_context().new_page()
    sign_in(page, portal_system.portal, ADMIN_EMAIL)
    page.goto(portal_system.portal + "/reports")
    for name in ("Oldest ticket waiting for an agent", "Open tickets per team", "Agents at capacity"):
        expect(page.get_by_role("heading", name=name, level=3)).to_be_visible()  # under "The backlog now"
    expect(page.get_by_label("From one day to another (UTC)")).not_to_be_checked()
    page.get_by_label("First day").fill("2026-01-10")  # a day typed chooses the dates, else it would go unused
    expect(page.get_by_label("From one day to another (UTC)")).to_be_checked()
    page.get_by_label("Last day").fill("2026-01-01")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("The last day must be the same as or after the first day")
    assert_accessible(page)
    page.get_by_label("Last day").fill("2026-01-20")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("10 Jan 2026 to 20 Jan 2026")).to_be_visible()
    expect(page.locator("#period")).to_contain_text("measured against the targets of the policy it was opened under")
    assert page.locator("#period").get_attribute("data-until") == "2026-01-21T00:00:00.000Z"
    expect(page.get_by_text("No breach in this period.").first).to_be_visible()  # our tickets are newer
    assert page.goto(portal_system.portal + "/reports/nothing.csv").status == 404
    assert page.goto(portal_system.portal + "/reports/summary.csv?from=2026-01-02&to=2026-01-01").status == 422


def test_a_team_lead_reads_reports_and_a_plain_agent_may_not(portal_system, desk, new_context, screenshot):  # noqa: F811
    lead = new_context().new_page()
    sign_in(lead, portal_system.portal, STAFF["bob"]["email"])
    # the team's open tickets, whoever has them (ada has these)
    lead.get_by_role("link", name=re.compile("^My teams' open tickets")).click()
    for ticket_id in desk["breached"]:
        number = portal_system.ticket(ticket_id)["number"]
        expect(lead.get_by_role("link", name=re.compile(f"^#{number} "))).to_be_visible()
    assert_accessible(lead)
    screenshot(lead, "console-lead-queue")
    lead.get_by_role("link", name="Reports").click()
    expect(lead.get_by_text("You lead Network")).to_be_visible()
    assert table_rows(lead, "breaches")[0][-1] == "6"
    expect(lead.get_by_role("link", name="Health")).to_have_count(0)
    assert_accessible(lead)
    assert lead.goto(portal_system.portal + "/admin/health").status == 403

    agent = new_context().new_page()
    sign_in(agent, portal_system.portal, STAFF["ada"]["email"])
    expect(agent.get_by_role("link", name="Reports")).to_have_count(0)
    answer = agent.goto(portal_system.portal + "/reports")
    assert answer.status == 403
    expect(agent.get_by_role("heading", name="Reports are for admins and team leads")).to_be_visible()
    assert agent.goto(portal_system.portal + "/reports/summary.csv").status == 403


def test_health_shows_every_service_ready_with_its_queues_and_refreshes(portal_system, new_context, screenshot):  # noqa: F811
    page = new_context().new_page()
    sign_in(page, portal_system.portal, ADMIN_EMAIL)
    page.get_by_role("link", name="Health").click()
    expect(page.get_by_role("heading", name="Health")).to_be_visible()
    rows = page.locator("table.health-table tbody tr")
    expect(rows).to_have_count(5)
    for service in ("intake", "assignment", "sla", "notify", "search"):
        row = rows.filter(has=page.get_by_role("rowheader", name=service, exact=True))
        expect(row.get_by_role("cell").nth(0)).to_have_text("Ready")
        consumers = row.locator("td[data-label=Consumers]").inner_text()
        assert int(consumers) >= 1, (service, consumers)
    expect(page.locator("#notifications")).to_contain_text("Waiting to be sent")
    checked = page.locator("#health-summary time").get_attribute("datetime")
    expect(page.locator("#health-summary time")).not_to_have_attribute("datetime", checked, timeout=30_000)
    assert_accessible(page)
    screenshot(page, "health-desktop")
