"""The console's ticket page in-process, the other services a stub server (tests/integration/test_portal_search.py):
what a lead may assign the ticket to, and why the automatic assignment did what it did."""

from __future__ import annotations

import io
import os
import re
import uuid
from datetime import UTC, datetime, timedelta

from services.portal import attachments, console, handlers
from services.portal.pages import cookie_names
from shared import links
from shared.clock import now
from tests.integration.test_portal_requester_pages import sent_twice_at_once
from tests.integration.test_portal_search import PASSWORD, a_ticket, portal, signed_in, stub, text, with_grants  # noqa: F401

QUEUED = {"at": "2026-01-01T10:00:01.000Z", "action": "queued", "by": "system", "from": None, "to": None,
          "decision": {"rule": "the available agent with the fewest open tickets", "candidates": []}}  # fmt: skip
AGENTS = [
    {"id": "ada", "name": "Ada Lovelace", "teams": ["network"], "open_tickets": 2, "available": True},
    {"id": "ines", "name": "Ines Romero", "teams": ["general"], "open_tickets": 1, "available": True},
]


def a_queued_ticket(stub) -> None:  # noqa: F811
    """t-1 waiting in network's queue: nobody could take it (intake and assignment answer alike here)."""
    a_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"team": "network", "agent_id": None, "history": [QUEUED]}
    stub.answers["/agents"] = {"items": AGENTS}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "general", "name": "General"}]}


def test_a_ticket_in_the_queue_offers_its_teams_agents_only_and_none_chosen(portal, stub):  # noqa: F811
    a_queued_ticket(stub)  # every agent: ada of network, ines of general
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    assert '<option value="" selected disabled>Choose an agent of Network</option>' in html
    assert '<option value="ada">Ada Lovelace (2 open)</option>' in html  # assignment said no capacity here
    assert '<option value="ines"' not in html  # of another team: assignment would refuse her (422)
    assert '<option value="general">General</option>' in html  # ines takes its tickets

    stub.answers["/agents"] = {"items": [AGENTS[0] | {"capacity": 2, "available": False}]}
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    assert '<option value="ada">Ada Lovelace (2 open of 2: full, away)</option>' in html  # a lead may still choose
    assert '<option value="general">General (no agents)</option>' in html  # a transfer there would wait
    assert "Network (its team now; nobody available)</option>" in html
    assert "It is in Network now (nobody available).</p>" in html  # said where a narrow box cannot cut it off


def test_a_resolved_ticket_says_what_was_done_at_its_top_and_what_was_tried_before(portal, stub):  # noqa: F811
    """An agent on a resolved ticket reads the resolution as the requester does, not as a line deep in the history;
    what was done before each reopening, under it."""
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {
        "status": "resolved", "agent_id": "ada", "resolution": "New VPN profile.\nRekey every 8 h.",
        "resolved_at": "2026-12-04T08:20:00.000Z",
        "earlier_resolutions": [{"resolution": "Restarted the <b>client</b>.", "resolved_at": "2026-12-03T10:00Z"}],
    }  # fmt: skip
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    top = html.split('id="resolution-title"')[1]
    assert '<p class="resolution"><span dir="auto">New VPN profile.\nRekey every 8 h.</span></p>' in top
    assert "The requester reads these words with the ticket." in top
    assert "Tried before it was reopened (1)" in html and "Restarted the &lt;b&gt;client&lt;/b&gt;." in html
    assert html.index('id="resolution-title"') < html.index('id="live"')  # above the conversation
    stub.answers["/tickets/t-1"] |= {"status": "in_progress", "resolution": None}  # reopened: no "What was done"
    assert 'id="resolution-title"' not in text(signed_in(portal).get("/console/tickets/t-1"))


def test_a_holder_who_left_the_team_is_not_shown_as_chosen(portal, stub):  # noqa: F811
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"agent_id": "bob"}  # bob has it, but is no longer in network
    stub.answers["/agents"] = {"items": AGENTS[:1]}
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    assert '<option value="" selected disabled>Choose an agent of Network</option>' in html
    assert "selected>Ada" not in html


def test_a_team_without_agents_says_to_transfer_the_ticket(portal, stub):  # noqa: F811
    a_queued_ticket(stub)
    stub.answers["/agents"] = {"items": []}
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    assert "Network has no agents to assign it to: transfer it to another team." in html
    assert 'id="assign-agent"' not in html


def test_an_automatic_assignment_that_found_nobody_says_the_ticket_waits(portal, stub):  # noqa: F811
    a_queued_ticket(stub)
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    assert "Why it was left in the team&#39;s queue (the team had no agents)" in html  # its decision had no candidates
    assert "Why None got it" not in html


