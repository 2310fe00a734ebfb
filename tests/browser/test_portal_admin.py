"""The admin pages in a real browser: an admin sets up the help desk from the pages alone (a topic, a team with a
lead, two agents with their capacities, a business calendar, a policy, a webhook), then tickets route and are
assigned as set up, and a delivery that ended dead is retried from its page and arrives.

A stricter draft policy's what-if names, ticket by ticket, the clocks that would have breached and changes nothing.

Every admin page passes axe-core; an agent gets 403 on each of them. Screenshots of the agents page, of a
calendar's week and of a what-if, at desktop and phone width (admin-agents-desktop, admin-calendar-phone, ...).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from services.portal.pages import when
from shared.events import parse_time
from tests.browser.helpers import assert_accessible
from tests.browser.portal_system import ADMIN_EMAIL, PASSWORD, STAFF, portal_system, unique_email  # noqa: F401
from tests.browser.test_portal_journey import both_widths, sign_in
from tests.harness import auth_header, wait_until

ADMIN_PAGES = ("/admin/", "/admin/agents", "/admin/agents/ada", "/admin/teams", "/admin/teams/network",
               "/admin/policies", "/admin/policies/high", "/admin/calendars", "/admin/calendars/24x7",
               "/admin/webhooks", "/admin/notifications", "/admin/mail")  # fmt: skip


class Receiver:
    """A webhook endpoint on this machine: it answers 500 while `failing`, else 204; it keeps what it got."""

    def __init__(self) -> None:
        self.failing = True
        self.received: list[tuple[dict, bytes]] = []  # (headers, body) of the deliveries it accepted
        self.url = ""

    def delivered(self, notification_id: str) -> list[tuple[dict, bytes]]:
        return [(h, b) for h, b in list(self.received) if h.get("X-Ticketflow-Delivery") == notification_id]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not found.failing:
                found.received.append((dict(self.headers), body))
            self.send_response(500 if found.failing else 204)
            self.end_headers()

        def log_message(self, format, *args) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield found
    server.shutdown()
    server.server_close()


def checked_in(page: Page, group: str, *labels: str) -> None:
    for label in labels:
        page.get_by_role("group", name=group, exact=True).get_by_label(label).check()


def add_agent(page: Page, agent_id: str, name: str, email: str, capacity: str) -> None:
    page.get_by_label("Agent id").fill(agent_id)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email address").fill(email)
    checked_in(page, "Teams", "Printing (printing)")
    page.get_by_label("Capacity").fill(capacity)
    page.get_by_label("Available now").check()  # a new agent is away unless ticked
    page.get_by_role("button", name="Add agent").click()


def set_up_team_and_agents(admin: Page, portal: str, pat_email: str) -> str:
    """The topic, the team, pat and quinn, quinn the lead; the one-time link the page showed for pat."""
    admin.goto(portal + "/admin/teams")
    admin.get_by_label("Topic id").fill("printers")
    admin.get_by_label("Topic name").fill("Printers & scanners")
    admin.get_by_role("button", name="Save topic").click()
    expect(admin.get_by_text("The topic is saved.")).to_be_visible()
    admin.get_by_label("Team id").fill("printing")
    admin.get_by_label("Team name").fill("Printing")
    checked_in(admin, "Topics it takes", "Printers & scanners (printers)")
    admin.get_by_role("button", name="Add team").click()
    expect(admin.get_by_text("The team is added.")).to_be_visible()
    assert_accessible(admin)

    admin.goto(portal + "/admin/agents")
    add_agent(admin, "pat", "Pat Printer", pat_email, "lots")  # assignment refuses the capacity: next to the field
    expect(admin.locator("#capacity-error")).to_contain_text("Enter a whole number, like 10.")
    expect(
        admin.get_by_role("link", name="Capacity: Enter a whole number, like 10.")
    ).to_be_visible()  # the error summary
    expect(admin.get_by_label("Agent id")).to_have_value("pat")  # what was typed is kept
    expect(admin.get_by_role("group", name="Teams", exact=True).get_by_label("Printing (printing)")).to_be_checked()
    assert_accessible(admin)
    admin.get_by_label("Capacity").fill("1")
    admin.get_by_role("button", name="Add agent").click()
    expect(admin.get_by_text("Pat Printer (pat) is added")).to_be_visible()
    shown_link = admin.locator(".copyable").inner_text().strip()
    add_agent(admin, "quinn", "Quinn Queue", unique_email("quinn"), "2")
    expect(admin.get_by_text("Quinn Queue (quinn) is added")).to_be_visible()

    admin.goto(portal + "/admin/teams/printing")
    admin.get_by_role("group", name="Leads").get_by_label("Quinn Queue (quinn)").check()
    admin.get_by_role("button", name="Save leads").click()
    expect(admin.get_by_text("The team's leads are saved.")).to_be_visible()
    expect(admin.get_by_role("group", name="Leads").get_by_label("Quinn Queue (quinn)")).to_be_checked()
    assert_accessible(admin)
    admin.goto(portal + "/admin/teams")
    expect(admin.get_by_role("row").filter(has_text="Printing")).to_contain_text("Quinn Queue")
    return shown_link


def set_up_calendar_and_policy(admin: Page, system, screenshot) -> int:
    """A calendar for the printing team's hours, and the high policy counting in it; the policy's new version."""
    portal = system.portal
    admin.goto(portal + "/admin/calendars")
    assert_accessible(admin)
    admin.get_by_label("Calendar id").fill("print-shop")
    admin.get_by_label("Time zone").fill("Europe/Madrid")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"):
        admin.get_by_label(day).fill("08:00-14:00, 15:00-19:30")
    admin.get_by_label("Saturday").fill("09:00-25:00")  # sla refuses the time: the error shows next to Saturday
    admin.get_by_label("Holidays").fill("2026-12-25\n2027-01-01")
    admin.get_by_role("button", name="Save calendar").click()
    expect(admin.locator("#hours-sat-error")).to_contain_text("24:00")
    expect(admin.get_by_label("Monday")).to_have_value("08:00-14:00, 15:00-19:30")
    admin.get_by_label("Saturday").fill("09:00-13:00")
    admin.get_by_role("button", name="Save calendar").click()
    expect(admin.get_by_text("The calendar is added.")).to_be_visible()  # choose it in a policy: nothing runs in it yet
    week = admin.get_by_role("table", name="Open hours of each day of the week")
    days = [cell.inner_text() for cell in week.locator("tr.week-periods td").all()]
    assert days == ["08:00–14:00\n15:00–19:30"] * 5 + ["09:00–13:00", "Closed"]
    evening = week.locator("tr", has=admin.get_by_role("rowheader", name="19:00", exact=True))
    # a closed hour says so to a screen reader (it heard "blank": an accessibility tester's find), not on the screen
    assert [cell.text_content() for cell in evening.locator("td").all()] == ["part"] * 5 + ["closed", "closed"]
    expect(evening.locator("td").last.locator(".visually-hidden")).to_have_text("closed")
    assert_accessible(admin)
    both_widths(admin, screenshot, "admin-calendar")

    admin.goto(portal + "/admin/policies")
    assert_accessible(admin)
    admin.get_by_role("link", name="High").click()
    before = system.call("GET", "sla", "/policies/high")["version"]
    expect(admin.get_by_text(f"Version {before}")).to_be_visible()
    admin.get_by_label("First response (minutes)").fill("30")
    admin.get_by_label("Resolution (minutes)").fill("600")
    admin.get_by_label("Warnings at (percent of the target)").fill("50, 90")
    admin.get_by_label("Calendar").select_option("print-shop")
    admin.get_by_role("button", name="What would this draft have done to the last 30 days?").click()
    expect(admin.get_by_role("heading", name="What this draft would have done to the last 30 days")).to_be_visible()
    expect(admin.get_by_label("First response (minutes)")).to_have_value("30")  # the draft is kept
    assert_accessible(admin)
    admin.get_by_role("button", name="Save a new version").click()
    expect(admin.get_by_text("The policy is saved.")).to_be_visible()
    expect(admin.get_by_text(f"Version {before + 1}")).to_be_visible()
    assert_accessible(admin)
    return before + 1


def test_an_admin_sets_up_the_help_desk_from_the_pages(portal_system, new_context, screenshot, receiver):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    admin = new_context().new_page()
    sign_in(admin, portal, ADMIN_EMAIL)
    pat_email = unique_email("pat")
    shown_link = set_up_team_and_agents(admin, portal, pat_email)
    version = set_up_calendar_and_policy(admin, system, screenshot)

    admin.goto(portal + "/admin/webhooks")
    admin.get_by_label("URL").fill(receiver.url)
    admin.get_by_label("Events").fill("ticket.created ticket.assigned")
    admin.get_by_role("button", name="Add webhook").click()
    secret = admin.locator("#webhook-secret").inner_text().strip()
    assert len(secret) >= 32
    assert_accessible(admin)
    admin.reload()  # the browser sends the form again: no second webhook, and the secret is not shown again
    expect(admin.get_by_text("This form was sent already")).to_be_visible()
    expect(admin.get_by_text(secret)).to_have_count(0)
    assert [hook["url"] for hook in system.call("GET", "notify", "/webhooks")["items"]] == [receiver.url]

    # Tickets on the topic go to the team, each to its agent with the fewest open tickets, within capacity:
    # pat takes 1, quinn 2, and the fourth waits in the team's queue.
    tickets = [new_ticket(system, f"Printer {n} jams") for n in range(4)]
    wait_until(lambda: all(system.work(t).get("team") == "printing" for t in tickets), timeout=30, interval=0.5)
    wait_until(lambda: sum(bool(system.work(t).get("agent_id")) for t in tickets) == 3, timeout=30, interval=0.5)
    agents = sorted(str(system.work(t).get("agent_id")) for t in tickets)
    assert agents == ["None", "pat", "quinn", "quinn"]
    assigned = next(t for t in tickets if system.work(t).get("agent_id"))
    wait_until(lambda: system.sla_knows(assigned), timeout=30, interval=0.5)
    clocks = system.call("GET", "sla", f"/tickets/{assigned}")["clocks"]
    assert clocks["first_response"]["policy_version"] == version

    admin.goto(portal + "/admin/agents")
    pat_row = admin.get_by_role("row").filter(has_text="Pat Printer")
    expect(pat_row.locator("td[data-label='Open tickets']")).to_have_text("1")
    expect(admin.get_by_role("row").filter(has_text="Quinn Queue").locator("td[data-label='Teams']")).to_have_text(
        "Printing (lead)"  # the team by its name
    )
    assert_accessible(admin)
    both_widths(admin, screenshot, "admin-agents")

    retry_a_dead_delivery(admin, system, receiver, assigned, secret)
    remove_the_webhook(admin, system, receiver)
    pat_sets_a_password_from_the_email(new_context, system, pat_email, tickets)
    used = new_context().new_page()  # the link the admin was shown ended with the password set from the email
    assert used.goto(shown_link).status == 404


def new_ticket(system, subject: str) -> str:
    body = {"subject": subject, "description": "Paper everywhere.", "topic": "printers", "priority": "high",
            "requester": {"name": "Ana Ruiz", "email": unique_email("ana")}}  # fmt: skip
    return system.call("POST", "intake", "/tickets", json=body)["id"]


def retry_a_dead_delivery(admin: Page, system, receiver: Receiver, ticket_id: str, secret: str) -> None:
    def dead_created() -> list[dict]:
        dead = system.call("GET", "notify", "/notifications", params={"status": "dead", "recipient": receiver.url})
        return [n for n in dead["items"] if n["ticket_id"] == ticket_id and n["event_type"] == "ticket.created"]

    wait_until(lambda: dead_created(), timeout=60)
    notification_id = dead_created()[0]["id"]
    receiver.failing = False  # the endpoint is fixed
    admin.goto(system.portal + "/admin/notifications")
    assert_accessible(admin)
    number = system.ticket(ticket_id)["number"]  # the list names tickets by number
    row = admin.get_by_role("row").filter(has_text=f"#{number}").filter(has_text="ticket.created")
    row.get_by_role("button", name="Retry").click()
    expect(admin.get_by_text("The notification is being sent again.")).to_be_visible()
    wait_until(lambda: receiver.delivered(notification_id), timeout=30)
    headers, body = receiver.delivered(notification_id)[0]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Ticketflow-Signature"] == f"sha256={expected}"
    assert json.loads(body)["ticket_id"] == ticket_id
    # the receiver has it before it answers; notify marks it sent once it reads that answer
    sent = lambda: system.call("GET", "notify", f"/notifications/{notification_id}")["status"] == "sent"  # noqa: E731
    wait_until(sent, timeout=30)
    admin.goto(system.portal + "/admin/webhooks")
    expect(admin.get_by_role("row").filter(has_text=f"#{number}").filter(has_text="ticket.created")).to_contain_text(
        "Sent"
    )
    assert_accessible(admin)


def remove_the_webhook(admin: Page, system, receiver: Receiver) -> None:
    """Removing asks first: the first click only opens the question."""
    admin.goto(system.portal + "/admin/webhooks")
    admin.locator("details.confirm summary", has_text="Remove this webhook").click()
    assert [hook["url"] for hook in system.call("GET", "notify", "/webhooks")["items"]] == [receiver.url]
    expect(admin.get_by_text(f"No more events go to {receiver.url}")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_role("button", name="Yes, remove it").click()
    expect(admin.get_by_text("No webhooks yet.")).to_be_visible()
    assert system.call("GET", "notify", "/webhooks")["items"] == []


def pat_sets_a_password_from_the_email(new_context, system, email: str, tickets: list[str]) -> None:
    """The emailed link sets the password; pat signs in and finds the ticket the team gave them."""
    wait_until(lambda: [m for m in list(system.smtp.received) if m["To"] == email], timeout=30)
    message = next(m for m in list(system.smtp.received) if m["To"] == email)
    link = next(w for w in message.get_body(("plain",)).get_content().split() if "/password/" in w)
    pat = new_context().new_page()
    pat.goto(link)
    pat.get_by_label("New password").fill(PASSWORD)
    pat.get_by_role("button", name="Set password").click()
    sign_in(pat, system.portal, email)
    expect(pat.get_by_role("heading", name="Queues")).to_be_visible()
    mine = [t for t in tickets if system.work(t).get("agent_id") == "pat"]
    number = system.ticket(mine[0])["number"]
    expect(pat.get_by_role("link", name=f"#{number} ")).to_be_visible()


def test_an_admin_changes_an_agent_from_the_pages(portal_system, new_context):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    system.call("POST", "assignment", "/teams", json={"id": "desk", "name": "Desk", "topics": []})
    cora = {"id": "cora", "name": "Cora Desk", "email": unique_email("cora"), "teams": ["network", "desk"],
            "capacity": 5, "available": True, "lead_of": ["desk"]}  # fmt: skip
    system.call("POST", "assignment", "/agents", json=cora)
    admin = new_context().new_page()
    sign_in(admin, portal, ADMIN_EMAIL)
    admin.goto(portal + "/admin/agents")
    admin.get_by_role("button", name="Set away (Cora Desk)").click()
    away = "Cora Desk is away: no new tickets are assigned to them. They still hold 0 open tickets."
    expect(admin.get_by_text(away)).to_be_visible()  # by name: the list holds every agent
    assert system.call("GET", "assignment", "/agents/cora")["available"] is False

    admin.get_by_role("link", name="Cora Desk").click()
    expect(admin.get_by_role("heading", name="Cora Desk")).to_be_visible()
    assert_accessible(admin)
    admin.get_by_label("Capacity").fill("7")
    admin.get_by_role("button", name="Save changes").click()
    expect(admin.get_by_text("The agent's changes are saved.")).to_be_visible()
    admin.get_by_role("button", name="Remove from Desk").click()  # the team made a moment ago, by its name
    expect(admin.get_by_text("The agent is out of Desk. No open ticket of Desk was with the agent.")).to_be_visible()
    agent = system.call("GET", "assignment", "/agents/cora")
    assert (agent["capacity"], agent["teams"], agent["lead_of"], agent["available"]) == (7, ["network"], [], False)
    # the last team: no button (assignment would refuse to leave the agent in none), the page says so
    expect(admin.get_by_role("button", name="Remove from Network")).to_have_count(0)
    expect(admin.get_by_text("(their only team)")).to_be_visible()
    assert_accessible(admin)
    assert system.call("GET", "assignment", "/agents/cora")["teams"] == ["network"]


def test_an_admin_retires_a_topic_from_the_form_and_brings_it_back(portal_system, new_context, screenshot):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    topic = f"fax-{uuid.uuid4().hex[:6]}"
    system.call("PUT", "intake", f"/topics/{topic}", json={"name": "Fax machines"})
    requester = new_context().new_page()
    requester.goto(portal + "/")
    expect(requester.get_by_label("What is it about?").locator(f"option[value='{topic}']")).to_have_count(1)

    admin = new_context().new_page()
    sign_in(admin, portal, ADMIN_EMAIL)
    admin.goto(portal + "/admin/teams")
    expect(admin.get_by_role("button", name="Retire (General)")).to_have_count(0)  # mail of no topic goes there
    admin.get_by_role("button", name="Retire (Fax machines)").click()
    expect(admin.get_by_text("The topic is retired: it is no longer on the form")).to_be_visible()
    row = admin.get_by_role("row").filter(has_text=topic)
    expect(row.get_by_text("No: retired")).to_be_visible()
    assert_accessible(admin)
    screenshot(admin, "admin-topics-desktop")

    requester.reload()
    expect(requester.get_by_label("What is it about?").locator(f"option[value='{topic}']")).to_have_count(0)

    admin.get_by_role("button", name="Bring back (Fax machines)").click()
    expect(admin.get_by_text("The topic is back on the form.")).to_be_visible()
    requester.reload()
    expect(requester.get_by_label("What is it about?").locator(f"option[value='{topic}']")).to_have_count(1)


def test_an_admin_disables_then_deletes_an_account_that_left(portal_system, new_context, screenshot):  # noqa: F811
    portal = portal_system.portal
    email = unique_email("leaver")
    created = requests.post(f"{portal}/api/accounts", json={"email": email, "role": "admin", "password": PASSWORD},
                            headers=auth_header("admin"), timeout=15)  # fmt: skip
    assert created.status_code == 201, created.text
    admin = new_context().new_page()
    sign_in(admin, portal, ADMIN_EMAIL)
    admin.goto(portal + "/admin/")
    expect(admin.get_by_text(f"Delete ({email})")).to_have_count(0)  # enabled: nothing to delete yet
    admin.get_by_text(f"Disable ({email})").click()  # it signs them out at once: asked once more
    screenshot(admin, "admin-accounts-disable")
    admin.get_by_role("button", name=f"Yes, disable {email}").click()
    expect(admin.get_by_text("The account is disabled")).to_be_visible()

    admin.get_by_text(f"Delete ({email})").click()
    assert_accessible(admin)
    screenshot(admin, "admin-accounts-delete")
    admin.get_by_role("button", name=f"Yes, delete {email}").click()

    expect(admin.get_by_text("The account is deleted.")).to_be_visible()
    expect(admin.get_by_role("cell", name=email)).to_have_count(0)
    gone = requests.delete(f"{portal}/api/accounts/{email}", headers=auth_header("admin"), timeout=15)
    assert gone.status_code == 404


def test_an_admin_deletes_a_team_added_by_mistake_and_not_one_with_tickets(portal_system, new_context, screenshot):  # noqa: F811
    portal, team = portal_system.portal, f"typo-{uuid.uuid4().hex[:6]}"
    admin = new_context().new_page()
    sign_in(admin, portal, ADMIN_EMAIL)
    admin.goto(portal + "/admin/teams")
    admin.get_by_label("Team id").fill(team)
    admin.get_by_label("Team name").fill("Sales typo")
    admin.get_by_role("button", name="Add team").click()
    expect(admin.get_by_text("The team is added.")).to_be_visible()

    admin.goto(f"{portal}/admin/teams/{team}")
    admin.get_by_text("Delete this team").click()
    assert_accessible(admin)
    screenshot(admin, "admin-team-delete")
    admin.get_by_role("button", name="Yes, delete Sales typo").click()
    expect(admin.get_by_text("The team is deleted.")).to_be_visible()
    expect(admin.get_by_role("link", name="Sales typo")).to_have_count(0)

    admin.goto(f"{portal}/admin/teams/general")  # the team every topic no team names goes to: never offered
    expect(admin.get_by_text("Delete this team")).to_have_count(0)


def test_an_admin_deletes_a_calendar_added_by_mistake(portal_system, new_context, screenshot):  # noqa: F811
    portal, calendar = portal_system.portal, f"typo-{uuid.uuid4().hex[:6]}"
    hours = {"mon": [["09:00", "17:00"]]}
    portal_system.call("PUT", "sla", f"/calendars/{calendar}", json={"timezone": "Europe/Madrid", "hours": hours})
    admin = new_context().new_page()
    sign_in(admin, portal, ADMIN_EMAIL)
    admin.goto(f"{portal}/admin/calendars/{calendar}")
    admin.get_by_text("Delete this calendar").click()
    assert_accessible(admin)
    screenshot(admin, "admin-calendar-delete")
    admin.get_by_role("button", name=f"Yes, delete {calendar}").click()
    expect(admin.get_by_text("The calendar is deleted.")).to_be_visible()
    expect(admin.get_by_role("link", name=calendar)).to_have_count(0)
    assert calendar not in [c["id"] for c in portal_system.call("GET", "sla", "/calendars")["items"]]

    admin.goto(f"{portal}/admin/calendars/24x7")  # built in: never offered
    expect(admin.get_by_text("Delete this calendar")).to_have_count(0)


def test_an_agent_switches_its_own_availability_from_the_queue(portal_system, new_context):  # noqa: F811
    agent = new_context().new_page()
    sign_in(agent, portal_system.portal, STAFF["bob"]["email"])  # bob starts away
    expect(agent.get_by_text("You are away")).to_be_visible()
    assert_accessible(agent)
    agent.get_by_role("button", name="Set me available").click()
    expect(agent.get_by_text("You are available")).to_be_visible()
    assert portal_system.call("GET", "assignment", "/agents/bob")["available"] is True
    agent.get_by_role("button", name="Set me away").click()
    expect(agent.get_by_text("You are away")).to_be_visible()
    assert portal_system.call("GET", "assignment", "/agents/bob")["available"] is False


def test_an_agent_gets_403_on_every_admin_page(portal_system, new_context):  # noqa: F811
    agent = new_context().new_page()
    sign_in(agent, portal_system.portal, STAFF["ada"]["email"])
    answer = agent.goto(portal_system.portal + ADMIN_PAGES[0])  # one drawn in the browser: the page says why
    assert answer.status == 403
    expect(agent.get_by_role("heading", name="Admins only")).to_be_visible()
    cookies = {cookie["name"]: cookie["value"] for cookie in agent.context.cookies()}
    for path in ADMIN_PAGES[1:]:  # the others asked with the browser's cookies, not drawn (a second each)
        answer = requests.get(portal_system.portal + path, cookies=cookies, allow_redirects=False, timeout=30)
        assert answer.status_code == 403 and ">Admins only</h1>" in answer.text, path
    admin = new_context().new_page()
    sign_in(admin, portal_system.portal, ADMIN_EMAIL)
    for path in ADMIN_PAGES:
        assert admin.goto(portal_system.portal + path).status == 200, path
        expect(admin.get_by_role("navigation", name="Admin")).to_be_visible()
        assert_accessible(admin)


def test_an_admin_sees_what_a_stricter_draft_would_have_done(portal_system, new_context, screenshot):  # noqa: F811
    """Three low tickets still unanswered: under a three-second first response each would have breached, due three
    seconds after it opened. The page says so ticket by ticket, and nothing in sla changes."""
    system = portal_system
    policy, versions = system.call("GET", "sla", "/policies/low"), system.call("GET", "sla", "/policies/low/versions")
    body = {"description": "It drops every hour.", "topic": "network", "priority": "low",
            "requester": {"name": "Ana Ruiz", "email": unique_email("ana")}}  # fmt: skip
    tickets = [system.call("POST", "intake", "/tickets", json={**body, "subject": f"VPN drops {n}"}) for n in range(3)]
    ids = [ticket["id"] for ticket in tickets]
    wait_until(lambda: all(system.sla_knows(t) for t in ids), timeout=30, interval=0.5)
    clocks = {t: system.call("GET", "sla", f"/tickets/{t}")["clocks"] for t in ids}
    target = timedelta(minutes=policy["first_response_minutes"])  # low counts in 24x7: due = opened + target
    draft_due = {t: parse_time(clocks[t]["first_response"]["due_at"]) - target + timedelta(seconds=3) for t in ids}
    wait_until(lambda: datetime.now(UTC) > max(draft_due.values()) + timedelta(seconds=1), timeout=30, interval=0.2)

    admin = new_context().new_page()
    sign_in(admin, system.portal, ADMIN_EMAIL)
    admin.goto(system.portal + "/admin/policies/low")
    admin.get_by_label("First response (minutes)").fill("0.05")
    admin.get_by_role("button", name="What would this draft have done to the last 30 days?").click()
    expect(admin.get_by_role("heading", name="What this draft would have done to the last 30 days")).to_be_visible()
    expect(admin.get_by_label("First response (minutes)")).to_have_value("0.05")  # the draft is kept, not saved
    changed = admin.get_by_role("table", name="Tickets whose outcome would change")
    for ticket in tickets:
        row = changed.get_by_role("row").filter(has=admin.get_by_role("link", name=f"#{ticket['number']} VPN drops"))
        expect(row.locator("td[data-label='Clock']")).to_have_text("First response")
        expect(row.locator("td[data-label='Current policy']")).to_have_text("open")
        expect(row.locator("td[data-label='With the draft']")).to_have_text("breached")
        expect(row.locator("td[data-label='Due with the draft']")).to_have_text(
            when(draft_due[ticket["id"]].isoformat()) + " (missed)"  # breached: the moment its target was missed
        )
        expect(row.locator("td[data-label='Due, current policy']")).to_have_text(
            when(clocks[ticket["id"]]["first_response"]["due_at"])
        )
    figures = admin.get_by_role("table", name="Each clock replayed under the current policy and under the draft")
    first = figures.get_by_role("row", name="First response")
    assert int(first.locator("td[data-label='Breached with the draft']").inner_text()) >= 3
    assert_accessible(admin)
    both_widths(admin, screenshot, "admin-what-if")

    # Nothing in sla changed: the policy and its versions, the clocks.
    assert system.call("GET", "sla", "/policies/low") == policy
    assert system.call("GET", "sla", "/policies/low/versions") == versions
    assert {t: system.call("GET", "sla", f"/tickets/{t}")["clocks"]["first_response"]["due_at"] for t in ids} == {
        t: clocks[t]["first_response"]["due_at"] for t in ids
    }


def test_mail_in_shows_on_the_ticket_and_on_the_admins_mail_page(portal_system, new_context, screenshot):  # noqa: F811
    """A mail opens a ticket; a reply to it from a colleague is kept for the agents, not posted as the requester."""
    system, requester, colleague = portal_system, unique_email("ana"), unique_email("bob")
    first = EmailMessage()
    first["From"], first["To"], first["Subject"] = f"Ana Ruiz <{requester}>", "network@example.com", "VPN drops hourly"
    first["Message-ID"] = make_msgid(domain="client.example.com")
    first.set_content("Since Monday the VPN drops every hour.")
    system.send_mail(first)
    (ticket,) = system.call("GET", "intake", "/tickets", params={"requester_email": requester})["items"]
    other = EmailMessage()
    other["From"], other["To"] = f"Bob Stone <{colleague}>", "network@example.com"
    other["Subject"] = f"Re: [#{ticket['number']}] VPN drops hourly"
    other["Message-ID"] = make_msgid(domain="client.example.com")
    other.set_content("Same here, on the 3rd floor.\n\n> Since Monday the VPN drops every hour.")
    other.add_attachment(b"09:12 tunnel down\n", maintype="text", subtype="plain", filename="vpn-3rd-floor.log")
    system.send_mail(other)

    admin = new_context().new_page()
    sign_in(admin, system.portal, ADMIN_EMAIL)
    admin.goto(f"{system.portal}/console/tickets/{ticket['id']}")
    kept = admin.get_by_role("region", name="Mail not added to the conversation")
    expect(kept).to_contain_text("Same here, on the 3rd floor.")
    expect(kept).to_contain_text("not the ticket's requester")
    expect(kept).not_to_contain_text("> Since Monday")
    expect(admin.locator("#live")).not_to_contain_text("Same here")  # not in the conversation
    assert_accessible(admin)
    screenshot(admin, "console-kept-mail")
    with admin.expect_download() as download:  # the kept mail's file: the agents', never the ticket's
        kept.get_by_role("link", name="vpn-3rd-floor.log").click()
    assert download.value.suggested_filename == "vpn-3rd-floor.log"
    assert Path(download.value.path()).read_bytes() == b"09:12 tunnel down\n"
    assert system.call("GET", "intake", f"/tickets/{ticket['id']}/attachments")["items"] == []
    # each mail whole: its text (with what it quotes) for whoever reads the ticket, the .eml for admins
    mails = admin.locator(".mail-downloads li")
    expect(mails).to_have_count(2)
    expect(mails.get_by_role("link", name="as it came (.eml)")).to_have_count(2)
    mails.filter(has_text=colleague).get_by_role("link", name=f"Re: [#{ticket['number']}] VPN drops hourly").click()
    expect(admin.locator("body")).to_contain_text("Same here, on the 3rd floor.")
    expect(admin.locator("body")).to_contain_text("> Since Monday the VPN drops every hour.")  # the quote too
    screenshot(admin, "console-mail-whole-text")

    admin.goto(f"{system.portal}/admin/mail")
    rows = admin.get_by_role("row").filter(has_text=colleague)
    expect(rows.locator("td[data-label='Became']")).to_have_text(f"Kept for people to read #{ticket['number']}")
    assert_accessible(admin)
    both_widths(admin, screenshot, "admin-mail-in")
    admin.get_by_label("Show").select_option("ticket")
    admin.get_by_role("button", name="Show").click()
    expect(admin.get_by_role("row").filter(has_text=requester)).to_have_count(1)
    expect(admin.get_by_role("row").filter(has_text=colleague)).to_have_count(0)


def test_someone_who_forgot_their_password_gets_back_in_then_changes_it(portal_system, new_context, screenshot):  # noqa: F811
    """ "Forgot your password?" emails a link (the page says the same for any address), the link sets a new
    password; "Your password" changes it again with the current one and signs out the other browser."""
    system, portal = portal_system, portal_system.portal
    email, old_password = unique_email("forgetful"), "the password I cannot remember"
    created = requests.post(f"{portal}/api/accounts", json={"email": email, "role": "admin", "password": old_password},
                            headers=auth_header("admin"), timeout=15)  # fmt: skip
    assert created.status_code == 201, created.text
    elsewhere = new_context().new_page()  # signed in on another computer, forgotten since
    sign_in(elsewhere, portal, email, old_password)
    expect(elsewhere.get_by_role("heading", name="Queues")).to_be_visible()
    # left on a page that does not refresh itself: the queue's refresh, finding the session ended, would leave for
    # the sign-in page on its own, racing the reload below ("Not attached to an active page")
    elsewhere.goto(portal + "/account/password")
    expect(elsewhere.get_by_label("Current password")).to_be_visible()

    page = new_context().new_page()
    page.goto(portal + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.locator("#email-error")).to_contain_text("Enter the email address you sign in with")
    assert_accessible(page)
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "password-forgot-sent")

    wait_until(lambda: [m for m in list(system.smtp.received) if m["To"] == email], timeout=30)
    message = next(m for m in list(system.smtp.received) if m["To"] == email)
    assert message["Subject"] == "Choose a new password for the help desk"
    link = next(w for w in message.get_body(("plain",)).get_content().split() if "/password/" in w)
    page.goto(link)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password is set. Sign in with it.")).to_be_visible()
    sign_in(page, portal, email)
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    elsewhere.reload()  # setting the password ended every session of the account
    expect(elsewhere.get_by_role("heading", name="Sign in")).to_be_visible()

    page.get_by_role("link", name="Your password").click()
    page.get_by_label("Current password").fill(old_password)
    page.get_by_label("New password", exact=True).fill("a newer password still")
    page.get_by_label("New password again").fill("a newer password still")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current-error")).to_contain_text("This is not your current password.")
    expect(page.get_by_label("Current password")).to_have_value("")  # no password is written back
    assert_accessible(page)
    both_widths(page, screenshot, "password-change")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a newer password still")
    page.get_by_label("New password again").fill("a newer password still")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()
    page.get_by_role("link", name="Queues").click()  # still signed in here
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()


def test_an_admin_acts_on_several_tickets_of_a_queue_at_once(portal_system, new_context, screenshot):  # noqa: F811
    """The list stops refreshing while rows are ticked; one action goes to each ticked ticket, and the queue says
    what was done."""
    system, portal = portal_system, portal_system.portal
    body = {"description": "The mail server does not answer.", "topic": "network", "priority": "normal",
            "requester": {"name": "Ana Ruiz", "email": unique_email("ana")}}  # fmt: skip
    tickets = [system.call("POST", "intake", "/tickets", json={**body, "subject": f"Mail down {n}"}) for n in range(3)]
    wait_until(lambda: all(_assignment_knows(system, t["id"]) for t in tickets), timeout=30, interval=0.5)
    admin = new_context().new_page()
    sign_in(admin, portal, ADMIN_EMAIL)
    admin.goto(portal + "/console/?view=all")

    admin.get_by_text("Act on the ticked tickets").click()  # folded until opened, or until a row is ticked
    admin.get_by_role("button", name="Apply to the ticked tickets").click()  # nothing ticked, nothing chosen
    expect(admin.locator("#ticket_ids-error")).to_contain_text("Choose the tickets first")
    expect(admin.locator("#action-error")).to_contain_text("Choose what to do with them.")
    admin.goto(portal + "/console/?view=all")
    expect(admin.get_by_role("button", name="Apply to the ticked tickets")).to_be_hidden()
    first_box = admin.get_by_label(f"Tick #{tickets[0]['number']}", exact=True)
    first_box.scroll_into_view_if_needed()
    before = first_box.bounding_box()["y"]
    held = hold_next_refresh(admin)  # a refresh that left before the first tick and answers after it
    first_box.check()
    # the tick opened the form above the list: the page followed, the row stayed under the pointer
    assert abs(first_box.bounding_box()["y"] - before) < 2, (before, first_box.bounding_box())
    assert release(admin, held) == "kept"  # its rows, none ticked, did not replace the ticked one
    expect(admin.get_by_label(f"Tick #{tickets[0]['number']}", exact=True)).to_be_checked()
    for ticket in tickets[:2]:
        admin.get_by_label(f"Tick #{ticket['number']}", exact=True).check()
    expect(admin.locator("[data-bulk-count]")).to_have_text("(2 ticked)")
    assert next_refresh_held_back(admin)  # its rows would move under the pointer
    for ticket in tickets[:2]:
        expect(admin.get_by_label(f"Tick #{ticket['number']}", exact=True)).to_be_checked()
    expect(admin.get_by_label(f"Tick #{tickets[2]['number']}", exact=True)).not_to_be_checked()
    admin.get_by_label("Set the priority to").check()
    admin.get_by_label("New priority").select_option("emergency")
    assert_accessible(admin)
    admin.get_by_role("button", name="Apply to the ticked tickets").click()

    first, second = (f"#{t['number']}" for t in tickets[:2])
    expect(admin.locator("[data-bulk-outcome]")).to_contain_text(
        f"Set the priority to Emergency: done on 2 tickets ({first}, {second})."
    )
    assert [system.work(t["id"])["priority"] for t in tickets] == ["emergency", "emergency", "normal"]
    admin.go_back()  # the page the ticks were made on: the browser would tick the same places again
    expect(admin.get_by_label(f"Tick #{tickets[0]['number']}", exact=True)).not_to_be_checked()
    expect(admin.get_by_label("Set the priority to")).not_to_be_checked()
    admin.goto(portal + "/console/?view=all")
    admin.get_by_label(f"Tick #{tickets[2]['number']}", exact=True).check()
    admin.get_by_label("Resolve them, telling each requester what was done:").check()
    admin.get_by_label("How it was resolved").fill("The mail server is back since 10:20.")
    both_widths(admin, screenshot, "console-bulk")
    admin.get_by_role("button", name="Apply to the ticked tickets").click()

    expect(admin.locator("[data-bulk-outcome]")).to_contain_text(
        f"Resolve: done on 1 ticket (#{tickets[2]['number']})."
    )
    assert system.work(tickets[2]["id"])["status"] == "resolved"
    assert system.work(tickets[0]["id"])["status"] != "resolved"
    assert not next_refresh_held_back(admin)  # nothing ticked after the action: the list refreshes again

    for ticket in tickets[:2]:  # ada's (the team's available agent): given to bob, who is away but may have them
        admin.get_by_label(f"Tick #{ticket['number']}", exact=True).check()
    admin.get_by_label("Agent to give them to").select_option("bob")  # choosing one chooses the action
    expect(admin.get_by_label("Give them to agent")).to_be_checked()
    admin.get_by_role("button", name="Apply to the ticked tickets").click()

    expect(admin.locator("[data-bulk-outcome]")).to_contain_text(
        f"Give to Bob Marley: done on 2 tickets ({first}, {second})."
    )
    expect(admin.locator("[data-bulk-outcome]")).to_contain_text(
        "Bob Marley is away: the tickets stay with them until someone hands them on."
    )
    assert [system.work(t["id"])["agent_id"] for t in tickets[:2]] == ["bob", "bob"]
    screenshot(admin, "console-bulk-assign")


def next_refresh_held_back(page: Page) -> bool:
    """Whether the queue's next refresh (every 5 s) was held back by portal.js (its listener runs before this)."""
    return page.evaluate(
        """() => new Promise(done => document.addEventListener('htmx:beforeRequest', event => {
               if (event.detail.target.id === 'queue') done(event.defaultPrevented);
           }))"""
    )


