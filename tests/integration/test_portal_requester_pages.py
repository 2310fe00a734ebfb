"""The requester's pages in-process, on the real portal database, intake a fake: what a message sent from a page
left open on a request closed meanwhile becomes, and the form's number field on phones."""

from __future__ import annotations

import io
import os
import re
import uuid
from datetime import UTC, datetime, timedelta

from services.portal import handlers
from services.portal.client import Refused, Unreachable
from services.portal.pages import cookie_names
from shared import links
from shared.events import format_time
from tests.integration.test_portal_search import portal, signed_in, stub, text, with_grants  # noqa: F401

CLOSED = {"id": "t-9", "number": 100063, "subject": "VPN disconnects during video calls", "status": "closed",
          "description": "It drops.", "requester": {"name": "Mia Moreno", "email": "mia@example.com"},
          "thread": [], "created_at": "2026-12-01T04:00:00.000Z", "topic": "network"}  # fmt: skip


class Intake:
    """intake as the requester's pages call it: a closed ticket, and a 409 for any message to it."""

    def __init__(self, ticket: dict = CLOSED) -> None:
        self.posts: list[str] = []
        self.ticket = ticket

    def get(self, service, path, actor, **params):
        if path == "/topics":
            return {"items": [{"id": "network", "name": "Network"}]}
        if path == "/tickets/t-9":
            return self.ticket
        return {"items": []}  # its attachments

    def post(self, service, path, actor, body, **kwargs):
        self.posts.append(path)
        raise Refused(409, "Conflict", "The ticket is closed; open a new ticket instead.")


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_a_message_to_a_request_closed_meanwhile_is_kept_and_opens_a_new_request_filled_in(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    monkeypatch.setattr(svc, "services", Intake())
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    token = csrf(text(browser.get("/")))  # the session's (the page of a closed request has no form)
    words = "One more thing: it also fails on Wi-Fi <b>today</b>."

    refused = browser.post("/tickets/t-9/messages", data={"body": words, "csrf_token": token})

    assert refused.status_code == 409
    page = text(refused)
    assert "This request was closed meanwhile, so your message was not sent. It is kept below." in page
    assert "reload" not in page.lower()  # a reload cannot send it
    kept = re.search(r'action="/new">(.*?)</form>', page, re.S).group(1)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', kept))
    assert fields["description"] == "One more thing: it also fails on Wi-Fi &lt;b&gt;today&lt;/b&gt;."
    assert fields["subject"] == "Follow-up to request 100063: VPN disconnects during video calls"
    assert (fields["name"], fields["email"], fields["topic"]) == ("Mia Moreno", "mia@example.com", "network")

    form = browser.post("/new", data={k: v.replace("&lt;", "<").replace("&gt;", ">") for k, v in fields.items()})

    assert form.status_code == 200
    home = text(form)
    assert "One more thing: it also fails on Wi-Fi &lt;b&gt;today&lt;/b&gt;.</textarea>" in home
    assert 'value="Follow-up to request 100063: VPN disconnects during video calls"' in home
    assert 'value="mia@example.com"' in home and '<option value="network" selected>' in home
    assert svc.services.posts == ["/tickets/t-9/messages"]  # showing the form opened nothing


def test_the_request_number_field_asks_phones_for_digits(portal, monkeypatch):  # noqa: F811
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake())
    html = text(portal.test_client().get("/"))
    assert '<input id="number" name="number" type="text"' in html
    assert 'inputmode="numeric">' in html and "&#34;" not in html


def test_a_strangers_wrong_numbers_never_use_up_the_owners_links(portal, monkeypatch):  # noqa: F811
    """Links are limited per client address (20 an hour), then per email and number (5), then per email (30),
    each counted once the ones before passed: a stranger's guesses use up their own address's, never the
    owner's; "0100500" is 100500."""
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake())
    at = handlers.now()
    monkeypatch.setattr(handlers, "now", lambda: at)  # one hour's window for the whole test, whenever it runs
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.com"

    def ask(number: str, client: str) -> int:
        browser = portal.test_client()
        token = csrf(text(browser.get("/", environ_base={"REMOTE_ADDR": client})))
        data = {"status_email": owner, "number": number, "csrf_token": token}
        return browser.post("/status", data=data, environ_base={"REMOTE_ADDR": client}).status_code

    stranger, me = f"10.9.{uuid.uuid4().int % 250}.1", f"10.8.{uuid.uuid4().int % 250}.1"
    assert [ask(str(100001 + i), stranger) for i in range(31)] == [303] * 20 + [429] * 11  # their address's twenty
    asked = [ask(number, me) for number in ("100500", "0100500", "#100500", "00100500", "100500", "100500")]
    assert asked == [303] * 5 + [429]  # the owner's number: five links an hour, however it is written


def test_a_form_pages_address_opened_again_goes_to_its_form(portal, monkeypatch):  # noqa: F811
    """After a form error the address bar shows where the form went; opening it again is no 405."""
    browser = portal.test_client()
    for path, target in (("/tickets", "/"), ("/status", "/"), ("/new", "/"), ("/tickets/t-9/messages", "/tickets/t-9")):
        answer = browser.get(path)
        assert (answer.status_code, answer.headers["Location"]) == (303, target), path