def poll_url(html: str) -> str:
    """The URL the page's live parts poll (htmx), as the browser reads it from the poller's attribute."""
    return re.search(r'<div id="live-poll" hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")


def a_ticket_of_its_own(stub) -> str:  # noqa: F811
    """t-1's answers under an id no other test opens: who has a ticket open is kept in the portal's database,
    which every test of the session shares (another test's visit to t-1 would show as someone here)."""
    ticket_id = f"t-{uuid.uuid4().hex[:8]}"
    a_ticket(stub)
    stub.answers[f"/tickets/{ticket_id}"] = stub.answers["/tickets/t-1"] | {"id": ticket_id}
    for part in ("timeline", "mail", "attachments"):
        stub.answers[f"/tickets/{ticket_id}/{part}"] = {"items": []}
    return ticket_id


def test_the_live_parts_answer_204_while_nothing_changed_and_the_changed_part_alone_when_it_did(portal, stub):  # noqa: F811
    ticket_id = a_ticket_of_its_own(stub)
    client = signed_in(portal)
    url = poll_url(text(client.get(f"/console/tickets/{ticket_id}")))

    unchanged = client.get(url)
    assert unchanged.status_code == 204 and not unchanged.data  # nothing swapped: a click in it is never lost

    message = {"id": "m-1", "kind": "message", "author": {"type": "requester", "name": "Ana"},
               "body": "It jams again on tray 2.", "at": "2026-01-01T11:00:00.000Z"}  # fmt: skip
    stub.answers[f"/tickets/{ticket_id}"] |= {"thread": [message]}
    changed = text(client.get(url))
    assert '<div id="live" hx-swap-oob="true">' in changed and "It jams again on tray 2." in changed
    newer = poll_url(changed)
    assert newer != url and client.get(newer).status_code == 204  # the new poller sends the new digests


def test_the_sla_clocks_follow_while_the_page_is_open_without_a_reload(portal, stub):  # noqa: F811
    ticket_id = a_ticket_of_its_own(stub)
    client = signed_in(portal)
    page = text(client.get(f"/console/tickets/{ticket_id}"))
    assert '<div id="live-clocks">' in page and "No clock is running yet." in page
    url = poll_url(page)
    assert client.get(url).status_code == 204

    due = "2026-01-01T12:00:00.000Z"  # sla started them (one stub answers every service: its ticket has clocks)
    stub.answers[f"/tickets/{ticket_id}"] |= {"clocks": {"first_response": {"state": "running", "due_at": due,
                                                                            "remaining_seconds": 3725}}}  # fmt: skip
    started = text(client.get(url))
    assert '<div id="live-clocks" hx-swap-oob="innerHTML">' in started and "1 h 02 min left" in started
    assert 'id="live" ' not in started and 'id="live-changes"' not in started  # the other parts stay as they are
    newer = poll_url(started)
    assert client.get(newer).status_code == 204  # as shown now

    stub.answers[f"/tickets/{ticket_id}"]["clocks"]["first_response"] |= {"state": "breached", "remaining_seconds": -60}
    breached = text(client.get(newer))
    assert 'class="clock clock--breached"' in breached and "First response</strong>: Breached" in breached


def test_while_sla_does_not_answer_the_clocks_shown_stay_and_the_rest_goes_on(portal, stub, monkeypatch):  # noqa: F811
    ticket_id = a_ticket_of_its_own(stub)
    due = "2026-01-01T12:00:00.000Z"
    stub.answers[f"/tickets/{ticket_id}"] |= {"clocks": {"first_response": {"state": "running", "due_at": due,
                                                                            "remaining_seconds": 3725}}}  # fmt: skip
    client = signed_in(portal)
    url = poll_url(text(client.get(f"/console/tickets/{ticket_id}")))
    monkeypatch.setattr(console, "sla_clocks", lambda *args: None)  # sla down from here on

    assert client.get(url).status_code == 204  # the clocks shown stay: not swapped for a word of sla's silence
    message = {"id": "m-1", "kind": "message", "author": {"type": "requester", "name": "Ana"},
               "body": "Any news?", "at": "2026-01-01T11:00:00.000Z"}  # fmt: skip
    stub.answers[f"/tickets/{ticket_id}"] |= {"thread": [message]}
    changed = text(client.get(url))
    assert "Any news?" in changed and 'id="live-clocks"' not in changed  # the conversation goes on
    page = text(client.get(f"/console/tickets/{ticket_id}"))  # opened while sla is silent: says so, not "no clock"
    assert "The SLA clocks cannot be read just now" in page and "No clock is running yet." not in page


def test_someone_else_arriving_changes_the_notices_alone_not_the_conversation(portal, stub):  # noqa: F811
    ticket_id = a_ticket_of_its_own(stub)
    ana = signed_in(portal)
    url = poll_url(text(ana.get(f"/console/tickets/{ticket_id}")))
    assert ana.get(url).status_code == 204

    bob_page = text(signed_in(portal).get(f"/console/tickets/{ticket_id}"))
    assert "Also viewing now: an admin</p>" in bob_page  # from the first moment (not the first poll); no address

    arrived = text(ana.get(url))
    # in place: the page's live region of who is here stays, and a screen reader reads who came in; the list of
    # changes (its own region) is not sent again, so it is not read again
    assert '<div id="live-presence" role="status" hx-swap-oob="innerHTML">' in arrived
    assert 'id="live-changes"' not in arrived
    assert "Also viewing now: an admin</p>" in arrived and "admin-" not in arrived.split("Also viewing")[1]
    assert 'id="live" ' not in arrived  # the conversation, with its links, stays as it is


def test_an_address_nobody_proved_is_marked_until_an_emailed_link_is_followed(portal, stub):  # noqa: F811
    """The web form takes any address; an agent sees so, until someone follows a link emailed to it."""
    ticket_id = a_ticket_of_its_own(stub)
    stub.answers[f"/tickets/{ticket_id}"]["source"] = "web"
    agent = signed_in(portal)
    assert "Address not confirmed" in text(agent.get(f"/console/tickets/{ticket_id}"))

    svc = portal.extensions["ticketflow.portal"]
    form_session = with_grants(portal, [{"id": ticket_id, "email": "a@example.com"}])  # the web form's browser
    token = links.mint_link_token(os.environ["TICKETFLOW_JWT_SECRET"], ticket_id, "a@example.com", 30)
    mailbox = portal.test_client()
    followed = mailbox.get(f"/t/{token}")

    assert followed.status_code == 303
    granted = lambda client: any(  # noqa: E731
        grant["id"] == ticket_id
        for grant in handlers.load_session(svc, client.get_cookie(cookie_names(False)[0]).value)["tickets"]
    )
    # Following is not enough (a mail scanner follows every link as the message arrives, and its redirect too):
    # a person acts on the page.
    assert mailbox.get(f"/tickets/{ticket_id}").status_code == 200
    assert granted(mailbox) and granted(form_session)
    assert "Address not confirmed" in text(agent.get(f"/console/tickets/{ticket_id}"))
    assert mailbox.get(f"/tickets/{ticket_id}/live?shown=-&n=0&s=new").status_code == 200  # its page's first poll

    assert granted(mailbox) and not granted(form_session)  # whoever typed the address needs a link now
    later = portal.test_client()
    assert later.get(f"/t/{token}").status_code == 303
    assert later.get(f"/tickets/{ticket_id}/live?shown=-&n=0&s=new").status_code == 200
    assert granted(mailbox)  # later ones drop none
    html = text(agent.get(f"/console/tickets/{ticket_id}"))
    assert "Address not confirmed" not in html and "· address confirmed" in html
    for source in ("email", "phone", "api"):  # by mail, an agent on the phone, an integration: nothing said
        stub.answers[f"/tickets/{ticket_id}"]["source"] = source
        assert "address confirmed" not in text(agent.get(f"/console/tickets/{ticket_id}")).lower()


def test_a_reply_too_long_is_said_in_words_and_kept_before_assignment_is_asked(portal, stub):  # noqa: F811
    a_ticket(stub)
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    calls = len(stub.calls)

    sent = admin.post("/console/tickets/t-1/reply", data={"body": "x" * 20_001, "csrf_token": token})

    assert sent.status_code == 422
    assert "Keep it to 20,000 characters (it has 20,001)." in text(sent)
    assert ">" + "x" * 20_001 + "</textarea>" in text(sent)  # what was typed stays
    assert not [c for c in stub.calls[calls:] if c["path"] == "/tickets/t-1/replies"]


def test_an_empty_resolution_is_summed_up_linked_to_its_field_and_marked_there(portal, stub):  # noqa: F811
    a_ticket(stub)
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    calls = len(stub.calls)

    sent = text(admin.post("/console/tickets/t-1/resolve", data={"resolution": "  ", "csrf_token": token}))

    summary = sent[sent.index('class="error-summary"') : sent.index("</div>", sent.index('class="error-summary"'))]
    assert '<a href="#resolution">Say how it was resolved: the requester reads it.</a>' in summary
    assert "That did not work" not in sent  # nothing refused it: the field was empty
    assert "<title>Error: #" in sent  # the title says it first, as on every page whose form came back
    assert "<title>Error:" not in text(admin.get("/console/tickets/t-1"))
    field = re.search(r'<textarea id="resolution"[^>]*>', sent).group(0)  # a box of lines: the requester reads it
    assert 'aria-invalid="true"' in field and 'aria-describedby="resolution-hint resolution-error"' in field
    assert 'id="resolution-error"' in sent
    assert not [c for c in stub.calls[calls:] if c["path"] == "/tickets/t-1/resolve"]


def test_an_empty_note_is_said_next_to_its_box_as_a_reply_is_not_left_to_the_browser(portal, stub):  # noqa: F811
    """The note's box is not `required`: a browser's own bubble says nothing a screen reader and the page's
    summary would; the page says it, as for an empty reply."""
    a_ticket(stub)
    admin = signed_in(portal)
    page = text(admin.get("/console/tickets/t-1"))
    assert "required" not in re.search(r'<textarea id="note-body"[^>]*>', page).group(0)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    sent = admin.post("/console/tickets/t-1/note", data={"body": " ", "csrf_token": token})

    assert sent.status_code == 422
    assert '<a href="#note-body">Write the note first.</a>' in text(sent)
    assert 'aria-invalid="true"' in re.search(r'<textarea id="note-body"[^>]*>', text(sent)).group(0)
    assert not [c for c in stub.calls if c["path"] == "/tickets/t-1/notes"]


def test_a_send_whose_answer_is_lost_says_it_may_have_gone_through_a_page_that_is_not_says_nothing_was(
    portal,  # noqa: F811
    stub,  # noqa: F811
):
    """assignment failing (5xx, or no answer) under a reply may have done it first: the page says to look before
    sending again (a second send from the old page is then held back: "an earlier try"); a page that could not be
    read sent nothing."""
    a_ticket(stub)
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    stub.answers["/tickets/t-1/replies"] = (503, {"title": "Service Unavailable", "detail": "down"})

    sent = admin.post("/console/tickets/t-1/reply", data={"body": "Restart it.", "csrf_token": token})

    assert sent.status_code == 503
    assert "It may have gone through before the answer was lost: look first." in text(sent)
    assert "Nothing you sent was lost" not in text(sent)
    stub.answers["/tickets/t-1"] = (503, {"title": "Service Unavailable", "detail": "down"})
    read = admin.get("/console/tickets/t-1")
    assert read.status_code == 503 and "Nothing you sent was lost." in text(read)


def test_a_refusal_of_another_field_is_the_services_refusal_not_the_replys_text(portal, stub):  # noqa: F811
    a_ticket(stub)
    stub.answers["/tickets/t-1/replies"] = (422, {"title": "Unprocessable Entity", "status": 422,
                                                  "detail": "The request has invalid fields.",
                                                  "errors": {"status": ["Must be one of: in_progress."]}})  # fmt: skip
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)

    sent = text(admin.post("/console/tickets/t-1/reply", data={"body": "On it.", "csrf_token": token}))

    assert "That did not work" in sent and 'class="error-summary"' not in sent
    assert 'aria-invalid="true"' not in re.search(r'<textarea id="reply-body"[^>]*>', sent).group(0)


def test_the_page_lists_the_requesters_other_requests_as_intake_gives_them_to_the_reader(portal, stub):  # noqa: F811
    a_ticket(stub)
    stub.answers["/tickets"] = {"items": [
        {"id": "t-1", "number": 7, "subject": "Printer", "status": "new", "created_at": "2026-01-01T10:00:00.000Z"},
        {"id": "t-0", "number": 5, "subject": "Toner <low>", "status": "closed",
         "created_at": "2025-12-01T10:00:00.000Z"},
    ], "next_cursor": None}  # fmt: skip

    html = text(signed_in(portal).get("/console/tickets/t-1"))

    assert "<bdi>Ana</bdi>'s other requests</h2>" in html
    assert '<a href="/console/tickets/t-0">#5 <bdi>Toner &lt;low&gt;</bdi></a>' in html and "Closed · opened" in html
    assert 'href="/console/tickets/t-1">#7' not in html  # not itself
    [asked] = [call["args"] for call in stub.calls if call["path"] == "/tickets"]
    assert asked["requester_email"] == "a@example.com"

    stub.answers.pop("/tickets")  # intake refuses or has none: no panel
    assert "other requests" not in text(signed_in(portal).get("/console/tickets/t-1"))


def test_a_transfer_to_the_team_the_ticket_is_in_leaves_it_with_its_agent(portal, stub):  # noqa: F811
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"agent_id": "ada", "status": "assigned"}
    stub.answers["/tickets/t-1/assign"] = {"ticket_id": "t-1"}
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)

    same = admin.post("/console/tickets/t-1/transfer", data={"team": "network", "csrf_token": token})

    assert same.status_code == 409  # the form's first choice, sent as it is: assignment would pick an agent again
    assert "That did not work: It is in Network already: it stays with its agent." in text(same)
    assert '<option value="network" selected>Network (its team now)</option>' in text(same)
    assert not [c for c in stub.calls if c["method"] == "POST" and c["path"] == "/tickets/t-1/assign"]

    moved = admin.post("/console/tickets/t-1/transfer", data={"team": "general", "csrf_token": token})

    assert moved.status_code == 303
    [sent] = [c for c in stub.calls if c["method"] == "POST" and c["path"] == "/tickets/t-1/assign"]
    assert sent["json"] == {"team": "general"}

    stub.answers["/tickets/t-1"] |= {"agent_id": None, "status": "new"}  # waiting in network's queue
    again = admin.post("/console/tickets/t-1/transfer", data={"team": "network", "csrf_token": token})
    assert again.status_code == 303  # assignment tries its pick again: nobody's work is taken
    assert [c["json"] for c in stub.calls if c["method"] == "POST" and c["path"] == "/tickets/t-1/assign"][-1] == {
        "team": "network"
    }


