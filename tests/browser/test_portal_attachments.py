"""Files in a real browser: a requester attaches them to a new request and to a reply, the agent sees and
downloads them on the console, and nothing a file holds can run on the portal's origin.

The pages with files pass axe-core; downloads are Playwright downloads (the bytes are compared).
"""

from __future__ import annotations

import re
from pathlib import Path

import requests
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.helpers import assert_accessible
from tests.browser.portal_system import STAFF, portal_system, unique_email  # noqa: F401 - a fixture
from tests.browser.test_portal_journey import open_request, sign_in, ticket_id_of
from tests.harness import requester_header, wait_until

PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> "
    b"endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)
HTML = b"<!DOCTYPE html><title>x</title><script>document.title = 'ran'</script>"
MB = 1024 * 1024


def a_file(name: str, body: bytes, kind: str) -> dict:
    return {"name": name, "mimeType": kind, "buffer": body}


def downloaded(page: Page, link) -> bytes:
    with page.expect_download() as started:
        link.click()
    download = started.value
    return Path(download.path()).read_bytes()


def as_browser(page: Page, url: str) -> requests.Response:
    """GET the URL with the page's cookies (its portal session), to read the answer's headers."""
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    return requests.get(url, cookies=cookies, timeout=15)


def attachment_link(page: Page, name: str):
    return page.get_by_role("link", name=name, exact=True)


def test_a_requester_attaches_a_pdf_and_the_agent_downloads_it(portal_system, new_context, screenshot):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    ana = unique_email("ana")

    # The requester opens a request with a small PDF attached.
    requester = new_context().new_page()
    open_request(requester, portal, "Ana Ruiz", ana, "Invoice for the VPN licence", "The invoice is attached.")
    requester.get_by_label("Attach files (optional)").set_input_files(a_file("invoice.pdf", PDF, "application/pdf"))
    assert_accessible(requester)
    requester.get_by_role("button", name="Send request").click()
    expect(requester.get_by_role("heading", name="Invoice for the VPN licence")).to_be_visible()
    ticket_id = ticket_id_of(requester)

    # It is listed with the request's first words: name, size, who; the requester downloads it.
    opening = requester.locator(".entry").first
    expect(opening.get_by_role("link", name="invoice.pdf")).to_be_visible()
    expect(opening).to_contain_text(f"{len(PDF)} bytes · from Ana Ruiz")
    assert_accessible(requester)
    screenshot(requester, "requester-attachments")
    assert downloaded(requester, attachment_link(requester, "invoice.pdf")) == PDF

    # The agent the ticket goes to sees it on the console ticket page and downloads it.
    wait_until(lambda: system.work(ticket_id).get("agent_id") == "ada", timeout=30)
    agent = new_context().new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    link = agent.locator(".entry--requester").first.get_by_role("link", name="invoice.pdf")
    expect(link).to_be_visible()
    assert_accessible(agent)
    screenshot(agent, "console-attachments")
    assert downloaded(agent, link) == PDF

    # Through the portal, the download keeps intake's headers: always an attachment, sandboxed.
    answer = as_browser(agent, portal + link.get_attribute("href"))
    assert answer.status_code == 200 and answer.content == PDF
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"].startswith('attachment; filename="invoice.pdf"')
    assert answer.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_files_sent_with_a_reply_show_with_that_reply(portal_system, new_context):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    requester = opened(new_context(), portal, unique_email("ben"), "Printer jams")
    ticket_id = ticket_id_of(requester)

    requester.get_by_label("Your message").fill("Here is a photo of the jam.")
    requester.get_by_label("Attach files (optional)").set_input_files(
        [a_file("jam.txt", b"paper stuck in tray 2", "text/plain"), a_file("log.txt", b"E-42", "text/plain")]
    )
    requester.get_by_role("button", name="Send message").click()
    expect(requester.get_by_text("Your message was sent.")).to_be_visible()

    reply = requester.locator(".entry").filter(has_text="Here is a photo of the jam.")
    expect(reply.get_by_role("link")).to_have_text(["jam.txt", "log.txt"])
    expect(requester.locator(".entry").first.get_by_role("link")).to_have_count(0)  # not with the first words
    assert_accessible(requester)
    listed = system.call("GET", "intake", f"/tickets/{ticket_id}/attachments")["items"]
    message_id = system.ticket(ticket_id)["thread"][0]["id"]
    assert [(item["filename"], item["message_id"]) for item in listed] == [
        ("jam.txt", message_id),
        ("log.txt", message_id),
    ]

    # On the console the files are with the requester's message too.
    wait_until(lambda: system.work(ticket_id).get("agent_id") == "ada", timeout=30)
    agent = new_context().new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    message = agent.locator(".entry").filter(has_text="Here is a photo of the jam.")
    expect(message.get_by_role("link")).to_have_text(["jam.txt", "log.txt"])
    assert downloaded(agent, message.get_by_role("link", name="log.txt")) == b"E-42"

    # The requester's page puts the agent's reply in by itself: a file's link focused there stays focused (the
    # conversation swapped in took the focus to the page's top: an accessibility tester's find)
    requester.get_by_role("link", name="jam.txt", exact=True).focus()
    system.call("POST", "assignment", f"/tickets/{ticket_id}/replies", json={"body": "Tray 2 is cleared now."})
    expect(requester.locator(".entry").filter(has_text="Tray 2 is cleared now.")).to_be_visible(timeout=40_000)
    expect(requester.get_by_role("link", name="jam.txt", exact=True)).to_be_focused()


