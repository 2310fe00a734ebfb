"""intake's ticket rules: the requester's moves, and other services' events that never move a ticket backwards."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.domain import Ticket, TicketClosed, summarize, summarize_for_requester
from services.intake.schemas import SlaSchema

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def make_ticket(**overrides) -> Ticket:
    request = {
        "subject": "VPN drops every hour",
        "description": "Since Monday",
        "topic": "network",
        "requester": {"name": "Ana Ruiz", "email": "ana@example.com"},
        "priority": "normal",
        "source": "web",
    }
    ticket = Ticket.open("t1", 100042, {**request, **overrides}, T0)
    ticket.recorded.clear()
    return ticket


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


ASSIGNED = {
    "agent_id": "jane",
    "agent_name": "Jane Doe",
    "agent_email": "jane@example.com",
    "team": "network",
    "reason": "auto",
}


def test_open_records_ticket_created_with_the_contract_fields():
    ticket = Ticket.open(
        "t1",
        100042,
        {"subject": "s", "description": "d", "topic": "network", "requester": {"name": "A", "email": "a@example.com"}},
        T0,
    )
    ((kind, data),) = ticket.recorded
    assert kind == "ticket.created"
    assert data == {
        "number": 100042,
        "subject": "s",
        "description": "d",
        "topic": "network",
        "priority": "normal",
        "source": "web",
        "requester": {"name": "A", "email": "a@example.com"},
    }
    assert ticket.status == "new"


def test_message_on_an_open_ticket_is_added_without_reopening():
    ticket = make_ticket()
    ticket.add_message("m1", "still broken", at(1))
    assert [kind for kind, _ in ticket.recorded] == ["ticket.message_added"]
    assert ticket.thread[-1]["author"] == {"type": "requester", "name": "Ana Ruiz"}


def test_a_message_with_files_names_them_in_its_event_not_in_the_thread():
    ticket = make_ticket()
    ticket.add_message("m1", "the log", at(1), ["log.txt"])
    ticket.add_message("m2", "and nothing else", at(2))
    added = [data for kind, data in ticket.recorded if kind == "ticket.message_added"]
    assert added[0]["files"] == ["log.txt"] and "files" not in added[1]
    assert all("files" not in entry for entry in ticket.thread)  # the files are stored apart, with the message's id


LINK = "https://help.example.com/t/eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0IjoidDcifQ.c2lnbmF0dXJlX29mX2l0"


def test_a_requester_link_pasted_into_a_ticket_is_hidden_from_its_readers():
    """The link acts as the requester: an agent reading the ticket, its events or its search must not hold it."""
    ticket = Ticket.open(
        "t1",
        100042,
        {
            "subject": f"About {LINK}",
            "description": f"My earlier request: {LINK.replace('/t/e', '/t/%65')} is still open",
            "topic": "network",
            "requester": {"name": "Ana Ruiz", "email": "ana@example.com"},
        },
        T0,
    )
    ticket.add_message("m1", f"and this one: <{LINK}>", at(1))
    ticket.keep_mail("k1", "another_sender", {"name": "Bo", "email": "bo@example.com"}, f"Fw: {LINK}", LINK, [])

    hidden = "https://help.example.com/t/(hidden)"
    assert ticket.subject == f"About {hidden}"
    assert ticket.description == f"My earlier request: {hidden} is still open"
    assert ticket.thread[-1]["body"] == f"and this one: <{hidden}>"
    assert "eyJ" not in repr(ticket.recorded) and "%65yJ" not in repr(ticket.recorded)


def test_message_on_a_resolved_ticket_reopens_it_to_its_agent():
    ticket = make_ticket()
    ticket.apply("ticket.assigned", ASSIGNED, at(1))
    ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "reset"}, at(2))
    assert ticket.resolution == "reset"  # the requester's page says what was done
    ticket.add_message("m1", "it is back", at(3))
    assert [kind for kind, _ in ticket.recorded] == ["ticket.message_added", "ticket.reopened"]
    assert ticket.status == "assigned" and ticket.resolved_at is None and ticket.resolution is None
    assert ticket.earlier_resolutions == [{"resolution": "reset", "resolved_at": at(2)}]  # what was tried stays
    (_, added), (_, reopened) = ticket.recorded
    assert added["reopens"] is True and reopened == {"reason": "requester replied", "message_id": "m1"}


def test_a_duplicate_keeps_the_number_it_was_merged_into_until_it_reopens():
    ticket = make_ticket()
    ticket.apply("ticket.assigned", ASSIGNED, at(1))
    ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Merged.", "merged_into": 100041}, at(2))
    assert ticket.merged_into == 100041
    ticket.add_message("m1", "not the same thing after all", at(3))
    assert ticket.status == "assigned" and ticket.merged_into is None
    ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "reset"}, at(4))
    assert ticket.merged_into is None


def test_only_the_message_that_reopens_says_so():
    ticket = make_ticket()
    ticket.add_message("m1", "still broken", at(1))
    ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "reset"}, at(2))
    ticket.add_message("m2", "it is back", at(3))
    ticket.add_message("m3", "and again", at(4))
    added = {data["message_id"]: data for kind, data in ticket.recorded if kind == "ticket.message_added"}
    assert [("reopens" in added[m]) for m in ("m1", "m2", "m3")] == [False, True, False]


def test_a_ticket_reopened_again_and_again_keeps_its_newest_earlier_resolutions_in_order():
    ticket = make_ticket()
    ticket.apply("ticket.assigned", ASSIGNED, at(1))
    for n in range(12):
        ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": f"fix {n}"}, at(2 + 2 * n))
        ticket.reopen("not fixed", "jane", "Jane", at(3 + 2 * n))
    assert [earlier["resolution"] for earlier in ticket.earlier_resolutions] == [f"fix {n}" for n in range(2, 12)]


def test_a_resolve_that_arrives_after_the_requester_wrote_again_reopens_the_ticket():
    ticket = make_ticket()
    ticket.apply("ticket.assigned", ASSIGNED, at(1))
    ticket.add_message("m1", "one more thing", at(3))  # written after the agent resolved, before intake heard
    ticket.recorded.clear()
    assert ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "reset"}, at(2))
    assert [kind for kind, _ in ticket.recorded] == ["ticket.reopened"]
    assert "message_id" not in ticket.recorded[0][1]  # its message's email did not say it reopened: this one does
    assert ticket.status == "assigned" and ticket.resolved_at is None and ticket.resolution is None
    assert not ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "reset"}, at(2))  # redelivered


def test_a_resolve_after_the_requesters_last_message_stays_resolved():
    ticket = make_ticket()
    ticket.apply("ticket.assigned", ASSIGNED, at(1))
    ticket.add_message("m1", "thanks, trying that", at(2))
    ticket.recorded.clear()
    assert ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "reset"}, at(3))
    assert ticket.recorded == [] and ticket.status == "resolved"


def test_message_on_a_closed_ticket_is_refused():
    ticket = make_ticket()
    ticket.close("requester", at(1))
    with pytest.raises(TicketClosed):
        ticket.add_message("m1", "hello?", at(2))


def test_closing_twice_records_one_event():
    ticket = make_ticket()
    assert ticket.close("requester", at(1)) is True
    assert ticket.close("requester", at(2)) is False
    assert [kind for kind, _ in ticket.recorded] == ["ticket.closed"]


def test_a_merged_duplicate_s_closing_names_the_request_it_went_into():
    ticket = make_ticket()
    ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Merged.", "merged_into": 100041}, at(2))
    ticket.recorded.clear()
    assert ticket.close("auto", at(3))
    assert ticket.recorded == [("ticket.closed", {"by": "auto", "merged_into": 100041, "previous_status": "resolved"})]
    other = make_ticket()
    other.close("requester", at(1))
    assert other.recorded[-1] == ("ticket.closed", {"by": "requester", "previous_status": "new"})  # unresolved


def test_assigned_after_resolved_does_not_reopen():
    ticket = make_ticket()
    ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "done"}, at(5))
    ticket.apply("ticket.assigned", ASSIGNED, at(1))  # late: happened before the resolve
    assert ticket.status == "resolved"


def test_a_late_status_change_does_not_undo_a_newer_one():
    ticket = make_ticket()
    ticket.apply("ticket.status_changed", {"status": "waiting_on_requester", "previous_status": "in_progress"}, at(5))
    assert not ticket.apply("ticket.status_changed", {"status": "in_progress", "previous_status": "assigned"}, at(3))
    assert ticket.status == "waiting_on_requester"


def test_a_resolve_older_than_a_reopen_is_ignored():
    ticket = make_ticket()
    ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "x"}, at(1))
    ticket.add_message("m", "nope", at(2))
    assert not ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "x"}, at(1))
    assert ticket.status == "new"


def test_nothing_reopens_a_closed_ticket():
    ticket = make_ticket()
    ticket.close("requester", at(1))
    for kind, data in [
        ("ticket.status_changed", {"status": "in_progress", "previous_status": "assigned"}),
        ("ticket.resolved", {"agent_id": "jane", "resolution": "x"}),
    ]:
        ticket.apply(kind, data, at(9))
    assert ticket.status == "closed"


def test_a_resolve_made_before_the_requester_closed_and_heard_after_keeps_what_was_done():
    """assignment's resolve and intake's close come through two queues: a resolve made a minute before the close,
    heard after it, was dropped, so intake alone lost the resolution that sla and search kept (a race hunter's
    find). It is kept; the ticket stays closed. One made after the close, or older than one kept, changes nothing."""
    ticket = make_ticket()
    ticket.close("requester", at(10))
    assert ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "New VPN profile."}, at(9))
    assert (ticket.status, ticket.resolution, ticket.resolved_at) == ("closed", "New VPN profile.", at(9))
    assert not ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Again."}, at(9))  # redelivered
    assert not ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Older."}, at(8))
    assert not ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "After."}, at(11))
    assert (ticket.status, ticket.resolution) == ("closed", "New VPN profile.")
    merged = make_ticket()
    merged.close("requester", at(10))
    assert merged.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Dup.", "merged_into": 100042}, at(9))
    assert (merged.status, merged.merged_into) == ("closed", 100042)
    reopened = make_ticket()  # resolved, reopened by the requester, closed: the resolve heard again changes nothing
    reopened.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Restarted it."}, at(5))
    reopened.add_message("m1", "Still broken.", at(6))
    reopened.close("requester", at(10))
    assert not reopened.apply("ticket.resolved", {"agent_id": "jane", "resolution": "Restarted it."}, at(5))
    assert (reopened.resolution, len(reopened.earlier_resolutions)) == (None, 1)


def test_replies_are_kept_once_and_in_time_order():
    ticket = make_ticket()
    reply = {
        "reply_id": "r2",
        "agent_id": "jane",
        "agent_name": "Jane Doe",
        "body": "try this",
        "first_response": False,
    }
    assert ticket.apply("ticket.replied", reply, at(5))
    assert not ticket.apply("ticket.replied", reply, at(5))
    ticket.apply("ticket.replied", {**reply, "reply_id": "r1", "first_response": True}, at(2))
    assert [entry["id"] for entry in ticket.thread] == ["r1", "r2"]


def test_sla_due_times_follow_the_newest_announcement_and_breach_sticks():
    ticket = make_ticket()
    warning = {
        "clock": "first_response",
        "instance": 0,
        "due_at": at(60),
        "percent": 80,
        "priority": "normal",
        "policy_version": 1,
    }
    ticket.apply("sla.warning", warning, at(48))
    ticket.apply("sla.breached", {**warning, "clock": "resolution", "due_at": at(240), "breached_at": at(240)}, at(240))
    ticket.apply("sla.warning", {**warning, "due_at": at(10)}, at(30))  # older than the first: ignored
    assert ticket.sla == {
        "first_response_due_at": at(60),
        "next_response_due_at": None,
        "resolution_due_at": at(240),
        "breached": True,
    }


def test_the_deadlines_sla_sends_replace_the_due_times_and_a_later_warning_leaves_them():
    ticket = make_ticket()
    deadlines = {
        "first_response_due_at": at(240),
        "next_response_due_at": None,
        "resolution_due_at": at(1440),
        "priority": "normal",
        "revision": 2,
    }
    updated = ticket.updated_at
    assert ticket.apply("sla.deadlines_changed", deadlines, at(0) + timedelta(days=1))
    assert ticket.updated_at == updated  # the desk's bookkeeping: no change a requester or an agent made
    assert ticket.sla["first_response_due_at"] == at(240) and ticket.sla["resolution_due_at"] == at(1440)
    asked = {**deadlines, "next_response_due_at": at(300), "revision": 3}
    assert ticket.apply("sla.deadlines_changed", asked, at(1)) and ticket.sla["next_response_due_at"] == at(300)
    older = {**deadlines, "first_response_due_at": at(5), "revision": 2}
    assert not ticket.apply("sla.deadlines_changed", older, at(1))  # a revision older than the one shown
    paused = {**deadlines, "first_response_due_at": None, "resolution_due_at": None, "revision": 4}
    assert ticket.apply("sla.deadlines_changed", paused, at(2))
    warning = {"clock": "resolution", "instance": 0, "due_at": at(1440), "percent": 80, "priority": "normal"}
    ticket.apply("sla.warning", {**warning, "policy_version": 1}, at(3))  # read late: the pause stands
    assert (ticket.sla["first_response_due_at"], ticket.sla["resolution_due_at"]) == (None, None)

    assert summarize("sla.deadlines_changed", deadlines) == (
        "SLA deadlines (normal priority): first response due 27 Nov 2026, 13:30 UTC, "
        "resolution due 28 Nov 2026, 09:30 UTC"
    )
    assert summarize("sla.deadlines_changed", paused) == "SLA deadlines: no clock running (normal priority)"
    assert summarize("sla.deadlines_changed", {**deadlines, "calendar": "office"}) == (  # new hours, nothing done
        "SLA deadlines moved to the new hours of calendar office: first response due 27 Nov 2026, 13:30 UTC, "
        "resolution due 28 Nov 2026, 09:30 UTC"
    )
    assert summarize_for_requester("sla.deadlines_changed", deadlines) is None  # the desk's own targets


def test_auto_close_only_after_the_configured_hours():
    ticket = make_ticket()
    ticket.apply("ticket.resolved", {"agent_id": "jane", "resolution": "x"}, at(0))
    assert not ticket.due_for_auto_close(at(59), hours=1)
    assert ticket.due_for_auto_close(at(60), hours=1)


EVENTS = st.sampled_from(
    [
        ("ticket.assigned", ASSIGNED),
        ("ticket.status_changed", {"status": "in_progress", "previous_status": "assigned"}),
        ("ticket.status_changed", {"status": "waiting_on_requester", "previous_status": "in_progress"}),
        ("ticket.resolved", {"agent_id": "jane", "resolution": "x"}),
        ("ticket.priority_changed", {"priority": "high", "previous_priority": "normal"}),
    ]
)


@given(st.lists(st.tuples(EVENTS, st.integers(0, 100)), max_size=12))
def test_applying_events_twice_changes_nothing_the_second_time(history):
    ticket = make_ticket()
    for (kind, data), minute in history:
        ticket.apply(kind, data, at(minute))
    snapshot = (ticket.status, ticket.assignee, ticket.priority, ticket.resolved_at, dict(ticket.watermarks))
    for (kind, data), minute in history:
        assert not ticket.apply(kind, data, at(minute))
    assert snapshot == (ticket.status, ticket.assignee, ticket.priority, ticket.resolved_at, dict(ticket.watermarks))


@given(st.permutations(range(5)))
def test_the_final_status_does_not_depend_on_arrival_order(order):
    history = [
        ("ticket.assigned", ASSIGNED, 1),
        ("ticket.status_changed", {"status": "in_progress", "previous_status": "assigned"}, 2),
        ("ticket.status_changed", {"status": "waiting_on_requester", "previous_status": "in_progress"}, 3),
        ("ticket.priority_changed", {"priority": "high", "previous_priority": "normal"}, 4),
        ("ticket.resolved", {"agent_id": "jane", "resolution": "x"}, 5),
    ]
    ticket = make_ticket()
    for index in order:
        kind, data, minute = history[index]
        ticket.apply(kind, data, at(minute))
    assert (ticket.status, ticket.priority, ticket.assignee["agent_id"]) == ("resolved", "high", "jane")


def test_every_event_type_has_a_readable_summary():
    assert (
        summarize("ticket.assigned", {**ASSIGNED, "decision": {"rule": "least loaded", "candidates": [1, 2]}})
        == "Assigned to Jane Doe (network) automatically: least loaded, among 2 candidates"
    )
    assert summarize("ticket.closed", {"by": "auto"}).startswith("Closed automatically")
    assert (
        summarize("ticket.replied", {"agent_name": "Jane", "first_response": True}) == "Jane replied (first response)"
    )
    changed = {"previous_status": "in_progress", "status": "waiting_on_requester"}
    assert summarize("ticket.status_changed", changed) == "Status changed from in progress to waiting on requester"
    assert summarize("ticket.resolved", {"agent_id": "jane", "resolution": "Fixed."}) == "Resolved by jane: Fixed."
    merged = {"agent_id": "jane", "resolution": "The same request.", "merged_into": 100042}
    assert summarize("ticket.resolved", merged) == "Merged into #100042 by jane"
    named = {"agent_id": "jane", "agent_name": "Jane Doe", "resolution": "Fixed."}  # the name intake knows, added
    assert summarize("ticket.resolved", named) == "Resolved by Jane Doe: Fixed."
    manual = {**ASSIGNED, "reason": "manual", "previous_agent_id": None}
    assert summarize("ticket.assigned", manual) == "Assigned to Jane Doe (network) by a lead or an admin"
    reassigned = summarize("ticket.assigned", {**manual, "previous_agent_id": "tom"})
    assert reassigned == "Reassigned to Jane Doe (network) by a lead or an admin"
    back = {**ASSIGNED, "reason": "reopen"}
    assert summarize("ticket.assigned", back) == "Back with Jane Doe (network) after reopening"
    fallback = {**back, "decision": {"rule": "least loaded", "candidates": [1]}}
    assert summarize("ticket.assigned", fallback) == (
        "Assigned to Jane Doe (network) after reopening, automatically (least loaded): the previous agent was not free"
    )
    by_admin = {"agent_id": "admin:boss@example.com", "resolution": "Fixed."}
    assert summarize("ticket.resolved", by_admin) == "Resolved by the help desk: Fixed."  # a requester reads it too


def test_summaries_name_the_person_who_acted_when_the_event_does():
    manual = {**ASSIGNED, "reason": "manual", "previous_agent_id": "tom", "by_name": "Tess Lead"}
    assert summarize("ticket.assigned", manual) == "Reassigned to Jane Doe (network) by Tess Lead"
    themselves = {**manual, "by_name": "Jane Doe"}  # a lead who gave it to themselves
    assert summarize("ticket.assigned", themselves) == "Taken over by Jane Doe (network)"
    handed = {**themselves, "previous_agent_name": "Omar Haddad"}  # intake knew who had it: said by name
    assert summarize("ticket.assigned", handed) == "Taken over from Omar Haddad by Jane Doe (network)"
    assert summarize("ticket.assigned", {**handed, "by_name": "Tess Lead"}) == (
        "Reassigned from Omar Haddad to Jane Doe (network) by Tess Lead"
    )
    assert summarize("ticket.assigned", {**themselves, "previous_agent_id": None}) == "Taken by Jane Doe (network)"
    moved = {**ASSIGNED, "reason": "transfer", "team_name": "Desk", "by_name": "The help desk"}  # an admin
    assert summarize("ticket.assigned", moved) == "Transferred to Desk by the help desk and assigned to Jane Doe (Desk)"
    queued = {**moved, "agent_id": None, "agent_name": None, "agent_email": None, "by_name": "Tess Lead"}
    assert summarize("ticket.assigned", queued) == "Transferred to Desk by Tess Lead: waiting in its queue"
    elsewhere = {**moved, "previous_team": "hardware"}  # from another team: a transfer still
    assert summarize("ticket.assigned", elsewhere).startswith("Transferred to Desk by the help desk and assigned")
    back = {**moved, "team": "desk", "previous_team": "desk", "previous_agent_id": "tom"}  # from its agent: a hand-back
    assert summarize("ticket.assigned", back) == "Handed back to Desk by the help desk and assigned to Jane Doe (Desk)"
    back_queued = {**queued, "team": "desk", "previous_team": "desk", "previous_agent_id": "tom"}
    assert summarize("ticket.assigned", back_queued) == "Handed back to Desk's queue by Tess Lead: waiting there"
    again = {**queued, "team": "desk", "previous_team": "desk"}  # a queued ticket's pick tried again: nobody had it
    assert summarize("ticket.assigned", again).startswith("Transferred to Desk")
    changed = {"previous_status": "in_progress", "status": "waiting_on_requester", "by_name": "Jane Doe"}
    assert summarize("ticket.status_changed", changed) == (
        "Status changed from in progress to waiting on requester by Jane Doe"
    )
    resolved = {"agent_id": "marta", "agent_name": "Marta Vidal", "resolution": "Restarted the AP."}
    assert summarize("ticket.resolved", resolved) == "Resolved by Marta Vidal: Restarted the AP."
    by_admin = {**resolved, "by_name": "The help desk"}  # an admin resolved Marta's ticket
    assert summarize("ticket.resolved", by_admin) == "Resolved by the help desk: Restarted the AP."
    raised = {"previous_priority": "normal", "priority": "high", "by_name": "Tess Lead"}
    assert summarize("ticket.priority_changed", raised) == "Priority changed from normal to high by Tess Lead"
    assert summarize("ticket.priority_changed", {**raised, "by_name": None}) == "Priority changed from normal to high"
    assert summarize("ticket.reopened", {"reason": "requester replied"}) == "Reopened: requester replied"
    by_jane = {"reason": "She called.", "by": "jane", "by_name": "Jane Doe"}
    assert summarize("ticket.reopened", by_jane) == "Reopened by Jane Doe: She called."
    by_admin = {"reason": "x", "by": "admin", "by_name": "The help desk"}
    assert summarize("ticket.reopened", by_admin) == "Reopened by the help desk: x"
    agents_words = {**by_jane, "reason": "She called: customer is furious."}  # the agents' own words
    assert summarize_for_requester("ticket.reopened", agents_words) == "Reopened by the help desk"
    before_by = {"reason": "She called: customer is furious."}  # a reopen from before `by` was said
    assert summarize_for_requester("ticket.reopened", before_by) == "Reopened by the help desk"
    assert summarize_for_requester("ticket.reopened", {"reason": "requester replied"}) == "Reopened: requester replied"


def test_a_mail_kept_for_the_agents_and_its_email_are_the_agents_alone():
    kept = {"mail_id": "m", "why": "another_sender", "sender": {"name": "Bo", "email": "bo@example.com"}, "body": "x"}
    assert summarize("ticket.mail_kept", kept) == (
        "Mail from Bo <bo@example.com> kept for the agents, not added to the conversation: they are not the requester"
    )
    assert summarize("ticket.mail_kept", {**kept, "why": "thread_full"}).endswith("not added to the full conversation")
    assert summarize_for_requester("ticket.mail_kept", kept) is None
    sent = {"channel": "email", "recipient": "jane@example.com", "notification_id": "n", "error": None}
    assert summarize_for_requester("notification.sent", {**sent, "event_type": "ticket.mail_kept"}) is None
    assert summarize_for_requester("notification.sent", {**sent, "event_type": "ticket.replied"}) == (
        "Email about a reply sent"
    )


def test_summaries_name_the_team_and_the_topic_when_the_data_carries_their_names():
    named = {**ASSIGNED, "team_name": "Network & VPN", "decision": {"rule": "least loaded", "candidates": [1]}}
    assert summarize("ticket.assigned", named) == (
        "Assigned to Jane Doe (Network & VPN) automatically: least loaded, among 1 candidate"
    )
    queued = {**named, "agent_id": None, "agent_name": None, "agent_email": None, "reason": "transfer"}
    assert summarize("ticket.assigned", queued) == "Transferred to Network & VPN: waiting in its queue"
    assert (
        summarize("ticket.assigned", {**queued, "reason": "auto"}) == "Waiting in Network & VPN's queue: nobody is free"
    )
    moved = {**named, "reason": "transfer"}
    assert (
        summarize("ticket.assigned", moved) == "Transferred to Network & VPN and assigned to Jane Doe (Network & VPN)"
    )
    created = {
        "number": 100042,
        "subject": "VPN drops",
        "requester": {"name": "Ana", "email": "ana@example.com"},
        "source": "web",
        "topic": "network",
        "priority": "high",
    }
    assert summarize("ticket.created", created).endswith("VPN drops (network, high priority)")
    assert summarize("ticket.created", {**created, "topic_name": "Network & VPN"}).endswith(
        "VPN drops (Network & VPN, high priority)"
    )


def test_a_ticket_sent_to_a_team_queue_has_no_assignee_and_waits_as_new():
    ticket = make_ticket()
    ticket.apply("ticket.assigned", ASSIGNED, at(1))
    queued = {
        **ASSIGNED,
        "agent_id": None,
        "agent_name": None,
        "agent_email": None,
        "team": "hardware",
        "reason": "transfer",
    }
    assert ticket.apply("ticket.assigned", queued, at(2))
    assert (ticket.assignee, ticket.team, ticket.status) == (None, "hardware", "new")
    assert summarize("ticket.assigned", queued) == "Transferred to team hardware: waiting in its queue"
    assert summarize("ticket.assigned", {**queued, "reason": "auto"}) == (
        "Waiting in team hardware's queue: nobody is free"
    )


def test_a_ticket_stored_before_the_next_response_due_time_shows_it_null():
    stored_before = {"first_response_due_at": at(60), "resolution_due_at": None, "breached": False}
    assert SlaSchema().dump(stored_before) == {
        "first_response_due_at": "2026-11-27T10:30:00.000Z",
        "next_response_due_at": None,
        "resolution_due_at": None,
        "breached": False,
    }