def test_an_actions_address_opened_again_leads_to_its_ticket_and_the_bulk_forms_to_the_queue(portal, stub):  # noqa: F811
    """After a refusal the bar shows the form's address; Enter there, or a copied link, is a GET of it."""
    a_ticket(stub)
    admin = signed_in(portal)
    for action in ("resolve", "status", "reply", "note", "transfer", "insert"):
        again = admin.get(f"/console/tickets/t-1/{action}")
        assert again.status_code == 303 and again.headers["Location"].endswith("/console/tickets/t-1"), action
    assert admin.get("/console/tickets/t-1/nothing-here").status_code == 404
    bulk = admin.get("/console/bulk")
    assert bulk.status_code == 303 and bulk.headers["Location"].endswith("/console/")
    assert not [c for c in stub.calls if c["method"] == "POST"]
    rating = portal.test_client().get("/tickets/t-1/rating")
    assert rating.status_code == 303 and rating.headers["Location"].endswith("/tickets/t-1")


def test_a_session_that_ended_under_an_open_ticket_signs_in_again_and_goes_back_to_it(portal, stub):  # noqa: F811
    """Signed out in another tab (or disabled, or expired): the page's refresh goes to the sign-in page, which says
    why and then leads back to the ticket; a form sent from it is refused (403) saying so, with what was typed to
    copy and a link that signs in again and leads back."""
    a_ticket(stub)
    svc = portal.extensions["ticketflow.portal"]
    admin = signed_in(portal)
    html = text(admin.get("/console/tickets/t-1?notice=note"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    session_token = admin.get_cookie(cookie_names(False)[0]).value
    handlers.end_session(svc, handlers.load_session(svc, session_token))  # disabled, expired: the cookie stays

    shown = {"HX-Request": "true", "HX-Current-URL": "http://portal/console/tickets/t-1?notice=note&x=1"}
    refresh = admin.get(poll_url(html), headers=shown)
    assert refresh.status_code == 204  # the confirmation is not said again after signing in
    assert refresh.headers["HX-Redirect"] == "/login?next=/console/tickets/t-1?x%3D1&notice=session-ended"
    again = text(admin.get("/login?next=/console/tickets/t-1&notice=session-ended"))
    assert "You were signed out: in another tab, by an admin, or after a while." in again

    ours = {"Sec-Fetch-Site": "same-origin"}  # a form of this site, as the browser says it: its words shown to copy
    note = {"body": "Checked the cable.", "csrf_token": token}
    sent = admin.post("/console/tickets/t-1/note", data=note, headers=ours)
    assert sent.status_code == 403
    page = text(sent)
    assert "You are signed out" in page and "Nothing was sent: your session ended" in page
    assert "Checked the cable." in page  # to copy
    assert 'href="/login?next=/console/tickets/t-1&amp;notice=session-ended">Sign in again</a>' in page
    assert not [c for c in stub.calls if c["method"] == "POST"]


def test_a_form_sent_after_signing_out_in_another_tab_says_so_and_leads_back(portal, stub):  # noqa: F811
    """ "Sign out" deletes the cookie both tabs share: the other tab's form comes with no session at all."""
    a_ticket(stub)
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    assert admin.post("/logout", data={"csrf_token": token}).status_code == 303

    for path, form, back in (
        ("/console/tickets/t-1/resolve", {"resolution": "Replaced the cable."}, "/console/tickets/t-1"),
        ("/admin/accounts", {"email": "x@example.com"}, "/admin/"),
        ("/account/password", {}, "/account/password"),
    ):
        sent = admin.post(path, data={**form, "csrf_token": token})
        assert sent.status_code == 403 and "You are signed out" in text(sent), path
        assert f'href="/login?next={back}&amp;notice=session-ended">Sign in again</a>' in text(sent), path
    ours = {"Sec-Fetch-Site": "same-origin"}  # the words come back to copy from a form of this site
    resolved = admin.post("/console/tickets/t-1/resolve", data={"resolution": "Replaced the cable."}, headers=ours)
    assert "Replaced the cable." in text(resolved)
    assert not [c for c in stub.calls if c["method"] == "POST"]


def test_the_sign_out_address_opened_in_the_bar_signs_nobody_out(portal, stub):  # noqa: F811
    svc = portal.extensions["ticketflow.portal"]
    admin = signed_in(portal)
    opened = admin.get("/logout")
    assert opened.status_code == 200 and '<button type="submit" class="button">Sign out</button>' in text(opened)
    token = admin.get_cookie(cookie_names(False)[0]).value
    assert handlers.load_session(svc, token) is not None  # still signed in: a link cannot sign anyone out
    form = re.search(r'name="csrf_token" value="([^"]+)"', text(opened)).group(1)
    assert admin.post("/logout", data={"csrf_token": form}).status_code == 303  # the page's button does
    assert handlers.load_session(svc, token) is None
    assert portal.test_client().get("/logout").headers["Location"].endswith("/login")


def test_the_page_offers_each_mail_about_the_ticket_whole_through_the_portal(portal, stub):  # noqa: F811
    a_ticket(stub)
    stub.answers["/tickets/t-1/mail"] = {"items": [
        {"id": "m-1", "subject": "Forwarded <thread>", "sender": "ana@example.com", "outcome": "ticket",
         "received_at": "2026-01-01T10:00:00.000Z", "whole": True, "text": "x", "reason": "opened a ticket"},
        {"id": "m-2", "subject": "Refused", "sender": "b@example.com", "outcome": "kept",
         "received_at": "2026-01-01T10:01:00.000Z", "whole": False, "text": "y",
         "reason": "automatic mail: an Outlook auto-reply (X-Auto-Response-Suppress: All)"},
    ]}  # fmt: skip
    stub.answers["/tickets/t-1/mail/m-1/raw"] = {"raw": "as it came"}
    stub.answers["/tickets/t-1/mail/m-1/text"] = {"text": "whole, links hidden"}
    admin = signed_in(portal)

    html = text(admin.get("/console/tickets/t-1"))
    assert '<a href="/console/tickets/t-1/mail/m-1.txt"><bdi>Forwarded &lt;thread&gt;</bdi></a>' in html
    assert '<a href="/console/tickets/t-1/mail/m-1.eml" download>as it came (.eml)</a>' in html
    assert "2026, 10:00 UTC</time> · opened a ticket</span>" in html  # what became of it: two of one subject told apart
    assert "/mail/m-2." not in html  # its bytes are not kept
    # why it is not in the conversation, its first letter raised and the rest as intake wrote it
    assert '<p class="hint">Automatic mail: an Outlook auto-reply (X-Auto-Response-Suppress: All).</p>' in html

    whole = admin.get("/console/tickets/t-1/mail/m-1.eml")
    assert whole.status_code == 200 and whole.get_json() == {"raw": "as it came"}  # intake's answer, passed on
    assert [c["path"] for c in stub.calls if c["path"].endswith("/raw")] == ["/tickets/t-1/mail/m-1/raw"]
    assert admin.get("/console/tickets/t-1/mail/m-9.eml").status_code == 404
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    ada = signed_in(portal, "agent", "ada")
    agent = text(ada.get("/console/tickets/t-1"))
    assert '<a href="/console/tickets/t-1/mail/m-1.txt"><bdi>Forwarded &lt;thread&gt;</bdi></a>' in agent
    assert ".eml" not in agent  # the bytes hold the requester's links as they came: admins only
    read = ada.get("/console/tickets/t-1/mail/m-1.txt")
    assert read.status_code == 200 and read.get_json() == {"text": "whole, links hidden"}  # intake's, passed on
    assert ada.get("/console/tickets/t-1/mail/m-9.txt").status_code == 404


def test_a_bounce_of_the_tickets_email_is_said_beside_the_requesters_address(portal, stub):  # noqa: F811
    """A tester's agent kept replying to a mailbox that did not exist: the bounce was listed, nothing else said."""
    a_ticket(stub)
    read_report = {"id": "m-1", "subject": "Read: VPN", "sender": "ana@example.com", "outcome": "ignored",
                   "received_at": "2026-01-01T10:00:00.000Z", "text": "x",
                   "reason": "automatic mail: a read report (multipart/report)"}  # fmt: skip
    stub.answers["/tickets/t-1/mail"] = {"items": [read_report]}
    admin = signed_in(portal)
    assert "Email bounced" not in text(admin.get("/console/tickets/t-1"))
    bounce = read_report | {"id": "m-2", "subject": "Undelivered Mail Returned to Sender",
                            "received_at": "2026-01-02T10:00:00.000Z",
                            "reason": "automatic mail: a bounce from mailer-daemon@mx.example.com"}  # fmt: skip
    stub.answers["/tickets/t-1/mail"] = {"items": [read_report, bounce]}
    html = text(admin.get("/console/tickets/t-1"))
    assert '<strong class="badge badge--warn">Email bounced</strong>' in html
    assert "An email to this address came back undelivered (2 Jan 2026, 10:00 UTC;" in html


def test_the_files_of_a_mail_kept_for_the_agents_are_links_to_them(portal, stub):  # noqa: F811
    a_ticket(stub)
    files = [{"filename": "trace <1>.log", "content_type": "text/plain", "size": 7},
             {"filename": "receipt.eml", "content_type": "message/rfc822", "size": 900}]  # fmt: skip
    stub.answers["/tickets/t-1/mail"] = {"items": [
        {"id": "m-3", "subject": "Me too", "sender": "bo@example.com", "outcome": "kept", "whole": True,
         "received_at": "2026-01-01T10:02:00.000Z", "text": "Same here.", "reason": "another sender",
         "attachments": files},
    ]}  # fmt: skip
    stub.answers["/tickets/t-1/mail/m-3/files/1"] = {"file": "its bytes"}
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    ada = signed_in(portal, "agent", "ada")

    html = text(ada.get("/console/tickets/t-1"))

    assert '<a href="/console/tickets/t-1/mail/m-3/files/1" download><bdi>trace &lt;1&gt;.log</bdi></a>' in html
    assert "<bdi>receipt.eml</bdi> (a mail: its text is in the mail's whole text, below)" in html  # admins' file
    assert ada.get("/console/tickets/t-1/mail/m-3/files/1").get_json() == {"file": "its bytes"}  # intake's, passed on
    assert ada.get("/console/tickets/t-1/mail/m-3/files/2").status_code == 404  # intake refuses it (no answer here)
    assert '/mail/m-3/files/2" download><bdi>receipt.eml' in text(signed_in(portal).get("/console/tickets/t-1"))


def test_a_ticket_transferred_to_a_team_where_nobody_takes_tickets_says_it_waits(portal, stub):  # noqa: F811
    a_queued_ticket(stub)  # in network's queue, no agent
    stub.answers["/agents"] = {"items": [AGENTS[0] | {"available": False}, AGENTS[1]]}
    html = text(signed_in(portal).get("/console/tickets/t-1?notice=transfer"))
    assert (
        "Ticket transferred. Nobody in Network takes tickets now (its only agent is away): the ticket waits in its "
        "queue until an agent there is available." in html
    )
    stub.answers["/agents"] = {"items": AGENTS}  # ada is back: nothing to warn of
    html = text(signed_in(portal).get("/console/tickets/t-1?notice=transfer"))
    assert "Ticket transferred.</p>" in html and "Nobody in" not in html
    assert "<dt>Team</dt><dd>Network</dd>" in html  # the team's name, not its id


def test_a_transfer_says_why_to_the_team_it_goes_to_in_a_note_added_first(portal, stub):  # noqa: F811
    """The lead's words for the receiving team go as an internal note before the ticket leaves (after, the lead
    may no longer see it); none written, none added; too long, said beside the box and nothing done."""
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1/notes"] = {"id": "n-1"}
    stub.answers["/tickets/t-1/assign"] = {"ticket_id": "t-1", "team": "general", "agent_id": "ines"}
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    assert 'id="transfer-note"' in text(admin.get("/console/tickets/t-1"))
    stub.calls.clear()

    admin.post("/console/tickets/t-1/transfer", data={"csrf_token": token, "team": "general",
                                                      "note": "A printer share, not the VPN."})  # fmt: skip
    admin.post("/console/tickets/t-1/transfer", data={"csrf_token": token, "team": "general", "note": "  "})
    long = admin.post("/console/tickets/t-1/transfer", data={"csrf_token": token, "team": "general",
                                                             "note": "x" * 20_001})  # fmt: skip

    posts = [(c["path"], c["json"]) for c in stub.calls if c["method"] == "POST"]
    assert posts == [
        ("/tickets/t-1/notes", {"body": "A printer share, not the VPN."}),
        ("/tickets/t-1/assign", {"team": "general"}),
        ("/tickets/t-1/assign", {"team": "general"}),
    ]
    assert long.status_code == 422 and "Keep it to 20,000 characters" in text(long)  # fmt: skip


def test_a_transfer_out_of_the_leads_sight_ends_on_the_queue_saying_whether_an_agent_there_has_it(portal, stub):  # noqa: F811
    a_queued_ticket(stub)
    seen = dict(stub.answers["/tickets/t-1"])

    def the_ticket():  # the lead reads it until it is transferred to a team the lead is not in
        moved = any(call["path"] == "/tickets/t-1/assign" for call in stub.calls)
        return (404, {"title": "Not Found", "detail": "No ticket t-1."}) if moved else seen

    stub.answers["/tickets/t-1"] = the_ticket
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada Lovelace", "teams": ["network"], "lead_of": ["network"]}
    lead = signed_in(portal, "agent", "ada")
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(lead.get("/console/tickets/t-1"))).group(1)
    for taken, notice in (("ines", "handed-on"), (None, "handed-on-waiting")):
        stub.calls.clear()
        stub.answers["/tickets/t-1/assign"] = {"ticket_id": "t-1", "team": "general", "agent_id": taken}

        done = lead.post("/console/tickets/t-1/transfer", data={"csrf_token": token, "team": "general"})

        assert done.status_code == 303
        assert done.headers["Location"].endswith(f"/console/?notice={notice}&team=general&from=t-1")
        stub.answers |= {"/queue": {"items": [], "next_cursor": None}, "/topics": {"items": []}}
        said = text(lead.get(done.headers["Location"]))
        tail = "an agent there has it." if taken else "it waits in their queue."
        assert f"The ticket is with General now, out of your sight: {tail}" in said
        # the transfer's note went: its draft in the tab ends (it came back on the ticket's page: a review's find)
        assert re.search(r'data-draft-sent="draft:[0-9a-f]+:t-1:transfer"', said)
    odd = text(lead.get("/console/?notice=handed-on&team=general&from=t-1%22%3E%3Cx"))  # only an id is taken
    assert "data-draft-sent" not in odd and "<x" not in odd


def test_a_ticket_handed_out_of_sight_while_open_says_so_and_gives_back_what_was_typed(portal, stub):  # noqa: F811
    """A lead moves the ticket to a team its agent is not in while the agent's page is open: the page's poll says the
    ticket is out of sight now (and stops), and a note sent from it says nothing was done and gives the note back."""
    a_queued_ticket(stub)
    seen = dict(stub.answers["/tickets/t-1"])
    moved = {"now": False}
    gone = (404, {"title": "Not Found", "detail": "No ticket t-1."})
    stub.answers["/tickets/t-1"] = lambda: gone if moved["now"] else seen
    stub.answers["/tickets/t-1/notes"] = lambda: gone if moved["now"] else {"id": "n-1"}
    agent = signed_in(portal)
    page = text(agent.get("/console/tickets/t-1"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    poll = re.search(r'hx-get="([^"]+/live[^"]*)"', page).group(1).replace("&amp;", "&")
    assert agent.get(poll).status_code == 204  # nothing changed

    moved["now"] = True
    told = text(agent.get(poll))
    assert "This ticket is out of your sight now." in told and "hx-trigger" not in told  # the poller stops
    sent = agent.post("/console/tickets/t-1/note", data={"csrf_token": token, "body": "Called <b>Paul</b>, no answer."})
    assert sent.status_code == 404
    assert "This ticket is out of your sight now" in text(sent) and "Nothing was done" in text(sent)
    assert "It may have been handed on to a team you are not in" in text(sent)  # likely, not asserted as a fact
    assert "Called &lt;b&gt;Paul&lt;/b&gt;, no answer." in text(sent)  # to copy: not lost
    assert "No such ticket here" in text(agent.get("/console/tickets/t-1"))  # opened afresh: as any unseen ticket


def test_a_ticket_s_topic_is_shown_by_its_name_and_by_its_id_when_intake_does_not_say(portal, stub):  # noqa: F811
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"topic": "vpn"}
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    assert "<dt>Topic</dt><dd>vpn</dd>" in html  # no /topics here: the id
    stub.answers["/topics"] = {"items": [{"id": "vpn", "name": "Network & VPN"}]}
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    assert "<dt>Topic</dt><dd>Network &amp; VPN</dd>" in html


def test_a_reply_or_note_sent_again_from_a_page_brought_back_is_not_sent_twice(portal, stub):  # noqa: F811
    """Back after Send reply brings the ticket's page with the reply filled in again; Send again posts nothing. The
    same words sent from the page as it is now (a note "Called, no answer" twice) go."""
    a_ticket(stub)
    stub.answers["/tickets/t-1/replies"] = (201, {"id": "r1"})
    stub.answers["/tickets/t-1/notes"] = (201, {"id": "n1"})
    admin = signed_in(portal)
    page = text(admin.get("/console/tickets/t-1"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    seen = re.search(r'name="seen" value="([^"]*)"', page).group(1)
    assert page.count(f'name="seen" value="{seen}"') >= 2  # the reply's form and the note's

    def sent(action: str, body: str, page_seen: str = seen) -> str:
        form = {"body": body, "seen": page_seen, "csrf_token": token}
        answer = admin.post(f"/console/tickets/t-1/{action}", data=form)
        assert answer.status_code == 303
        return answer.headers["Location"]

    assert sent("reply", "Please restart the printer.") == "/console/tickets/t-1?notice=reply&sent=r1"
    assert sent("reply", "Please restart the printer.") == "/console/tickets/t-1?notice=reply-before"
    assert sent("note", "Please restart the printer.") == "/console/tickets/t-1?notice=note"  # a note is not a reply
    assert sent("note", "Please restart the printer.") == "/console/tickets/t-1?notice=note-before"
    assert (
        sent("note", "Please restart the printer.", "seen-on-a-page-opened-since") == "/console/tickets/t-1?notice=note"
    )
    assert sent("reply", "And the spooler.") == "/console/tickets/t-1?notice=reply&sent=r1"
    posted = [(c["path"], c["json"]["body"]) for c in stub.calls if c["method"] == "POST"]
    assert posted == [
        ("/tickets/t-1/replies", "Please restart the printer."),
        ("/tickets/t-1/notes", "Please restart the printer."),
        ("/tickets/t-1/notes", "Please restart the printer."),
        ("/tickets/t-1/replies", "And the spooler."),
    ]
    shown = text(admin.get("/console/tickets/t-1?notice=reply-before"))
    assert "You sent this reply a moment ago, so it was not sent again: it is in the conversation." in shown
    assert re.search(r'data-draft-sent="draft:[^"]+:t-1:reply"', shown)  # its draft in the tab ends too


def test_a_reply_sent_twice_at_once_is_posted_once(portal, stub, monkeypatch):  # noqa: F811
    """A double click on Send reply: the second post, arriving while the first waits on assignment, posts nothing
    (a race hunter's find: both went, and the requester had the reply twice)."""
    import threading

    a_ticket(stub)
    stub.answers["/tickets/t-1/replies"] = (201, {"id": "r1"})
    svc = portal.extensions["ticketflow.portal"]
    first_in, release, post = threading.Event(), threading.Event(), svc.services.post

    def held(service, path, *args, **kwargs):
        answer = post(service, path, *args, **kwargs)
        if path.endswith("/replies") and not first_in.is_set():  # the first waits until the second is answered
            first_in.set()
            assert release.wait(30)
        return answer

    monkeypatch.setattr(svc.services, "post", held)
    admin = signed_in(portal)
    page = text(admin.get("/console/tickets/t-1"))
    form = {"body": "Please restart the printer.", "seen": re.search(r'name="seen" value="([^"]*)"', page).group(1),
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}  # fmt: skip
    cookie = admin.get_cookie(cookie_names(False)[0]).value

    first, second = sent_twice_at_once(
        portal, cookie, "/console/tickets/t-1/reply", form, first_in, release, monkeypatch
    )
    assert second.headers["Location"] == "/console/tickets/t-1?notice=reply-before"
    assert first.headers["Location"] == "/console/tickets/t-1?notice=reply&sent=r1"
    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == ["/tickets/t-1/replies"]


def test_a_reply_whose_first_send_has_not_ended_is_kept_on_the_page(portal, stub, monkeypatch):  # noqa: F811
    """The same reply sent again while the first send has not ended after the second's wait: nothing is posted, and
    the page keeps the words, saying why (they were lost when the first then failed)."""
    a_ticket(stub)
    svc = portal.extensions["ticketflow.portal"]
    admin = signed_in(portal)
    page = text(admin.get("/console/tickets/t-1"))
    form = {"body": "Please restart the printer.", "seen": re.search(r'name="seen" value="([^"]*)"', page).group(1),
            "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}  # fmt: skip
    said = handlers.words_digest("t-1", "reply", form["seen"], form["body"])
    session_id = handlers.load_session(svc, admin.get_cookie(cookie_names(False)[0]).value)["_id"]
    assert svc.store.claim_sent(session_id, said, now(), now() - timedelta(minutes=10))  # a first send, going
    monkeypatch.setattr(handlers, "SEND_WAIT", 0)
    kept = admin.post("/console/tickets/t-1/reply", data=form)
    assert kept.status_code == 409
    assert handlers.STILL_GOING in text(kept) and ">Please restart the printer.</textarea>" in text(kept)
    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == []


def test_a_sent_reply_is_said_to_be_on_its_way_only_while_the_conversation_lacks_it(portal, stub):  # noqa: F811
    """After Send reply the page says the reply joins the conversation in a moment; when intake has it in the
    thread already (the page came after the event), it says only that it was sent."""
    a_ticket(stub)
    admin = signed_in(portal)
    on_its_way = "Reply sent. It joins the conversation below in a moment."
    page = text(admin.get("/console/tickets/t-1?notice=reply&sent=r1"))
    assert on_its_way in page and re.search(r'data-draft-sent="draft:[^"]+:t-1:reply"', page)
    reply = {
        "id": "r1",
        "author": {"type": "agent", "name": "Jane Doe"},
        "body": "Restart it.",
        "at": "2026-01-01T10:05:00.000Z",
    }
    stub.answers["/tickets/t-1"] |= {"thread": [*stub.answers["/tickets/t-1"].get("thread", []), reply]}
    page = text(admin.get("/console/tickets/t-1?notice=reply&sent=r1"))
    assert on_its_way not in page and '<p class="notice notice--success" role="status"' in page
    assert "Reply sent.</p>" in page and re.search(r'data-draft-sent="draft:[^"]+:t-1:reply"', page)
    page = text(admin.get("/console/tickets/t-1?notice=reply&sent=r2"))  # another reply's id: still on its way
    assert on_its_way in page


def test_the_peoples_words_in_the_timelines_sentences_are_isolated_and_escaped(portal, stub):  # noqa: F811
    """A right-to-left subject inside intake's English sentence keeps the sentence's order: each piece of people's
    words (the subject, the requester's, agents' and teams' names) in <bdi>, escaped, and nothing else touched."""
    a_queued_ticket(stub)
    subject = "الطابعة لا تعمل <b>!</b>"
    stub.answers["/tickets/t-1"] |= {"subject": subject, "requester": {"name": "سارة", "email": "s@example.com"}}
    stub.answers["/tickets/t-1/timeline"] = {"items": [
        {"type": "ticket.created", "occurred_at": "2026-01-01T10:00:00.000Z",
         "summary": f"Ticket #7 opened by سارة via web: {subject} (network, normal priority)"},
        {"type": "ticket.assigned", "occurred_at": "2026-01-01T10:00:01.000Z",
         "summary": "Assigned to Ada Lovelace (Network) automatically: the rule, among 1 candidate"},
        {"type": "ticket.reopened", "occurred_at": "2026-01-01T10:00:02.000Z",
         "summary": "Reopened: Network's & Adams' queue"},
    ]}  # fmt: skip
    stub.answers["/agents"]["items"] = [*AGENTS, {"id": "amp", "name": "amp", "teams": []},
                                        {"id": "ada2", "name": "Ada", "teams": []}]  # fmt: skip

    html = text(signed_in(portal).get("/console/tickets/t-1"))

    assert (
        "Ticket #7 opened by <bdi>سارة</bdi> via web: <bdi>الطابعة لا تعمل &lt;b&gt;!&lt;/b&gt;</bdi> "
        "(network, normal priority)</li>" in html
    )
    assert "Assigned to <bdi>Ada Lovelace</bdi> (<bdi>Network</bdi>) automatically: the rule, among 1 candidate" in html
    # an escape's letters ("amp", "39") are never matched, nor a name inside a word ("Ada" in "Adams")
    assert "Reopened: <bdi>Network</bdi>&#39;s &amp; Adams&#39; queue</li>" in html


def test_the_times_in_the_timelines_sentences_are_times_the_browser_shows_in_its_own_zone(portal, stub):  # noqa: F811
    """ "due 4 Dec 2026, 22:16 UTC" in a summary becomes a <time> as the page's own times are (portal.js writes it in
    the reader's time zone); a subject holding such words stays words."""
    a_queued_ticket(stub)
    subject = "Since 1 Dec 2026, 08:00 UTC"
    stub.answers["/tickets/t-1"] |= {"subject": subject}
    stub.answers["/tickets/t-1/timeline"] = {"items": [
        {"type": "sla.deadlines_changed", "occurred_at": "2026-12-04T21:16:00.000Z",
         "summary": "SLA deadlines (high priority): first response due 4 Dec 2026, 22:16 UTC, resolution due "
                    "5 Dec 2026, 05:16 UTC"},
        {"type": "ticket.created", "occurred_at": "2026-12-04T21:16:00.000Z",
         "summary": f"Ticket #7 opened by Ana via web: {subject} (network, normal priority)"},
    ]}  # fmt: skip

    html = text(signed_in(portal).get("/console/tickets/t-1"))

    assert (
        'first response due <time datetime="2026-12-04T22:16:00Z">4 Dec 2026, 22:16 UTC</time>, resolution due '
        '<time datetime="2026-12-05T05:16:00Z">5 Dec 2026, 05:16 UTC</time></li>' in html
    )
    assert f"via web: <bdi>{subject}</bdi> (network" in html
    assert '<li class="muted"><time datetime="2026-12-04T21:16:00.000Z">' in html  # the desk's bookkeeping, quieter
    assert html.count('<li class="muted">') == 1


def test_a_replys_files_wait_for_intake_to_know_the_reply(portal, stub, monkeypatch):  # noqa: F811
    """intake takes files for a message of the thread it has: the reply comes to it by event, a moment later."""
    svc = portal.extensions["ticketflow.portal"]
    a_ticket(stub)
    session = {"role": "agent", "email": "ada@example.com", "agent_id": "ada"}
    file = attachments.Chosen("log.txt", "text/plain", io.BytesIO(b"E-42"), 4)
    monkeypatch.setattr(console, "REPLY_REACHES_INTAKE", 0.3)
    monkeypatch.setattr(console, "REPLY_FIRST_LOOK", 0.05)

    try:  # intake never learns it: nothing is sent, and the agent is told
        console.attach_to_reply(svc, session, "t-1", "r-1", [file], None)
    except handlers.UserError as refused:
        assert refused.status == 503 and "had not reached" in refused.message
    else:
        raise AssertionError("attached to a reply intake does not have")
    assert not [call for call in stub.calls if call["method"] == "POST"]

    kept = stub.answers["/tickets/t-1"]
    stub.answers["/tickets/t-1"] = (404, {"title": "Not found", "status": 404, "detail": "No ticket t-1."})
    try:  # no longer the agent's to read (moved to another team meanwhile): said at once, with intake's reason
        console.attach_to_reply(svc, session, "t-1", "r-1", [file], None)
    except handlers.UserError as refused:
        assert refused.status == 404 and refused.message == "No ticket t-1."
    else:
        raise AssertionError("attached to a ticket intake does not show")

    stub.answers["/tickets/t-1"] = kept
    stub.answers["/tickets/t-1"]["thread"] = [{"id": "r-1", "kind": "reply", "body": "Here."}]
    stub.answers["/tickets/t-1/attachments"] = {"items": [{"id": "a-1", "filename": "log.txt"}]}
    assert console.attach_to_reply(svc, session, "t-1", "r-1", [file], None) == [{"id": "a-1", "filename": "log.txt"}]
    [sent] = [call for call in stub.calls if call["method"] == "POST"]
    assert sent["path"] == "/tickets/t-1/attachments"


def replies_reach_intake(stub, body: str) -> None:  # noqa: F811
    """Ticket t-1, whose reply (id r-1) assignment takes and intake then has in its thread (its files may go)."""
    a_ticket(stub)

    def replied():
        stub.answers["/tickets/t-1"]["thread"] = [{"id": "r-1", "kind": "reply", "body": body}]
        return 201, {"id": "r-1", "body": body, "by": "ada", "first_response": True}

    stub.answers["/tickets/t-1/replies"] = replied


def test_a_reply_sent_with_files_names_them_to_assignment_then_attaches_them(portal, stub):  # noqa: F811
    """assignment's `ticket.replied` names the files (the requester's email says they came); intake gets the files
    once it has the reply."""
    replies_reach_intake(stub, "Attached.")
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    files = [(io.BytesIO(b"%PDF-1.4"), "driver guide.pdf"), (io.BytesIO(b"v2"), "\u202enotes.txt")]  # named as stored

    sent = admin.post("/console/tickets/t-1/reply", content_type="multipart/form-data",
                      data={"body": "Attached.", "csrf_token": token, "files": files})  # fmt: skip

    assert sent.status_code == 303 and "notice=reply" in sent.headers["Location"]
    posts = [(call["path"], call["json"]) for call in stub.calls if call["method"] == "POST"]
    assert posts[0] == ("/tickets/t-1/replies", {"body": "Attached.", "files": ["driver guide.pdf", "notes.txt"]})
    assert [path for path, _ in posts] == ["/tickets/t-1/replies", "/tickets/t-1/attachments"]


def test_a_reply_of_files_alone_names_them_and_a_reply_of_nothing_is_asked_for(portal, stub):  # noqa: F811
    replies_reach_intake(stub, "Sent a file: steps.txt")
    admin = signed_in(portal)
    page = text(admin.get("/console/tickets/t-1"))
    reply_box = re.search(r'<textarea id="reply-body"[^>]*>', page).group(0)
    assert not re.search(r"\srequired[\s>=]", reply_box)  # files may go alone
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    nothing = admin.post("/console/tickets/t-1/reply", data={"body": "  ", "csrf_token": token})
    empty = [(io.BytesIO(b""), "huge.iso")]
    empty_file = admin.post("/console/tickets/t-1/reply", content_type="multipart/form-data",
                            data={"body": "", "csrf_token": token, "files": empty})  # fmt: skip
    # refused (the file is empty): the box is as it was typed, never words naming a file that was not sent
    assert empty_file.status_code == 422
    assert re.search(r'<textarea id="reply-body"[^>]*></textarea>', text(empty_file))
    steps = [(io.BytesIO(b"1. Restart"), "steps.txt")]
    files_only = admin.post("/console/tickets/t-1/reply", content_type="multipart/form-data",
                            data={"body": "", "csrf_token": token, "files": steps})  # fmt: skip

    assert nothing.status_code == 422 and "Write your reply, or attach a file." in text(nothing)
    assert files_only.status_code == 303
    replies = [call["json"] for call in stub.calls if call["method"] == "POST" and call["path"].endswith("/replies")]
    assert replies == [{"body": "Sent a file: steps.txt", "files": ["steps.txt"]}]


def test_a_reply_from_a_second_tab_after_the_agents_own_reply_in_another_waits_for_the_agent(portal, stub):  # noqa: F811
    """Ada has the ticket open in two tabs and replies from one: the other's reply, written before it, is held back
    with what she did elsewhere; her note or claim in the other tab would not hold it."""
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"agent_id": "ada", "status": "assigned"}
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada Lovelace", "teams": ["network"], "lead_of": []}
    stub.answers["/tickets/t-1/replies"] = (201, {"id": "r1"})
    ada = signed_in(portal, "agent", "ada")
    page = text(ada.get("/console/tickets/t-1"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    seen = re.search(r'name="seen" value="([^"]*)"', page).group(1)
    reply = {"body": "Please restart the printer.", "seen": seen, "csrf_token": token}

    stub.answers["/tickets/t-1"] |= {"history": [QUEUED, {"action": "noted", "by": "ada"}]}  # a note elsewhere
    assert ada.post("/console/tickets/t-1/reply", data=reply).status_code == 303

    stub.answers["/tickets/t-1"] |= {"history": [QUEUED, {"action": "noted", "by": "ada"},
                                                 {"action": "replied", "by": "ada"}]}  # fmt: skip
    held = ada.post("/console/tickets/t-1/reply", data={**reply, "body": "Or try the other printer."})
    assert held.status_code == 409
    html = text(held)
    assert "Your reply has not been sent yet." in html
    assert "<li>You, in another tab or window or an earlier try: replied to the requester</li>" in html
    assert "Or try the other printer." in html  # what she typed is kept
    assert [call["path"] for call in stub.calls].count("/tickets/t-1/replies") == 1


def test_an_admin_who_is_no_agent_is_told_of_their_own_doings_elsewhere_as_their_own(portal, stub):  # noqa: F811
    """An admin without an agent (recorded as "admin:<address>") is one person too: their own note in another tab
    does not hold back a resolve, their own reply there is "You, in another tab or window or an earlier try", and
    another admin's note is "an admin"'s."""
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"agent_id": "ada", "status": "assigned"}
    stub.answers["/tickets/t-1/resolve"] = (200, {"id": "t-1", "status": "resolved"})
    svc = portal.extensions["ticketflow.portal"]
    email = f"boss-{uuid.uuid4().hex[:8]}@example.com"
    account, _ = handlers.create_account(svc, email, "admin", None, PASSWORD)
    boss = portal.test_client()
    boss.set_cookie(cookie_names(False)[0], handlers.start_session(svc, account)[0])
    page = text(boss.get("/console/tickets/t-1"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    seen = re.search(r'name="seen" value="([^"]*)"', page).group(1)
    resolve = {"resolution": "Restarted the spooler.", "seen": seen, "csrf_token": token}

    stub.answers["/tickets/t-1"] |= {"history": [QUEUED, {"action": "noted", "by": f"admin:{email}"}]}
    assert boss.post("/console/tickets/t-1/resolve", data=resolve).status_code == 303

    stub.answers["/tickets/t-1"] |= {"history": [QUEUED, {"action": "noted", "by": f"admin:{email}"},
                                                 {"action": "replied", "by": f"admin:{email}"},
                                                 {"action": "noted", "by": "admin:other@example.com"}]}  # fmt: skip
    held = boss.post("/console/tickets/t-1/resolve", data=resolve)
    assert held.status_code == 409
    html = text(held)
    assert "<li>You, in another tab or window or an earlier try: replied to the requester</li>" in html
    assert "<li>an admin: added an internal note</li>" in html and html.count("added an internal note") == 1
    assert [call["path"] for call in stub.calls].count("/tickets/t-1/resolve") == 1


def test_an_assign_past_the_agents_capacity_or_to_one_away_says_so(portal, stub):  # noqa: F811
    """The lead gives the ticket to themself at 4 open of 3, then to Ines who is away: the page after says so in
    words (the list says "over capacity", "away"); at capacity or under it and available, just "Ticket assigned."."""
    a_queued_ticket(stub)
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada Lovelace", "teams": ["network"], "lead_of": ["network"]}
    lead = signed_in(portal, "agent", "ada")

    def after_assign_to(agent_id: str, listed: dict) -> str:
        stub.answers["/tickets/t-1"] |= {"agent_id": agent_id, "status": "assigned"}
        stub.answers["/agents"] = {"items": [listed]}
        stub.answers["/teams/network/agents"] = {"items": [listed]}
        return " ".join(text(lead.get("/console/tickets/t-1?notice=assign")).split())

    ada = {"id": "ada", "name": "Ada Lovelace", "teams": ["network"], "capacity": 3, "available": True}
    html = after_assign_to("ada", ada | {"open_tickets": 4})
    assert '<option value="ada" selected>Ada Lovelace (4 open of 3: over capacity)</option>' in html
    assert (
        '<p class="notice notice--warning" role="status" tabindex="-1" data-autofocus>'
        "Ticket assigned. You have 4 open tickets now, over your "
        "capacity of 3: no new ticket is given to you automatically until fewer than 3 are open.</p>" in html
    )
    html = after_assign_to("ada", ada | {"open_tickets": 3})
    assert '<p class="notice notice--success" role="status" tabindex="-1" data-autofocus>Ticket assigned.</p>' in html
    html = after_assign_to("ada", ada | {"open_tickets": 3, "available": False})
    assert (
        "Ticket assigned. You are away: the ticket stays with you, and no new ticket is given to you automatically."
        "</p>" in html
    )

    ines = {"id": "ines", "name": "Ines Romero", "teams": ["network"], "capacity": 5, "open_tickets": 6}
    html = after_assign_to("ines", ines | {"available": False})
    assert (
        "Ticket assigned. Ines Romero has 6 open tickets now, over their capacity of 5. Ines Romero is away: the "
        "ticket stays with them until someone hands it on.</p>" in html
    )


def test_a_claim_past_the_agents_capacity_says_so_as_an_assign_does(portal, stub):  # noqa: F811
    """A claim took a lead to 6 open of 3 and said nothing (an admin tester's find); an assign says it."""
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"agent_id": "ada", "status": "assigned"}
    ada = {"id": "ada", "name": "Ada Lovelace", "teams": ["network"], "lead_of": [], "capacity": 3, "available": True}
    agent = signed_in(portal, "agent", "ada")

    stub.answers["/agents/ada"] = ada | {"open_tickets": 4}
    html = " ".join(text(agent.get("/console/tickets/t-1?notice=claim")).split())
    assert (
        '<p class="notice notice--warning" role="status" tabindex="-1" data-autofocus>'
        "You have the ticket. You have 4 open tickets now, over your "
        "capacity of 3: no new ticket is given to you automatically until fewer than 3 are open.</p>" in html
    )
    stub.answers["/agents/ada"] = ada | {"open_tickets": 3}
    html = " ".join(text(agent.get("/console/tickets/t-1?notice=claim")).split())
    success = '<p class="notice notice--success" role="status" tabindex="-1" data-autofocus>'
    assert f"{success}You have the ticket.</p>" in html


def test_a_status_the_ticket_has_already_is_said_in_words_not_its_code(portal, stub):  # noqa: F811
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"agent_id": None, "status": "in_progress"}
    problem = {"title": "Conflict", "status": 409, "detail": "The ticket is already in_progress."}
    stub.answers["/tickets/t-1/status"] = (409, problem)
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)

    same = admin.post("/console/tickets/t-1/status", data={"status": "in_progress", "csrf_token": token})

    assert same.status_code == 409
    assert "The ticket is already in progress." in text(same) and "in_progress." not in text(same)


def test_an_agent_who_is_no_lead_is_told_who_changes_priority_and_transfers(portal, stub):  # noqa: F811
    """Its Actions hold status and resolve alone; the lead tester looked for the rest (contract section 5)."""
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"agent_id": "ada", "status": "in_progress"}
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    agent = text(signed_in(portal, "agent", "ada").get("/console/tickets/t-1"))
    assert "Set status" in agent and "Set priority" not in agent
    assert "A team lead or an admin changes a ticket's priority" in agent
    admin = text(signed_in(portal).get("/console/tickets/t-1"))
    assert "Set priority" in admin and "A team lead or an admin changes" not in admin


def a_duplicate(stub, **other) -> None:  # noqa: F811
    """t-1, and t-2: the same requester's request sent again (open, an agent has it)."""
    a_queued_ticket(stub)
    stub.answers["/tickets/t-1"] |= {"thread": [{"id": "m-1", "kind": "message", "body": "Still nothing.",
                                                 "author": {"type": "requester", "name": "Ana"},
                                                 "created_at": "2026-01-01T11:00:00.000Z"}]}  # fmt: skip
    kept = {
        "id": "t-2",
        "number": 6,
        "subject": "Printer (again)",
        "status": "assigned",
        "thread": [],
        "requester": {"name": "Ana", "email": "A@example.com"},
        "created_at": "2026-01-01T09:00:00.000Z",
    }
    stub.answers["/tickets/t-2"] = kept | other
    stub.answers["/tickets"] = {"items": [stub.answers["/tickets/t-1"], kept | other], "next_cursor": None}
    stub.answers["/tickets/t-1/attachments"] = {"items": [{"id": "f-1", "filename": "tray.jpg", "size": 10}]}
    stub.answers["/tickets/t-2/notes"] = {"id": "n-1"}
    stub.answers["/tickets/t-1/resolve"] = {"ticket_id": "t-1", "status": "resolved"}


def test_a_duplicate_merges_into_the_requesters_other_open_request_a_note_there_then_a_resolve(portal, stub):  # noqa: F811
    """The same request sent twice: the one kept gets the words of the other as an internal note, then the other is
    resolved with words that send its requester there (the note first: the resolve ends the agent's work on it)."""
    a_duplicate(stub)
    admin = signed_in(portal)
    html = text(admin.get("/console/tickets/t-1"))
    assert '<option value="t-2">#6 Printer (again) (assigned, opened 1 Jan 2026, 09:00 UTC)</option>' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    stub.calls.clear()

    done = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})

    assert done.status_code == 303 and "notice=merge" in done.headers["Location"]
    (note, resolve) = [(c["path"], c["json"]) for c in stub.calls if c["method"] == "POST"]
    assert note[0] == "/tickets/t-2/notes" and resolve[0] == "/tickets/t-1/resolve" and resolve[1]["merged_into"] == 6
    assert note[1]["body"].startswith("Merged from #7 (“Printer”), the same request. What was written there:")
    later = "x\n\nLater, the requester (1 Jan 2026, 11:00 UTC):\nStill nothing.\n\nFiles on #7: tray.jpg"
    assert later in note[1]["body"]
    assert resolve[1]["resolution"].startswith("Merged into your request #6 (“Printer (again)”): it is the same")


def test_a_merge_that_cannot_be_is_said_next_to_the_choice_and_nothing_is_done(portal, stub):  # noqa: F811
    admin = signed_in(portal)
    cases = [
        ({}, "", "Choose the request to keep."),
        ({}, "t-1", "That is this request itself: choose the one to keep."),
        ({}, "t-9", "That request is not one you can add to: choose another."),  # intake's 404
        ({"status": "closed"}, "t-2", "#6 is closed: merge into a request that is still open."),
        ({"requester": {"name": "Bo", "email": "bo@example.com"}}, "t-2", "#6 is another requester"),
    ]
    for other, into, said in cases:
        a_duplicate(stub, **other)
        html = text(admin.get("/console/tickets/t-1"))
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        stub.calls.clear()
        page = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": into})
        assert page.status_code in (409, 422), (into, page.status_code)
        field = f'<p class="field-error" id="into-error"><span class="visually-hidden">Error:</span> {said}'
        # next to the choice while the page offers one (a request closed meanwhile leaves none: said at the top)
        assert field in text(page) if other.get("status") != "closed" else f"That did not work: {said}" in text(page)
        assert not [c for c in stub.calls if c["method"] == "POST"], into


def test_a_web_request_whose_address_nobody_confirmed_is_not_kept_nor_told_the_kept_ones_subject(portal, stub):  # noqa: F811
    """Anyone may type an address into the form: such a request's writer may not be the requester. Kept, the
    requester would be sent to go on where that writer reads; merged, its resolution would tell the writer the
    requester's other request's subject."""
    svc = portal.extensions["ticketflow.portal"]
    a_duplicate(stub, source="web")
    stub.answers["/tickets/t-1"] |= {"source": "web"}
    admin = signed_in(portal)
    svc.store.confirmations.delete_many({"_id": {"$in": ["t-1", "t-2"]}})  # nobody has followed a link to either
    try:
        html = text(admin.get("/console/tickets/t-1"))
        assert '<option value="t-2" disabled>#6 Printer (again) (assigned, opened 1 Jan 2026, 09:00 UTC; address not' \
               " confirmed: cannot be kept)</option>" in html  # fmt: skip
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        stub.calls.clear()
        refused = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})
        assert refused.status_code == 409 and "#6 came from the web form and its address is not confirmed" in text(
            refused
        )
        assert not [c for c in stub.calls if c["method"] == "POST"]

        svc.store.confirm_address("t-2", "a@example.com", datetime.now(UTC))  # the requester followed its link
        html = text(admin.get("/console/tickets/t-1"))
        assert '<option value="t-2">#6 Printer (again)' in html
        stub.calls.clear()
        done = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})
        assert done.status_code == 303
        resolve = next(c["json"] for c in stub.calls if c["path"] == "/tickets/t-1/resolve")
        assert resolve["resolution"].startswith("Merged into your request #6: it is the same request")  # no subject
        assert "Printer (again)" not in resolve["resolution"]
    finally:
        svc.store.confirmations.delete_many({"_id": {"$in": ["t-1", "t-2"]}})