def test_a_message_too_long_is_said_in_words_next_to_its_field_before_intake_is_asked(portal, monkeypatch):  # noqa: F811
    intake = Intake(CLOSED | {"status": "in_progress"})
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    token = csrf(text(browser.get("/")))

    answer = browser.post("/tickets/t-9/messages", data={"body": "x" * 20001, "csrf_token": token})

    assert answer.status_code == 422
    assert "Use at most 20,000 characters (you have 20,001)." in text(answer)
    assert intake.posts == []
    assert 'id="body-hint">Up to 20,000 characters.</p>' in text(browser.get("/tickets/t-9"))  # said before, too


def test_a_reopened_request_still_says_what_was_tried_before(portal, monkeypatch):  # noqa: F811
    earlier = [{"resolution": "Reset the VPN profile.", "resolved_at": "2026-12-01T05:00:00.000Z"},
               {"resolution": "Restarted the VPN gateway.", "resolved_at": "2026-12-02T05:00:00.000Z"}]  # fmt: skip
    reopened = CLOSED | {"status": "assigned", "resolution": None, "earlier_resolutions": earlier}
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake(reopened))
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])

    html = text(browser.get("/tickets/t-9"))

    assert "<strong>Tried before it was reopened</strong> (resolved" in html
    assert "Restarted the VPN gateway." in html and "Reset the VPN profile." not in html  # the newest
    assert "What was done:" not in html
    resolved = reopened | {"status": "resolved", "resolution": "Replaced the router."}
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake(resolved))
    html = text(browser.get("/tickets/t-9"))
    assert 'What was done:</strong> <span dir="auto">Replaced the router.' in html and "Tried before" not in html


def test_a_merged_request_offers_a_link_to_the_one_kept_by_email(portal, monkeypatch):  # noqa: F811
    went = "Merged into your request #100064: it is the same request, and we go on there."
    merged = CLOSED | {"status": "resolved", "merged_into": 100064, "resolution": went}
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake(merged))
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])

    html = text(browser.get("/tickets/t-9"))

    assert '<input type="hidden" name="status_email" value="mia@example.com">' in html
    assert '<input type="hidden" name="number" value="100064">' in html and "Email me a link to #100064" in html
    asked = browser.post("/status", data={"csrf_token": csrf(html), "status_email": "mia@example.com",
                                          "number": "100064"})  # fmt: skip
    assert asked.status_code == 303 and asked.headers["Location"].endswith("/status/sent?asked=one")
    plain = CLOSED | {"status": "resolved", "resolution": "Replaced the router."}
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake(plain))
    assert "Email me a link" not in text(browser.get("/tickets/t-9"))


def test_the_forms_hints_say_how_long_a_subject_and_a_description_may_be(portal, monkeypatch):  # noqa: F811
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake())
    html = text(portal.test_client().get("/"))
    assert "like “VPN drops every hour” (200 characters at most).</p>" in html
    assert "and what you have tried (up to 20,000 characters).</p>" in html


def test_web_addresses_in_the_conversation_are_links_that_tell_the_site_nothing(portal, monkeypatch):  # noqa: F811
    reply = {"id": "r1", "kind": "reply", "author": {"type": "agent", "name": "Jane Doe"},
             "created_at": "2026-12-01T04:05:00.000Z",
             "body": "Install it from https://intranet.example/vpn?os=mac&v=2. <script>x()</script>"}  # fmt: skip
    ticket = {**CLOSED, "description": "The guide (https://help.example/vpn) did not help.", "thread": [reply]}
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake(ticket))
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])

    page = text(browser.get("/tickets/t-9"))

    link = (
        '<a href="{0}" rel="noopener noreferrer nofollow" target="_blank">{0}'
        '<span class="visually-hidden"> (opens in a new tab)</span></a>'
    )
    assert f"Install it from {link.format('https://intranet.example/vpn?os=mac&amp;v=2')}. &lt;script&gt;" in page
    assert f"The guide ({link.format('https://help.example/vpn')}) did not help." in page
    assert "<script>x()" not in page


