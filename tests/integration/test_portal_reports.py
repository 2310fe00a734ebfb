"""The reports' pages and CSV files against stand-in services (the browser tests drive them through real ones)."""

from __future__ import annotations

from flask import request

from tests.integration.test_portal_search import portal, signed_in, stub, text  # noqa: F401


def test_a_report_names_a_team_as_it_is_now_not_as_a_page_of_a_minute_ago_had_it(portal, stub):  # noqa: F811
    """Each portal process keeps teams' names a minute for its pages; a report (and its CSV, which is kept and
    passed on) asks for them when it is made: a rename made through another process shows at once."""
    stub.answers["/queue"] = {"items": [{"ticket_id": "t-1", "team": "network", "status": "new", "agent_id": None,
                                         "created_at": "2026-01-01T10:00:00.000Z"}], "next_cursor": None}  # fmt: skip
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    admin = signed_in(portal)
    assert "Network,1,0,0,0,1,1" in text(admin.get("/reports/backlog.csv")).replace("\r", "")

    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network & VPN"}]}  # renamed elsewhere
    assert "Network & VPN,1,0,0,0,1,1" in text(admin.get("/reports/backlog.csv")).replace("\r", "")


def test_the_reports_say_what_each_figure_counts_and_that_times_are_business_time(portal, stub):  # noqa: F811
    """The reports tester took "0.0 s" for elapsed time, and the breaches table and compliance for the same tickets:
    every figure was right, the page did not say what it counted."""
    for path in ("/stats", "/breaches", "/queue", "/teams", "/agents", "/topics"):
        stub.answers[path] = {"items": [], "next_cursor": None}
    page = text(signed_in(portal).get("/reports"))
    assert page.count("Times are business time, counted in the calendar of the ticket") == 1
    assert page.count("Business time, counted in the calendar of the ticket") == 2  # both histograms
    assert "The breaches that happened in this period, whenever their ticket was created" in page


def test_a_teams_backlog_is_read_apart_so_a_large_team_never_hides_a_small_one(portal, stub):  # noqa: F811
    """The day-long tester's new team showed 0 open tickets: the admin's backlog read every team's open tickets
    together, 2,000 at most, and the desk had more. Each team is read apart now."""

    def queue():
        team = request.args.get("team")
        if team == "big":  # more than the reports read: page after page
            items = [{"ticket_id": f"b-{n}", "team": "big", "status": "assigned", "agent_id": "ada",
                      "created_at": "2026-01-01T10:00:00.000Z"} for n in range(int(request.args["limit"]))]  # fmt: skip
            return {"items": items, "next_cursor": "more"}
        if team == "small":
            return {"items": [{"ticket_id": "s-1", "team": "small", "status": "new", "agent_id": None,
                               "created_at": "2026-01-02T10:00:00.000Z"}], "next_cursor": None}  # fmt: skip
        raise AssertionError(f"the backlog read every team at once (team={team!r})")

    stub.answers["/queue"] = queue
    stub.answers["/teams"] = {"items": [{"id": "big", "name": "Big"}, {"id": "small", "name": "Small"}]}
    for path in ("/stats", "/breaches", "/agents", "/topics"):
        stub.answers[path] = {"items": [], "next_cursor": None}
    admin = signed_in(portal)
    csv = text(admin.get("/reports/backlog.csv")).replace("\r", "")
    assert "Big,0,2000,0,0,0,2000" in csv and "Small,1,0,0,0,1,1" in csv, csv
    assert "Only the first 2000 of Big were read." in text(admin.get("/reports"))
