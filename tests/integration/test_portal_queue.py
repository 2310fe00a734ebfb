"""The console's queue in-process, the other services a stub server (tests/integration/test_portal_search.py): each
row's next deadline from sla's clocks, soonest first, and the rows as assignment gave them when sla is away."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from services.portal import console, handlers
from services.portal.console import QUEUE_FIELDS
from tests.integration.test_portal_search import PASSWORD, portal, signed_in, stub, text  # noqa: F401


def row(ticket_id: str, number: int, priority: str = "normal") -> dict:
    """A queue row as assignment gives it: no due time (none comes before sla's first alert)."""
    return {"ticket_id": ticket_id, "number": number, "subject": f"Ticket {number}", "priority": priority,
            "status": "assigned", "team": "network", "agent_id": "ada", "first_response_at": None,
            "sla": {"first_response_due_at": None, "next_response_due_at": None, "resolution_due_at": None,
                    "breached": False}}  # fmt: skip


def clock(state: str, due: str, breached: str | None = None) -> dict:
    return {"state": state, "due_at": due, "breached_at": breached, "met_at": None}


def queue_stub(stub) -> None:  # noqa: F811
    stub.answers["/topics"] = {"items": []}
    stub.answers["/queue"] = {"items": [row("t-1", 100001, "high"), row("t-2", 100002), row("t-3", 100003)],
                              "next_cursor": None}  # fmt: skip
    stub.answers["/tickets"] = {"items": [  # sla's clocks of the rows (t-3: not known to sla yet)
        {"ticket_id": "t-1", "priority": "high", "clocks": {
            "first_response": clock("met", "2026-12-01T05:00:00.000Z", "2026-12-01T05:00:00.000Z"),
            "next_response": None,
            "resolution": clock("paused", "2026-12-01T06:00:00.000Z")}},
        {"ticket_id": "t-2", "priority": "normal", "clocks": {
            "first_response": clock("breached", "2026-12-01T04:30:00.000Z", "2026-12-01T04:30:00.000Z"),
            "next_response": None,
            "resolution": clock("running", "2026-12-02T04:00:00.000Z")}},
    ]}  # fmt: skip


def rows_of(html: str) -> list[tuple[str, str]]:
    """(ticket number, what its Next deadline cell says), in the table's order."""
    found = re.findall(r'>#(\d+) <bdi>Ticket \d+</bdi></a>.*?data-label="Next deadline">(.*?)</td>', html, re.S)
    return [(number, re.sub(r"<[^>]+>", "", cell).strip()) for number, cell in found]


def test_each_row_shows_its_soonest_running_deadline_from_sla_soonest_first(portal, stub, monkeypatch):  # noqa: F811
    queue_stub(stub)
    monkeypatch.setattr(console, "now", lambda: datetime(2026, 12, 1, 5, 0, tzinfo=UTC))

    html = text(signed_in(portal).get("/console/?view=all"))

    assert rows_of(html) == [
        ("100002", "First response 1 Dec 2026, 04:30 UTC 30 min overdue Breached"),  # still counting: first; which
        ("100001", "Paused First response breached earlier"),  # met late; the resolution paused: nothing due
        ("100003", "—"),  # sla does not know it yet: assignment's copy, which has nothing either
    ]
    [asked] = [call for call in stub.calls if call["path"] == "/tickets"]
    assert asked["lists"]["ticket_id"] == ["t-1", "t-2", "t-3"]  # the rows' ids, one call for the page


def test_a_long_queue_asks_sla_fifty_rows_at_a_time(portal, stub):  # noqa: F811
    """200 ids in one query string would pass the 4 KB request line a server takes (gunicorn's)."""
    queue_stub(stub)
    stub.answers["/queue"] = {"items": [row(f"t-{n}", 100000 + n) for n in range(120)], "next_cursor": None}
    signed_in(portal).get("/console/?view=all")
    asked = [call["lists"]["ticket_id"] for call in stub.calls if call["path"] == "/tickets"]
    assert [len(ids) for ids in asked] == [50, 50, 20]
    assert [ticket_id for ids in asked for ticket_id in ids] == [f"t-{n}" for n in range(120)]


def test_a_queue_longer_than_its_page_says_more_wait_and_how_to_reach_them(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/queue"] = {"items": [row(f"t-{n}", 100000 + n) for n in range(3)], "next_cursor": None}
    html = text(signed_in(portal).get("/console/?view=all"))
    assert "more wait behind them" not in html and "Next page" not in html and "First page" not in html
    stub.answers["/queue"] = {"items": [row(f"t-{n}", 100000 + n) for n in range(200)], "next_cursor": "c2"}
    html = text(signed_in(portal).get("/console/?view=all&priority=normal"))
    assert "Tickets 1 to 200 in the queue's order" in html and "more wait behind them." in html
    assert ">200+</span>" in html
    [link] = re.findall(r'<a id="pager-next" href="([^"]+)" rel="next">Next page: tickets 201 onwards</a>', html)
    assert link.replace("&amp;", "&") == "/console/?view=all&cursor=c2&start=201&priority=normal"
    assert "First page" not in html


def test_the_next_page_of_a_queue_is_asked_from_assignments_cursor_and_stays_on_refresh(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/queue"] = {"items": [row(f"t-{n}", 100200 + n) for n in range(200)], "next_cursor": "c3"}
    client = signed_in(portal)

    html = text(client.get("/console/?view=all&cursor=c2&start=201&priority=normal"))

    asked = [
        call["args"] for call in stub.calls if call["path"] == "/queue" and call["args"].get("fields") != "ticket_id"
    ]
    assert asked[-1]["cursor"] == "c2" and asked[-1]["priority"] == "normal"  # the page's own view only
    counted = [
        call["args"] for call in stub.calls if call["path"] == "/queue" and call["args"].get("fields") == "ticket_id"
    ]
    assert all("cursor" not in args for args in counted)  # the other tabs are counted from their start
    assert "Tickets 201 to 400 in the queue's order" in html
    assert html.index("A later page of the queue: tickets 201 to 400.") < html.index('<table class="queue"')
    assert ">400+</span>" in html  # the tab counts the rows before this page in
    assert 'href="/console/?view=all&amp;priority=normal" rel="prev">Previous page</a>' in html  # the first
    assert "First page" not in html.split('aria-label="Pages of the queue"')[1]  # (the hint above still has it)
    assert "Next page: tickets 401 onwards" in html and "cursor=c3&amp;start=401&amp;back=c2" in html
    [refresh] = re.findall(r'id="queue" hx-get="([^"]+)"', html)
    assert refresh.replace("&amp;", "&") == "/console/queue?view=all&priority=normal&cursor=c2&start=201"
    assert '<input type="hidden" name="cursor" value="c2">' in html  # a bulk action comes back to this page

    stub.answers["/queue"] = {"items": [row(f"t-{n}", 100400 + n) for n in range(50)], "next_cursor": None}
    last = text(client.get("/console/?view=all&cursor=c3&start=401&back=c2&priority=normal"))
    assert "Tickets 401 to 450 in the queue's order" in last and ">450</span>" in last and "Next page" not in last
    pattern = r'<a id="pager-previous" href="([^"]+)" rel="prev">Previous page: tickets 201 to 400</a>'
    [previous] = re.findall(pattern, last)
    assert previous.replace("&amp;", "&") == "/console/?view=all&cursor=c2&start=201&priority=normal"
    assert 'href="/console/?view=all&amp;priority=normal">First page</a>' in last
    [refresh] = re.findall(r'id="queue" hx-get="([^"]+)"', last)  # the refresh and the bulk form keep the way back
    assert refresh.replace("&amp;", "&") == "/console/queue?view=all&priority=normal&cursor=c3&start=401&back=c2"
    assert '<input type="hidden" name="back" value="c2">' in last

    unknown = text(client.get("/console/?view=all&cursor=c3&start=7"))  # an edited start: no numbers made up
    assert "Later tickets in the queue's order" in unknown and ">200+</span>" in unknown
    [refresh] = re.findall(r'id="queue" hx-get="([^"]+)"', unknown)
    assert refresh.replace("&amp;", "&") == "/console/queue?view=all&cursor=c3"

    stub.answers["/queue"] = {"items": [], "next_cursor": None}  # all done meanwhile
    empty = text(client.get("/console/queue?view=all&cursor=c2&start=201"))
    assert "No ticket is left on this page: those that were here are done, or are on an earlier page now." in empty


def test_a_queue_page_whose_cursor_assignment_refuses_says_so_and_leads_to_the_first(portal, stub):  # noqa: F811
    queue_stub(stub)
    invalid = {"title": "Unprocessable Entity", "detail": "The cursor is not one this API gave out."}
    stub.answers["/queue"] = lambda: (
        (422, invalid)
        if any(c["args"].get("cursor") for c in stub.calls[-1:])
        else (200, {"items": [], "next_cursor": None})
    )

    page = signed_in(portal).get("/console/?view=all&cursor=forged&start=abc")

    assert page.status_code == 400
    html = text(page)
    assert "That page of the queue is not there" in html and 'href="/console/?view=all">Open its first page</a>' in html


def test_a_start_that_is_not_a_pages_start_is_not_shown():
    from services.portal.console import queue_start

    shown = [queue_start(text) for text in ("201", "401", "1", "200", "202", "", "x", "²01", "9" * 9)]
    assert shown == [201, 401] + [None] * 7


def test_without_sla_the_rows_keep_assignments_copy_and_order(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/tickets"] = (503, {"title": "Service Unavailable", "detail": "down"})
    first = row("t-1", 100001, "high") | {"sla": {"first_response_due_at": "2026-12-01T07:00:00.000Z",
                                                  "resolution_due_at": None, "breached": True}}  # fmt: skip
    stub.answers["/queue"]["items"][0] = first

    page = signed_in(portal).get("/console/?view=all")

    assert page.status_code == 200
    assert rows_of(text(page)) == [
        ("100001", "First response 1 Dec 2026, 07:00 UTC Breached"), ("100002", "—"), ("100003", "—")
    ]  # fmt: skip


def test_an_admin_in_no_team_sees_the_unassigned_tab_for_what_it_is(portal, stub):  # noqa: F811
    queue_stub(stub)
    html = text(signed_in(portal).get("/console/"))
    tabs = re.findall(r'>([^<>]+) <span class="count"', html)
    assert [tab for tab in tabs if tab] == ["Unassigned", "Every open ticket"]
    assert "My teams&#39; unassigned" not in html and "My teams' unassigned" not in html


def test_a_team_lead_also_has_every_open_ticket_of_its_teams_and_an_agent_does_not(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    stub.answers["/agents/lena"] = {"id": "lena", "name": "Lena", "teams": ["network"], "lead_of": ["network"]}
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}

    lead = text(signed_in(portal, "agent", "lena").get("/console/?view=led"))
    tabs = re.findall(r'>([^<>]+) <span class="count"', lead)
    assert [tab for tab in tabs if tab] == ["My tickets", "My teams&#39; unassigned", "My teams&#39; open tickets"]
    assert [number for number, _ in rows_of(lead)] == ["100002", "100001", "100003"]  # assigned ones too
    asked = [c["args"] for c in stub.calls if c["path"] == "/queue" and c["token"]]
    assert {"agent_id", "unassigned"}.isdisjoint(asked[-1])  # assignment gives an agent its teams' tickets
    assert [args["fields"] for args in asked] == ["ticket_id", "ticket_id", QUEUE_FIELDS]  # the others only counted

    agent = text(signed_in(portal, "agent", "ada").get("/console/?view=led"))  # not offered: the first tab
    tabs = re.findall(r'>([^<>]+) <span class="count"', agent)
    assert [tab for tab in tabs if tab] == ["My tickets", "My teams&#39; unassigned"]


def ticked(client, form: dict, ticks: list[str], view: str = "all"):
    """POST the queue's bulk form as the browser sends it: the page's CSRF token, the ticked rows' boxes."""
    page = text(client.get(f"/console/?view={view}"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {"csrf_token": token, "view": view, **form, "ticket_ids": ticks}
    return client.post("/console/bulk", data=data)


def test_every_row_has_a_box_for_the_bulk_form_and_leads_get_priority_and_teams(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}

    admin_page = text(signed_in(portal).get("/console/?view=all"))
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    agent_page = text(signed_in(portal, "agent", "ada").get("/console/"))

    for ticket_id, number in (("t-1", 100001), ("t-2", 100002), ("t-3", 100003)):
        assert f'name="ticket_ids" value="{ticket_id}:{number}" id="tick-{ticket_id}" form="bulk"' in admin_page
    assert 'value="priority"' in admin_page and '<option value="desk">Desk</option>' in admin_page
    assert (
        'value="claim"' in agent_page and 'value="priority"' not in agent_page and "Move them to team" not in agent_page
    )
    assert [c["path"] for c in stub.calls].count("/teams") == 1  # the admin's page only: an agent moves no ticket

    stub.answers["/agents"] = {"items": [{"id": "ada", "name": "Ada", "teams": ["network"], "available": False}]}
    admin_page = text(signed_in(portal).get("/console/?view=all"))
    assert '<option value="desk">Desk (no agents)</option>' in admin_page  # where nobody would pick them up
    assert '<option value="network">Network (nobody available)</option>' in admin_page


def test_a_bulk_claim_acts_on_each_ticket_and_says_what_assignment_refused(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/tickets/t-1/claim"] = {"ticket_id": "t-1"}
    stub.answers["/tickets/t-2/claim"] = (409, {"title": "Conflict", "detail": "Agent bob has this ticket."})
    stub.answers["/tickets/t-3/claim"] = {"ticket_id": "t-3"}
    stub.answers["/tickets/t-4/claim"] = {"ticket_id": "t-4"}  # what assignment answers a claim of one's own
    for ticket_id, holder in (("t-1", None), ("t-2", "bob"), ("t-3", None), ("t-4", "ada")):
        stub.answers[f"/tickets/{ticket_id}"] = {"ticket_id": ticket_id, "agent_id": holder, "team": "network"}
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/agents"] = {"items": [{"id": "bob", "name": "Bob Baker", "teams": ["network"]}]}
    agent = signed_in(portal, "agent", "ada")

    ticks = ["t-1:100001", "t-2:100002", "t-3:100003", "t-4:100004"]
    done = ticked(agent, {"action": "claim", "filter_priority": "high"}, ticks)

    assert done.status_code == 303 and done.headers["Location"].endswith("/console/?view=all&priority=high")
    claims = [c for c in stub.calls if c["method"] == "POST"]
    assert [c["path"] for c in claims] == ["/tickets/t-1/claim", "/tickets/t-2/claim", "/tickets/t-3/claim"]
    page = text(agent.get(done.headers["Location"]))
    assert "<strong>Claim:</strong> done on 2 tickets (#100001, #100003)." in page
    assert "Not done on 1:" in page and "<li>#100002: Bob Baker has this ticket.</li>" in page  # by name
    assert "<p>Yours already: #100004.</p>" in page  # neither done nor refused
    again = text(agent.get(done.headers["Location"]))  # said once: a reload of the queue does not say it again
    assert "Not done on" not in again and len([c for c in stub.calls if c["method"] == "POST"]) == 3
    mine = text(agent.get(ticked(agent, {"action": "claim"}, ["t-4:100004"]).headers["Location"]))
    assert "<strong>Claim:</strong> nothing to do.</p>" in mine and "Yours already: #100004." in mine
    assert "notice--success" in mine and "notice--warning" not in mine  # nothing went wrong

    later = ticked(agent, {"action": "claim", "cursor": "c2", "start": "201"}, ["t-1:100001"])  # from a later page
    assert later.headers["Location"].endswith("/console/?view=all&cursor=c2&start=201")  # back on that page
    third = ticked(agent, {"action": "claim", "cursor": "c3", "start": "401", "back": "c2"}, ["t-1:100001"])
    assert third.headers["Location"].endswith("/console/?view=all&cursor=c3&start=401&back=c2")  # its way back too


def test_a_bulk_resolve_sends_the_same_words_to_each_and_priority_its_value(portal, stub):  # noqa: F811
    queue_stub(stub)
    for ticket_id in ("t-1", "t-2"):
        stub.answers[f"/tickets/{ticket_id}/resolve"] = {"ticket_id": ticket_id}
        stub.answers[f"/tickets/{ticket_id}/priority"] = {"ticket_id": ticket_id}
    admin = signed_in(portal)

    ticked(
        admin,
        {"action": "resolve", "resolution": "The outage is over.\r\nSorry for the wait."},
        ["t-1:100001", "t-2:100002"],
    )
    ticked(
        admin, {"action": "priority", "priority": "emergency", "resolution": "not sent"}, ["t-2:100002", "t-2:100002"]
    )

    posts = [(c["path"], c["json"]) for c in stub.calls if c["method"] == "POST"]
    assert posts == [
        ("/tickets/t-1/resolve", {"resolution": "The outage is over.\nSorry for the wait."}),
        ("/tickets/t-2/resolve", {"resolution": "The outage is over.\nSorry for the wait."}),
        ("/tickets/t-2/priority", {"priority": "emergency"}),  # a ticket ticked twice is acted on once
    ]


@pytest.mark.parametrize(
    ("form", "ticks", "field", "words"),
    [
        ({"action": "claim"}, [], "ticket_ids", "Choose the tickets first: tick them in the list."),
        ({}, ["t-1:100001"], "action", "Choose what to do with them."),
        ({"action": "resolve", "resolution": "  "}, ["t-1:100001"], "resolution",
         "Say how it was resolved: the requester reads it."),
        ({"action": "priority"}, [f"t-{n}:{100000 + n}" for n in range(201)], "ticket_ids",
         "Choose at most 200 tickets at once (you chose 201)."),
        ({"action": "delete"}, ["t-1:100001"], "action", "Choose what to do with them."),
        ({"action": "claim"}, ["t-1:100001"], "action", "Choose what to do with them."),  # an admin who is no agent
        ({"action": "resolve", "resolution": "x" * 5001}, ["t-1:100001"], "resolution",
         "Keep it to 5,000 characters (it has 5,001)."),
        ({"action": "priority", "priority": "urgent"}, ["t-1:100001"], "action", "Choose a priority from the list."),
        ({"action": "status", "status": "done"}, ["t-1:100001"], "action", "Choose a status from the list."),
        ({"action": "status", "status": "closed"}, ["t-1:100001"], "action", "Choose a status from the list."),
    ],
)  # fmt: skip
def test_a_bulk_form_that_will_not_do_is_said_next_to_the_field_and_acts_on_nothing(
    portal,  # noqa: F811
    stub,  # noqa: F811
    form,
    ticks,
    field,
    words,
):
    queue_stub(stub)
    admin = signed_in(portal)

    refused = ticked(admin, form, ticks)

    page = text(refused)
    assert refused.status_code == 422 and f'id="{field}-error"' in page and words in page
    assert re.search(r"<title>Error: [^<]*Queues · ticketflow</title>", page)
    assert not [c for c in stub.calls if c["method"] == "POST"]
    for tick in ticks[:3]:  # the rows stay ticked, what was typed stays
        if tick.startswith("t-1:") or tick.startswith("t-2:") or tick.startswith("t-3:"):
            assert f'value="{tick}" id="tick-{tick.split(":")[0]}" form="bulk" autocomplete="off" checked' in page
    if form.get("resolution"):
        assert f">{form['resolution']}</textarea>" in page
    for target in re.findall(r'<li><a href="#([^"]+)">', page):  # the error summary's links lead somewhere
        assert f'id="{target}"' in page, target


def test_a_bulk_action_stops_where_a_service_does_not_answer_and_says_which_were_not_tried(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/tickets/t-1/priority"] = {"ticket_id": "t-1"}
    stub.answers["/tickets/t-2/priority"] = (503, {"title": "Service Unavailable", "detail": "down"})
    stub.answers["/tickets/t-3/priority"] = {"ticket_id": "t-3"}
    admin = signed_in(portal)

    done = ticked(admin, {"action": "priority", "priority": "high"}, ["t-1:100001", "t-2:100002", "t-3:100003"])

    assert done.status_code == 303  # the outcome is kept and said: a reload of the queue acts on nothing
    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == [
        "/tickets/t-1/priority",
        "/tickets/t-2/priority",
    ]
    page = text(admin.get(done.headers["Location"]))
    assert "<strong>Set the priority to High:</strong> done on 1 ticket (#100001)." in page
    assert "At #100002 the help desk's services did not answer: it may or may not be done" in page
    assert "Not tried: #100003." in page
    for tick in ("t-2:100002", "t-3:100003"):  # maybe done, and not tried: ticked again, the priority chosen
        assert f'value="{tick}" id="tick-{tick.split(":")[0]}" form="bulk" autocomplete="off" checked' in page
    assert 'value="t-1:100001" id="tick-t-1" form="bulk" autocomplete="off">' in page  # done: not ticked


def test_a_ticket_ticked_twice_or_under_another_number_is_acted_on_once(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/tickets/t-1/priority"] = {"ticket_id": "t-1"}
    admin = signed_in(portal)

    done = ticked(
        admin, {"action": "priority", "priority": "low", "seen": "forged"}, ["t-1:100001", "t-1:5", "t-1:100001"]
    )

    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == ["/tickets/t-1/priority"]
    assert "done on 1 ticket (#100001)." in text(admin.get(done.headers["Location"]))


def test_a_bulk_move_leaves_a_ticket_already_in_that_team_with_its_agent(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}
    stub.answers["/tickets/t-1"] = {"ticket_id": "t-1", "team": "network", "agent_id": "ada", "status": "assigned"}
    stub.answers["/tickets/t-2"] = {"ticket_id": "t-2", "team": "desk", "agent_id": "bob", "status": "assigned"}
    stub.answers["/tickets/t-1/assign"] = stub.answers["/tickets/t-2/assign"] = {"ticket_id": "t-x"}
    admin = signed_in(portal)

    done = ticked(admin, {"action": "transfer", "team": "network"}, ["t-1:100001", "t-2:100002"])

    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == ["/tickets/t-2/assign"]
    page = text(admin.get(done.headers["Location"]))
    assert "<strong>Move to Network:</strong> done on 1 ticket (#100002)." in page
    assert "<li>#100001: It is in Network already: it stays with its agent.</li>" in page


def test_a_bulk_move_to_a_team_where_nobody_takes_tickets_says_they_wait_there(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}
    stub.answers["/agents"] = {"items": [{"id": "ada", "name": "Ada", "teams": ["network"], "available": True}]}
    stub.answers["/tickets/t-1"] = {"ticket_id": "t-1", "team": "network", "agent_id": "ada", "status": "assigned"}
    stub.answers["/tickets/t-1/assign"] = {"ticket_id": "t-1", "team": "desk", "agent_id": None}
    admin = signed_in(portal)

    done = ticked(admin, {"action": "transfer", "team": "desk"}, ["t-1:100001"])

    page = text(admin.get(done.headers["Location"]))
    assert "<strong>Move to Desk:</strong> done on 1 ticket (#100001).</p>" in page
    assert (
        "<p>Nobody in Desk takes tickets now (it has no agents): the ticket waits in its queue until an agent there "
        "is available.</p>" in page
    )
    assert 'class="notice notice--warning"' in page


def test_a_ticket_handed_out_of_sight_since_the_queue_showed_it_is_said_so_not_by_its_id(portal, stub):  # noqa: F811
    """assignment answers 404 for a ticket the agent may no longer read (moved to another team): its words name the
    ticket by its internal id, which the queue never shows."""
    queue_stub(stub)
    gone = (404, {"title": "Not found", "detail": "No ticket t-5."})
    stub.answers["/tickets/t-5/claim"] = gone
    stub.answers["/tickets/t-5"] = gone  # gone before the claim looks at it
    stub.answers["/tickets/t-6/claim"] = (404, {"title": "Not found", "detail": "No ticket t-6."})
    stub.answers["/tickets/t-6"] = {"ticket_id": "t-6", "agent_id": None, "team": "network"}  # gone in between
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/agents"] = {"items": []}
    agent = signed_in(portal, "agent", "ada")

    page = text(agent.get(ticked(agent, {"action": "claim"}, ["t-5:100005", "t-6:100006"]).headers["Location"]))

    for number in (100005, 100006):
        assert f"<li>#{number}: It is out of your sight now: handed to a team you are not in" in page
    assert "t-5" not in page.split("Not done on 2:")[1].split("</ul>")[0]


def test_a_refusals_field_errors_are_part_of_its_reason(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/tickets/t-1/transfer"] = (422, {"title": "Validation failed", "detail": "",
                                                   "errors": {"team": ["No team desk."]}})  # fmt: skip
    stub.answers["/tickets/t-1/assign"] = stub.answers["/tickets/t-1/transfer"]
    stub.answers["/tickets/t-1"] = {"ticket_id": "t-1", "team": "network", "agent_id": "ada", "status": "assigned"}
    admin = signed_in(portal)

    done = ticked(admin, {"action": "transfer", "team": "desk"}, ["t-1:100001"])

    assert "<li>#100001: Validation failed No team desk.</li>" in text(admin.get(done.headers["Location"]))


def test_the_agent_column_names_the_agent_and_shows_the_id_when_names_are_not_known(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/agents"] = {"items": [{"id": "ada", "name": "Ada Lovelace"}], "next_cursor": None}

    named = text(signed_in(portal).get("/console/?view=all"))
    portal.extensions["ticketflow.portal"].kept.clear()  # what the process kept: asked again
    stub.answers["/agents"] = (503, {"title": "Service Unavailable", "detail": "down"})
    unnamed = text(signed_in(portal).get("/console/?view=all"))

    assert named.count('<td data-label="Agent">Ada Lovelace</td>') == 3
    assert unnamed.count('<td data-label="Agent">ada</td>') == 3


def test_the_agents_names_are_asked_once_a_minute_not_on_every_refresh(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/agents"] = {"items": [{"id": "ada", "name": "Ada Lovelace"}], "next_cursor": None}
    admin = signed_in(portal)

    for _ in range(3):
        admin.get("/console/queue?view=all")

    assert [c["path"] for c in stub.calls].count("/agents") == 1


def test_a_bulk_status_is_set_on_the_agents_own_tickets_only_as_their_pages_offer_it(portal, stub):  # noqa: F811
    """assignment lets a team's agent set an unassigned ticket's status; the ticket's page offers it to its agent
    and admins only, and so does the queue."""
    queue_stub(stub)
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/tickets/t-1"] = {"ticket_id": "t-1", "agent_id": "ada", "status": "assigned"}
    stub.answers["/tickets/t-2"] = {"ticket_id": "t-2", "agent_id": None, "status": "new"}
    stub.answers["/tickets/t-1/status"] = {"ticket_id": "t-1"}
    stub.answers["/tickets/t-2/status"] = {"ticket_id": "t-2"}
    stub.answers["/tickets/t-3"] = {"ticket_id": "t-3", "agent_id": "bob", "status": "assigned"}
    stub.answers["/agents"] = {"items": [{"id": "bob", "name": "Bob Marley", "teams": ["network"]}]}
    agent = signed_in(portal, "agent", "ada")

    ticks = ["t-1:100001", "t-2:100002", "t-3:100003"]
    done = ticked(agent, {"action": "status", "status": "waiting_on_requester"}, ticks)

    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == ["/tickets/t-1/status"]
    page = text(agent.get(done.headers["Location"]))
    assert "<strong>Set the status to Waiting on requester:</strong> done on 1 ticket (#100001)." in page
    assert "<li>#100002: Only its agent or an admin sets its status: claim it first.</li>" in page
    assert "<li>#100003: Only its agent, Bob Marley, or an admin sets its status.</li>" in page  # no claim to make


def test_a_status_set_from_a_ticket_page_is_the_tickets_agents_alone(portal, stub):  # noqa: F811
    """The page offers it to the ticket's agent and admins; a form sent by hand to an unassigned ticket is refused
    before assignment (which would take it from any agent of the team) is asked."""
    queue_stub(stub)
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/tickets/t-2"] = {"ticket_id": "t-2", "agent_id": None, "status": "new", "team": "network"}
    agent = signed_in(portal, "agent", "ada")
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(agent.get("/console/"))).group(1)

    agent.post("/console/tickets/t-2/status", data={"csrf_token": token, "status": "in_progress"})

    assert not [c for c in stub.calls if c["method"] == "POST"]


def test_a_ticket_handed_on_to_a_team_where_nobody_takes_tickets_says_it_waits_there(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}
    stub.answers["/agents"] = {"items": [{"id": "ada", "name": "Ada", "teams": ["network"], "available": True}]}
    page = text(signed_in(portal).get("/console/?notice=handed-on-waiting&team=desk"))
    assert (
        '<p class="notice notice--warning" role="status" tabindex="-1" data-autofocus>'
        "The ticket is with Desk now, out of your sight. Nobody in "
        "Desk takes tickets now (it has no agents): the ticket waits in its queue until an agent there is "
        "available.</p>" in page
    )
    page = text(signed_in(portal).get("/console/?notice=handed-on&team=network"))  # ada took it
    assert "The ticket is with Network now, out of your sight: an agent there has it.</p>" in page
    assert "Nobody in" not in page and "notice--warning" not in page
    page = text(signed_in(portal).get("/console/?notice=handed-on-waiting&team=%3Cb%3EAll%20lost%3C%2Fb%3E"))
    assert "All lost" not in page  # a team the address names is looked up, never shown as given
    assert "The ticket is with another team now, out of your sight: it waits in their queue.</p>" in page
    assert '<td data-label="Team">Network</td>' in page  # the rows' team by its name


def test_a_team_made_after_the_names_were_kept_is_shown_by_its_name_at_once(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    agent = signed_in(portal, "agent", "ada")
    assert '<td data-label="Team">Network</td>' in text(agent.get("/console/"))  # kept a minute from here
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "nights", "name": "Night shift"}]}
    stub.answers["/queue"]["items"][0]["team"] = "nights"  # a team made since, and a ticket moved there
    stub.answers["/queue"]["items"][1]["team"] = "gone"  # and one assignment does not list (yet)
    before = len(stub.calls)
    page = text(agent.get("/console/"))
    assert '<td data-label="Team">Night shift</td>' in page and '<td data-label="Team">Network</td>' in page
    assert '<td data-label="Team">gone</td>' in page  # its id, asked for once with the other
    assert [call["path"] for call in stub.calls[before:]].count("/teams") == 1  # once a request, not per row


def test_a_bulk_assign_gives_each_ticket_to_the_agent_chosen_and_says_which_stay(portal, stub):  # noqa: F811
    """A lead is offered the agents of the teams it leads; each ticket goes as from its page, one already theirs is
    said apart, and one of a team the agent is not in is refused in the page's words (assignment's names ids)."""
    queue_stub(stub)
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}
    stub.answers["/agents"] = {"items": [
        {"id": "ada", "name": "Ada", "teams": ["network"], "available": True, "open_tickets": 2, "capacity": 5},
        {"id": "bob", "name": "Bob", "teams": ["network", "desk"], "available": False, "open_tickets": 3,
         "capacity": 3},
        {"id": "cy", "name": "Cy", "teams": ["desk"], "available": True},
    ]}  # fmt: skip
    stub.answers["/agents/lena"] = {"id": "lena", "name": "Lena", "teams": ["network"], "lead_of": ["network"]}
    stub.answers["/tickets/t-1"] = {"ticket_id": "t-1", "team": "network", "agent_id": "ada", "status": "assigned"}
    stub.answers["/tickets/t-2"] = {"ticket_id": "t-2", "team": "network", "agent_id": "bob", "status": "assigned"}
    stub.answers["/tickets/t-3"] = {"ticket_id": "t-3", "team": "billing", "agent_id": None, "status": "new"}
    stub.answers["/tickets/t-1/assign"] = {"ticket_id": "t-1", "agent_id": "bob"}
    agents = stub.answers["/agents"]

    def agents_now():  # Bob's count as assignment has it after the assign
        given = any(c["path"] == "/tickets/t-1/assign" for c in stub.calls)
        return {"items": [a | {"open_tickets": 4} if given and a["id"] == "bob" else a for a in agents["items"]]}

    stub.answers["/agents"] = agents_now
    lead = signed_in(portal, "agent", "lena")

    page = text(lead.get("/console/"))
    offered = re.search(r'<select id="bulk-assign-value" name="agent_id"[^>]*>(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="(\w+)">([^<]*)</option>', offered) == [
        ("ada", "Ada (Network; 2 open of 5)"),
        ("bob", "Bob (Network, Desk; 3 open of 3: full; away)")]  # fmt: skip  # not Cy: not in a team it leads

    done = ticked(lead, {"action": "assign", "agent_id": "bob"}, ["t-1:100001", "t-2:100002", "t-3:100003"])

    assert [(c["path"], c["json"]) for c in stub.calls if c["method"] == "POST"] == [
        ("/tickets/t-1/assign", {"agent_id": "bob"})]  # fmt: skip
    said = text(lead.get(done.headers["Location"]))
    assert "<strong>Give to Bob:</strong> done on 1 ticket (#100001).</p>" in said
    assert "<p>Already Bob&#39;s: #100002.</p>" in said
    assert "<li>#100003: It is in billing, where Bob is not: move it to one of their teams first.</li>" in said
    assert (  # as the ticket's page says after an assign
        "<p>Bob has 4 open tickets now, over their capacity of 3. Bob is away: the ticket stays with them until "
        "someone hands it on.</p>" in said
    )


def test_a_partly_refused_bulk_resolve_keeps_its_words_and_the_refused_tickets_ticked(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/tickets/t-1/resolve"] = {"ticket_id": "t-1"}
    refusal = {"title": "Forbidden", "detail": "Only the assigned agent or an admin resolves a ticket."}
    stub.answers["/tickets/t-2/resolve"] = (403, refusal)
    admin = signed_in(portal)
    words = "The mail server is back since 10:20."

    done = ticked(admin, {"action": "resolve", "resolution": words}, ["t-1:100001", "t-2:100002"])
    page = text(admin.get(done.headers["Location"]))

    assert "<strong>Resolve:</strong> done on 1 ticket (#100001).</p>" in page
    assert "<li>#100002: Only the assigned agent or an admin resolves a ticket.</li>" in page
    assert 'value="t-2:100002" id="tick-t-2" form="bulk" autocomplete="off" checked' in page
    assert 'value="t-1:100001" id="tick-t-1" form="bulk" autocomplete="off">' in page
    assert f">{words}</textarea>" in page and 'value="resolve" checked' in page
    assert '<details class="bulk filters" data-bulk open>' in page
    again = text(admin.get(done.headers["Location"]))  # said once: a reload shows the queue as it is
    assert "checked" not in again and words not in again


def test_an_agents_bulk_resolve_claims_the_tickets_waiting_in_the_queue_first(portal, stub):  # noqa: F811
    """An outage's tickets, some in the team's queue: resolving is their agent's, so the agent's resolve claims
    those first (a claim, as the agent could), then resolves each; one an agent took meanwhile is refused."""
    queue_stub(stub)
    stub.answers["/tickets/t-1"] = {"ticket_id": "t-1", "team": "network", "agent_id": None, "status": "new"}
    stub.answers["/tickets/t-2"] = {"ticket_id": "t-2", "team": "network", "agent_id": "ada", "status": "assigned"}
    for ticket_id in ("t-1", "t-2"):
        stub.answers[f"/tickets/{ticket_id}/resolve"] = {"ticket_id": ticket_id}
    stub.answers["/tickets/t-1/claim"] = {"ticket_id": "t-1", "agent_id": "ada"}
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "available": True}
    ada = signed_in(portal, "agent", "ada")
    stub.calls.clear()

    done = ticked(ada, {"action": "resolve", "resolution": "The Wi-Fi is back."}, ["t-1:100001", "t-2:100002"])

    posts = [(c["path"], c["json"]) for c in stub.calls if c["method"] == "POST"]
    assert posts == [("/tickets/t-1/claim", {}), ("/tickets/t-1/resolve", {"resolution": "The Wi-Fi is back."}),
                     ("/tickets/t-2/resolve", {"resolution": "The Wi-Fi is back."})]  # fmt: skip
    page = text(ada.get(done.headers["Location"]))
    assert "<strong>Resolve:</strong> done on 2 tickets (#100001, #100002).</p>" in page
    assert "Waiting in the queue, so claimed by you first (a ticket is resolved by its agent): #100001." in page

    stub.answers["/tickets/t-1/claim"] = (409, {"title": "Conflict", "detail": "Ticket t-1 is assigned to bob."})
    stub.calls.clear()
    done = ticked(ada, {"action": "resolve", "resolution": "The Wi-Fi is back."}, ["t-1:100001"])
    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == ["/tickets/t-1/claim"]  # not resolved
    assert "<li>#100001: Ticket t-1 is assigned to bob.</li>" in text(ada.get(done.headers["Location"]))

    boss = signed_in(portal, "admin", "ada")  # an admin who is an agent too resolves any ticket as it is
    stub.calls.clear()
    ticked(boss, {"action": "resolve", "resolution": "The Wi-Fi is back."}, ["t-1:100001"])
    assert [c["path"] for c in stub.calls if c["method"] == "POST"] == ["/tickets/t-1/resolve"]


def test_a_bulk_resolve_refused_everywhere_says_so_even_beside_one_already_done(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/agents"] = {"items": [{"id": "bob", "name": "Bob", "teams": ["network"], "available": True}]}
    stub.answers["/tickets/t-1"] = {"ticket_id": "t-1", "team": "network", "agent_id": "bob", "status": "assigned"}
    stub.answers["/tickets/t-2"] = {"ticket_id": "t-2", "team": "desk", "agent_id": None, "status": "new"}
    admin = signed_in(portal)

    done = ticked(admin, {"action": "assign", "agent_id": "bob"}, ["t-1:100001", "t-2:100002"])

    page = text(admin.get(done.headers["Location"]))
    assert "<strong>Give to Bob:</strong> done on none of them.</p>" in page and "nothing to do" not in page


def test_a_bulk_assign_with_no_agent_or_an_unknown_one_is_said_next_to_the_choice(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    stub.answers["/agents"] = {"items": [{"id": "ada", "name": "Ada", "teams": ["network"], "available": True}]}
    admin = signed_in(portal)

    unknown = {"action": "assign", "agent_id": "zed"}
    for form, said in (({"action": "assign"}, "Choose the agent to give them to."),
                       (unknown, "That agent is not on the help desk now.")):  # fmt: skip
        page = ticked(admin, form, ["t-1:100001"])
        assert page.status_code == 422
        assert said in text(page) and 'href="#action"' in text(page)
    assert not [c for c in stub.calls if c["method"] == "POST"]


def test_a_lead_narrows_the_queue_to_one_agent_and_one_team(portal, stub):  # noqa: F811
    """Leads and admins: one agent's tickets, or one team's, in any queue but the person's own "My tickets"."""
    queue_stub(stub)
    stub.answers["/agents/lea"] = {"id": "lea", "name": "Lea", "teams": ["network"], "lead_of": ["network"]}
    stub.answers["/agents"] = {"items": [
        {"id": "lea", "name": "Lea", "teams": ["network"], "lead_of": ["network"], "available": True},
        {"id": "bob", "name": "Bob Baker", "teams": ["network"], "lead_of": [], "available": False}]}  # fmt: skip
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}
    lead = signed_in(portal, "agent", "lea")

    html = text(lead.get("/console/?view=led&agent=bob&in_team=network&priority=high"))

    led = [c["args"] for c in stub.calls if c["path"] == "/queue" and c["args"].get("fields") != "ticket_id"]
    assert led[-1]["agent_id"] == "bob" and led[-1]["team"] == "network" and led[-1]["priority"] == "high"
    asked = [c["args"] for c in stub.calls if c["path"] == "/queue"]
    assert not [args for args in asked if args.get("unassigned") and args.get("agent_id")]  # assignment's 422
    assert not [args for args in asked if args.get("agent_id") == "lea"]  # another's tickets in "My tickets": none
    assert '<a id="tab-mine" href="/console/?view=mine' in html and "My tickets" in html
    assert '<option value="bob" selected>Bob Baker (away)</option>' in html
    assert '<select id="filter-team" name="in_team">' in html and '<option value="network" selected>' in html
    assert '<option value="desk"' not in html.split('name="in_team"')[1].split("</select>")[0]  # not the lead's team
    stub.calls.clear()  # Bob's tickets asked from "My tickets" (where Lea was): the tab that has them, not "Nothing"
    mine = text(lead.get("/console/?view=mine&agent=bob"))
    shown = [c["args"] for c in stub.calls if c["path"] == "/queue" and c["args"].get("fields") != "ticket_id"]
    assert shown == [{"agent_id": "bob", "limit": "200", "fields": QUEUE_FIELDS}]  # every open one of Bob's
    led = r'<a id="tab-led" href="/console/\?view=led[^"]*" aria-current="page"'
    assert re.search(led, mine), "the tab shown is 'led'"
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    plain = text(signed_in(portal, "agent", "ada").get("/console/"))  # an agent who leads nothing: no such filters
    assert 'aria-label="Filter the queue"' in plain and 'name="agent"' not in plain and 'name="in_team"' not in plain


def test_a_status_or_priority_the_list_does_not_offer_is_said_beside_it_and_the_queue_shown_without(
    portal,  # noqa: F811
    stub,  # noqa: F811
):
    """An old bookmark or an edited address (`priority=urgent`, `status=resolved`): the queue still, not an error
    page, and the reason beside the filter."""
    queue_stub(stub)
    stub.answers["/topics"] = {"items": [{"id": "network", "name": "Network"}]}

    page = signed_in(portal).get("/console/?view=all&status=resolved&priority=urgent&topic=network")

    assert page.status_code == 200
    html = text(page)
    assert rows_of(html)  # the queue
    assert "The queue is shown without the filters it could not use: the reason is beside each." in html
    assert (
        '<p class="field-error" id="status-error"><span class="visually-hidden">Error:</span> Choose a status from '
        "the list: New, Assigned, In progress, Waiting on requester; or any open.</p>"
    ) in html
    assert "Choose a priority from the list: Emergency, High, Normal, Low; or any." in html
    assert '<select id="filter-priority" name="priority" aria-describedby="priority-error" aria-invalid="true">' in html
    asked = [c["args"] for c in stub.calls if c["path"] == "/queue"]
    assert asked and all("status" not in args and "priority" not in args for args in asked)
    assert all(args.get("topic") == "network" for args in asked)  # the filter that works is kept
    refresh = re.search(r'hx-get="([^"]+)"', html).group(1)  # the list's refresh, and the bulk form, drop them too
    assert "topic=network" in refresh and "status=" not in refresh and "priority=" not in refresh
    assert 'name="filter_topic" value="network"' in html and 'name="filter_status"' not in html


def test_a_dropped_filter_also_drops_the_page_and_a_topic_not_offered_is_one(portal, stub):  # noqa: F811
    """A later page of the filtered list is not a page of the list without the filter: the first page is shown."""
    queue_stub(stub)
    stub.answers["/topics"] = {"items": [{"id": "network", "name": "Network"}]}

    html = text(signed_in(portal).get("/console/?view=all&topic=printers&cursor=c2&start=201"))

    assert "Choose a topic from the list, or any." in html and "A later page of the queue" not in html
    asked = [c["args"] for c in stub.calls if c["path"] == "/queue"]
    assert asked and all("cursor" not in args and "topic" not in args for args in asked)


def test_a_filter_assignment_refuses_on_a_later_page_is_said_beside_it_not_blamed_on_the_page(
    portal,  # noqa: F811
    stub,  # noqa: F811
):
    queue_stub(stub)
    stub.answers["/agents"] = {"items": [{"id": "bob", "name": "Bob", "teams": ["network"], "lead_of": []}]}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    invalid = {"title": "Validation failed", "detail": "The request has invalid fields.",
               "errors": {"agent_id": ["Use 1 to 40 lowercase letters, digits, - or _."]}}  # fmt: skip
    rows = {"items": [row("t-1", 100001)], "next_cursor": None}
    stub.answers["/queue"] = lambda: (422, invalid) if stub.calls[-1]["args"].get("agent_id") else (200, rows)

    page = signed_in(portal).get("/console/?view=all&agent=Bob!&cursor=c2&start=201")

    html = text(page)
    assert page.status_code == 200 and "That page of the queue is not there" not in html
    assert "Choose an agent from the list, or anyone." in html and "lowercase letters" not in html


def test_a_team_a_lead_may_not_read_is_said_beside_the_team_and_the_queue_shown_without(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/agents/lea"] = {"id": "lea", "name": "Lea", "teams": ["network"], "lead_of": ["network"]}
    stub.answers["/agents"] = {"items": [{"id": "lea", "name": "Lea", "teams": ["network"], "lead_of": ["network"]}]}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}
    rows = {"items": [row("t-1", 100001)], "next_cursor": None}
    refused = {"title": "Forbidden", "detail": "Agents read the queues of their own teams."}
    stub.answers["/queue"] = lambda: (403, refused) if stub.calls[-1]["args"].get("team") else (200, rows)

    page = signed_in(portal, "agent", "lea").get("/console/?view=led&in_team=desk&priority=high")

    assert page.status_code == 200
    html = text(page)
    assert [number for number, _ in rows_of(html)] == ["100001"]
    assert '<p class="field-error" id="in_team-error"><span class="visually-hidden">Error:</span> Agents read the ' \
        "queues of their own teams.</p>" in html  # fmt: skip
    assert "priority-error" not in html  # the priority was not the fault: kept
    last = [c["args"] for c in stub.calls if c["path"] == "/queue"][-1]
    assert "team" not in last and last["priority"] == "high"


def test_a_filter_the_page_offers_no_list_of_is_said_above_the_list_as_left_out(portal, stub):  # noqa: F811
    """An agent who leads nothing has no team filter: a team in the address is said left out, not "choose one"."""
    queue_stub(stub)
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": []}
    invalid = {"title": "Validation failed", "detail": "The request has invalid fields.",
               "errors": {"team": ["Use 1 to 40 lowercase letters, digits, - or _."]}}  # fmt: skip
    rows = {"items": [row("t-1", 100001)], "next_cursor": None}
    stub.answers["/queue"] = lambda: (422, invalid) if stub.calls[-1]["args"].get("team") else (200, rows)

    html = text(signed_in(portal, "agent", "ada").get("/console/?view=team&in_team=Bad!"))

    assert "The queue is shown without the filter it could not use. The team in the address is not one this " \
        "queue can be narrowed to: it was left out." in html  # fmt: skip
    assert "Choose a team" not in html and 'name="in_team"' not in html


def test_an_agent_or_team_the_help_desk_has_none_of_is_said_beside_it_and_the_queue_shown_without(
    portal,  # noqa: F811
    stub,  # noqa: F811
):
    """An admin's old bookmark on an agent or a team since deleted: not an empty queue under "Anyone"."""
    queue_stub(stub)
    stub.answers["/agents"] = {"items": [{"id": "bob", "name": "Bob", "teams": ["network"], "lead_of": []}]}
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}

    html = text(signed_in(portal).get("/console/?view=all&agent=ghost&in_team=gone&priority=high&cursor=c2"))

    assert rows_of(html)
    assert "The help desk has no agent “ghost”. Choose an agent from the list, or anyone." in html
    assert "The help desk has no team “gone”. Choose a team from the list, or any." in html
    assert '<select id="filter-agent" name="agent" aria-describedby="agent-error" aria-invalid="true">' in html
    last = [c["args"] for c in stub.calls if c["path"] == "/queue"][-1]
    assert "agent_id" not in last and "team" not in last and "cursor" not in last and last["priority"] == "high"
    refresh = re.search(r'hx-get="([^"]+)"', html).group(1)
    assert "ghost" not in refresh and "gone" not in refresh and "priority=high" in refresh


def test_an_agent_not_offered_in_the_filter_is_still_shown_as_the_one_filtered_on(portal, stub):  # noqa: F811
    """An agent in no team (or a disabled account's) may still have tickets an admin looks for: its name stays."""
    queue_stub(stub)
    stub.answers["/agents"] = {"items": [{"id": "bob", "name": "Bob", "teams": ["network"], "lead_of": []},
                                         {"id": "zoe", "name": "Zoe Left", "teams": [], "lead_of": []}]}  # fmt: skip
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}

    html = text(signed_in(portal).get("/console/?view=all&agent=zoe"))

    assert '<option value="zoe" selected>Zoe Left (in no team)</option>' in html and "agent-error" not in html
    assert [c["args"] for c in stub.calls if c["path"] == "/queue"][-1]["agent_id"] == "zoe"


def test_a_lead_finds_the_tickets_of_someone_who_left_but_gives_them_none(portal, stub):  # noqa: F811
    """A disabled account's agent of a team the lead leads is offered by the filter (to hand its tickets on), after
    the others and said why; a bulk assign never offers it; an agent of another team is offered by neither."""
    svc = portal.extensions["ticketflow.portal"]
    gone = f"gus-{uuid.uuid4().hex[:6]}"
    account, _ = handlers.create_account(svc, f"{gone}@example.com", "agent", gone, PASSWORD)
    svc.store.set_disabled(account["_id"], datetime.now(UTC))
    queue_stub(stub)
    lea = {"id": "lea", "name": "Lea", "teams": ["network"], "lead_of": ["network"]}
    stub.answers["/agents/lea"] = lea
    stub.answers["/agents"] = {"items": [
        lea,
        {"id": gone, "name": "Gus Gone", "teams": ["network"], "lead_of": [], "available": False},
        {"id": "bob", "name": "Bob", "teams": ["network"], "lead_of": []},
        {"id": "zed", "name": "Zed Other", "teams": ["desk"], "lead_of": []},
    ]}  # fmt: skip
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}]}
    stub.answers["/queue"] = {"items": [{**row("t-1", 100001), "agent_id": gone}], "next_cursor": None}

    html = text(signed_in(portal, "agent", "lea").get(f"/console/?view=led&agent={gone}"))

    offered = re.search(r'<select id="filter-agent".*?</select>', html, re.S).group(0)
    names = re.findall(r"<option[^>]*>([^<]*)</option>", offered)
    assert names == ["Anyone", "Bob", "Lea", "Gus Gone (account disabled)"]
    assert f'<option value="{gone}" selected>' in offered and "agent-error" not in html
    given = re.search(r'<select id="bulk-assign-value".*?</select>', html, re.S).group(0)
    assert "Bob" in given and "Gus Gone" not in given and "Zed" not in given
    assert [c["args"] for c in stub.calls if c["path"] == "/queue"][-1]["agent_id"] == gone
    assert '<td data-label="Agent">Gus Gone <span class="badge badge--warn">account disabled</span></td>' in html


def test_a_bulk_assign_whose_agent_list_is_refused_after_it_still_says_what_was_done(portal, stub):  # noqa: F811
    queue_stub(stub)
    bob = {"id": "bob", "name": "Bob", "teams": ["network"], "available": True, "open_tickets": 1, "capacity": 3}
    stub.answers["/tickets/t-1"] = {"ticket_id": "t-1", "team": "network", "agent_id": None, "status": "new"}
    stub.answers["/tickets/t-1/assign"] = {"ticket_id": "t-1", "agent_id": "bob"}

    def agents_now():  # assignment refuses the list asked after the assign (a rate limit, say)
        if any(c["path"] == "/tickets/t-1/assign" for c in stub.calls):
            return 429, {"title": "Too Many Requests", "detail": "Slow down."}
        return {"items": [bob]}

    stub.answers["/agents"] = agents_now
    admin = signed_in(portal)

    done = ticked(admin, {"action": "assign", "agent_id": "bob"}, ["t-1:100001"])

    assert done.status_code == 303
    assert "<strong>Give to Bob:</strong> done on 1 ticket (#100001).</p>" in text(admin.get(done.headers["Location"]))


def test_an_agent_away_is_told_their_open_tickets_stay_theirs(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/agents/ada"] = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": [],
                                   "available": False, "open_tickets": 3}  # fmt: skip
    html = " ".join(text(signed_in(portal, "agent", "ada").get("/console/")).split())
    assert "You are <strong>away</strong>: no new tickets are assigned to you. Your 3 open tickets stay yours: they " \
        "wait for you, or a team lead hands them on." in html  # fmt: skip
    stub.answers["/agents/ada"] |= {"open_tickets": 0}
    html = " ".join(text(signed_in(portal, "agent", "ada").get("/console/")).split())
    assert "no new tickets are assigned to you." in html and "stay yours" not in html  # none to say


def test_the_lists_refresh_is_204_while_it_is_unchanged_and_a_row_says_its_time_left(portal, stub, monkeypatch):  # noqa: F811
    """The list refreshes every 5 s: the same list again is 204, which htmx does not swap (every swap threw the focus
    on a tab or a pager link to the page's top: an accessibility tester's find); a changed one comes whole, with
    its digest. A row's deadline says its time left, as the ticket's page does."""
    queue_stub(stub)
    breached = stub.answers["/tickets"]["items"][1]["clocks"]["first_response"]
    breached.update(remaining_seconds=0.0, calendar="24x7")  # as sla says a clock past its target: 0 left
    monkeypatch.setattr(console, "now", lambda: datetime(2026, 12, 1, 4, 42, 5, tzinfo=UTC))
    admin = signed_in(portal)

    page = text(admin.get("/console/?view=all"))

    assert rows_of(page)[0] == ("100002", "First response 1 Dec 2026, 04:30 UTC 12 min overdue Breached")
    shown = re.search(r'id="queue" [^>]*data-shown="([0-9a-f]{32})"', page).group(1)
    assert "<title>Every open ticket · Queues · ticketflow</title>" in page
    again = admin.get(f"/console/queue?view=all&shown={shown}")
    assert again.status_code == 204 and again.data == b""
    stub.answers["/queue"]["items"].append(row("t-4", 100004))
    changed = admin.get(f"/console/queue?view=all&shown={shown}")
    assert changed.status_code == 200 and "#100004" in text(changed)
    assert changed.headers["X-Shown"] not in ("", shown)
    assert admin.get(f"/console/queue?view=all&shown={changed.headers['X-Shown']}").status_code == 204


def test_the_availability_line_asks_for_itself_again_and_comes_changed_by_another(portal, stub):  # noqa: F811
    """An admin or a lead set the agent away: the agent's open queue said "available" until a reload (an admin
    tester's find). The line asks for itself every 30 s: the same again is 204 (htmx swaps nothing), a changed one
    comes whole with its new digest."""
    queue_stub(stub)
    ada = {"id": "ada", "name": "Ada", "teams": ["network"], "lead_of": [], "available": True, "open_tickets": 2}
    stub.answers["/agents/ada"] = ada
    agent = signed_in(portal, "agent", "ada")
    page = text(agent.get("/console/"))
    assert page.count('id="availability"') == 1 and "You are <strong>available</strong>" in page
    asks = re.search(r'id="availability" hx-get="([^"]+)" hx-trigger="every 30s"', page).group(1).replace("&amp;", "&")
    assert agent.get(asks).status_code == 204  # the same as the page's
    stub.answers["/agents/ada"] = {**ada, "available": False}  # set away by an admin
    changed = agent.get(asks)
    assert changed.status_code == 200 and "You are <strong>away</strong>" in text(changed)
    again = re.search(r'id="availability" hx-get="([^"]+)"', text(changed)).group(1).replace("&amp;", "&")
    assert again != asks and agent.get(again).status_code == 204
    assert signed_in(portal).get("/console/availability").status_code == 200  # an admin who is no agent: no line
