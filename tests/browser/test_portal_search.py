"""Search in a real browser: an agent presses / on the console, types words, opens a result with the word
marked, and sees what was done last time on the ticket page; a requester searches and finds only their own.

The whole system runs with its search service (portal_system); the new pages pass axe-core, and screenshots
are taken at desktop and phone width.
"""

from __future__ import annotations

import random
import string

from playwright.sync_api import expect

from tests.browser.helpers import assert_accessible
from tests.browser.portal_system import STAFF, portal_system, unique_email  # noqa: F401 - a fixture
from tests.browser.test_portal_journey import both_widths, open_request, sign_in, ticket_id_of
from tests.harness import wait_until

FIXED = "The office printer jams on every page since the toner was changed. Paper is stuck in the rear tray."


def opened(system, email: str, subject: str, description: str) -> dict:
    """A ticket opened through intake, as the portal opens one."""
    body = {"subject": subject, "description": description, "topic": "network", "source": "web",
            "requester": {"name": "Someone Else", "email": email}}  # fmt: skip
    return system.call("POST", "intake", "/tickets", role="portal", json=body)


def found(system, ticket_id: str, words: str) -> bool:
    items = system.call("GET", "search", "/search", params={"q": words})["items"]
    return ticket_id in [item["ticket_id"] for item in items]


def test_an_agent_finds_a_ticket_by_its_words_and_sees_a_resolved_look_alike(portal_system, new_context, screenshot):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    ana = unique_email("ana")

    # Last month's ticket like it, resolved by ada; and another requester's ticket with the same words.
    before = opened(system, unique_email("lee"), "Printer jams on every page", FIXED)
    wait_until(lambda: system.work(before["id"]).get("agent_id") == "ada", timeout=30)
    resolution = {"resolution": "Reseated the toner cartridge and cleared the rear tray; prints fine again."}
    system.call("POST", "assignment", f"/tickets/{before['id']}/resolve", role="agent", agent_id="ada", json=resolution)
    other = opened(system, unique_email("kim"), "Printer jams again", "The printer jams, toner changed yesterday.")

    # Ana opens hers from the home page: her browser may open it.
    requester = new_context().new_page()
    words = "Since the toner was changed the printer jams on every page; the rear tray is full of paper."
    surname = "Ruiz" + "".join(random.choices(string.ascii_lowercase, k=8)).capitalize()  # hers alone
    open_request(requester, portal, f"Ana {surname}", ana, "Printer jams after toner change", words)
    requester.get_by_role("button", name="Send request").click()
    expect(requester.get_by_role("heading", name="Printer jams after toner change")).to_be_visible()
    mine = ticket_id_of(requester)
    number = system.ticket(mine)["number"]
    wait_until(lambda: found(system, mine, "toner") and found(system, other["id"], "toner"), timeout=30)
    similar = f"/tickets/{mine}/similar"
    wait_until(lambda: before["id"] in [t["ticket_id"] for t in system.call("GET", "search", similar)["items"]],
               timeout=30)  # fmt: skip

    # The agent presses / on her queue, types the words and sends them.
    agent = new_context().new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    expect(agent.get_by_role("heading", name="Queues")).to_be_visible()
    agent.wait_for_load_state("domcontentloaded")  # the page's keys are its deferred script's, run by then
    agent.keyboard.press("/")
    box = agent.get_by_role("searchbox", name="Search tickets")
    expect(box).to_be_focused()
    agent.keyboard.type("toner rear tray")
    agent.keyboard.press("Enter")
    expect(agent.get_by_role("heading", name="Search tickets")).to_be_visible()
    result = agent.locator(".result").filter(has=agent.get_by_role("link", name=f"#{number} Printer jams after"))
    expect(result.locator("mark").first).to_be_visible()
    assert "toner" in [word.lower() for word in result.locator("mark").all_inner_texts()]
    expect(result.locator(".result-meta")).to_contain_text(f"from Ana {surname}")  # who asked
    expect(agent.get_by_role("searchbox", name="Words to find")).to_have_value("toner rear tray")
    assert_accessible(agent)
    both_widths(agent, screenshot, "console-search")

    # Her name finds her request, not the other requester's with the same words.
    box = agent.get_by_role("searchbox", name="Words to find")
    box.fill(f"{surname.lower()} toner")
    box.press("Enter")
    expect(agent.get_by_role("heading", name="1 ticket found")).to_be_visible()
    expect(agent.get_by_role("link", name=f"#{number} Printer jams after")).to_be_visible()
    box = agent.get_by_role("searchbox", name="Words to find")
    box.fill("toner rear tray")
    box.press("Enter")
    expect(agent.get_by_role("searchbox", name="Words to find")).to_have_value("toner rear tray")

    # On the results page / goes to its own box, and Escape leaves it with the words kept.
    agent.wait_for_load_state("domcontentloaded")
    agent.keyboard.press("/")
    expect(agent.get_by_role("searchbox", name="Words to find")).to_be_focused()
    agent.keyboard.press("Escape")
    expect(agent.get_by_role("searchbox", name="Words to find")).not_to_be_focused()
    expect(agent.get_by_role("searchbox", name="Words to find")).to_have_value("toner rear tray")

    # She opens it: the panel shows the resolved look-alike and what was done.
    result.get_by_role("link").click()
    expect(agent.get_by_role("heading", name="Printer jams after toner change")).to_be_visible()
    panel = agent.locator("section", has=agent.get_by_role("heading", name="Similar resolved tickets"))
    expect(panel.get_by_role("link", name=f"#{before['number']} Printer jams on every page")).to_be_visible()
    expect(panel).to_contain_text("Reseated the toner cartridge")
    expect(panel.get_by_role("link", name=f"#{other['number']} Printer jams again")).to_have_count(0)  # open
    assert_accessible(agent)
    both_widths(agent, screenshot, "console-similar")
    assert system.work(mine)["agent_id"] == "ada"  # hers to answer: what was done then goes into her reply
    reply = agent.get_by_label("Reply to the requester")
    reply.fill("Hello Ana,")
    panel.get_by_role("button", name=f"Use in reply: #{before['number']}'s resolution").click()
    expect(reply).to_have_value("Hello Ana,\n\n" + resolution["resolution"])
    reply.fill("")
    reply.press("Escape")  # out of the box: the page's keys work again

    # n goes to the note box; Escape leaves it with the words kept, and the page's keys work again.
    note = agent.get_by_label("Add an internal note")
    agent.keyboard.press("n")
    expect(note).to_be_focused()
    agent.keyboard.type("check the fuser")
    agent.keyboard.press("Escape")
    expect(note).not_to_be_focused()
    expect(note).to_have_value("check the fuser")
    agent.keyboard.press("n")
    expect(note).to_be_focused()

    # Ana searches her requests: hers only, though the others' say the same words.
    requester.get_by_role("link", name="Your requests").click()
    expect(requester.get_by_role("link", name=f"Request #{number}: Printer jams after toner change")).to_be_visible()
    assert_accessible(requester)
    requester.get_by_label("Search the requests on this device").fill("printer toner")
    requester.get_by_role("button", name="Search").click()
    expect(requester.get_by_role("heading", name="1 request found")).to_be_visible()
    expect(requester.get_by_role("link", name=f"Request #{number}: Printer jams after toner change")).to_be_visible()
    expect(requester.locator(".result")).to_have_count(1)
    expect(requester.locator(".result mark").first).to_be_visible()
    assert_accessible(requester)
    both_widths(requester, screenshot, "requester-search")
