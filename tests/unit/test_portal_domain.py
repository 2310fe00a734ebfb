"""The portal's rules without a browser or a database: passwords, accounts, lockout, words, collisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.portal import domain
from services.portal.domain import Snapshot, TicketView
from shared.redact import link_parts

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def minutes_ago(*minutes: float) -> list[datetime]:
    return [NOW - timedelta(minutes=m) for m in minutes]


@pytest.mark.parametrize(
    ("password", "ok"),
    [("short", False), ("x" * 11, False), ("x" * 12, True), (" " * 12, False), ("y" * 1025, False)],
    ids=["short", "eleven", "twelve", "blank", "huge"],
)
def test_passwords_need_twelve_characters(password, ok):
    assert (domain.password_problems(password) == []) is ok


def test_account_fields():
    assert domain.account_problems("jane@example.com", "agent", "jane") == {}
    assert domain.account_problems("jane@example.com", "admin", None) == {}
    assert set(domain.account_problems("nope", "agent", None)) == {"email", "agent_id"}
    assert set(domain.account_problems("a@b.co", "root", None)) == {"role"}
    assert set(domain.account_problems("a@b.co", "agent", "Jane Doe")) == {"agent_id"}


def test_five_failures_within_fifteen_minutes_lock_for_fifteen_minutes_from_the_last():
    failures = minutes_ago(14, 10, 6, 3, 1)
    assert domain.locked_until(failures, NOW) == NOW - timedelta(minutes=1) + domain.LOCK_TIME
    assert domain.locked_until(failures, NOW + timedelta(minutes=13, seconds=59)) is not None
    assert domain.locked_until(failures, NOW + timedelta(minutes=14)) is None


def test_four_failures_or_five_spread_out_do_not_lock():
    assert domain.locked_until(minutes_ago(4, 3, 2, 1), NOW) is None
    assert domain.locked_until(minutes_ago(40, 30, 20, 10, 1), NOW) is None


def test_remaining_business_time_in_words():
    assert domain.remaining_words(2 * 3600 + 5 * 60) == "2 h 05 min left"
    assert domain.remaining_words(-12 * 60) == "12 min overdue"
    assert domain.remaining_words(30) == "under a minute left"
    assert domain.remaining_words(3 * 86400 + 3600) == "73 h left"  # business hours: never read as calendar days
    assert domain.remaining_words(-(1200 * 3600 + 59)) == "1,200 h overdue"
    assert domain.remaining_words(None) == "no target"


def test_the_ticket_form_says_what_to_do_for_each_field():
    errors = domain.ticket_form_problems({"name": "", "email": "ana@", "subject": "s" * 201, "description": ""}, set())
    assert errors == {
        "name": ["Enter your name."],
        "email": ["Enter an email address like ana@example.com."],
        "subject": ["Use at most 200 characters (you have 201)."],
        "description": ["Enter a description."],
        "topic": ["Choose what your request is about."],
    }
    fine = {"name": "Ana", "email": "ana@example.com", "subject": "VPN", "description": "Drops", "topic": "network"}
    assert domain.ticket_form_problems(fine, {"network"}) == {}
    retired = domain.ticket_form_problems({**fine, "topic": "fax"}, {"network"})  # retired while the form was open
    assert retired == {"topic": ["That choice is no longer offered: choose what your request is about again."]}


def test_a_snapshot_survives_its_text_and_junk_reads_as_none():
    snapshot = Snapshot(thread=3, notes=1, history=4, status="assigned", agent_id="ada", priority="high")
    assert Snapshot.decode(snapshot.encode()) == snapshot
    assert Snapshot.decode(Snapshot(agent_id=None).encode()).agent_id is None
    dotted = Snapshot(thread=1, agent_id="ana.ruiz", status="assigned", priority="low")
    assert Snapshot.decode(dotted.encode()) == dotted  # agent ids may hold dots
    for junk in (None, "", "a|b|c|d|e|f", "1|2|3", "²|1|1|new|-|low"):
        assert Snapshot.decode(junk) is None


def view(thread: list[dict], history: list[dict]) -> TicketView:
    return TicketView({"thread": thread, "status": "assigned"}, {"history": history, "notes": []})


def test_changes_since_name_what_others_did_and_leave_out_the_agents_own():
    before = view([], [{"action": "assigned", "by": "auto", "to": "ada"}])
    seen = before.snapshot()
    after = view(
        [{"kind": "message", "author": {"type": "requester", "name": "Ana"}}],
        [
            {"action": "assigned", "by": "auto", "to": "ada"},
            {"action": "noted", "by": "ada"},
            {"action": "priority_changed", "by": "lead", "to": "high"},
            {"action": "status_changed", "by": "bob", "to": "waiting_on_requester"},
        ],
    )
    assert after.changes_since(seen, me="ada") == [
        "Ana (requester) wrote a new message",
        "lead: set the priority to high",
        "bob: set the status to waiting on requester",
    ]
    assert before.changes_since(seen, me="ada") == []


def test_changes_since_tell_of_the_agents_own_reply_from_another_tab_but_not_its_notes_or_claims():
    before = view([], [{"action": "queued", "by": "auto", "to": None}])
    seen = before.snapshot()
    after = view(
        [],
        [
            {"action": "queued", "by": "auto", "to": None},
            {"action": "claimed", "by": "ada", "to": "ada"},
            {"action": "noted", "by": "ada"},
            {"action": "replied", "by": "ada", "at": "2026-12-04T10:00:00.000Z"},
            {"action": "status_changed", "by": "ada", "to": "in_progress", "at": "2026-12-04T10:00:00.000Z"},
            {"action": "status_changed", "by": "ada", "to": "waiting_on_requester", "at": "2026-12-04T10:05:00.000Z"},
            {"action": "reopened", "by": "ada", "to": "assigned"},  # learnt from intake's event, after the page
            {"action": "resolved", "by": "ada"},
            {"action": "transferred", "by": "ada", "to": "desk"},
            {"action": "assigned", "by": "ada", "to": "bo"},
        ],
    )
    names, teams = {"ada": "Ada Lovelace", "bo": "Bo Ek"}, {"desk": "Service desk"}
    own = "You, in another tab or window or an earlier try"
    assert after.changes_since(seen, me="ada", names=names, teams=teams) == [
        f"{own}: replied to the requester",  # and the status it set with it: not said apart
        f"{own}: set the status to waiting on requester",
        f"{own}: resolved it",
        f"{own}: transferred it to team Service desk",  # by name, as the page says them
        f"{own}: assigned it to Bo Ek",
    ]


def test_files_and_kept_mail_join_the_timeline_in_the_order_they_happened():
    timeline = [{"occurred_at": "2026-11-30T09:00:00.000Z", "summary": "Ticket #100001 opened"},
                {"occurred_at": "2026-11-30T09:05:00.000Z", "summary": "Assigned to ada"},
                {"occurred_at": "2026-11-30T09:10:00.100Z", "summary": "Bob's mail", "type": "ticket.mail_kept"},
                ]  # fmt: skip
    files = [{"filename": "invoice.pdf", "size": 2048, "created_at": "2026-11-30T09:01:00.000Z"}]
    kept = [{"sender": "bob@example.com", "reason": "not the requester", "received_at": "2026-11-30T09:10:00.000Z"}]
    notes = [
        {"body": "Checked the <b>logs</b>.", "by": "ada", "by_name": "Ada Lovelace", "at": "2026-11-30T09:07:00.000Z"},
        {"body": "Called them.", "by": "admin:boss@example.com", "by_name": None, "at": "2026-11-30T09:08:00.000Z"},
        {"body": "Older note.", "by": "li", "at": "2026-11-30T09:09:00.000Z"},  # from before notes kept by_name
    ]
    merged = domain.timeline_with_files_and_mail(timeline, files, kept, notes, {"li": "Li Wei"})
    assert [entry["summary"] for entry in merged] == [
        "Ticket #100001 opened",
        "File invoice.pdf (2 KB) attached",
        "Assigned to ada",
        "Internal note added by Ada Lovelace",  # who, never the note's words
        "Internal note added by an admin",  # never an admin's address
        "Internal note added by Li Wei",
        "Mail from bob@example.com not added to the conversation: not the requester",  # once: not its event too
    ]


def test_sla_deadlines_replaced_by_the_next_entry_leave_the_last_alone():
    """A requester's message that reopens a ticket starts its next-response clock and the reopening resumes its
    resolution: two deadline lines a moment apart, of which the second is what holds. With anything between, each
    stays (it said what held until then)."""
    deadlines = "sla.deadlines_changed"
    timeline = [{"occurred_at": "2026-11-30T09:00:00.000Z", "summary": "Ticket #100001 opened"},
                {"occurred_at": "2026-11-30T09:00:00.200Z", "summary": "due 13:00", "type": deadlines},
                {"occurred_at": "2026-11-30T10:00:00.000Z", "summary": "Resolved", "type": "ticket.resolved"},
                {"occurred_at": "2026-11-30T10:00:00.100Z", "summary": "no clock running", "type": deadlines},
                {"occurred_at": "2026-11-30T11:00:00.000Z", "summary": "Ana wrote", "type": "ticket.message_added"},
                {"occurred_at": "2026-11-30T11:00:00.010Z", "summary": "Reopened", "type": "ticket.reopened"},
                {"occurred_at": "2026-11-30T11:00:00.300Z", "summary": "next response due", "type": deadlines},
                {"occurred_at": "2026-11-30T11:00:00.400Z", "summary": "both due", "type": deadlines},
                ]  # fmt: skip
    merged = domain.timeline_with_files_and_mail(timeline, [], [])
    assert [entry["summary"] for entry in merged] == [
        "Ticket #100001 opened", "due 13:00", "Resolved", "no clock running", "Ana wrote", "Reopened", "both due"
    ]  # fmt: skip
    note = {"by": "ada", "by_name": "Ada", "at": "2026-11-30T11:00:00.350Z"}  # a note between: both stay
    merged = domain.timeline_with_files_and_mail(timeline, [], [], [note])
    summaries = [entry["summary"] for entry in merged]
    assert domain.timeline_with_files_and_mail([], [], []) == []  # a ticket whose timeline is not there yet
    assert summaries[-3:] == ["next response due", "Internal note added by Ada", "both due"]
    apart = [timeline[1], {**timeline[1], "occurred_at": "2026-11-30T10:00:00.200Z", "summary": "an hour later"}]
    assert [e["summary"] for e in domain.timeline_with_files_and_mail(apart, [], [])] == ["due 13:00", "an hour later"]


def test_an_automatic_assignments_reasons_say_who_got_it_or_that_it_waits_in_the_queue():
    decision = {"rule": "the available agent of the team under capacity", "candidates": []}
    given = {"action": "assigned", "by": "system", "to": "ada", "decision": decision}
    assert domain.decision_words(given) == "Why ada got it (the available agent of the team under capacity)"
    named = domain.decision_words(given, {"ada": "Ada Lovelace"})
    assert named == "Why Ada Lovelace got it (the available agent of the team under capacity)"
    queued = {"action": "queued", "by": "system", "to": None, "decision": decision}
    assert domain.decision_words(queued) == "Why it was left in the team's queue (the team had no agents)"
    ruled = {**queued, "decision": {"rule": "least loaded"}}  # no candidates recorded: the rule is all it says
    assert domain.decision_words(ruled) == "Why it was left in the team's queue (least loaded)"
    assert domain.decision_words({"to": "li", "decision": {"rule": None}}) == "Why li got it (auto)"
    # a transfer's entry names the team it went to; the decision says who got it, or nobody
    found = {"rule": "least loaded", "team": "hardware", "chosen": "li", "candidates": []}
    transfer = {"action": "transferred", "to": "hardware", "decision": found}
    assert domain.decision_words(transfer) == "Why li got it (least loaded)"
    away = {"agent_id": "li", "open_tickets": 0, "capacity": 5, "available": False}
    full = {"agent_id": "bo", "open_tickets": 5, "capacity": 5, "available": True}
    nobody = {**transfer, "decision": {**found, "chosen": None, "candidates": [away, full]}}
    assert domain.decision_words(nobody) == (
        "Why it was left in hardware's queue (none of its 2 agents could take it: 1 away, 1 at capacity)"
    )
    assert domain.decision_words(nobody, teams={"hardware": "Hardware"}) == (
        "Why it was left in Hardware's queue (none of its 2 agents could take it: 1 away, 1 at capacity)"
    )
    alone = {**transfer, "decision": {**found, "chosen": None, "candidates": [away]}}
    assert domain.decision_words(alone) == "Why it was left in hardware's queue (its only agent was away)"
    alone = {**transfer, "decision": {**found, "chosen": None, "candidates": [full]}}
    assert domain.decision_words(alone) == "Why it was left in hardware's queue (its only agent was at capacity)"


def test_a_stopped_clock_says_whether_it_stopped_within_its_target():
    assert domain.clock_state_words({"state": "stopped", "breached_at": None}) == "Stopped within its target"
    assert domain.clock_state_words({"state": "stopped", "breached_at": "2026-12-01T04:25:59Z"}) == (
        "Stopped after its breach"
    )
    assert domain.clock_state_words({"state": "met"}) == "Met"
    late = {"state": "met", "breached_at": "2026-12-04T01:10:00Z", "met_at": "2026-12-04T08:20:00Z"}
    assert domain.clock_state_words(late) == "Met late, after its breach"  # not a green "Met": the reports count it
    assert [domain.clock_look(c) for c in ({"state": "met"}, late, {"state": "stopped", "breached_at": "x"})] == [
        "met", "breached", "breached"
    ]  # fmt: skip
    assert domain.clock_state_words({"state": "someday"}) == "someday"  # a state of a newer sla, as it is


@pytest.mark.parametrize(
    ("email", "ok"),
    [("ana@example.com", True), ("ana.ruiz+vpn@mail.example.co.uk", True), ("ana@example..com", False),
     ("ana@.example.com", False), ("ana.@example.com", False), ("a..b@example.com", False),
     ("x" * 65 + "@example.com", False), ("x" * 64 + "@example.com", True), ("a@" + "b" * 250 + ".com", False),
     ("ana@example", False), ("ana @example.com", False)],
)  # fmt: skip
def test_an_email_address_is_one_mail_can_go_to(email, ok):
    assert domain.email_ok(email) is ok
    assert ("email" not in domain.account_problems(email, "admin", None)) is ok


@pytest.mark.parametrize(
    "text, links",
    [
        ("see https://example.com/a?b=1&c=2.", ["https://example.com/a?b=1&c=2"]),
        ("(see https://example.com/wiki/Foo_(bar)) then", ["https://example.com/wiki/Foo_(bar)"]),
        ("[the form](https://example.com/f), and HTTP://E.COM/x!", ["https://example.com/f", "HTTP://E.COM/x"]),
        ('"https://example.com/q" or <https://example.com/r>', ["https://example.com/q", "https://example.com/r"]),
        ("no address: http:// or ftp://example.com or javascript:alert(1)", []),
        ("your link http://help.example.com/t/(hidden) and https://x.example/", ["https://x.example/"]),  # no token
        ("", []),
    ],
)
def test_web_addresses_end_where_a_reader_sees_them_end(text, links):
    parts = link_parts(text)
    assert [piece for piece, is_link in parts if is_link] == links
    assert "".join(piece for piece, _ in parts) == text  # nothing of the text lost or doubled


def test_what_the_requesters_open_page_says_changed():
    reply = {"id": "r1", "author": {"type": "agent", "name": "Jane"}}
    mine = {"id": "m1", "author": {"type": "requester", "name": "Mia"}}
    assert domain.requester_update_words({"status": "assigned", "thread": [mine, reply]}, 1, "assigned").startswith(
        "The help desk replied"
    )
    assert (
        domain.requester_update_words({"status": "resolved", "thread": [mine]}, 1, "assigned")
        == "The status changed to “Resolved”."
    )
    assert (
        domain.requester_update_words({"status": "assigned", "thread": [mine]}, 0, "assigned")
        == "This request was updated."
    )
    assert (
        domain.requester_update_words({"status": "assigned", "thread": [reply]}, -1, "")
        == "The status changed to “With an agent”."
    )


def test_a_request_in_progress_with_nobody_on_it_waits_for_an_agent_in_the_requesters_words():
    """A requester's reply to a ticket in the team's queue moves it to in progress with no agent yet."""
    nobody = {"status": "in_progress", "assignee": None}
    assert domain.requester_status_words(nobody)[0] == "Waiting for an agent"
    assert domain.requester_status_words({**nobody, "assignee": {"agent_id": "ada", "name": "Ada"}}) == (
        "Being worked on",
        "An agent is working on your request.",
    )
    assert domain.requester_status_words({"status": "in_progress"})[0] == "Being worked on"  # not said: as before
    assert domain.requester_update_words({**nobody, "thread": []}, 0, "waiting_on_requester") == (
        "The status changed to “Waiting for an agent”."
    )
    taken = {**nobody, "assignee": {"agent_id": "ada", "name": "Ada"}}  # an agent takes it: still in progress
    assert domain.requester_view_digest(nobody, []) != domain.requester_view_digest(taken, [])  # the page updates


def test_a_saved_reply_needs_a_title_and_a_text_and_known_fields():
    assert domain.saved_reply_problems("Password reset", "Hello {requester_first_name},\n\nDone.") == {}
    assert set(domain.saved_reply_problems(" ", " ")) == {"title", "body"}
    assert "100 characters (it has 101)" in domain.saved_reply_problems("t" * 101, "x")["title"][0]
    unknown = domain.saved_reply_problems("Hi", "Dear {customer}, see {ticket_number} and {foo_bar}.")["body"][0]
    assert unknown.startswith("Unknown fields {customer}, {foo_bar}: use {requester_name}")
    assert "20,000 characters" in domain.saved_reply_problems("Long", "x" * 20001)["body"][0]
    doubled = domain.saved_reply_problems("Hi", "Dear {{requester_name}},")["body"][0]
    assert doubled == "Put one pair of braces around a field, like {requester_first_name}."
    unclosed = domain.saved_reply_problems("Hi", "Dear {requester_name, hello")["body"][0]
    assert unclosed == "“{requester_name” needs its closing brace: {requester_name}."
    assert domain.saved_reply_problems("Hi", "Use the set {a, b} or press {enter. x }} y") == {}  # braces as text
    every = domain.saved_reply_problems("Hi", "Dear {name}, {{ticket_number}} and {requester_name, bye")["body"]
    assert [said.split(" ", 1)[0] for said in every] == ["Unknown", "Put", "“{requester_name”"]  # each said at once


def test_a_saved_reply_reads_with_the_tickets_details_filled_in():
    ticket = {"number": 100042, "subject": "VPN drops", "requester": {"name": "Ana María Ruiz", "email": "a@x.io"}}
    text = "Hello {requester_first_name} ({requester_name}): about #{ticket_number} {ticket_subject}. {agent_name}"
    assert domain.fill_saved_reply(text, ticket, "Jane") == (
        "Hello Ana (Ana María Ruiz): about #100042 VPN drops. Jane"
    )
    assert domain.fill_saved_reply("Hi {requester_first_name}, {other}", {"requester": {}}, "") == "Hi , {other}"


def test_a_policy_whose_response_target_is_not_shorter_than_its_resolution_is_pointed_out():
    fine = {"first_response_minutes": 60, "next_response_minutes": 240, "resolution_minutes": 480}
    assert domain.policy_oddities(fine) == []
    odd = domain.policy_oddities({**fine, "first_response_minutes": 480, "next_response_minutes": 600})
    assert odd[0].startswith("The first response target (480 min) is not shorter than the resolution target (480 min)")
    assert odd[1].startswith("The next response target (600 min)")


@pytest.mark.parametrize(
    "bad",
    [
        {"first_response_minutes": -10, "next_response_minutes": -1, "resolution_minutes": -5},
        {"first_response_minutes": 600, "resolution_minutes": 0},
        {"first_response_minutes": 600, "resolution_minutes": "soon"},
        {"first_response_minutes": 600, "warn_at_percent": [-20]},
        {"first_response_minutes": 600, "warn_at_percent": [80, 100]},
        {"first_response_minutes": 600, "warn_at_percent": [80.5]},
        {"first_response_minutes": 600, "warn_at_percent": [80, 80]},
    ],
)
def test_no_slip_is_pointed_out_while_a_number_is_one_sla_refuses(bad):
    """The fields' own errors come first, next to them; the slip is asked about once the numbers will do."""
    policy = {"first_response_minutes": 60, "next_response_minutes": 240, "resolution_minutes": 480, **bad}
    assert domain.policy_oddities(policy) == []


