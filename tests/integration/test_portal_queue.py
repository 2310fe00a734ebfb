"""The console's queue in-process, the other services a stub server (tests/integration/test_portal_search.py): each
row's next deadline from sla's clocks, soonest first, and the rows as assignment gave them when sla is away."""

from __future__ import annotations

import re

from tests.integration.test_portal_search import portal, signed_in, stub, text  # noqa: F401


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
            "first_response": clock("met", "2026-12-01T05:00:00.000Z"),
            "next_response": None,
            "resolution": clock("paused", "2026-12-01T06:00:00.000Z")}},
        {"ticket_id": "t-2", "priority": "normal", "clocks": {
            "first_response": clock("breached", "2026-12-01T04:30:00.000Z", "2026-12-01T04:30:00.000Z"),
            "next_response": None,
            "resolution": clock("running", "2026-12-02T04:00:00.000Z")}},
    ]}  # fmt: skip


def rows_of(html: str) -> list[tuple[str, str]]:
    """(ticket number, what its Next deadline cell says), in the table's order."""
    found = re.findall(r'>#(\d+) Ticket \d+</a>.*?data-label="Next deadline">(.*?)</td>', html, re.S)
    return [(number, re.sub(r"<[^>]+>", "", cell).strip()) for number, cell in found]


def test_each_row_shows_its_soonest_running_deadline_from_sla_soonest_first(portal, stub):  # noqa: F811
    queue_stub(stub)

    html = text(signed_in(portal).get("/console/?view=all"))

    assert rows_of(html) == [
        ("100002", "1 Dec 2026, 04:30 UTC Breached"),  # breached, still counting: first
        ("100001", "—"),  # met, and the resolution paused (waiting on the requester): nothing is due
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


def test_without_sla_the_rows_keep_assignments_copy_and_order(portal, stub):  # noqa: F811
    queue_stub(stub)
    stub.answers["/tickets"] = (503, {"title": "Service Unavailable", "detail": "down"})
    first = row("t-1", 100001, "high") | {"sla": {"first_response_due_at": "2026-12-01T07:00:00.000Z",
                                                  "resolution_due_at": None, "breached": True}}  # fmt: skip
    stub.answers["/queue"]["items"][0] = first

    page = signed_in(portal).get("/console/?view=all")

    assert page.status_code == 200
    assert rows_of(text(page)) == [("100001", "1 Dec 2026, 07:00 UTC Breached"), ("100002", "—"), ("100003", "—")]


def test_an_admin_in_no_team_sees_the_unassigned_tab_for_what_it_is(portal, stub):  # noqa: F811
    queue_stub(stub)
    html = text(signed_in(portal).get("/console/"))
    tabs = re.findall(r'>([^<>]+) <span class="count"', html)
    assert [tab for tab in tabs if tab] == ["Unassigned", "Every open ticket"]
    assert "My teams&#39; unassigned" not in html and "My teams' unassigned" not in html