def test_the_requesters_open_page_updates_itself_when_the_help_desk_replies(portal, monkeypatch):  # noqa: F811
    ticket = {**CLOSED, "status": "assigned", "thread": []}
    intake = Intake(ticket)
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    page = text(browser.get("/tickets/t-9"))
    poll = re.search(r'id="request-poll" hx-get="([^"]+)" hx-trigger="every 10s"', page).group(1).replace("&amp;", "&")

    unchanged = browser.get(poll)
    assert unchanged.status_code == 204 and unchanged.get_data() == b""

    reply = {"id": "r1", "kind": "reply", "author": {"type": "agent", "name": "Jane Doe"},
             "created_at": "2026-12-01T04:05:00.000Z", "body": "Please restart the VPN client."}  # fmt: skip
    intake.ticket = {**ticket, "status": "waiting_on_requester", "thread": [reply]}
    changed = browser.get(poll)

    assert changed.status_code == 200
    parts = text(changed)
    assert '<p id="request-update" class="live-update" role="status" hx-swap-oob="innerHTML">' in parts
    assert "The help desk replied, and the status changed to “Waiting for your reply”." in parts
    assert (
        'id="request-thread" class="thread" hx-swap-oob="true"' in parts and "Please restart the VPN client." in parts
    )
    assert "Status: Waiting for your reply" in parts
    next_poll = re.search(r'id="request-poll" hx-get="([^"]+)"', parts).group(1).replace("&amp;", "&")
    assert next_poll != poll and browser.get(next_poll).status_code == 204
    assert "<textarea" not in parts  # what the requester is typing is never swapped

    assert 'id="request-rating"' not in parts  # not ratable before, not now: left as it is

    intake.ticket = {**intake.ticket, "status": "resolved"}
    resolved = text(browser.get(next_poll))
    assert '<div id="request-rating" hx-swap-oob="true">' in resolved and "How did we do?" in resolved
    next_poll = re.search(r'id="request-poll" hx-get="([^"]+)"', resolved).group(1).replace("&amp;", "&")

    intake.ticket = {**intake.ticket, "status": "closed"}
    closed = text(browser.get(next_poll))
    assert 'id="request-rating"' not in closed  # ratable before and now: what they may be typing stays
    assert '<h2 id="reply-title" hx-swap-oob="true">Closed meanwhile' in closed  # the reply box says so
    assert re.search(r'<div id="request-close" hx-swap-oob="true">\s*</div>', closed)  # nothing to close any more
    junk = browser.get(next_poll.replace("&n=", "&n=%C2%B2&x="))  # n=² is a digit to str.isdigit, not to int()
    assert junk.status_code == 200
    assert "The status changed to “Closed”." in closed
    assert '<div id="request-poll" hx-swap-oob="true"></div>' in closed  # a closed request changes no more

    stranger = portal.test_client()
    assert stranger.get(poll).status_code == 286  # htmx stops polling: this browser may not read it


def test_a_shared_computer_forgets_the_requests_it_opened(portal, monkeypatch):  # noqa: F811
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake({**CLOSED, "status": "assigned"}))
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    mine = text(browser.get("/requests"))
    assert "Forget my requests on this device" in mine

    forgotten = browser.post("/forget", data={"csrf_token": csrf(mine)})

    assert forgotten.status_code == 303 and forgotten.headers["Location"].endswith("/?notice=forgotten")
    assert "Max-Age=0" in forgotten.headers.get(
        "Set-Cookie", ""
    ) or "expires=Thu, 01 Jan 1970" in forgotten.headers.get("Set-Cookie", "")
    assert "this device no longer opens your requests" in text(browser.get("/?notice=forgotten"))
    assert browser.get("/tickets/t-9").status_code == 404
    assert "Your requests" not in text(browser.get("/"))


def test_a_link_followed_renews_the_session_so_that_a_planted_cookie_reads_nothing(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    monkeypatch.setattr(svc, "services", Intake({**CLOSED, "status": "assigned"}))
    planted, _ = handlers.start_session(svc, grant={"id": "t-1", "email": "eve@example.com"})  # eve's own session
    name = cookie_names(False)[0]
    eve, mia = portal.test_client(), portal.test_client()
    eve.set_cookie(name, planted)
    mia.set_cookie(name, planted)  # set in mia's browser by someone who could (a sibling host, over http)
    eves_token = csrf(text(eve.get("/")))  # the forms' token eve read with it
    link = links.mint_link_token(os.environ["TICKETFLOW_JWT_SECRET"], "t-9", "mia@example.com", 30)

    followed = mia.get(f"/t/{link}")

    assert followed.status_code == 303 and f"{name}=" in followed.headers.get("Set-Cookie", "")
    renewed = mia.get_cookie(name).value
    assert renewed != planted and mia.get("/tickets/t-9").status_code == 200
    assert eve.get("/tickets/t-9").status_code == 404  # the planted id opens nothing it was given
    session = handlers.load_session(svc, renewed)
    assert [grant["id"] for grant in session["tickets"]] == ["t-9"]  # not eve's request, which mia would take as hers
    assert session["csrf"] != eves_token  # nor a forms' token eve knows: her forms posted from mia's browser fail
    left = handlers.load_session(svc, planted)  # the old id, as it was, for a minute (requests sent with it meanwhile)
    assert [grant["id"] for grant in left["tickets"]] == ["t-1"]
    assert left["expires_at"] <= datetime.now(UTC) + timedelta(minutes=1, seconds=5)


def test_a_request_from_the_form_answered_by_mail_from_its_address_is_no_longer_the_forms_browsers(
    portal,  # noqa: F811
    monkeypatch,
):
    """Anyone may type an address into the form: the browser that sent it reads the request, until the address's
    owner shows up. A link followed did that; a reply by mail from the address does too: whoever typed someone
    else's address must not read what its owner writes (a tester read the owner's emailed date of birth)."""
    svc = portal.extensions["ticketflow.portal"]
    ticket = {**CLOSED, "status": "assigned", "source": "web", "thread": []}
    monkeypatch.setattr(svc, "services", Intake(ticket))
    typed_it = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])  # the form's browser
    link = links.mint_link_token(os.environ["TICKETFLOW_JWT_SECRET"], "t-9", "mia@example.com", 30)
    owner = portal.test_client()
    assert owner.get(f"/t/{link}").status_code == 303  # followed, not acted on: nothing proven yet
    assert typed_it.get("/tickets/t-9").status_code == 200
    assert svc.store.confirmed("t-9") is None

    from_the_form = {"id": "m-1", "kind": "message", "author": {"type": "requester", "name": "Mia"}, "body": "Hi."}
    ticket["thread"] = [from_the_form, {**from_the_form, "id": "m-2", "body": "Born 1 Jan 1980.", "via": "email"}]

    lost = typed_it.get("/tickets/t-9")
    assert lost.status_code == 404 and "answers it by email" in text(lost) and "Born" not in text(lost)
    assert typed_it.get("/tickets/t-9/live").status_code == 286  # its open page stops asking
    assert svc.store.confirmed("t-9") is not None
    assert "Born 1 Jan 1980." in text(owner.get("/tickets/t-9"))  # the link's browser keeps it
    # and keeps it once it acts there (a tester's lost its request at the next page: the act unnoted the link), as
    # does another browser of the owner's that follows a link and acts (the first to act dropped every other)
    phone = portal.test_client()
    assert phone.get(f"/t/{link}").status_code == 303
    for browser in (owner, phone, owner):
        browser.get("/tickets/t-9/live")  # its poll: the person is on the page
        assert browser.get("/tickets/t-9").status_code == 200
    assert phone.get("/tickets/t-9").status_code == owner.get("/tickets/t-9").status_code == 200