def test_who_did_what_reads_as_agents_say_it():
    assert domain.history_words({"action": "claimed", "by": "ada"}) == "ada: claimed it"
    assert (
        domain.history_words({"action": "noted", "by": "admin:boss@example.com"}) == "an admin: added an internal note"
    )
    assert domain.history_words({"action": "status_changed", "by": "requester", "to": "in_progress"}) == (
        "the requester's message set the status to in progress"
    )
    assert domain.history_words({"action": "closed", "by": "requester"}) == "the requester: closed it"
    assert domain.history_words({"action": "assigned", "by": "assignment", "to": "ada"}) == (
        "the system: assigned it to ada"
    )
    assert domain.history_words({"action": "closed", "by": "auto"}) == "the system: closed it"
    names = {"ada": "Ada Lovelace"}  # the agents' names, when the page knows them
    assert domain.history_words({"action": "claimed", "by": "ada"}, names) == "Ada Lovelace: claimed it"
    assert domain.history_words({"action": "claimed", "by": "zed"}, names) == "zed: claimed it"  # not known: its id
    assert domain.who_words("admin:ada@example.com", names) == "an admin"
    teams = {"network": "Network & VPN"}  # whom and where to, by name too
    assigned = {"action": "assigned", "by": "bo", "to": "ada"}
    assert domain.history_words(assigned, names, teams) == "bo: assigned it to Ada Lovelace"
    moved = {"action": "transferred", "by": "ada", "to": "network"}
    assert domain.history_words(moved, names, teams) == "Ada Lovelace: transferred it to team Network & VPN"
    assert domain.history_words(moved, names) == "Ada Lovelace: transferred it to team network"  # not known: its id
    back = {"action": "transferred", "by": "ada", "from": "network", "to": "network", "agent_before": "bo"}
    assert domain.history_words({**back, "agent_before": None}, names, teams).endswith(
        "transferred it to team Network & VPN"
    )
    assert domain.history_words(back, names, teams) == "Ada Lovelace: handed it back to team Network & VPN"
    assert domain.history_words({**back, "from": "desk"}, names, teams).endswith("transferred it to team Network & VPN")
    assert domain.done_words({"action": "assigned", "to": "network"}, {}, teams) == "assigned it to network"


