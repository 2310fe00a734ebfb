""" "Check a request" without a number: the worker emails links to every request of the address that is not closed
(the page answers the same whatever was typed); with one, the link to that request as before. In-process, on the real
portal database; intake is the stub of test_portal_search."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from services.portal import handlers, mailing
from shared import links
from tests.integration.test_portal_passwords import outbox  # noqa: F401
from tests.integration.test_portal_search import portal, stub, text  # noqa: F401

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def topics(portal, stub) -> Iterator[None]:  # noqa: F811
    stub.answers["/topics"] = {"items": [{"id": "general", "name": "General"}]}
    yield
    jobs = portal.extensions["ticketflow.portal"].store.status_requests  # this test's requests: no one's work later
    jobs.delete_many({"email": {"$in": [call["args"].get("requester_email") for call in stub.calls] + list(ASKED)}})
    ASKED.clear()


ASKED: set[str] = set()  # the addresses this test asked for


def ask(app, email: str, number: str = ""):
    ASKED.add(email.strip().lower())
    browser = app.test_client()
    address = f"10.7.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"  # the per-client count is the hour's
    token = CSRF.search(text(browser.get("/"))).group(1)
    data = {"status_email": email, "number": number, "csrf_token": token}
    return browser.post("/status", data=data, environ_base={"REMOTE_ADDR": address})


def ticket(ticket_id: str, number: int, status: str) -> dict:
    return {"id": ticket_id, "number": number, "subject": f"Printer {number}", "status": status}


def the_request(svc, email: str) -> dict:
    return svc.store.status_requests.find_one({"email": email})


def test_without_a_number_the_address_gets_a_link_to_each_request_not_closed(portal, stub, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    owner = f"mia-{uuid.uuid4().hex[:8]}@example.com"
    merged = ticket("t-4", 100004, "resolved") | {"merged_into": 100003}  # a duplicate: #100003 is where it went
    stub.answers["/tickets"] = {"items": [merged, ticket("t-3", 100003, "waiting_on_requester"),
                                          ticket("t-2", 100002, "closed"), ticket("t-1", 100001, "resolved")],
                                "next_cursor": None}  # fmt: skip

    asked = ask(portal, owner.upper())

    assert asked.status_code == 303 and asked.headers["Location"].endswith("/status/sent?asked=all")
    assert handlers.answer_status_request(svc, the_request(svc, owner)) == "sent"
    [lookup] = [call for call in stub.calls if call["path"] == "/tickets"]
    assert lookup["args"] == {"requester_email": owner, "limit": "50"}
    [email] = outbox
    assert email["to"] == owner and email["subject"] == "Links to your requests"
    assert "#100003 Printer 100003 (Waiting for your reply)" in email["text"]
    assert "#100001 Printer 100001 (Resolved)" in email["text"] and "#100002" not in email["text"]
    assert "#100004" not in email["text"]
    assert "a reply to this email opens a new request" in email["text"]  # it names no request: mail in cannot tell
    granted = [
        links.read_link_token(svc.secret, url.rsplit("/", 1)[1]) for url in re.findall(r"http\S+/t/\S+", email["text"])
    ]
    assert [(link.ticket_id, link.email) for link in granted] == [("t-3", owner), ("t-1", owner)]


def test_an_address_with_nothing_open_gets_nothing_and_the_page_is_the_same(portal, stub, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    stub.answers["/tickets"] = {"items": [ticket("t-2", 100002, "closed")], "next_cursor": None}

    asked = ask(portal, nobody)

    assert asked.status_code == 303 and asked.headers["Location"].endswith("/status/sent?asked=all")
    assert handlers.answer_status_request(svc, the_request(svc, nobody)) == "no-match"
    assert outbox == []


def test_a_number_that_is_not_one_is_said_next_to_the_field_and_an_empty_one_is_not(portal, stub):  # noqa: F811
    refused = ask(portal, "mia@example.com", "my printer")
    page = text(refused)
    assert refused.status_code == 422 and 'id="number-error"' in page
    assert "Enter the request number from your receipt, like 100042, or leave it empty." in page
    home = text(portal.test_client().get("/"))
    assert "Request number (optional)" in home and "Leave it empty to get links to all your requests" in home


def test_a_mistake_in_check_a_request_keeps_the_request_being_written_beside_it_and_its_form_sends(portal, stub):  # noqa: F811
    """ "Check a request" sent with a typo, while "Open a request" beside it holds a half-written request (portal.js
    sends it along as carried_*): the page of the error keeps it, with a form key, so that it then sends (it came
    back empty, and sent again said "This form has expired": an accessibility tester's find)."""
    browser = portal.test_client()
    token = CSRF.search(text(browser.get("/"))).group(1)
    carried = {"carried_name": "Omar Haddad", "carried_email": "omar@example.com", "carried_topic": "general",
               "carried_subject": "VPN drops", "carried_description": "Every hour, since Monday.",
               "carried_files": "1"}  # fmt: skip
    data = {"status_email": "omar.other@", "number": "", "csrf_token": token, **carried}

    refused = browser.post("/status", data=data, environ_base={"REMOTE_ADDR": "10.7.9.9"})

    page = text(refused)
    assert refused.status_code == 422 and 'id="status_email-error"' in page and "<title>Error: " in page
    assert 'value="Omar Haddad"' in page and 'value="VPN drops"' in page
    assert ">Every hour, since Monday.</textarea>" in page
    assert '<option value="general" selected>' in page and 'value="omar.other@"' in page
    assert re.search(r'name="form_key" value="[0-9a-f]{32}"', page)  # the request's form sends from this page
    assert "Choose your files again</strong>" in page  # the files chosen are asked for again


def test_the_page_after_says_what_was_sent_for_what_was_typed(portal, stub):  # noqa: F811
    """With a number: a link to that request; without: a link to each request not closed; never whether either is
    the address's."""
    browser = portal.test_client()
    one, each = text(browser.get("/status/sent?asked=one")), text(browser.get("/status/sent?asked=all"))
    assert "a fresh link to the request is on its way there." in one and "a link to each" not in one
    assert "If that email address has requests that are not closed" in each and "request number" not in each
    assert ask(portal, "mia@example.com", "100042").headers["Location"].endswith("/status/sent?asked=one")


def test_a_number_typed_in_full_width_digits_is_the_same_number(portal, stub):  # noqa: F811
    """A Japanese or Chinese keyboard types "＃１０００４２": the request's number all the same."""
    svc = portal.extensions["ticketflow.portal"]
    owner = f"mia-{uuid.uuid4().hex[:8]}@example.com"
    asked = ask(portal, owner, " ＃１０００４２ ")
    assert asked.status_code == 303 and asked.headers["Location"].endswith("/status/sent?asked=one")
    assert the_request(svc, owner)["number"] == 100042


def test_the_bad_links_form_says_its_errors_on_its_own_page(portal, stub):  # noqa: F811
    browser = portal.test_client()
    page = browser.get("/t/not-a-token")
    assert page.status_code == 404 and "Request number (optional)" in text(page)
    token = CSRF.search(text(page)).group(1)

    form = {"status_email": "", "number": "", "page": "bad_link", "csrf_token": token}
    refused = browser.post("/status", data=form, environ_base={"REMOTE_ADDR": "10.9.0.1"})

    html = text(refused)
    assert refused.status_code == 422 and "This link does not work" in html
    assert 'id="status_email-error"' in html and "There is a problem" in html
    email = f"kim-{uuid.uuid4().hex[:8]}@example.com"
    ASKED.add(email)
    network = {"REMOTE_ADDR": f"10.8.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"}  # a client's own count
    for _ in range(20):  # the address's asks are counted: past its limit, the page says so (it said nothing)
        data = {"status_email": email, "page": "bad_link", "csrf_token": token}
        limited = browser.post("/status", data=data, environ_base=network)
        if limited.status_code != 303:
            break
    html = text(limited)
    assert limited.status_code == 429 and "This link does not work" in html and "Too many requests for a link" in html


def test_an_address_intake_will_not_list_is_nobodys_and_the_job_ends(portal, stub, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    odd = f'a"b-{uuid.uuid4().hex[:6]}@example.com'
    stub.answers["/tickets"] = (422, {"title": "Validation failed", "errors": {"requester_email": ["Not an email."]}})
    ask(portal, odd)

    assert handlers.answer_status_request(svc, the_request(svc, odd)) == "no-match"
    assert outbox == []


def test_only_the_newest_twenty_are_listed_and_the_email_says_so(portal, stub, outbox):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    owner = f"many-{uuid.uuid4().hex[:8]}@example.com"
    first = {"items": [ticket(f"t-{n}", 100100 - n, "in_progress") for n in range(15)] +
             [ticket(f"c-{n}", 100050 - n, "closed") for n in range(35)], "next_cursor": "page-2"}  # fmt: skip
    stub.answers["/tickets"] = first  # the stub answers every page alike: 15 more open ones on the second
    ask(portal, owner)

    assert handlers.answer_status_request(svc, the_request(svc, owner)) == "sent"

    assert [call["args"].get("cursor") for call in stub.calls if call["path"] == "/tickets"] == [None, "page-2"]
    text_sent = outbox[0]["text"]
    assert len(re.findall(r"http\S+/t/\S+", text_sent)) == 20
    assert "These are your 20 newest; ask with its number for an older one." in text_sent


def test_without_a_number_an_address_gets_two_such_emails_an_hour_and_numbered_links_still(portal, monkeypatch):  # noqa: F811
    at = handlers.now().replace(minute=30)
    monkeypatch.setattr(handlers, "now", lambda: at)  # one hour's window, whenever the test runs
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.com"

    answers = [ask(portal, owner).status_code for _ in range(3)]

    assert answers == [303, 303, 429]
    assert ask(portal, owner, "0").status_code == 303  # "0" is a number (no request has it), not "every request"
    assert ask(portal, owner, "100042").status_code == 303


@pytest.mark.parametrize(
    ("status", "says", "never"),
    [
        ("in_progress", "Open it here to see its status, reply or close it:", "It is closed"),
        ("closed", "It is closed; open it here to read it", "reply or close it"),
    ],
)
def test_a_numbers_email_says_what_its_link_is_for_filled_evenly(portal, stub, outbox, status, says, never):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    owner = f"ola-{uuid.uuid4().hex[:8]}@example.com"
    stub.answers["/tickets"] = {"items": [ticket("t-7", 100007, status)], "next_cursor": None}
    ask(portal, owner, "100007")

    assert handlers.answer_status_request(svc, the_request(svc, owner)) == "sent"
    [email] = outbox
    assert email["subject"] == "[#100007] Your link to your request: Printer 100007"  # which one, by its title
    words = " ".join(email["text"].split())
    assert says in words and never not in words and "your request #100007, “Printer 100007”." in words
    sent = mailing.wrapped(email["text"])  # as the email carries it (the outbox takes the text before)
    lines = sent.split("\n\n")[1].split("\n")  # the paragraph that says what the link is for
    assert all(len(line) <= 72 for line in lines)
    assert all(len(line) > 50 for line in lines[:-1]), lines  # filled: no line broken short before the last
