"""The portal's search pages in-process, on the real portal database, with the other services as a stub server.

search is outside the portal's boundary: a small HTTP server stands in for it (and for intake and assignment,
which the pages call too) and records every call with the token it carried. Search answering, finding nothing,
not answering (a port where nothing listens) and refusing; bad input answered next to the field.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from services.portal import domain, handlers
from services.portal.api import create_app
from services.portal.pages import cookie_names
from shared import mongo
from shared.auth import decode_token
from shared.config import SERVICE_PORTS
from ticketflow.local import free_port

PASSWORD = "correct horse battery staple"
HIT = {
    "ticket_id": "t-1",
    "number": 100042,
    "subject": "VPN drops <b>every</b> hour",
    "status": "in_progress",
    "team": "network",
    "snippet": "the <mark>vpn</mark> drops &lt;script&gt;alert(1)&lt;/script&gt; <img src=x>",
    "score": 3.5,
}


class Stub:
    """The other services: answers by path (a dict, a (status, dict), or a function of no argument giving one),
    every call recorded with its token."""

    def __init__(self) -> None:
        self.answers: dict[str, object] = {}
        self.calls: list[dict] = []
        app = Flask("stub")

        @app.route("/<path:path>", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        def answer(path):
            token = request.headers["Authorization"].removeprefix("Bearer ")
            self.calls.append({"path": "/" + path, "args": request.args.to_dict(), "token": token,
                               "lists": request.args.to_dict(flat=False), "method": request.method,
                               "json": request.get_json(silent=True)})  # fmt: skip
            found = self.answers.get("/" + path, (404, {"title": "Not Found", "detail": "none here"}))
            found = found() if callable(found) else found
            status, body = found if isinstance(found, tuple) else (200, found)
            return jsonify(body), status

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def searches(self) -> list[dict]:
        return [call for call in self.calls if call["path"] == "/search"]


@pytest.fixture
def stub() -> Iterator[Stub]:
    stub = Stub()
    yield stub
    stub.server.shutdown()


def _app(stub: Stub, search_url: str):
    mongo.close_client()
    urls = {service: stub.url for service in SERVICE_PORTS}
    app = create_app(urls={**urls, "search": search_url})
    return app


@pytest.fixture
def portal(infra, stub) -> Iterator[Flask]:
    app = _app(stub, stub.url)
    yield app
    mongo.close_client()


def signed_in(app: Flask, role: str = "admin", agent_id: str | None = None):
    """A test client with the session of a new account."""
    svc = app.extensions["ticketflow.portal"]
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    account, _ = handlers.create_account(svc, email, role, agent_id, PASSWORD)
    token, _ = handlers.start_session(svc, account)
    client = app.test_client()
    client.set_cookie(cookie_names(False)[0], token)
    return client


def with_grants(app: Flask, grants: list[dict]):
    """A requester's browser that may open these tickets (as a link or a new request grants them)."""
    svc = app.extensions["ticketflow.portal"]
    token, _ = handlers.start_session(svc, grant=grants[0])
    for grant in grants[1:]:
        svc.store.grant_ticket(handlers.load_session(svc, token)["_id"], grant["id"], grant["email"])
    client = app.test_client()
    client.set_cookie(cookie_names(False)[0], token)
    return client


def a_ticket(stub: Stub) -> None:
    """What intake and assignment say of ticket t-1, for its console page (as an admin)."""
    stub.answers["/tickets/t-1"] = {"id": "t-1", "number": 7, "subject": "Printer", "description": "x",
                                    "status": "new", "requester": {"name": "Ana", "email": "a@example.com"},
                                    "thread": [], "created_at": "2026-01-01T10:00:00.000Z"}  # fmt: skip
    for path in ("/tickets/t-1/timeline", "/tickets/t-1/mail", "/tickets/t-1/attachments", "/agents", "/teams"):
        stub.answers[path] = {"items": []}


def text(response) -> str:
    return response.get_data(as_text=True)