def test_each_team_says_how_many_agents_it_has_and_how_many_take_tickets_now():
    teams = [{"id": "network", "name": "Network"}, {"id": "desk", "name": "Desk"}, {"id": "empty", "name": "Empty"}]
    agents = [
        {"id": "ana", "teams": ["network", "desk"], "available": True},
        {"id": "bo", "teams": ["network"], "available": False},
        {"id": "cy", "teams": ["desk"]},  # availability not said: not counted as taking tickets
    ]
    counts = [(team["id"], team["agents"], team["available"]) for team in domain.staffed(teams, agents)]
    assert counts == [("network", 2, 1), ("desk", 2, 1), ("empty", 0, 0)]
    assert domain.staffed(teams, agents)[0]["name"] == "Network"  # the team's own fields stay


def test_a_team_where_nobody_takes_tickets_is_said_so_and_others_are_not():
    assert domain.unstaffed_words({"id": "desk", "name": "Desk", "agents": 0, "available": 0}) == (
        "Nobody in Desk takes tickets now (it has no agents): the ticket waits in its queue until an agent there is "
        "available."
    )
    assert "(its agents are all away)" in domain.unstaffed_words({"id": "desk", "agents": 2, "available": 0})
    assert ": the tickets wait in its queue" in domain.unstaffed_words({"id": "desk", "agents": 0, "available": 0}, 2)
    assert "(its only agent is away)" in domain.unstaffed_words({"id": "desk", "agents": 1, "available": 0})
    assert domain.unstaffed_words({"id": "desk", "agents": 2, "available": 1}) is None
    assert domain.unstaffed_words({"id": "desk"}) is None  # staffing not known: nothing said
    assert domain.unstaffed_words(None) is None