def hold_next_refresh(page: Page) -> tuple:
    """The queue's next refresh (every 5 s), held on its way to the portal until `release`: (its route, the
    matcher that caught it). It is sent as if the list had changed (no digest of the list shown: answered 200,
    with rows; the same list is 204, which nothing swaps)."""
    held: list = []
    refresh = lambda url: "/console/queue?" in url  # noqa: E731
    page.evaluate("document.getElementById('queue').setAttribute('data-shown', '')")

    def hold(route) -> None:
        as_changed = not re.search(r"[?&]shown=[0-9a-f]", route.request.url)  # not one sent before the line above
        route.continue_() if held or not as_changed else held.append(route)  # the first one only

    page.route(refresh, hold)
    # page.evaluate lets Playwright run the route's handler in this thread
    wait_until(lambda: page.evaluate("0") == 0 and held, timeout=30, message="the queue's refresh")
    return held[0], refresh


def release(page: Page, held: tuple) -> str:
    """Let the held refresh through; once its answer comes back, whether the list was swapped or kept."""
    page.evaluate(
        """() => { window.queueAnswer = null;
                   document.addEventListener('htmx:beforeSwap', event => {
                     if (event.detail.target.id === 'queue' && window.queueAnswer === null)
                       window.queueAnswer = [event.detail.xhr.status, event.detail.shouldSwap];
                   }); }"""
    )  # listeners run in order: portal.js's has decided by then
    route, refresh = held
    try:
        route.continue_()
        wait_until(lambda: page.evaluate("window.queueAnswer"), timeout=30, message="the refresh's answer")
    finally:
        page.unroute(refresh)
    status, swap = page.evaluate("window.queueAnswer")
    assert status == 200, status  # htmx swaps no error answer whatever portal.js says
    return "swapped" if swap else "kept"


