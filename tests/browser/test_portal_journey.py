"""A ticket's whole life in a real browser: the requester, two agents, the emails between them.

Each step is what a person does: fill the labelled fields, press the named buttons, follow the link
in the email. The pages of the journey pass axe-core; screenshots are taken at desktop and phone width.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.helpers import assert_accessible
from tests.browser.portal_system import ADMIN_EMAIL, PASSWORD, STAFF, portal_system, unique_email  # noqa: F401 - a fixture
from tests.harness import wait_until

PHONE = {"width": 390, "height": 844}


def open_request(page: Page, portal: str, name: str, email: str, subject: str, description: str) -> None:
    page.goto(portal + "/")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Your email address").fill(email)
    page.get_by_label("What is it about?").select_option(label="Network & VPN")
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Describe the problem").fill(description)


def sign_in(page: Page, portal: str, email: str, password: str = PASSWORD) -> None:
    page.goto(portal + "/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def ticket_id_of(page: Page) -> str:
    return re.search(r"/tickets/([0-9a-f]+)", page.url).group(1)


def both_widths(page: Page, screenshot, name: str) -> None:
    """A screenshot at desktop width and one at phone width, of the page as it is."""
    screenshot(page, f"{name}-desktop")
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-phone")
    page.set_viewport_size(size)


def test_a_ticket_from_the_form_to_resolved_and_reopened(portal_system, new_context, screenshot):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    ana = unique_email("ana")

    # The requester opens a ticket; a double click on Send makes one ticket.
    requester = new_context().new_page()
    open_request(requester, portal, "Ana Ruiz", ana, "VPN drops every hour", "Since Monday, every hour.")
    assert_accessible(requester)
    requester.get_by_role("button", name="Send request").dblclick()
    expect(requester.get_by_role("heading", name="VPN drops every hour")).to_be_visible()
    expect(
        requester.get_by_text("Status: Received").or_(requester.get_by_text("Status: With an agent"))
    ).to_be_visible()
    # what the form did is said, and focused: a screen reader reads it, Tab goes on from there
    expect(requester.get_by_text("Thank you. We have your request", exact=False)).to_be_focused()
    ticket_id = ticket_id_of(requester)
    mine = system.call("GET", "intake", "/tickets", params={"requester_email": ana})["items"]
    assert [t["id"] for t in mine] == [ticket_id]
    number = mine[0]["number"]

    # It is assigned automatically, to ada (bob is away).
    wait_until(lambda: system.work(ticket_id).get("agent_id") == "ada", timeout=30)
    wait_until(lambda: system.sla_knows(ticket_id), timeout=30)  # the page draws sla's clocks when it loads

    # The agent signs in, finds it in her queue and opens it.
    agent = new_context().new_page()
    agent.goto(portal + "/console/")
    expect(agent.get_by_role("heading", name="Sign in")).to_be_visible()  # no session: the sign-in page
    assert_accessible(agent)
    sign_in(agent, portal, STAFF["ada"]["email"])
    expect(agent.get_by_role("heading", name="Queues")).to_be_visible()
    row = agent.get_by_role("link", name=f"#{number} VPN drops every hour")
    expect(row).to_be_visible()
    assert_accessible(agent)
    both_widths(agent, screenshot, "console-queue")
    row.click()
    expect(agent.get_by_role("heading", name=f"#{number} VPN drops every hour")).to_be_visible()
    expect(agent.get_by_text("First response", exact=False).first).to_be_visible()

    # A note, then a reply.
    agent.get_by_label("Add an internal note").fill("Gateway logs show IKEv2 rekey failures.")
    agent.get_by_role("button", name="Add note").click()
    expect(agent.get_by_text("Note added.")).to_be_focused()  # not the page's top: Tab goes on from the notice
    expect(agent.get_by_text("Internal note: only agents see this")).to_be_visible()
    expect(agent.locator(".entry--note .entry-meta").first).to_contain_text("Ada Lovelace")  # her name, not her id
    agent.get_by_label("Reply to the requester").fill("Hello Ana, please install the new VPN profile.")
    agent.get_by_label("Then set the status to").select_option(label="Waiting on requester")
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.get_by_text("Reply sent.")).to_be_visible()
    assert_accessible(agent)
    both_widths(agent, screenshot, "console-ticket")

    # The requester follows the link in the reply's email: the reply is there, the note is not.
    wait_until(lambda: any("new VPN profile" in m.get_body(("plain",)).get_content()
                           for m in system.emails_to(ana, number)), timeout=30)  # fmt: skip
    # intake learns the reply and the status from the same events as notify, in a worker of its own
    wait_until(lambda: (t := system.ticket(ticket_id))["status"] == "waiting_on_requester"
               and any(e["kind"] == "reply" for e in t["thread"]), timeout=30)  # fmt: skip
    wait_until(lambda: system.work(ticket_id)["status"] == "waiting_on_requester", timeout=30)
    agent.reload()  # a follow-up reply keeps the ticket waiting on the requester, unless the agent says otherwise
    expect(agent.get_by_label("Then set the status to")).to_have_value("waiting_on_requester")
    link = system.links_to(ana, number)[-1]
    reader = new_context().new_page()
    reader.goto(link)
    expect(reader.get_by_text("Hello Ana, please install the new VPN profile.")).to_be_visible()
    assert "/t/" not in reader.url and link.rsplit("/", 1)[1] not in reader.url
    expect(reader.get_by_text("Gateway logs show IKEv2 rekey failures.")).to_have_count(0)
    expect(reader.get_by_text("Status: Waiting for your reply")).to_be_visible()
    assert_accessible(reader)
    both_widths(reader, screenshot, "requester-ticket")
    reader.get_by_label("Your message").fill("Installed it; it dropped again at 10:00.")
    reader.get_by_role("button", name="Send message").click()
    expect(reader.get_by_text("Your message was sent.")).to_be_in_viewport()  # said where the page lands
    expect(reader.get_by_text("Installed it; it dropped again at 10:00.")).to_be_in_viewport()  # by the message

    # The agent sees the new message on the page she has open, without reloading it.
    expect(agent.get_by_text("Installed it; it dropped again at 10:00.")).to_be_visible(timeout=40_000)
    expect(agent.get_by_text("wrote a new message")).to_be_visible()

    # The agent resolves; the requester reopens it by replying. The page she acts on is one drawn after assignment
    # learnt the message (one drawn before would hold her resolve back, as made on a page out of date).
    wait_until(lambda: system.work(ticket_id)["status"] == "in_progress", timeout=30)
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    agent.get_by_role("button", name="Resolve").click()  # nothing said: the summary links to the field
    agent.get_by_role("link", name="Say how it was resolved: the requester reads it.").click()
    expect(agent.get_by_label("Resolution")).to_be_focused()
    expect(agent.get_by_label("Resolution")).to_have_attribute("aria-invalid", "true")
    screenshot(agent, "console-resolve-empty")
    agent.get_by_label("Resolution").fill("New profile with a shorter rekey interval.")
    agent.get_by_role("button", name="Resolve").click()
    expect(agent.get_by_text("Ticket resolved.")).to_be_visible()
    resolution_clock = agent.locator("#live-clocks li", has_text="Resolution")
    expect(resolution_clock).to_contain_text("Stopped within its target", timeout=40_000)  # sla stops it: no reload
    # The requester's open page shows it by itself, and says so.
    expect(reader.get_by_text("Status: Resolved")).to_be_visible(timeout=40_000)
    expect(reader.get_by_role("status").filter(has_text="The status changed to “Resolved”.")).to_be_visible()
    expect(reader.get_by_role("heading", name="Reply to reopen your request")).to_be_visible()
    expect(reader.get_by_text("What was done: New profile with a shorter rekey interval.")).to_be_visible()
    reader.get_by_label("Good, I am satisfied").check()  # the rating came with the update too
    both_widths(reader, screenshot, "requester-rating")
    reader.get_by_label("Anything you would like to tell us (optional)").fill("Quick and clear, thank you.")
    reader.get_by_label("Your message").fill("One question though:")  # a draft, not sent with the rating
    reader.get_by_role("button", name="Send rating").click()
    expect(reader.get_by_text("Thank you for your rating")).to_be_visible()
    expect(reader.get_by_label("Your message")).to_have_value("One question though:")
    expect(reader.get_by_text("You rated this request: Good, I am satisfied")).to_be_visible()
    assert_accessible(reader)
    agent.reload()
    expect(agent.get_by_role("heading", name="The requester's rating")).to_be_visible()
    expect(agent.get_by_text("Quick and clear, thank you.")).to_be_visible()
    screenshot(agent, "console-rating")
    expect(reader.get_by_text("What was done: New profile with a shorter rekey interval.")).to_be_visible()
    reader.get_by_label("Your message").fill("Sorry, it is back this morning.")
    reader.get_by_role("button", name="Send message").click()
    expect(reader.get_by_text("Your message was sent, and your request is open again")).to_be_in_viewport()
    wait_until(lambda: system.ticket(ticket_id)["status"] not in ("resolved", "closed"), timeout=30)
    wait_until(lambda: system.work(ticket_id)["status"] not in ("resolved", "closed"), timeout=30)
    reader.reload()  # reopened: what was tried is still there to read
    tried = reader.locator("#request-status .resolution")
    expect(tried).to_contain_text("Tried before it was reopened (resolved")
    expect(tried).to_contain_text("New profile with a shorter rekey interval.")
    expect(reader.get_by_text("What was done:")).to_have_count(0)
    screenshot(reader, "requester-reopened")

    # A teammate on the ticket ada has: no claim to offer (it would be refused), but a note for her.
    other = new_context().new_page()
    sign_in(other, portal, STAFF["bob"]["email"])
    other.goto(f"{portal}/console/tickets/{ticket_id}")
    expect(other.get_by_text("Also viewing now: Ada Lovelace")).to_be_visible()  # her page is open too
    expect(other.get_by_role("button", name="Claim this ticket")).to_have_count(0)
    other.get_by_label("Add an internal note").fill("Ada: the same happened to the Lisbon office last week.")
    other.get_by_label("Add an internal note").press("Control+Enter")  # the keyboard's way to add it
    expect(other.get_by_text("Note added.")).to_be_visible()
    assert system.work(ticket_id)["agent_id"] == "ada"
    assert system.work(ticket_id)["notes"][-1]["by"] == "bob"

    # The requester closes it: asked once more first, since a closed request stays closed.
    reader.reload()
    expect(reader.get_by_role("button", name="Yes, close it")).to_be_hidden()
    reader.get_by_label("Your message").fill("Never mind, it works after a restart.")  # typed, not sent
    reader.get_by_text("Close request", exact=True).click()
    unsent = reader.get_by_text("Closing does not send a message typed above")  # said as a warning while typed
    expect(unsent).to_have_class(re.compile(r"\bnotice--warning\b"))
    screenshot(reader, "requester-close-unsent")
    reader.get_by_label("Your message").fill("")
    expect(unsent).not_to_have_class(re.compile(r"\bnotice--warning\b"))
    reader.get_by_role("button", name="Yes, close it").click()
    expect(reader.get_by_text("Your request is closed. Thank you.")).to_be_visible()
    wait_until(lambda: system.ticket(ticket_id)["status"] == "closed", timeout=30)


def test_a_reply_onto_a_ticket_that_changed_waits_for_the_agent(portal_system, new_context):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    ana = unique_email("ana")
    created = system.call("POST", "intake", "/tickets", json={
        "subject": "Printer jams", "description": "Every page.", "topic": "network",
        "requester": {"name": "Ana Ruiz", "email": ana}})  # fmt: skip
    ticket_id = created["id"]
    wait_until(lambda: system.work(ticket_id).get("agent_id") == "ada", timeout=30)
    agent = new_context().new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    agent.get_by_label("Reply to the requester").fill("Which printer is it?")

    # Meanwhile the requester writes: the open page says so, and the half-typed reply stays.
    system.call("POST", "intake", f"/tickets/{ticket_id}/messages", json={"body": "It is the one on floor 2."})
    expect(agent.get_by_text("This ticket changed since you opened it:")).to_be_visible(timeout=40_000)
    expect(agent.get_by_text("It is the one on floor 2.")).to_be_visible()
    expect(agent.get_by_label("Reply to the requester")).to_have_value("Which printer is it?")

    # Sending asks first; nothing is sent until the agent confirms.
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.get_by_role("alert")).to_contain_text("Your reply has not been sent yet")
    expect(agent.get_by_label("Reply to the requester")).to_have_value("Which printer is it?")
    assert [e for e in system.ticket(ticket_id)["thread"] if e["kind"] == "reply"] == []
    agent.get_by_role("button", name="Send reply anyway").click()
    expect(agent.get_by_text("Reply sent.")).to_be_visible()
    wait_until(lambda: [e["body"] for e in system.ticket(ticket_id)["thread"] if e["kind"] == "reply"]
               == ["Which printer is it?"], timeout=30)  # fmt: skip

    # A resolve asks the same way: the requester wrote while the agent's page was open.
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    agent.get_by_label("Resolution").fill("Cleared the paper path.")
    system.call("POST", "intake", f"/tickets/{ticket_id}/messages", json={"body": "It jams again now."})
    wait_until(lambda: len(system.ticket(ticket_id)["thread"]) == 3, timeout=30)
    agent.get_by_role("button", name="Resolve", exact=True).click()
    expect(agent.get_by_role("alert")).to_contain_text("It is not resolved yet")
    expect(agent.get_by_role("alert")).to_contain_text("wrote a new message")
    assert system.work(ticket_id)["status"] != "resolved"
    expect(agent.get_by_label("Resolution")).to_have_value("Cleared the paper path.")
    # The requester writes once more before the agent confirms: "anyway" covers what was shown, not this.
    system.call("POST", "intake", f"/tickets/{ticket_id}/messages", json={"body": "Now it smokes."})
    wait_until(lambda: len(system.ticket(ticket_id)["thread"]) == 4, timeout=30)
    agent.get_by_role("button", name="Resolve anyway").click()
    expect(agent.get_by_role("alert")).to_contain_text("It is not resolved yet")
    assert system.work(ticket_id)["status"] != "resolved"
    agent.get_by_role("button", name="Resolve anyway").click()
    expect(agent.get_by_text("Ticket resolved.")).to_be_visible()
    wait_until(lambda: system.work(ticket_id)["status"] == "resolved", timeout=30)
    # said once: the address loses the notice, and a reload (the ticket may be reopened by then) shows none
    expect(agent).not_to_have_url(re.compile(r"notice="))
    agent.reload()
    expect(agent.get_by_role("heading", name=re.compile(r"#\d+"))).to_be_visible()
    expect(agent.get_by_text("Ticket resolved.")).to_have_count(0)

    # Resolved by someone else while a reply is being written: the reply form is gone, the words are not.
    system.call("POST", "intake", f"/tickets/{ticket_id}/messages", json={"body": "It smokes still."})  # reopens
    wait_until(lambda: system.work(ticket_id)["status"] not in ("resolved", "closed"), timeout=30)
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    agent.get_by_label("Reply to the requester").fill("Unplug it and wait for me.")
    system.call("POST", "assignment", f"/tickets/{ticket_id}/resolve", json={"resolution": "Replaced it."})
    wait_until(lambda: system.work(ticket_id)["status"] == "resolved", timeout=30)
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.get_by_role("alert")).to_contain_text("Your reply has not been sent yet")
    expect(agent.get_by_role("alert")).to_contain_text("Your reply, not sent")
    expect(agent.get_by_role("alert")).to_contain_text("Unplug it and wait for me.")
    expect(agent.get_by_label("Reply to the requester")).to_have_count(0)
    expect(agent.get_by_label("Add an internal note")).to_have_value("Unplug it and wait for me.")  # to keep
    assert "Unplug" not in str(system.ticket(ticket_id)["thread"])
    # The agent reopens it (intake's ticket.reopened): it comes back to her, and takes the reply again.
    agent.get_by_label("Reopen it, because").fill("Not solved: it smokes still.")
    agent.get_by_role("button", name="Reopen").click()
    expect(agent.get_by_text("Ticket reopened.")).to_be_visible()
    wait_until(lambda: system.work(ticket_id)["status"] not in ("resolved", "closed"), timeout=30)
    agent.reload()
    expect(agent.get_by_label("Reply to the requester")).to_be_visible()
    assert system.ticket(ticket_id)["status"] not in ("resolved", "closed")


def test_a_reply_from_a_second_tab_waits_when_the_agent_replied_from_the_first(portal_system, new_context, screenshot):  # noqa: F811, E501
    system, portal = portal_system, portal_system.portal
    created = system.call("POST", "intake", "/tickets", json={
        "subject": "Scanner sends blank pages", "description": "Every scan.", "topic": "network",
        "requester": {"name": "Ana Ruiz", "email": unique_email("ana")}})  # fmt: skip
    ticket_id = created["id"]
    wait_until(lambda: system.work(ticket_id).get("agent_id") == "ada", timeout=30)
    context = new_context()
    first, second = context.new_page(), context.new_page()  # one browser, one session, two tabs
    sign_in(first, portal, STAFF["ada"]["email"])
    for tab in (first, second):
        tab.goto(f"{portal}/console/tickets/{ticket_id}")
    second.get_by_label("Reply to the requester").fill("Is the glass clean?")
    first.get_by_label("Reply to the requester").fill("Which scanner is it?")
    first.get_by_role("button", name="Send reply").click()
    expect(first.get_by_text("Reply sent.")).to_be_visible()

    second.get_by_role("button", name="Send reply").click()
    expect(second.get_by_role("alert")).to_contain_text("Your reply has not been sent yet")
    own = "You, in another tab or window or an earlier try: replied to the requester"
    expect(second.get_by_text(own).first).to_be_visible()
    expect(second.get_by_label("Reply to the requester")).to_have_value("Is the glass clean?")
    screenshot(second, "console-own-reply-elsewhere")
    second.get_by_role("button", name="Send reply anyway").click()
    expect(second.get_by_text("Reply sent.")).to_be_visible()
    wait_until(lambda: [e["body"] for e in system.ticket(ticket_id)["thread"] if e["kind"] == "reply"]
               == ["Which scanner is it?", "Is the glass clean?"], timeout=30)  # fmt: skip


def test_the_queue_refreshes_itself_and_keys_move_between_tickets(portal_system, new_context, screenshot):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    agent = new_context().new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    expect(agent.get_by_role("heading", name="Queues")).to_be_visible()
    subject = f"Laptop fan {unique_email('x')[:10]}"
    created = system.call("POST", "intake", "/tickets", json={
        "subject": subject, "description": "Loud.", "topic": "network",
        "requester": {"name": "Li", "email": unique_email("li")}})  # fmt: skip
    # it appears without a reload
    expect(agent.get_by_role("link", name=re.compile(re.escape(subject)))).to_be_visible(timeout=40_000)
    # j moves focus to the first ticket, then down; typing in a field is never taken for a key
    agent.keyboard.press("j")
    first = agent.locator("[data-row-link]").first
    expect(first).to_be_focused()
    agent.get_by_label("Topic").focus()
    agent.keyboard.press("j")
    expect(agent.get_by_label("Topic")).to_be_focused()
    assert created["id"]
    # j/k go on from the row last reached after a detour to the search box (/, then Escape)
    system.call("POST", "intake", "/tickets", json={
        "subject": f"Second {subject}", "description": "Loud too.", "topic": "network",
        "requester": {"name": "Li", "email": unique_email("li")}})  # fmt: skip
    expect(agent.get_by_role("link", name=re.compile(re.escape(f"Second {subject}")))).to_be_visible(timeout=40_000)
    rows = agent.locator("[data-row-link]")
    rows.first.focus()
    agent.keyboard.press("j")
    expect(rows.nth(1)).to_be_focused()
    agent.keyboard.press("/")
    expect(agent.locator("[data-search-box]").first).to_be_focused()
    agent.keyboard.press("Escape")
    agent.keyboard.press("j")
    expect(rows.nth(min(2, rows.count() - 1))).to_be_focused()  # the row after the second (or it, the last)
    # the keys are said where a keyboard is likely, not on a phone's screen
    hint = agent.locator(".keys", has_text="next/previous ticket")
    search_key = agent.locator(".header-search .keys")
    expect(hint).to_be_visible()
    expect(search_key).to_be_visible()
    assert "/" not in agent.get_by_role("searchbox", name="Search tickets").get_attribute(
        "placeholder"
    )  # hidden with the rest
    # single-key shortcuts can be turned off (a speech-input user's words would press them), by this browser
    toggle = agent.get_by_role("button", name="Turn single-key shortcuts off")
    toggle.click()
    expect(hint).to_be_hidden()
    expect(search_key).to_be_hidden()
    rows.first.focus()
    agent.keyboard.press("j")
    expect(rows.first).to_be_focused()  # j is a letter again
    agent.keyboard.press("/")
    expect(agent.locator("[data-search-box]").first).not_to_be_focused()
    agent.reload()
    screenshot(agent, "console-keys-off")
    search_box = agent.get_by_role("searchbox", name="Search tickets")
    expect(search_box).not_to_have_attribute("aria-keyshortcuts", "/")  # not announced while off
    agent.get_by_role("button", name="Turn single-key shortcuts on").click()  # remembered; and back on
    expect(hint).to_be_visible()
    expect(search_box).to_have_attribute("aria-keyshortcuts", "/")
    rows.first.focus()
    agent.keyboard.press("j")
    expect(rows.nth(1)).to_be_focused()
    agent.set_viewport_size(PHONE)  # a narrow window (a page zoomed to 200 %) still has a keyboard: said
    expect(hint).to_be_visible()
    expect(search_key).to_be_visible()
    phone = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()  # a touch screen: not said
    sign_in(phone, portal, STAFF["ada"]["email"])
    expect(phone.get_by_role("heading", name="Queues")).to_be_visible()
    expect(phone.locator(".keys", has_text="next/previous ticket")).to_be_hidden()


def test_the_queue_refreshing_keeps_the_page_where_the_keys_left_it(portal_system, new_context):  # noqa: F811
    """htmx puts the new rows in before it takes the old out; Chromium kept the focused old row still (scroll
    anchoring) and so threw the page to its end at every refresh."""
    system, portal = portal_system, portal_system.portal
    for n in range(10):
        system.call("POST", "intake", "/tickets", json={
            "subject": f"Dock {n} {unique_email('x')[:8]}", "description": "No picture.", "topic": "network",
            "requester": {"name": "Li", "email": unique_email("li")}})  # fmt: skip
    agent = new_context(viewport={"width": 1280, "height": 420}).new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    rows = agent.locator("[data-row-link]")
    expect(rows.nth(9)).to_be_attached(timeout=40_000)
    agent.locator("h1").click()
    for _ in range(6):
        agent.keyboard.press("j")
    expect(rows.nth(5)).to_be_focused()
    before = agent.evaluate("window.scrollY")
    assert before > 0  # the list is longer than the window, and the keys took the page down
    after = agent.evaluate("""() => new Promise(done => {
        document.addEventListener("htmx:afterSettle", event => {
            if (event.detail.target.id === "queue") done(window.scrollY);
        });
        document.getElementById("queue").setAttribute("data-shown", "");  // the next one is swapped in, as changed
        setTimeout(() => done(null), 60000);
    })""")  # the next refresh (every 5 s)
    assert after is not None, "the queue did not refresh within a minute"
    assert abs(after - before) <= 2, (before, after)
    expect(rows.nth(5)).to_be_focused()

    # The focused row goes (resolved elsewhere): j goes on to the row that followed it, not back to the first.
    gone, following = rows.nth(5).get_attribute("href"), rows.nth(6).get_attribute("href")
    system.call("POST", "assignment", f"/tickets/{gone.rsplit('/', 1)[1]}/resolve", json={"resolution": "Done."})
    expect(agent.locator(f'[data-row-link][href="{gone}"]')).to_have_count(0, timeout=40_000)
    agent.keyboard.press("j")
    expect(agent.locator(f'[data-row-link][href="{following}"]')).to_be_focused()


def test_the_queue_keeps_the_focus_on_a_tab_while_it_refreshes(portal_system, new_context):  # noqa: F811
    """A refresh that finds the list unchanged swaps nothing (204), and one that finds it changed puts the focus back
    on the tab it was on (each refresh threw it to the page's top: an accessibility tester's find)."""
    system, portal = portal_system, portal_system.portal
    agent = new_context().new_page()
    refused = []  # htmx settled the rows' style attribute, which the CSP refuses (an admin tester's console)
    agent.on("console", lambda message: "Content Security Policy" in message.text and refused.append(message.text))
    sign_in(agent, portal, STAFF["ada"]["email"])
    tab = agent.locator("#tab-team")
    tab.focus()
    answers = agent.evaluate("""() => new Promise(done => {
        const statuses = [];
        document.addEventListener("htmx:afterRequest", event => {
            if (event.detail.elt.id === "queue" && statuses.push(event.detail.xhr.status) === 2) done(statuses);
        });
        setTimeout(() => done(statuses), 60000);
    })""")  # two refreshes (every 5 s): 204 while the list is as shown, 200 when it changed (a row's time left does,
    # each minute; the 204 itself is held in tests/integration/test_portal_queue.py, with the clock held still)
    assert len(answers) == 2 and set(answers) <= {200, 204}, answers
    expect(tab).to_be_focused()
    subject = f"Dock flickers {unique_email('x')[:8]}"
    system.call("POST", "intake", "/tickets", json={
        "subject": subject, "description": "On and off.", "topic": "network",
        "requester": {"name": "Li", "email": unique_email("li")}})  # fmt: skip
    expect(agent.get_by_role("link", name=re.compile(re.escape(subject)))).to_be_visible(timeout=40_000)
    expect(tab).to_be_focused()
    assert refused == []


def test_a_mistake_in_check_a_request_keeps_the_request_being_written(portal_system, new_context):  # noqa: F811
    """ "Email me a link" with a mistyped address, a request half written beside it: the page of the error keeps
    what was typed in both, and the request then sends (it came back empty, and then "This form has expired")."""
    system, portal = portal_system, portal_system.portal
    page = new_context().new_page()
    email = unique_email("omar")
    open_request(page, portal, "Omar Haddad", email, "Wi-Fi drops in room 4", "Since Monday, every few minutes.")
    page.get_by_label("Email address", exact=True).fill("omar.other@")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.locator("#status_email-error")).to_be_visible()
    expect(page.get_by_label("Your name")).to_have_value("Omar Haddad")
    expect(page.get_by_label("Describe the problem")).to_have_value("Since Monday, every few minutes.")
    expect(page.get_by_label("What is it about?")).to_have_value("network")
    expect(page).to_have_title(re.compile(r"^Error: "))
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name=re.compile("Wi-Fi drops in room 4"))).to_be_visible()
    assert system.call("GET", "intake", "/tickets", params={"requester_email": email})["items"]


def test_a_ticket_page_that_updates_itself_keeps_what_is_being_read_in_its_place(portal_system, new_context):  # noqa: F811
    """A notice put in above the conversation ("... wrote a new message") pushed what the agent read down."""
    system, portal = portal_system, portal_system.portal
    created = system.call("POST", "intake", "/tickets", json={
        "subject": "Scanner drops pages", "description": "Every second page.", "topic": "network",
        "requester": {"name": "Li", "email": unique_email("li")}})  # fmt: skip
    ticket_id = created["id"]
    for n in range(8):
        system.call("POST", "intake", f"/tickets/{ticket_id}/messages", json={"body": f"Update {n}.\n" * 6})
    wait_until(lambda: system.work(ticket_id).get("agent_id") == "ada", timeout=30)
    agent = new_context(viewport={"width": 1280, "height": 500}).new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    reading = agent.locator(".conversation .entry").filter(has_text="Update 5.")
    expect(reading).to_be_visible()
    reading.scroll_into_view_if_needed()
    agent.evaluate("window.scrollBy(0, -40)")
    before = reading.bounding_box()["y"]

    system.call("POST", "intake", f"/tickets/{ticket_id}/messages", json={"body": "It works now, thanks."})
    expect(agent.locator(".conversation .entry").filter(has_text="It works now")).to_be_attached(timeout=40_000)
    expect(agent.locator("#live-notices")).to_contain_text("new message")
    wait_until(lambda: abs(reading.bounding_box()["y"] - before) <= 2, timeout=10,  # set right after the swap
               message=f"the entry read at {before} moved")  # fmt: skip


def test_an_agent_inserts_a_saved_reply_and_changes_it_before_sending(portal_system, new_context, screenshot):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    ana = unique_email("ana")
    earlier = system.call("POST", "intake", "/tickets", json={
        "subject": "New laptop for Ana", "description": "Starting Monday.", "topic": "network",
        "requester": {"name": "Ana Ruiz", "email": ana}})  # fmt: skip
    created = system.call("POST", "intake", "/tickets", json={
        "subject": "Forgot my password", "description": "Locked out.", "topic": "network",
        "requester": {"name": "Ana Ruiz", "email": ana}})  # fmt: skip
    ticket_id, number = created["id"], created["number"]
    wait_until(lambda: system.work(ticket_id).get("agent_id") == "ada", timeout=30)

    # An admin keeps the answer once.
    admin = new_context().new_page()
    sign_in(admin, portal, ADMIN_EMAIL)
    admin.goto(portal + "/admin/replies")
    admin.get_by_label("Title").fill("Password reset: self-service")
    admin.get_by_label("Text").fill(
        "Hello {requester_first_name},\n\nReset it at the self-service page (#{ticket_number})."
    )
    admin.get_by_role("button", name="Add saved reply").click()
    expect(admin.get_by_text("The saved reply is added")).to_be_visible()
    assert_accessible(admin)

    # The agent has typed a line, then inserts it after that line, with the ticket's details in it.
    agent = new_context().new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    others = agent.get_by_role("region", name="Ana Ruiz's other requests")
    expect(others.get_by_role("link", name=f"#{earlier['number']} New laptop for Ana")).to_be_visible()
    box = agent.get_by_label("Reply to the requester")
    box.fill("Sorry for the wait.")
    agent.get_by_role("button", name="Insert", exact=True).click()  # none chosen yet: said next to the list
    expect(agent.get_by_role("alert").filter(has_text="Choose a saved reply first, then Insert.")).to_be_visible()
    expect(box).to_have_value("Sorry for the wait.")
    box.press("Control+a")  # selected, to copy it say: the saved reply goes after it, not over it
    agent.get_by_label("Insert a saved reply").select_option(label="Password reset: self-service")
    agent.get_by_role("button", name="Insert", exact=True).click()
    inserted = f"Sorry for the wait.\n\nHello Ana,\n\nReset it at the self-service page (#{number})."
    expect(box).to_have_value(inserted)
    expect(box).to_be_focused()
    expect(agent.get_by_text("Choose a saved reply first, then Insert.")).to_have_count(0)
    box.press("Control+z")  # as typing is undone
    expect(box).to_have_value("Sorry for the wait.")
    box.press("Control+Shift+z")
    expect(box).to_have_value(inserted)
    assert_accessible(agent)
    screenshot(agent, "console-saved-reply")

    # Another button of the page does not throw away what is typed in the reply and note boxes.
    agent.get_by_label("Add an internal note").fill("Checked the directory first.")
    agent.get_by_label("Status", exact=True).select_option(label="In progress")
    agent.get_by_role("button", name="Set status").click()
    expect(agent.get_by_text("Status changed.")).to_be_visible()
    expect(box).to_have_value(inserted)
    expect(agent.get_by_label("Add an internal note")).to_have_value("Checked the directory first.")
    expect(agent.get_by_text("Your unsent draft is back.").first).to_be_visible()
    box.press("End")
    box.type(" It takes a minute.")
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.get_by_text("Reply sent.")).to_be_visible()
    replies = wait_until(lambda: [e["body"] for e in system.ticket(ticket_id)["thread"] if e["kind"] == "reply"],
                         timeout=30)  # fmt: skip
    assert replies == [inserted + " It takes a minute."]
    agent.go_back()  # to the page it was sent from: the browser does not fill the sent reply in again
    expect(agent.get_by_label("Add an internal note")).to_have_value("Checked the directory first.")
    expect(box).to_have_value("")
    agent.reload()  # the sent reply's draft has ended; the note's is still there
    expect(box).to_have_value("")
    expect(agent.get_by_label("Add an internal note")).to_have_value("Checked the directory first.")

    # Signed out, the tab keeps no one's drafts: a teammate signing in on it finds an empty note box.
    agent.get_by_role("button", name="Sign out").click()
    expect(agent.get_by_text("You are signed out.")).to_be_visible()
    sign_in(agent, portal, STAFF["bob"]["email"])
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    expect(agent.get_by_label("Add an internal note")).to_have_value("")
    expect(agent.get_by_text("Your unsent draft is back.")).to_have_count(0)


def test_back_after_forgetting_the_requests_shows_no_ones_answers(portal_system, new_context):  # noqa: F811
    """A shared computer: the requester opens a request, then makes the device forget it; the next person presses
    Back to the form, which the browser would fill in again with what the previous person typed."""
    portal = portal_system.portal
    page = new_context().new_page()
    open_request(page, portal, "Ana Ruiz", unique_email("ana"), "Salary slip", "Account 12345 does not load.")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name="Salary slip")).to_be_visible()
    page.get_by_role("link", name="Your requests").click()
    page.get_by_role("button", name="Forget my requests on this device").click()
    expect(page.get_by_text("this device no longer opens your requests")).to_be_visible()

    # Back as the browser's button does (history.back(), then the page it shows): page.go_back() waits for the load
    # and fails when the browser aborts and restarts it (seen once on a busy machine: net::ERR_ABORTED)
    page.evaluate("history.back()")  # "Your requests": none
    expect(page.get_by_role("heading", name="Your requests", exact=True)).to_be_visible()
    page.evaluate("history.back()")  # the request's page: not this browser's any more
    expect(page.get_by_role("heading", name="We cannot show this request")).to_be_visible()
    page.evaluate("history.back()")  # the form

    expect(page.get_by_role("heading", name="Get help")).to_be_visible()
    expect(page.get_by_label("Describe the problem")).to_have_value("")
    expect(page.get_by_label("Subject")).to_have_value("")
    expect(page.get_by_label("Your email address")).to_have_value("")


def test_an_agent_merges_a_request_sent_twice_into_the_first(portal_system, new_context, screenshot):  # noqa: F811
    """The same requester writes twice about one problem: the agent merges the second into the first; the first holds
    the second's words as a note, the requester is emailed where it goes on, and their page says "Merged"."""
    system, portal = portal_system, portal_system.portal
    ana = unique_email("ana")
    body = {"requester": {"name": "Ana Ruiz", "email": ana}, "topic": "network", "priority": "normal"}
    # the first by email (its address is where it came from: a request may be kept only then, or once a link emailed
    # to the address was used), the second through the form
    email = {**body, "subject": "VPN drops", "description": "Hourly.", "source": "email"}
    first = system.call("POST", "intake", "/tickets", json=email)
    second = system.call(
        "POST", "intake", "/tickets", json={**body, "subject": "VPN again!!", "description": "Still dropping at 10:00."}
    )
    for ticket in (first, second):
        wait_until(lambda t=ticket: system.work(t["id"]).get("agent_id") == "ada", timeout=30)
        wait_until(lambda t=ticket: system.ticket(t["id"])["status"] == "assigned", timeout=30)

    agent = new_context().new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    agent.goto(f"{portal}/console/tickets/{second['id']}")
    choice = agent.get_by_label("Merge into another request of Ana Ruiz")
    expect(choice.locator("option", has_text=f"#{first['number']} VPN drops")).to_have_count(1)
    choice.select_option(value=first["id"])
    assert_accessible(agent)
    both_widths(agent, screenshot, "console-merge")
    agent.get_by_role("button", name="Merge", exact=True).click()
    expect(agent.get_by_text("Merged: the request kept has this one's words as an internal note")).to_be_visible()

    agent.goto(f"{portal}/console/tickets/{first['id']}")
    note = agent.locator(".entry--note").first
    expect(note).to_contain_text(f"Merged from #{second['number']} (“VPN again!!”)")
    expect(note).to_contain_text("Still dropping at 10:00.")

    wait_until(lambda: any("so we merged it there" in m.get_body(("plain",)).get_content()
                           for m in system.emails_to(ana, second["number"])), timeout=30)  # fmt: skip
    reader = new_context().new_page()
    reader.goto(system.links_to(ana, second["number"])[-1])
    expect(reader.get_by_text("Status: Merged")).to_be_visible()
    expect(reader.get_by_text(f"Merged into your request #{first['number']}")).to_be_visible()
    expect(reader.get_by_text("How did we do?")).to_have_count(0)
    assert_accessible(reader)
    both_widths(reader, screenshot, "requester-merged")