def test_urls_that_reach_the_same_place_are_the_same_webhook():
    same = ("https://hooks.example.com/x", "HTTPS://HOOKS.example.com/x", "https://hooks.example.com:443/x")
    assert all(domain.same_url(same[0], other) for other in same)
    assert domain.same_url("https://h.example.com", "https://h.example.com/")
    assert domain.same_url("https://[2001:0db8::1]/x", "https://[2001:db8::1]:443/x")
    assert not domain.same_url("https://h.example.com:0/x", "https://h.example.com/x")
    for other in ("https://hooks.example.com/X", "http://hooks.example.com/x", "https://hooks.example.com:8443/x",
                  "https://hooks.example.com/x?a=1", "https://[::1/x"):  # fmt: skip
        assert not domain.same_url(same[0], other), other


def test_names_that_read_the_same_in_a_list_are_the_same_name():
    same_name = domain.same_name

    for other in ("network", "  NETWORK ", "Net\u200bwork", "Ｎｅｔｗｏｒｋ", "Net\u2060work"):
        assert same_name("Network", other), other
    assert not same_name("Network", "Networks") and not same_name("Desk", "Dësk")


def test_a_device_token_is_good_for_its_account_epoch_and_year_only():
    from datetime import UTC, datetime, timedelta

    from services.portal import devices

    at = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    account = {"_id": "a1", "email": "Ada@Example.com"}
    token = devices.token("secret", account, at)
    nonce = token.split(".")[1]

    assert devices.known("secret", account, token, at + timedelta(days=364)) == nonce
    assert devices.known("secret", {**account, "email": "ada@example.com"}, token, at) == nonce  # case aside
    assert devices.known("secret", account, token, at + timedelta(days=366)) is None  # a year
    assert devices.known("secret", account, token, at - timedelta(minutes=5)) is None  # made in the future
    assert devices.known("secret", {**account, "devices_epoch": 1}, token, at) is None  # forgotten
    assert devices.known("secret", {**account, "disabled_at": at}, token, at) is None
    assert devices.known("secret", {**account, "_id": "a2"}, token, at) is None  # another account, same email
    assert devices.known("other secret", account, token, at) is None
    assert devices.known("secret", account, token + "x" * 200, at) is None
    assert devices.known("secret", account, devices.token("secret", account, at, nonce), at) == nonce  # re-signed
    assert devices.cookie_name("secret", "ada@example.com", True).startswith("__Host-tf_device_")
    assert devices.cookie_name("secret", "ADA@example.com ", False) == devices.cookie_name(
        "secret", "ada@example.com", False
    )