def test_results_show_number_subject_status_team_and_only_the_snippets_marks(portal, stub):
    stub.answers["/search"] = {"items": [HIT], "total": 1, "next_cursor": None}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}

    page = signed_in(portal).get("/console/search?q=vpn&status=in_progress&team=network")

    assert page.status_code == 200
    html = text(page)
    assert "#100042 <bdi>VPN drops &lt;b&gt;every&lt;/b&gt; hour</bdi>" in html
    assert "In progress · Network" in html  # the team's name, from the one GET /teams of the page
    assert [call["path"] for call in stub.calls].count("/teams") == 1
    snippet = "the <mark>vpn</mark> drops &lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x&gt;"
    assert f'<p class="snippet">{snippet}</p>' in html
    assert "<script>alert" not in html and "<img" not in html
    assert "1 ticket found" in html
    (call,) = stub.searches()
    assert call["args"] == {"q": "vpn", "status": "in_progress", "team": "network", "limit": "20"}
    assert "· from" not in html  # a hit without its requester's name (an index made before names) says none

    stub.answers["/search"] = {"items": [HIT | {"requester_name": "Ana <Ruiz>"}], "total": 1, "next_cursor": None}
    html = text(signed_in(portal).get("/console/search?q=ana"))
    assert "In progress · Network · from <bdi>Ana &lt;Ruiz&gt;</bdi>" in html
    assert decode_token(os.environ["TICKETFLOW_JWT_SECRET"], call["token"]).role == "admin"  # the person's own


def test_a_requesters_address_searched_for_lists_their_tickets_the_agent_may_read(portal, stub):
    """Everything from one caller: their tickets from intake (with the agent's own token: its rights), with the
    form's status and team, beside what the words find."""
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/search"] = {"items": [], "total": 0, "next_cursor": None}
    theirs = [{"id": f"t-{n}", "number": 100100 + n, "subject": f"Printer {n}", "status": "assigned",
               "team": "network" if n % 2 else "desk", "created_at": "2026-01-01T10:00:00.000Z"}
              for n in range(3)]  # fmt: skip
    stub.answers["/tickets"] = {"items": theirs, "next_cursor": None}
    client = signed_in(portal, "agent", "ada")

    page = text(client.get("/console/search?q=+Ana%40Example.com+&status=assigned"))

    assert "Tickets from <bdi>ana@example.com</bdi>" in page
    assert all(f"#{100100 + n} <bdi>Printer {n}</bdi>" in page for n in range(3))
    assert "No results" not in page  # no ticket's words hold the address: its tickets above are the answer
    (listed,) = [call for call in stub.calls if call["path"] == "/tickets"]
    assert listed["args"] == {"requester_email": "ana@example.com", "limit": "21", "status": "assigned"}
    assert decode_token(os.environ["TICKETFLOW_JWT_SECRET"], listed["token"]).agent_id == "ada"
    one_team = text(client.get("/console/search?q=ana@example.com&team=desk"))
    assert "#100100 <bdi>" in one_team and "#100102 <bdi>" in one_team and "#100101 <bdi>" not in one_team
    many = [{**theirs[1], "id": f"t-{n}", "number": 100200 + n} for n in range(21)]  # all of network
    stub.answers["/tickets"] = {"items": many, "next_cursor": "more"}
    desk_only = text(client.get("/console/search?q=ana@example.com&team=desk"))
    assert "None that you may see with this status and team among their 21 newest tickets." in desk_only
    stub.answers["/tickets"] = {"items": [], "next_cursor": None}
    assert "None that you may see." in text(client.get("/console/search?q=ana@example.com"))
    words = text(client.get("/console/search?q=ana+printer"))
    assert "Tickets from" not in words and len([c for c in stub.calls if c["path"] == "/tickets"]) == 4
    # the requester line as a ticket shows it, pasted, or a mail client's link: the address in it
    for pasted in ("Ana Ruiz <Ana@Example.com>", "mailto:ana@example.com"):
        assert "Tickets from <bdi>ana@example.com</bdi>" in text(
            client.get("/console/search", query_string={"q": pasted})
        )
    assert [c["args"]["requester_email"] for c in stub.calls if c["path"] == "/tickets"][4:] == ["ana@example.com"] * 2


def test_an_agent_searches_with_its_own_token_and_pages_on_with_the_cursor(portal, stub):
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/search"] = {"items": [HIT] * 20, "total": 45, "next_cursor": "abc"}
    client = signed_in(portal, "agent", "ada")

    first = text(client.get("/console/search?q=vpn"))
    assert "45 tickets found" in first and "(showing 1 to 20)" in first
    next_link = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = text(client.get(next_link))
    assert "(showing 21 to 40)" in second and "First results" not in second  # the page before is the first
    previous = re.search(r'href="([^"]+)" rel="prev">Previous results', second).group(1).replace("&amp;", "&")
    assert "cursor" not in previous and "q=vpn" in previous

    calls = stub.searches()
    assert calls[1]["args"]["cursor"] == "abc"
    principal = decode_token(os.environ["TICKETFLOW_JWT_SECRET"], calls[0]["token"])
    assert (principal.role, principal.agent_id) == ("agent", "ada")