def test_an_agent_replies_with_files_the_requester_gets_with_it(portal_system, new_context, screenshot):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    cleo = unique_email("cleo")
    requester = opened(new_context(), portal, cleo, "Which driver for the label printer?")
    ticket_id = ticket_id_of(requester)
    wait_until(lambda: system.work(ticket_id).get("agent_id") == "ada", timeout=30)

    agent = new_context().new_page()
    sign_in(agent, portal, STAFF["ada"]["email"])
    agent.goto(f"{portal}/console/tickets/{ticket_id}")
    agent.get_by_label("Reply to the requester").fill("The driver and its guide are attached.")
    files = agent.locator("#reply-form").get_by_label("Attach files (optional)")
    files.set_input_files(
        [a_file("driver-guide.pdf", PDF, "application/pdf"), a_file("notes.txt", b"v2", "text/plain")]
    )
    assert_accessible(agent)
    screenshot(agent, "console-reply-with-files")
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.get_by_text("Reply sent.")).to_be_visible()

    # The files are the reply's, on the requester's page with it (its page refreshes itself), and downloadable.
    reply = requester.locator(".entry").filter(has_text="The driver and its guide are attached.")
    expect(reply.get_by_role("link")).to_have_text(["driver-guide.pdf", "notes.txt"], timeout=40_000)
    assert downloaded(requester, reply.get_by_role("link", name="driver-guide.pdf")) == PDF
    reply_id = next(e["id"] for e in system.ticket(ticket_id)["thread"] if e["kind"] == "reply")
    listed = system.call("GET", "intake", f"/tickets/{ticket_id}/attachments")["items"]
    assert {(item["filename"], item["message_id"]) for item in listed} == {
        ("driver-guide.pdf", reply_id), ("notes.txt", reply_id)}  # fmt: skip
    screenshot(requester, "requester-agent-files")
    # and on the console, with the reply
    agent.reload()
    mine = agent.locator(".entry").filter(has_text="The driver and its guide are attached.")
    expect(mine.get_by_role("link")).to_have_text(["driver-guide.pdf", "notes.txt"])

    # A file over the limit is said next to the field and nothing is sent: the words stay.
    agent.get_by_label("Reply to the requester").fill("And the firmware.")
    agent.evaluate("document.querySelectorAll('[data-max-file-bytes]').forEach(f => f.dataset.maxFileBytes = 1e12)")
    files.set_input_files(a_file("firmware.bin", b"x" * (11 * MB), "application/octet-stream"))
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.locator("#files-error")).to_contain_text("firmware.bin")
    expect(agent.get_by_label("Reply to the requester")).to_have_value("And the firmware.")
    replied = [e for e in system.work(ticket_id)["history"] if e["action"] == "replied"]  # assignment's own record
    assert len(replied) == 1  # the first reply only: the second was never sent

    # The requester's email of the reply names its files (they are on the request's page, not in the email).
    number = system.ticket(ticket_id)["number"]
    said = "2 files came with this reply: driver-guide.pdf, notes.txt. Download them on your request's page."

    def reply_emails() -> list[str]:
        texts = [m.get_body(("plain",)).get_content() for m in system.emails_to(cleo, number)]
        return [text for text in texts if "The driver and its guide are attached." in text]

    wait_until(lambda: reply_emails(), timeout=30, message="the reply's email reaches the requester")
    assert [said in text for text in reply_emails()] == [True]