def test_a_browser_drops_its_oldest_device_cookies_past_those_it_keeps():
    from services.portal import devices

    cookies = {f"tf_device_{n}": f"{1000 + n}.x.y" for n in range(5)} | {"tf_session": "s", "tf_device_bad": "zz"}
    assert devices.oldest_beyond(cookies, 3) == ["tf_device_bad", "tf_device_0", "tf_device_1"]
    assert devices.oldest_beyond(cookies, 10) == []


def test_a_request_waiting_on_the_requester_who_wrote_last_is_shown_in_progress():
    """Right after the requester answers, intake still says waiting on them (assignment's status change is a moment
    away): the page says what comes, not "Waiting for your reply"; and the change itself updates nothing shown."""
    asked = {"id": "r1", "author": {"type": "agent"}, "created_at": "2026-12-01T10:00:00.000Z"}
    answer = {"id": "m2", "author": {"type": "requester"}, "created_at": "2026-12-01T10:05:00.000Z"}
    waiting = {"status": "waiting_on_requester", "assignee": {"agent_id": "ada"}, "thread": [asked],
               "updated_at": "2026-12-01T10:00:00.000Z"}  # fmt: skip
    answered = {**waiting, "thread": [asked, answer], "updated_at": answer["created_at"]}

    assert domain.requester_status_words(waiting)[0] == "Waiting for your reply"
    assert domain.shown_status(answered) == "in_progress"
    assert domain.requester_status_words(answered)[0] == "Being worked on"
    assert domain.requester_status_words({**answered, "assignee": None}) == domain.UNASSIGNED_AT_WORK
    moved_on = {**answered, "status": "in_progress"}
    assert domain.requester_view_digest(moved_on, []) == domain.requester_view_digest(answered, [])
    assert domain.shown_status({"status": "resolved", "thread": [answer]}) == "resolved"  # only a wait ends
    asked_since = {**answered, "updated_at": "2026-12-01T10:20:00.000Z"}  # an agent set the wait after (a call)
    assert domain.requester_status_words(asked_since)[0] == "Waiting for your reply"