def _assignment_knows(system, ticket_id: str) -> bool:
    response = requests.get(f"{system.urls['assignment']}/tickets/{ticket_id}", headers=auth_header("admin"), timeout=5)
    return response.status_code == 200


def test_signed_out_in_another_tab_the_ticket_tab_signs_in_again_and_gets_its_note_back(
    portal_system,  # noqa: F811
    new_context,
    screenshot,
):
    system, portal = portal_system, portal_system.portal
    body = {"subject": "Paper jam on floor 2", "description": "Since the update.", "topic": "network",
            "requester": {"name": "Ana Ruiz", "email": unique_email("ana")}}  # fmt: skip
    ticket_id = system.call("POST", "intake", "/tickets", json=body)["id"]
    browser = new_context()
    tab = browser.new_page()
    sign_in(tab, portal, ADMIN_EMAIL)
    tab.goto(f"{portal}/console/tickets/{ticket_id}")
    tab.get_by_label("Add an internal note").fill("Called facilities: the tray is bent.")

    other = browser.new_page()  # the same browser, another tab
    other.goto(portal + "/console/")
    other.get_by_role("button", name="Sign out").click()
    expect(other.get_by_text("You are signed out.")).to_be_visible()

    # the ticket tab's refresh finds the session gone: the sign-in page says why, then leads back to the ticket
    expect(tab.get_by_text("You were signed out: in another tab, by an admin, or after a while.")).to_be_visible(
        timeout=20_000
    )
    screenshot(tab, "session-ended")
    tab.get_by_label("Email address").fill(ADMIN_EMAIL)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    expect(tab).to_have_url(f"{portal}/console/tickets/{ticket_id}")
    expect(tab.get_by_label("Add an internal note")).to_have_value("Called facilities: the tray is bent.")
    expect(tab.get_by_label("Add an internal note")).to_be_in_viewport()  # the page opens where the draft is
    expect(tab.get_by_text("Your unsent draft is back.")).to_be_visible()
    screenshot(tab, "session-ended-back")