def test_a_web_request_answered_by_mail_from_its_address_is_confirmed_in_the_console_and_may_be_kept(portal, stub):  # noqa: F811
    """A tester's: the requester had answered by email twice, and the console still said "Address not confirmed" and
    refused to keep the request in a merge. The requester's list has no thread: the console reads the ticket whole."""
    svc = portal.extensions["ticketflow.portal"]
    a_duplicate(stub, source="web")
    answered = {"id": "m-9", "kind": "message", "via": "email", "body": "Still broken.",
                "author": {"type": "requester", "name": "Ana"}, "created_at": "2026-01-01T10:00:00.000Z"}  # fmt: skip
    stub.answers["/tickets/t-2"] = stub.answers["/tickets/t-2"] | {"thread": [answered]}
    stub.answers["/tickets"]["items"][1] = {k: v for k, v in stub.answers["/tickets/t-2"].items() if k != "thread"}
    admin = signed_in(portal)
    svc.store.confirmations.delete_many({"_id": {"$in": ["t-1", "t-2"]}})
    try:
        html = text(admin.get("/console/tickets/t-1"))
        assert '<option value="t-2">#6 Printer (again)' in html  # choosable: its address answered
        assert svc.store.confirmed("t-2") is not None  # recorded, as the requester's pages record it
        stub.answers["/tickets/t-1"] |= {"source": "web", "thread": [answered | {"id": "m-8"}]}
        html = text(admin.get("/console/tickets/t-1"))
        assert "Address not confirmed" not in html and "· address confirmed" in html
    finally:
        svc.store.confirmations.delete_many({"_id": {"$in": ["t-1", "t-2"]}})