def test_a_clock_past_its_target_then_waiting_on_the_requester_says_both():
    """sla says `breached` of a clock still active after its breach, and a paused one has no due time: the queue's
    row says "Paused" with its "Breached", the clock "Breached, then paused", with when it breached."""
    waiting = {"state": "breached", "due_at": None, "breached_at": "2026-12-04T07:10:56Z", "met_at": None}
    row = domain.deadline({"first_response": {"state": "met", "due_at": "2026-12-04T03:00:00Z"}, "resolution": waiting})
    assert (row["deadline"], row["paused"], row["breached"]) == (None, True, True)
    assert domain.clock_state_words(waiting) == "Breached, then paused (waiting on the requester)"
    assert not domain.counting(waiting) and domain.counting({**waiting, "due_at": "2026-12-04T07:10:56Z"})
    running_late = {"state": "breached", "due_at": "2026-12-04T07:10:56Z", "breached_at": "2026-12-04T07:10:56Z"}
    assert domain.clock_state_words(running_late) == "Breached" and not domain.deadline({"r": running_late})["paused"]


def test_the_requesters_page_updates_when_a_late_resolve_is_reopened_at_once():
    """The requester wrote while the agent resolved: intake reopens at once, the status the same as before and no
    resolution; the page updates to say what was tried."""
    assigned = {"status": "assigned", "assignee": {"agent_id": "ada"}, "thread": [], "resolution": None}
    tried = assigned | {"earlier_resolutions": [{"resolution": "Reset it.", "resolved_at": "2026-12-03T08:00:00Z"}]}
    assert domain.requester_view_digest(assigned, []) != domain.requester_view_digest(tried, [])