def opened(context: BrowserContext, portal: str, email: str, subject: str) -> Page:
    page = context.new_page()
    open_request(page, portal, "Ben Okri", email, subject, "Since this morning.")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("heading", name=subject)).to_be_visible()
    return page


def test_too_large_a_file_is_answered_next_to_the_field_and_nothing_typed_is_lost(
    portal_system,  # noqa: F811
    new_context,
    tmp_path,
):
    system, portal = portal_system, portal_system.portal
    # A path, not a buffer: the browser reads the file itself instead of receiving 10 MB through the protocol.
    big = tmp_path / "scan.pdf"
    big.write_bytes(b"%PDF-" + b"0" * (10 * MB))

    # With JavaScript: the form is not sent; the error is next to the file field.
    page = new_context().new_page()
    email = unique_email("cy")
    open_request(page, portal, "Cy Twombly", email, "Scanner broken", "It scans black pages.")
    page.get_by_label("Attach files (optional)").set_input_files(big)
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#files-error")).to_contain_text("“scan.pdf” is larger than 10 MB")
    expect(page.get_by_label("Attach files (optional)")).to_be_focused()
    expect(page.get_by_label("Subject")).to_have_value("Scanner broken")
    assert_accessible(page)
    assert system.call("GET", "intake", "/tickets", params={"requester_email": email})["items"] == []

    # Without JavaScript: the portal answers the same, keeping what was typed, and opens nothing.
    plain = new_context(java_script_enabled=False).new_page()
    open_request(plain, portal, "Cy Twombly", email, "Scanner broken", "It scans black pages.")
    plain.get_by_label("Attach files (optional)").set_input_files(big)
    plain.get_by_role("button", name="Send request").click()
    expect(plain.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(plain.locator("#files-error")).to_contain_text("“scan.pdf” is larger than 10 MB")
    expect(plain.get_by_role("link", name=re.compile("^Attach files"))).to_have_attribute("href", "#files")
    expect(plain.get_by_text("Choose your files again")).to_be_visible()
    expect(plain.get_by_label("Subject")).to_have_value("Scanner broken")
    expect(plain.get_by_label("Describe the problem")).to_have_value("It scans black pages.")
    assert system.call("GET", "intake", "/tickets", params={"requester_email": email})["items"] == []

    # An empty file with a reply, past a page whose script did not check it: the portal's answer, with the
    # message kept and not sent either (axe-core needs JavaScript: this page has it, the check switched off).
    ticket_page = opened(new_context(), portal, unique_email("dee"), "Mouse dead")
    ticket_page.get_by_label("Your message").fill("The log is attached.")
    field = ticket_page.get_by_label("Attach files (optional)")
    field.evaluate("input => input.removeAttribute('data-max-file-bytes')")
    field.set_input_files(a_file("empty.log", b"", "text/plain"))
    ticket_page.get_by_role("button", name="Send message").click()
    expect(ticket_page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(ticket_page.locator("#files-error")).to_contain_text("“empty.log” is empty")
    expect(ticket_page.get_by_label("Your message")).to_have_value("The log is attached.")
    assert_accessible(ticket_page)
    assert system.ticket(ticket_id_of(ticket_page))["thread"] == []


def test_a_file_of_another_request_is_not_found_and_html_never_runs(portal_system, new_context):  # noqa: F811
    system, portal = portal_system, portal_system.portal
    owner = opened(new_context(), portal, unique_email("eve"), "Strange page")
    ticket_id = ticket_id_of(owner)
    ticket = system.ticket(ticket_id)
    headers = requester_header(ticket["requester"]["email"], ticket_id)
    files = {"file": ("page.html", HTML, "text/html")}
    sent = requests.post(f"{system.urls['intake']}/tickets/{ticket_id}/attachments", files=files, headers=headers,
                         timeout=15)  # fmt: skip
    assert sent.status_code == 201, sent.text
    item = sent.json()["items"][0]
    url = f"{portal}/tickets/{ticket_id}/attachments/{item['id']}"

    # Another requester's session: the same page as for any ticket not theirs.
    stranger = opened(new_context(), portal, unique_email("mal"), "My own request")
    answer = as_browser(stranger, url)
    assert answer.status_code == 404 and HTML not in answer.content

    # The owner's: a download as bytes, never a page (the script cannot run on the portal's origin).
    answer = as_browser(owner, url)
    assert answer.status_code == 200 and answer.content == HTML
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["content-security-policy"] == "sandbox; default-src 'none'"
    owner.reload()
    assert downloaded(owner, attachment_link(owner, "page.html")) == HTML
    assert owner.title() != "ran"


def test_a_form_too_large_to_read_is_refused_with_a_page(portal_system):  # noqa: F811
    portal = portal_system.portal
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}

    files = requests.post(f"{portal}/tickets", data=b"x" * (41 * MB), headers=multipart, timeout=30)
    text = requests.post(f"{portal}/login", data=b"x" * (2 * MB), headers=multipart, timeout=30)
    many = [("files", (f"{n}.txt", b"x")) for n in range(1001)]  # small, but more parts than a form is read with
    parts = requests.post(f"{portal}/tickets", files=many, timeout=30)

    said = ((files, "Those files are too large"), (text, "That is too much text"), (parts, "That is too many files"))
    for answer, title in said:
        assert answer.status_code == 413 and answer.headers["Content-Type"].startswith("text/html")
        assert f"<h1>{title}</h1>" in answer.text
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    # one long text field in a form with files is read (then judged as any form is: here, it has no CSRF token)
    long_text = requests.post(f"{portal}/tickets", data={"description": "log line\n" * 70_000},
                              files={"files": ("a.txt", b"hi")}, timeout=30)  # fmt: skip
    assert long_text.status_code == 403 and "too many files" not in long_text.text
    # what gunicorn refuses before the portal sees it is still a page (the APIs answer problem+json)
    long_path = requests.get(f"{portal}/{'x' * 9000}", timeout=30)
    assert long_path.status_code == 400 and long_path.headers["Content-Type"].startswith("text/html")


def test_a_form_with_files_still_needs_its_csrf_token(portal_system):  # noqa: F811
    system, email = portal_system, unique_email("mal")
    form = {"name": "Mal", "email": email, "topic": "network", "subject": "Free money", "description": "Open it.",
            "form_key": "0123456789abcdef"}  # fmt: skip

    answer = requests.post(f"{system.portal}/tickets", data=form, files={"files": ("a.txt", b"hi")}, timeout=15)

    assert answer.status_code == 403 and "Your request was not sent" in answer.text
    assert system.call("GET", "intake", "/tickets", params={"requester_email": email})["items"] == []