def test_an_agent_following_links_at_once_stays_signed_in_with_both(portal, monkeypatch):  # noqa: F811
    """Two links opened together (a "Links to your requests" email): the second brings the id the first renewed,
    which still finds its session for a minute; an agent is never signed out by a link."""
    svc = portal.extensions["ticketflow.portal"]
    monkeypatch.setattr(svc, "services", Intake({**CLOSED, "status": "assigned"}))
    agent = signed_in(portal, "admin")
    name = cookie_names(False)[0]
    before = agent.get_cookie(name).value
    first = links.mint_link_token(os.environ["TICKETFLOW_JWT_SECRET"], "t-9", "mia@example.com", 30)
    second = links.mint_link_token(os.environ["TICKETFLOW_JWT_SECRET"], "t-8", "mia@example.com", 30)
    late = portal.test_client()
    late.set_cookie(name, before)  # the second request, sent with the id the browser had then

    assert agent.get(f"/t/{first}").status_code == 303
    assert late.get(f"/t/{second}").status_code == 303

    for browser in (agent, late):
        session = handlers.load_session(svc, browser.get_cookie(name).value)
        assert session["account_id"] and session["role"] == "admin"  # still signed in, whichever answer came last


def test_forgetting_requests_keeps_an_agent_signed_in(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    monkeypatch.setattr(svc, "services", Intake({**CLOSED, "status": "assigned"}))
    agent = signed_in(portal, "admin")
    session = handlers.load_session(svc, agent.get_cookie(cookie_names(False)[0]).value)
    svc.store.grant_ticket(session["_id"], "t-9", "mia@example.com")
    assert agent.get("/tickets/t-9").status_code == 200
    token = csrf(text(agent.get("/requests")))

    forgot = agent.post("/forget", data={"csrf_token": token})
    assert forgot.status_code == 303 and forgot.headers["Location"].endswith("notice=forgotten-signed-in")
    assert "You are still signed in to the console" in text(agent.get("/?notice=forgotten-signed-in"))

    assert agent.get("/tickets/t-9").status_code == 404
    assert (
        handlers.load_session(svc, agent.get_cookie(cookie_names(False)[0]).value)["account_id"]
        == session["account_id"]
    )


def test_line_breaks_typed_in_a_form_reach_the_services_as_newlines(portal, monkeypatch):  # noqa: F811
    """A browser sends a textarea's line breaks as CRLF; what is stored, emailed and searched holds "\\n"."""

    class Recording(Intake):
        def post(self, service, path, actor, body, **kwargs):
            self.posts.append(body)
            return {"id": "m1", "kind": "message", "body": body["body"]}

    intake = Recording({**CLOSED, "status": "assigned"})
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    token = csrf(text(browser.get("/tickets/t-9")))

    sent = browser.post(
        "/tickets/t-9/messages", data={"body": "First line.\r\n\r\nSecond.\rThird.", "csrf_token": token}
    )

    assert sent.status_code == 303
    assert intake.posts == [{"body": "First line.\n\nSecond.\nThird."}]


def test_a_requester_rates_a_resolved_request_and_may_change_it_until_it_reopens(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    ticket_id = f"t-{uuid.uuid4().hex[:8]}"
    ticket = {**CLOSED, "id": ticket_id, "status": "resolved", "resolution": "New VPN profile.",
              "team": "network", "assignee": {"agent_id": "jane", "name": "Jane Doe"}}  # fmt: skip

    class Rated(Intake):
        def get(self, service, path, actor, **params):
            return self.ticket if path == f"/tickets/{ticket_id}" else super().get(service, path, actor, **params)

    intake = Rated(ticket)
    monkeypatch.setattr(svc, "services", intake)
    browser = with_grants(portal, [{"id": ticket_id, "email": "mia@example.com"}])
    page = text(browser.get(f"/tickets/{ticket_id}"))
    assert "How did we do?" in page and "Were you satisfied with how your request was handled?" in page

    none_chosen = browser.post(f"/tickets/{ticket_id}/rating", data={"comment": "Meh", "csrf_token": csrf(page)})
    assert none_chosen.status_code == 422
    assert 'id="rating-error"' in text(none_chosen) and "Choose Good or Bad." in text(none_chosen)
    assert ">Meh</textarea>" in text(none_chosen)  # what was typed stays

    form = {"rating": "bad", "comment": "It took <b>two</b> days.", "csrf_token": csrf(page)}
    rated = browser.post(f"/tickets/{ticket_id}/rating", data=form)
    assert rated.status_code == 303 and rated.headers["Location"].endswith("notice=rated-bad-resolved#rated-notice")
    after = text(browser.get(rated.headers["Location"]))
    assert (  # what to do when it is not solved, said above the rating
        "If the problem is not solved, write to us below: your message reopens the request." in after
        and after.index('id="rated-notice"') < after.index("You rated this request: <strong>Bad, I am not satisfied")
    )
    assert "It took &lt;b&gt;two&lt;/b&gt; days." in after
    stored = svc.store.rating(ticket_id)
    assert (stored["rating"], stored["team"], stored["agent_id"], stored["number"]) == (
        "bad",
        "network",
        "jane",
        100063,
    )

    again = browser.post(f"/tickets/{ticket_id}/rating", data={"rating": "good", "csrf_token": csrf(after)})
    assert again.status_code == 303 and svc.store.rating(ticket_id)["rating"] == "good"  # changed, not added
    assert "Thank you for your rating: it helps us do better." in text(browser.get(again.headers["Location"]))

    intake.ticket = {**ticket, "status": "assigned"}  # reopened: nothing to rate until it is resolved again
    refused = browser.post(f"/tickets/{ticket_id}/rating", data={"rating": "bad", "csrf_token": csrf(after)})
    assert refused.status_code == 409 and "once it is resolved" in text(refused)
    assert svc.store.rating(ticket_id)["rating"] == "good"

    # resolved again since the rating: asked about this resolution, told which the rating it has was about
    later = format_time(datetime.now(UTC) + timedelta(minutes=1))
    intake.ticket = {**ticket, "resolution": "A new router.", "resolved_at": later}
    asked = text(browser.get(f"/tickets/{ticket_id}"))
    assert "You rated an earlier resolution of this request: <strong>Good" in asked
    assert "how did we do this time?" in asked and "You rated this request" not in asked
    assert '<details class="confirm">' not in asked.split('id="request-rating"')[1].split("</section>")[0]  # open


def test_a_request_its_requester_closed_before_anyone_worked_on_it_asks_for_no_rating(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    intake = Intake(CLOSED)  # closed, with no agent's reply and no resolution
    monkeypatch.setattr(svc, "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    page = text(browser.get("/tickets/t-9"))
    assert "How did we do?" not in page

    token = csrf(text(browser.get("/")))  # the page has no form left: a rating sent by hand
    refused = browser.post("/tickets/t-9/rating", data={"rating": "bad", "csrf_token": token})
    assert refused.status_code == 409 and "closed before anyone worked on it" in text(refused)
    assert svc.store.rating("t-9") is None

    reply = {"id": "r1", "kind": "reply", "author": {"type": "agent", "name": "Jane"}, "body": "Try this."}
    intake.ticket = {**CLOSED, "thread": [reply]}  # answered, then closed: the handling may be rated
    assert "How did we do?" in text(browser.get("/tickets/t-9"))

    tried = [{"resolution": "Restarted the router.", "resolved_at": "2026-12-01T09:00:00.000Z"}]
    intake.ticket = {**CLOSED, "earlier_resolutions": tried}  # resolved, reopened, closed with no new resolve
    assert "How did we do?" in text(browser.get("/tickets/t-9"))  # the form's post checks the same rule


def test_someone_without_the_request_cannot_rate_it(portal, monkeypatch):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    monkeypatch.setattr(svc, "services", Intake({**CLOSED, "status": "resolved"}))
    stranger = with_grants(portal, [{"id": "t-other", "email": "eve@example.com"}])
    token = csrf(text(stranger.get("/")))
    assert stranger.post("/tickets/t-9/rating", data={"rating": "bad", "csrf_token": token}).status_code == 404
    assert svc.store.rating("t-9") is None  # nothing stored for it


def test_a_message_sent_from_a_page_that_lost_its_request_is_shown_to_copy(portal, monkeypatch):  # noqa: F811
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Intake({**CLOSED, "status": "assigned"}))
    browser = with_grants(portal, [{"id": "t-other", "email": "mia@example.com"}])  # t-9 is not (any more) its
    token = csrf(text(browser.get("/")))

    sent = browser.post("/tickets/t-9/messages", data={"body": "My long <i>answer</i>.", "csrf_token": token})

    assert sent.status_code == 404
    assert "Your message, not sent" in text(sent) and "My long &lt;i&gt;answer&lt;/i&gt;." in text(sent)
    # why, and the fresh link asked for right there (the form of a link that does not work)
    assert "We cannot show this request here" in text(sent) and "or ask for a fresh link below." in text(sent)
    assert 'action="/status"' in text(sent) and "Email me a link" in text(sent)


def test_the_reports_count_the_ratings_of_the_period_and_a_lead_its_teams_alone(portal):  # noqa: F811
    from datetime import timedelta

    from services.portal import reports
    from services.portal.client import Actor
    from services.portal.period import Period

    svc = portal.extensions["ticketflow.portal"]
    at, mark = handlers.now(), uuid.uuid4().hex[:6]
    for n, (team, rating) in enumerate([("network", "good"), ("network", "bad"), ("desk", "good")]):
        svc.store.rate(f"t-{mark}-{n}", {"rating": rating, "comment": "", "rated_at": at, "team": f"{team}-{mark}"})
    svc.store.rate(f"t-{mark}-old", {"rating": "bad", "rated_at": at - timedelta(days=40), "team": f"network-{mark}"})
    period = Period(at - timedelta(days=30), at + timedelta(seconds=1), "")
    admin = Actor(role="admin", sub="admin")

    every = reports.Source(svc, reports.Reader(admin, None), period, "all").ratings
    lead = reports.Source(svc, reports.Reader(admin, (f"network-{mark}",)), period, "all").ratings

    mine = [r for r in every if r["team"].endswith(mark)]
    assert sorted((r["team"], r["rating"]) for r in mine) == [
        (f"desk-{mark}", "good"), (f"network-{mark}", "bad"), (f"network-{mark}", "good")]  # fmt: skip
    assert sorted(r["rating"] for r in lead) == ["bad", "good"]  # its team's, in the period


def test_the_same_message_sent_again_from_a_page_brought_back_is_not_posted_twice(portal, monkeypatch):  # noqa: F811
    """Back after Send brings the page with the words filled in again (the browser refills the form it left); Send
    again must not post them twice. The same words from a page opened since (a new question answered "Yes" again),
    other words, or the same long after, go as usual."""

    class Recording(Intake):
        def post(self, service, path, actor, body, **kwargs):
            self.posts.append((path, body["body"]))
            return {"id": f"m{len(self.posts)}", "kind": "message", "body": body["body"]}

    intake = Recording({**CLOSED, "status": "assigned"})
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    page = text(browser.get("/tickets/t-9"))
    token, seen = csrf(page), re.search(r'name="seen" value="([^"]+)"', page).group(1)
    form = {"body": "Yes.", "seen": seen, "csrf_token": token}

    first = browser.post("/tickets/t-9/messages", data=form)
    again = browser.post("/tickets/t-9/messages", data=form)  # Back, then Send: the same form again
    other = browser.post("/tickets/t-9/messages", data={**form, "body": "And on Wi-Fi too."})
    newer = browser.post("/tickets/t-9/messages", data={**form, "seen": "a-page-opened-since"})

    assert first.headers["Location"] == "/tickets/t-9?notice=sent#latest"
    assert again.status_code == 303 and again.headers["Location"] == "/tickets/t-9?notice=sent-before-message#latest"
    assert other.headers["Location"] == newer.headers["Location"] == "/tickets/t-9?notice=sent#latest"
    assert intake.posts == [("/tickets/t-9/messages", words) for words in ("Yes.", "And on Wi-Fi too.", "Yes.")]
    shown = text(browser.get(again.headers["Location"]))
    assert "You sent this message a moment ago, so it was not sent again: it is in the conversation." in shown
    assert 'data-draft-sent="draft:request:t-9"' in shown  # the tab's draft of it ends too

    later = handlers.now() + handlers.SAME_REQUEST_WINDOW + timedelta(seconds=1)
    monkeypatch.setattr(handlers, "now", lambda: later)  # long after: meant again
    assert browser.post("/tickets/t-9/messages", data=form).headers["Location"].endswith("notice=sent#latest")
    assert len(intake.posts) == 4


def sent_twice_at_once(portal, cookie: str, path: str, form: dict, first_in, release, monkeypatch) -> tuple:  # noqa: F811
    """One form posted twice from one browser: the second sent while the first is held (`first_in` set, until
    `release`), and let go once it waits on the first's end. (The first's answer, the second's.)"""
    import threading

    svc = portal.extensions["ticketflow.portal"]
    waiting, state = threading.Event(), svc.store.send_state

    def looked(*args):  # the second looks at the first's send while it waits on its end
        found = state(*args)
        if found == "going":
            waiting.set()
        return found

    def post(answers: list) -> None:
        client = portal.test_client()
        client.set_cookie(cookie_names(False)[0], cookie)
        answers.append(client.post(path, data=form))

    monkeypatch.setattr(svc.store, "send_state", looked)
    firsts, seconds = [], []
    first, second = threading.Thread(target=post, args=(firsts,)), threading.Thread(target=post, args=(seconds,))
    first.start()
    try:
        assert first_in.wait(30)
        second.start()
        assert waiting.wait(30)
    finally:
        release.set()
        first.join(30)
        second.join(30)
    return firsts[0], seconds[0]


def test_the_same_message_sent_twice_at_once_is_posted_once_and_one_refused_may_be_sent_again(portal, monkeypatch):  # noqa: F811
    """A double click (or a client retrying a slow POST) sends the form twice at once: the second, arriving while
    the first waits on intake, is told it went (a race hunter's find: both were posted, and both emailed). A
    message intake refused was not sent: the same form may go again."""
    import threading

    class Held(Intake):
        def __init__(self, ticket):
            super().__init__(ticket)
            self.first_in, self.release, self.refuse = threading.Event(), threading.Event(), False

        def post(self, service, path, actor, body, **kwargs):
            self.posts.append((path, body["body"]))
            if self.refuse:
                raise Refused(503, "Service Unavailable", "intake is busy")
            if len(self.posts) == 1:  # the first waits in intake until the second has had its answer
                self.first_in.set()
                assert self.release.wait(30)
            return {"id": f"m{len(self.posts)}", "kind": "message", "body": body["body"]}

    intake = Held({**CLOSED, "status": "assigned"})
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    page = text(browser.get("/tickets/t-9"))
    form = {"body": "Yes, it still drops.", "seen": re.search(r'name="seen" value="([^"]+)"', page).group(1),
            "csrf_token": csrf(page)}  # fmt: skip
    cookie = browser.get_cookie(cookie_names(False)[0]).value
    svc = portal.extensions["ticketflow.portal"]

    first, second = sent_twice_at_once(
        portal, cookie, "/tickets/t-9/messages", form, intake.first_in, intake.release, monkeypatch
    )
    assert second.headers["Location"] == "/tickets/t-9?notice=sent-before-message#latest"
    assert first.headers["Location"] == "/tickets/t-9?notice=sent#latest"
    assert intake.posts == [("/tickets/t-9/messages", "Yes, it still drops.")]

    # a session from before the claim kept its sends as a list: those are sent a moment ago still
    session_id = handlers.load_session(svc, cookie)["_id"]
    typed = {**form, "body": "Sent before the upgrade."}
    said = handlers.words_digest("t-9", "message", typed["seen"], typed["body"])
    svc.store.sessions.update_one({"_id": session_id}, {"$set": {"sent": [{"digest": said, "at": handlers.now()}]}})
    assert browser.post("/tickets/t-9/messages", data=typed).headers["Location"].endswith("sent-before-message#latest")
    assert len(intake.posts) == 1

    intake.refuse, other = True, {**form, "body": "And on Wi-Fi too."}
    assert browser.post("/tickets/t-9/messages", data=other).status_code == 503
    intake.refuse = False
    assert browser.post("/tickets/t-9/messages", data=other).headers["Location"] == "/tickets/t-9?notice=sent#latest"
    assert [words for _, words in intake.posts] == ["Yes, it still drops.", "And on Wi-Fi too.", "And on Wi-Fi too."]


def test_a_message_sent_twice_at_once_whose_first_send_failed_goes_with_the_second(portal, monkeypatch):  # noqa: F811
    """A double click whose first send failed (intake busy): the second, the answer the browser shows, waited for
    the first and sends the words (it said they went, and they were lost: a change review's find). A first send
    still going when the second has waited its while: the second's page keeps the words and says so."""
    import threading

    class Held(Intake):
        def __init__(self, ticket):
            super().__init__(ticket)
            self.first_in, self.release = threading.Event(), threading.Event()

        def post(self, service, path, actor, body, **kwargs):
            self.posts.append((path, body["body"]))
            if len(self.posts) == 1:  # the first waits in intake until the second waits on it, then fails
                self.first_in.set()
                assert self.release.wait(30)
                raise Refused(503, "Service Unavailable", "intake is busy")
            return {"id": f"m{len(self.posts)}", "kind": "message", "body": body["body"]}

    intake = Held({**CLOSED, "status": "assigned"})
    svc = portal.extensions["ticketflow.portal"]
    monkeypatch.setattr(svc, "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    page = text(browser.get("/tickets/t-9"))
    form = {"body": "Yes, it still drops.", "seen": re.search(r'name="seen" value="([^"]+)"', page).group(1),
            "csrf_token": csrf(page)}  # fmt: skip
    cookie = browser.get_cookie(cookie_names(False)[0]).value

    first, second = sent_twice_at_once(
        portal, cookie, "/tickets/t-9/messages", form, intake.first_in, intake.release, monkeypatch
    )
    assert first.status_code == 503
    assert second.headers["Location"] == "/tickets/t-9?notice=sent#latest"
    assert intake.posts == [("/tickets/t-9/messages", "Yes, it still drops.")] * 2

    # the first send has not ended when the second has waited its while: the words stay on the second's page
    other = {**form, "body": "And on Wi-Fi too."}
    said = handlers.words_digest("t-9", "message", other["seen"], other["body"])
    session_id = handlers.load_session(svc, cookie)["_id"]
    assert svc.store.claim_sent(session_id, said, handlers.now(), handlers.now() - timedelta(minutes=10))
    monkeypatch.setattr(handlers, "SEND_WAIT", 0)
    kept = browser.post("/tickets/t-9/messages", data=other)
    assert kept.status_code == 409
    assert handlers.STILL_GOING in text(kept) and ">And on Wi-Fi too.</textarea>" in text(kept)
    assert len(intake.posts) == 2


def test_a_message_sent_is_said_below_the_conversation_and_a_reopening_in_words(portal, monkeypatch):  # noqa: F811
    """After Send the page lands where the new message shows, saying it went (at the top the requester, taken to
    the conversation, never saw it); a message that reopens a resolved request says so."""

    class Resolved(Intake):
        def post(self, service, path, actor, body, **kwargs):
            self.posts.append(path)
            self.ticket = {**self.ticket, "status": "in_progress"}
            return {"id": "m1", "kind": "message", "body": body["body"]}

    intake = Resolved({**CLOSED, "status": "resolved"})
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    page = text(browser.get("/tickets/t-9"))
    form = {"body": "It drops again.", "seen": "x", "csrf_token": csrf(page)}

    sent = browser.post("/tickets/t-9/messages", data=form)

    assert sent.headers["Location"] == "/tickets/t-9?notice=sent-reopened#latest"
    shown = text(browser.get(sent.headers["Location"]))
    said = "Your message was sent, and your request is open again: an agent will look at it."
    assert said in shown and shown.index(said) > shown.index('id="conversation"')
    assert '<p class="notice notice--success" role="status" id="sent-notice" tabindex="-1">' in shown
    again = browser.post("/tickets/t-9/messages", data={**form, "body": "And on Wi-Fi."})  # open now: plain
    assert again.headers["Location"] == "/tickets/t-9?notice=sent#latest"


def test_a_message_whose_answer_is_lost_points_to_the_requests_page(portal, monkeypatch):  # noqa: F811
    """intake not answering a message: it may have stored it; the requester is told where to see that, in their
    words (a staff page's "look first" would not say where)."""

    class Lost(Intake):
        def post(self, service, path, actor, body, **kwargs):
            raise Unreachable("intake", "timed out")

    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", Lost({**CLOSED, "status": "assigned"}))
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    page = text(browser.get("/tickets/t-9"))
    form = {"body": "Yes.", "seen": re.search(r'name="seen" value="([^"]+)"', page).group(1), "csrf_token": csrf(page)}

    lost = browser.post("/tickets/t-9/messages", data=form)

    assert lost.status_code == 503
    assert "If what you sent went through meanwhile, its page shows it." in text(lost)
    assert "look first" not in text(lost) and "Nothing you sent was lost" not in text(lost)


def test_a_message_sent_after_the_session_ended_is_shown_back_to_copy(portal, monkeypatch):  # noqa: F811
    """The session ended under the open page (it expired, or "Forget my requests" in another tab): the form's
    token is no longer good, nothing is sent, and the words come back to copy."""
    intake = Intake({**CLOSED, "status": "assigned"})
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    token = csrf(text(browser.get("/tickets/t-9")))
    browser.delete_cookie(cookie_names(False)[0])
    ours = {"Sec-Fetch-Site": "same-origin"}  # a form of this site, as the browser says it

    sent = browser.post("/tickets/t-9/messages", data={"body": "My long <i>answer</i>.", "csrf_token": token},
                        headers=ours)  # fmt: skip

    assert sent.status_code == 403 and intake.posts == []
    page = text(sent)
    assert "This form has expired" in page and "Nothing was sent" in page
    assert "Your message, not sent" in page and "My long &lt;i&gt;answer&lt;/i&gt;." in page

    elsewhere = {"Sec-Fetch-Site": "cross-site"}  # a page of another site posting here: no words of its choosing
    forged = browser.post(
        "/tickets/t-9/messages", data={"body": "Call +1 555 0100 now", "csrf_token": "x"}, headers=elsewhere
    )
    assert forged.status_code == 403 and "This form has expired" in text(forged)
    assert "555 0100" not in text(forged) and "Your message, not sent" not in text(forged)
    unsaid = browser.post("/tickets/t-9/messages", data={"body": "Call +1 555 0100 now", "csrf_token": "x"})
    assert "555 0100" not in text(unsaid)  # a browser that does not say whose form it is: not shown either


def test_files_sent_without_words_go_with_a_message_that_names_them(portal, monkeypatch):  # noqa: F811
    """The screenshot an agent asked for, and nothing to say: the files go, with a message naming them (and the
    message's `files`, for the agent's email). Neither words nor files: the message is asked for, next to its field."""

    class Recording(Intake):
        def post(self, service, path, actor, body, **kwargs):
            self.posts.append((path, body["body"], body.get("files")))
            return {"id": f"m{len(self.posts)}", "kind": "message", "body": body["body"]}

        def call(self, service, method, path, actor, files=(), data=None, **kwargs):
            self.posts.append((path, data["message_id"], [name for _, (name, *_) in files]))
            return {"items": []}

    intake = Recording({**CLOSED, "status": "waiting_on_requester"})
    monkeypatch.setattr(portal.extensions["ticketflow.portal"], "services", intake)
    browser = with_grants(portal, [{"id": "t-9", "email": "mia@example.com"}])
    page = text(browser.get("/tickets/t-9"))
    form = {"body": "  ", "seen": re.search(r'name="seen" value="([^"]+)"', page).group(1), "csrf_token": csrf(page)}

    one = browser.post("/tickets/t-9/messages", content_type="multipart/form-data",
                       data={**form, "files": [(io.BytesIO(b"png"), "screen shot.png")]})  # fmt: skip
    two = browser.post("/tickets/t-9/messages", content_type="multipart/form-data",
                       data={**form, "files": [(io.BytesIO(b"a"), "a.pdf"), (io.BytesIO(b"b"), "b.log")]})  # fmt: skip
    none = browser.post("/tickets/t-9/messages", data=form)

    assert one.status_code == two.status_code == 303
    assert intake.posts == [
        ("/tickets/t-9/messages", "Sent a file: screen shot.png", ["screen shot.png"]),
        ("/tickets/t-9/attachments", "m1", ["screen shot.png"]),
        ("/tickets/t-9/messages", "Sent 2 files: a.pdf, b.log", ["a.pdf", "b.log"]),
        ("/tickets/t-9/attachments", "m3", ["a.pdf", "b.log"]),
    ]
    assert none.status_code == 422 and "Write your message, or attach a file." in text(none)