def test_the_merge_is_offered_to_who_may_resolve_and_only_with_an_open_request_to_keep(portal, stub):  # noqa: F811
    a_duplicate(stub)
    assert 'action="/console/tickets/t-1/merge"' in text(signed_in(portal).get("/console/tickets/t-1"))
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada Lovelace", "teams": ["network"], "lead_of": []}
    agent = signed_in(portal, "agent", "ada")  # of its team, but the ticket is nobody's: no resolve, no merge
    assert 'action="/console/tickets/t-1/merge"' not in text(agent.get("/console/tickets/t-1"))
    a_duplicate(stub, status="resolved")
    assert 'action="/console/tickets/t-1/merge"' not in text(signed_in(portal).get("/console/tickets/t-1"))


def test_an_open_request_older_than_the_five_shown_beside_the_ticket_can_still_be_merged_into(portal, stub):  # noqa: F811
    a_duplicate(stub)
    newer = [
        {"id": f"t-{10 + n}", "number": 10 + n, "subject": f"Done {n}", "status": "resolved",
         "requester": {"name": "Ana", "email": "a@example.com"}, "created_at": f"2026-01-0{2 + n}T09:00:00.000Z"}
        for n in range(6)
    ]  # fmt: skip
    kept = stub.answers["/tickets/t-2"]
    stub.answers["/tickets"] = {"items": [*reversed(newer), stub.answers["/tickets/t-1"], kept], "next_cursor": None}
    stub.calls.clear()

    html = text(signed_in(portal).get("/console/tickets/t-1"))

    others = html[html.index('id="others-title"') : html.index("</section>", html.index('id="others-title"'))]
    assert others.count("<li>") == 5 and "#6 Printer (again)" not in others  # the newest five beside the ticket
    assert '<option value="t-2">#6 Printer (again) (assigned, opened 1 Jan 2026, 09:00 UTC)</option>' in html
    assert not any(f'<option value="t-{10 + n}"' in html for n in range(6))  # resolved: nothing to merge into
    (listed,) = [c for c in stub.calls if c["method"] == "GET" and c["path"] == "/tickets"]
    assert listed["args"]["limit"] == "26", listed