def test_times_show_in_the_browsers_time_zone_saying_which(portal_system, new_context):  # noqa: F811
    """The pages write times in UTC; a browser in Paris reads each in its own zone, saying so, the UTC time on hover
    (a requester's "since 09:00" beside "08:26 UTC" read as two different moments)."""
    system, portal = portal_system, portal_system.portal
    ticket = system.call("POST", "intake", "/tickets", json={
        "subject": "Printer jams", "description": "Tray 2 again.", "topic": "hardware", "priority": "normal",
        "requester": {"name": "Ana Ruiz", "email": unique_email("ana")}})  # fmt: skip
    created = parse_time(ticket["created_at"])
    page = new_context(timezone_id="Europe/Paris").new_page()
    sign_in(page, portal, ADMIN_EMAIL)
    page.goto(f"{portal}/console/tickets/{ticket['id']}")
    first = page.locator("#live time").first  # the description's entry in the conversation
    in_paris = (created + timedelta(hours=1)).strftime("%-d %b %Y, %H:%M CET")  # December: UTC+1
    expect(first).to_have_text(in_paris)
    assert first.get_attribute("title") == when(created)  # "... UTC": what the server wrote

    # a time inside a sentence of the timeline too: sla's deadlines, "first response due 4 Dec 2026, 22:16 UTC"
    def deadlines() -> list[dict]:
        timeline = system.call("GET", "intake", f"/tickets/{ticket['id']}/timeline")["items"]
        return [entry for entry in timeline if entry["type"] == "sla.deadlines_changed"]

    wait_until(deadlines, timeout=30, interval=0.5)
    page.reload()
    due = page.locator("li", has_text="SLA deadlines").locator("time").nth(1)  # after the entry's own time
    written = due.get_attribute("title")
    assert written in deadlines()[0]["summary"] and written.endswith(" UTC")
    expect(due).to_have_text(
        (datetime.strptime(written, "%d %b %Y, %H:%M UTC") + timedelta(hours=1)).strftime("%-d %b %Y, %H:%M CET")
    )