def test_a_rows_deadline_says_which_target_it_is():
    """ "Next response" tells the agent the requester waits on a reply; "Resolution" that only the fix is due."""
    clocks = {"first_response": {"state": "met", "due_at": "2026-12-01T05:00:00Z"},
              "next_response": {"state": "running", "due_at": "2026-12-01T09:00:00Z"},
              "resolution": {"state": "running", "due_at": "2026-12-01T08:00:00Z"}}  # fmt: skip
    assert domain.deadline(clocks)["deadline_clock"] == "Resolution"  # the soonest of those counting
    clocks["resolution"]["due_at"] = "2026-12-02T08:00:00Z"
    assert domain.deadline(clocks)["deadline_clock"] == "Next response"
    assert domain.deadline({"resolution": {"state": "paused", "due_at": "x"}})["deadline_clock"] is None
    copied = {"sla": {"first_response_due_at": None, "next_response_due_at": "2026-12-01T09:00:00Z",
                      "resolution_due_at": "2026-12-03T09:00:00Z"}}  # fmt: skip
    assert domain.copied_deadline(copied)["deadline_clock"] == "Next response"


def test_time_left_is_said_to_be_business_time_only_where_it_differs_from_the_time_to_the_deadline():
    """Under 24x7 the time left and the time to the deadline agree: "(business time)" would only puzzle. Under
    office hours (the deadline tomorrow, 2 hours of business time left) it says why they differ."""
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    always = {"state": "running", "due_at": "2026-12-04T11:00:00.000Z", "remaining_seconds": 7200.0}
    office = {"state": "running", "due_at": "2026-12-05T11:00:00.000Z", "remaining_seconds": 7200.0}
    assert domain.counts_business_time(always, at) is False
    assert domain.counts_business_time(office, at) is True
    assert domain.counts_business_time({**always, "state": "paused"}, at) is True  # the time left, not a deadline
    assert domain.counts_business_time({"state": "running"}, at) is True  # an older sla's view: as before
    assert domain.counts_business_time({"state": "paused", "calendar": "24x7"}, at) is False  # sla names it
    assert domain.counts_business_time({"state": "paused", "calendar": "office"}, at) is True