def test_a_ticket_merged_into_another_is_no_similar_resolved_ticket(portal, stub):  # noqa: F811
    a_ticket(stub)
    merged = {
        "ticket_id": "t-0",
        "number": 5,
        "subject": "Printer",
        "score": 3.0,
        "resolution": "Merged into your request #4 (“Printer”): it is the same request, and we go on there.",
    }
    fixed = {"ticket_id": "t-3", "number": 3, "subject": "Printer jams", "resolution": "New fuser.", "score": 2.0}
    stub.answers["/tickets/t-1/similar"] = {"items": [merged, fixed]}
    html = text(signed_in(portal).get("/console/tickets/t-1"))
    assert "#3 <bdi>Printer jams</bdi>" in html and "#5 <bdi>" not in html
    (call,) = [c for c in stub.calls if c["path"] == "/tickets/t-1/similar"]
    assert call["args"]["limit"] == "7"  # two more than shown, for such ones


def test_a_merge_checks_everything_before_it_writes_and_a_second_try_adds_no_second_note(portal, stub):  # noqa: F811
    """Nothing is written for a merge that cannot finish: one sent by hand by an agent who may not resolve the
    ticket, one into a request assignment has resolved already (intake a moment behind). A resolve refused after
    the note says the note is there; tried again, the note is not added twice."""
    a_duplicate(stub)
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada Lovelace", "teams": ["network"], "lead_of": []}
    teammate = signed_in(portal, "agent", "ada")  # of its team, but the ticket is nobody's: no resolve
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(teammate.get("/console/tickets/t-1"))).group(1)
    stub.calls.clear()
    refused = teammate.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})
    assert refused.status_code == 403 and "Only its agent or an admin merges it" in text(refused)
    assert not [c for c in stub.calls if c["method"] == "POST"]

    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    stub.answers["/tickets/t-2"] |= {"status": "resolved"}  # since the page listed it open
    stub.calls.clear()
    page = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})
    assert page.status_code == 409 and "#6 is resolved: merge into a request that is still open." in text(page)
    assert not [c for c in stub.calls if c["method"] == "POST"]

    a_duplicate(stub)
    stub.answers["/tickets/t-1/resolve"] = (409, {"title": "Conflict", "detail": "The ticket is already resolved."})
    stub.calls.clear()
    page = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})
    said = "#6 has this one&#39;s words as a note, but this one was not merged: The ticket is already resolved."
    assert page.status_code == 409 and said in text(page)
    (note,) = [c["json"] for c in stub.calls if c["path"] == "/tickets/t-2/notes"]
    stub.answers["/tickets/t-2"] = stub.answers["/tickets/t-2"] | {"notes": [{"id": "n-1", **note}]}
    stub.answers["/tickets/t-1/resolve"] = {"ticket_id": "t-1", "status": "resolved"}
    stub.calls.clear()
    done = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})
    assert done.status_code == 303
    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == ["/tickets/t-1/resolve"]  # no second note