def test_results_page_back_one_page_at_a_time(portal, stub):  # noqa: F811
    """search's cursors go one way: the address keeps the pages before, so "Previous results" is the page before."""
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    client = signed_in(portal, "agent", "ada")
    pages = ["c2", "c3", "c4"]  # the cursor search gives with each page, for the next one
    seen = []
    url = "/console/search?q=vpn"
    for cursor in pages:
        stub.answers["/search"] = {"items": [HIT] * 20, "total": 100, "next_cursor": cursor}
        page = text(client.get(url))
        seen.append(page)
        url = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    third = seen[2]
    assert "(showing 41 to 60)" in third and "First results" in third
    previous = re.search(r'href="([^"]+)" rel="prev">Previous results', third).group(1).replace("&amp;", "&")
    stub.answers["/search"] = {"items": [HIT] * 20, "total": 100, "next_cursor": "c3"}
    second = text(client.get(previous))
    assert stub.searches()[-1]["args"]["cursor"] == "c2" and "(showing 21 to 40)" in second
    again = re.search(r'href="([^"]+)" rel="next"', second).group(1).replace("&amp;", "&")
    assert "cursor=c3" in again and "back=c2" in again and "c2%2Cc2" not in again  # on again, as the first time
    forged = text(client.get("/console/search?q=vpn&cursor=c3&start=41&back=c2,<script>,c3"))
    assert "script" not in forged.split("Result pages")[1]  # only what looks like a cursor is carried on


def test_an_agents_team_filter_offers_its_own_teams_and_an_admins_every_team(portal, stub):
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/search"] = {"items": [], "total": 0, "next_cursor": None}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "billing", "name": "Billing"}]}

    agents = text(signed_in(portal, "agent", "ada").get("/console/search?q=vpn"))
    admins = text(signed_in(portal).get("/console/search?q=vpn"))

    assert '<option value="network"' in agents and '<option value="billing"' not in agents  # it finds nothing there
    assert '<option value="network"' in admins and '<option value="billing"' in admins
    linked = text(signed_in(portal, "agent", "ada").get("/console/search?q=vpn&team=billing"))  # a link shared
    assert '<option value="billing" selected>Billing</option>' in linked  # the list says what filters
    made_up = text(signed_in(portal).get("/console/search?q=vpn&team=bogus%3Ci%3Ex"))
    assert '<option value="bogus&lt;i&gt;x" selected>A team not known</option>' in made_up
    assert ">bogus" not in made_up  # the address's words are the value the form sends again, never shown


def test_nothing_found_says_so(portal, stub):
    stub.answers["/search"] = {"items": [], "total": 0, "next_cursor": None}
    page = signed_in(portal).get("/console/search?q=zebra&status=closed")
    assert page.status_code == 200
    assert "No results" in text(page) and "search every status and team" in text(page)
    filters_only = text(signed_in(portal).get("/console/search?q=+&status=closed"))  # no words: nothing to change
    assert "No ticket you may see has this status." in filters_only and "fewer words" not in filters_only