def test_a_merged_note_keeps_the_requesters_words_within_a_notes_length_and_says_where_the_rest_is():
    ticket = {"number": 7, "subject": "VPN", "description": "d" * 15_000, "thread": [
        {"author": {"type": "agent", "name": "Ada"}, "body": "An agent's reply: not the requester's words."},
        {"author": {"type": "requester", "name": "Ana"}, "body": "m" * 9_000, "created_at": "2026-01-01T11:00:00Z"},
    ]}  # fmt: skip
    note = domain.merged_note(ticket, [{"filename": "a.png"}])
    assert len(note) == 20_000 and note.endswith("\n\n… (the rest on #7)")
    assert "Later, Ada's reply (a time not known):\nAn agent's reply" in note  # what the requester answered
    assert "Later, the requester (1 Jan 2026, 11:00 UTC):\nmmm" in note
    short = domain.merged_note({"number": 7, "subject": "VPN", "description": "Drops."})
    assert short == "Merged from #7 (“VPN”), the same request. What was written there:\n\nDrops."


def test_a_merge_goes_only_into_an_open_request_of_the_same_requester_and_its_resolution_is_known_by_its_words():
    ticket = {"id": "t-1", "number": 7, "requester": {"email": "Ana@Example.com"}}
    other = {"id": "t-2", "number": 6, "subject": "VPN", "status": "waiting_on_requester",
             "requester": {"email": "ana@example.com"}}  # fmt: skip
    assert domain.merge_problem(ticket, other) is None  # an address's case is no other requester
    assert domain.merge_problem(ticket, ticket) == "That is this request itself: choose the one to keep."
    assert domain.merge_problem(ticket, other | {"status": "resolved"}).startswith("#6 is resolved")
    assert domain.merge_problem(ticket, other | {"requester": {"email": "bo@example.com"}}).startswith("#6 is another")
    nobody = {"requester": {"name": "Ana"}}  # no address on either: nothing says they are one requester
    assert domain.merge_problem(ticket | nobody, other | nobody).startswith("#6 is another")
    assert domain.merge_problem(ticket, other, other_unproved=True).startswith("#6 came from the web form")
    resolution = domain.merged_resolution(other)
    assert domain.is_merged(resolution) and len(resolution) <= 5_000
    assert "VPN" in resolution and "VPN" not in domain.merged_resolution(other, name_it=False)
    assert domain.is_merged(domain.merged_resolution(other, name_it=False))
    assert domain.unproved({"source": "web"}, confirmed=False) and not domain.unproved({"source": "web"}, True)
    assert not domain.unproved({"source": "email"}, confirmed=False)  # its address is where it came from
    answered_by_mail = {"source": "web", "thread": [{"kind": "message", "via": "email"}]}
    assert not domain.unproved(answered_by_mail, confirmed=False)  # its owner wrote from the address
    assert not domain.is_merged("Reset the VPN profile.") and not domain.is_merged(None)


def test_a_merged_request_reads_as_merged_to_its_requester_and_asks_for_no_rating():
    merged = {"status": "resolved", "resolution": domain.merged_resolution({"number": 6, "subject": "VPN"}),
              "thread": [{"author": {"type": "agent"}}]}  # fmt: skip
    assert domain.requester_status_words(merged)[0] == "Merged"
    assert not domain.ratable(merged) and not domain.ratable(merged | {"status": "closed"})
    assert domain.rating_problems("good", "", merged) == {
        "rating": ["This request was merged into another of yours: rate that one."]
    }
    fixed = merged | {"resolution": "New VPN profile."}
    assert domain.requester_status_words(fixed)[0] == "Resolved" and domain.ratable(fixed)
    by_intake = fixed | {"merged_into": 6}  # intake's word first, whatever the resolution says
    assert domain.requester_status_words(by_intake)[0] == "Merged" and not domain.ratable(by_intake)


def test_a_queue_rows_time_past_its_deadline_counts_from_the_breach():
    """sla's time left stops at 0 past the target ("under a minute left" was said), and a clock that resumed after
    its breach is due at its resume ("5 min overdue" for one three days late): the time since the breach is said."""
    now = datetime(2026, 12, 4, 9, 5, tzinfo=UTC)
    resumed = {"state": "breached", "due_at": "2026-12-04T09:00:00.000Z", "breached_at": "2026-12-01T13:00:00.000Z",
               "remaining_seconds": 0.0, "calendar": "24x7"}  # fmt: skip
    assert domain.deadline({"resolution": resumed}, now)["deadline_left"] == "68 h overdue"
    late = {"state": "breached", "due_at": "2026-12-04T08:53:00.000Z", "breached_at": None, "remaining_seconds": 0.0}
    assert domain.deadline({"first_response": late}, now)["deadline_left"] == "12 min overdue"
    running = {"state": "running", "due_at": "2026-12-04T10:05:00.000Z", "remaining_seconds": 3600.0,
               "calendar": "24x7"}  # fmt: skip
    assert domain.deadline({"first_response": running}, now)["deadline_left"] == "1 h 00 min left"