def test_two_merges_of_the_same_two_requests_go_one_after_the_other(portal, stub):  # noqa: F811
    """#7 into #6 while #6 goes into #7 (two agents at once, or one double click): the second waits for the first,
    which leaves it nothing to do, instead of both resolving and neither request staying open."""
    a_duplicate(stub)
    svc = portal.extensions["ticketflow.portal"]
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    held = svc.store.start_merge(("t-2", "t-1"), now(), timedelta(minutes=1))  # #6 into #7, under way
    assert held is not None and svc.store.start_merge(("t-1", "t-2"), now(), timedelta(minutes=1)) is None
    stub.calls.clear()

    page = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})

    assert page.status_code == 409 and "These two requests are being merged just now" in text(page)
    assert not [c for c in stub.calls if c["method"] == "POST"]
    svc.store.end_merge(held)
    done = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})
    assert done.status_code == 303  # the hold is given back once a merge ends, whatever its outcome
    later = now() + timedelta(minutes=2)  # a hold whose process died is taken over after a minute
    assert svc.store.start_merge(("t-1", "t-3"), now(), timedelta(minutes=1)) is not None
    assert svc.store.start_merge(("t-3", "t-1"), later, timedelta(minutes=1)) is not None


def test_a_request_intake_has_closed_is_not_merged_into_though_assignment_has_not_heard_yet(portal, stub):  # noqa: F811
    a_duplicate(stub, status="closed")
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    assignment_view = stub.answers["/tickets/t-2"] | {"status": "assigned"}  # assignment: a moment behind
    intake_view = stub.answers["/tickets/t-2"]
    stub.answers["/tickets/t-2"] = lambda: intake_view if not _asked_twice(stub, "/tickets/t-2") else assignment_view
    stub.calls.clear()

    page = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})

    assert page.status_code == 409 and "#6 is closed" in text(page)
    assert not [c for c in stub.calls if c["method"] == "POST"]


def _asked_twice(server, path: str) -> bool:
    """Whether `path` was asked before this call (the stub records a call before it answers it)."""
    return [c["path"] for c in server.calls].count(path) >= 2


def test_a_request_merged_again_after_new_words_gets_them_as_a_second_note(portal, stub):  # noqa: F811
    a_duplicate(stub)
    earlier = "Merged from #7 (“Printer”), the same request. What was written there:\n\nx"  # before "Still nothing."
    stub.answers["/tickets/t-2"] = stub.answers["/tickets/t-2"] | {"notes": [{"id": "n-0", "body": earlier}]}
    admin = signed_in(portal)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(admin.get("/console/tickets/t-1"))).group(1)
    stub.calls.clear()

    done = admin.post("/console/tickets/t-1/merge", data={"csrf_token": token, "into": "t-2"})

    assert done.status_code == 303
    (note,) = [c["json"] for c in stub.calls if c["path"] == "/tickets/t-2/notes"]
    assert "Still nothing." in note["body"]  # what the requester wrote since the first merge reaches #6