def test_search_down_is_a_message_and_the_ticket_page_stays_quiet(infra, stub):
    app = _app(stub, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    client = signed_in(app)
    page = client.get("/console/search?q=vpn")
    assert page.status_code == 200
    assert "Search is unavailable right now" in text(page)

    a_ticket(stub)
    ticket = client.get("/console/tickets/t-1")
    assert ticket.status_code == 200, text(ticket)[:500]
    assert "Similar resolved tickets cannot be shown right now." in text(ticket)
    mongo.close_client()


def test_the_ticket_page_lists_similar_resolved_tickets_or_nothing(portal, stub):
    a_ticket(stub)
    stub.answers["/tickets/t-1/similar"] = {"items": [
        {"ticket_id": "t-0", "number": 5, "subject": "Printer jams", "resolution": "Replaced the <fuser>",
         "resolved_at": "2026-01-02T10:00:00.000Z", "score": 2.0},
    ]}  # fmt: skip
    client = signed_in(portal)

    html = text(client.get("/console/tickets/t-1"))
    assert "Similar resolved tickets</h2>" in html
    assert 'href="/console/tickets/t-0">#5 <bdi>Printer jams</bdi></a>' in html and "Replaced the &lt;fuser&gt;" in html
    assert "2 Jan 2026" in html

    stub.answers["/tickets/t-1/similar"] = {"items": []}
    html = text(client.get("/console/tickets/t-1"))
    assert "Similar resolved tickets" not in html  # hidden when there are none


@pytest.mark.parametrize(
    ("query", "field_message"),
    [
        ("q=" + "x" * 501, "Use at most 500 characters (this has 501)."),  # answered before any call
        # a status by the names the page shows, answered before any call (search's words would name its ids)
        ("q=vpn&status=sleeping", "Choose a status from the list: New, Assigned, In progress, Waiting on requester"),
        ("q=vpn&team=nowhere", "Not a team you may search."),  # search's own refusal, next to its field
    ],
)
def test_bad_input_is_answered_next_to_the_field_with_what_was_typed(portal, stub, query, field_message):
    stub.answers["/search"] = (422, {"title": "Unprocessable Entity", "detail": "bad query",
                                     "errors": {"team": ["Not a team you may search."]}})  # fmt: skip
    page = signed_in(portal).get(f"/console/search?{query}")
    assert page.status_code == 422
    html = text(page)
    assert "There is a problem" in html and field_message in html
    name = "q" if "501" in field_message else query.split("&")[1].split("=")[0]
    if name != "team":
        assert stub.searches() == []  # search was not asked
    assert f'<p class="field-error" id="{name}-error">' in html and f'aria-describedby="{name}' in html
    assert ('value="' + "x" * 501 + '"' in html) if name == "q" else ('value="vpn"' in html)


def test_a_requester_searches_each_of_its_own_tickets_with_that_tickets_token(portal, stub):
    ana = "ana@example.com"
    mine = [{"id": "t-1", "email": ana}, {"id": "t-2", "email": ana}]
    stub.answers["/tickets/t-1"] = {"id": "t-1", "number": 1, "subject": "One", "status": "new",
                                    "created_at": "2026-01-01T10:00:00.000Z"}  # fmt: skip
    stub.answers["/tickets/t-2"] = {"id": "t-2", "number": 2, "subject": "Two", "status": "resolved",
                                    "created_at": "2026-01-01T10:00:00.000Z"}  # fmt: skip
    stub.answers["/search"] = {"items": [HIT], "total": 1, "next_cursor": None}
    client = with_grants(portal, mine)

    listing = text(client.get("/requests"))
    assert "Request #1: <bdi>One</bdi>" in listing and "Request #2: <bdi>Two</bdi>" in listing and "Resolved" in listing
    page = client.get("/requests?q=vpn")
    assert page.status_code == 200 and "<mark>vpn</mark>" in text(page)

    secret = os.environ["TICKETFLOW_JWT_SECRET"]
    principals = [decode_token(secret, call["token"]) for call in stub.searches()]
    scopes = sorted((principal.requester_email, principal.ticket_id) for principal in principals)
    assert scopes == [(ana, "t-1"), (ana, "t-2")]  # never a token for every ticket of the address


def test_a_requesters_search_result_says_its_status_as_the_list_does(portal, stub):
    """A request in progress that nobody has (a reply to one in the team's queue): the list says it waits for an
    agent; its search result says the same, not search's plain "Being worked on"."""
    stub.answers["/tickets/t-1"] = {"id": "t-1", "number": 100042, "subject": "VPN", "status": "in_progress",
                                    "assignee": None, "created_at": "2026-01-01T10:00:00.000Z"}  # fmt: skip
    stub.answers["/search"] = {"items": [HIT], "total": 1, "next_cursor": None}  # search: in_progress
    client = with_grants(portal, [{"id": "t-1", "email": "ana@example.com"}])

    listing, found = text(client.get("/requests")), text(client.get("/requests?q=vpn"))

    waiting = domain.UNASSIGNED_AT_WORK[0]
    assert f'<p class="result-meta">{waiting} · opened' in listing
    assert f'<p class="result-meta">{waiting}</p>' in found and "Being worked on" not in found


def test_a_requester_sees_search_down_and_bad_input_as_messages(infra, stub):
    stub.answers["/tickets/t-1"] = {"id": "t-1", "number": 1, "subject": "One", "status": "new",
                                    "created_at": "2026-01-01T10:00:00.000Z"}  # fmt: skip
    app = _app(stub, f"http://127.0.0.1:{free_port()}")
    client = with_grants(app, [{"id": "t-1", "email": "ana@example.com"}])
    down = client.get("/requests?q=vpn")
    assert down.status_code == 200 and "Searching is not possible right now" in text(down)
    assert "Request #1: <bdi>One</bdi>" in text(down)  # the list still shows
    long = client.get("/requests?q=" + "y" * 501)
    assert long.status_code == 422 and '<p class="field-error" id="q-error">' in text(long)
    mongo.close_client()
