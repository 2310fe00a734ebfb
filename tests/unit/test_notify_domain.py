"""notify's rules without I/O: the ticket projection, who hears of what, a notification's life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.domain import (
    EMAIL_AUDIENCES,
    RELAY_WAIT_MAX,
    NotDead,
    Notification,
    NotKnownYet,
    TicketView,
    email_recipients,
    notification_id,
)
from shared import events

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
REQUESTER = {"name": "Ana", "email": "ana@example.com"}
CREATED = {"number": 100042, "subject": "VPN", "requester": REQUESTER, "priority": "high"}


def assigned(agent: str | None = "jane", lead: str | None = "lead@example.com") -> dict:
    person = {"agent_id": agent, "agent_name": agent and agent.title(), "agent_email": agent and f"{agent}@example.com"}
    return {**person, "team": "network", "team_lead_email": lead}


def view(*steps) -> TicketView:
    ticket = TicketView("t1")
    for kind, data, minutes in steps:
        ticket.apply(kind, data, T0 + timedelta(minutes=minutes))
    return ticket


def test_the_projection_keeps_the_latest_assignment_even_when_events_come_late():
    ticket = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned("bo"), 5))
    assert not ticket.apply("ticket.assigned", assigned("jane"), T0 + timedelta(minutes=2))  # older: ignored
    assert ticket.agent == {"id": "bo", "name": "Bo", "email": "bo@example.com"}
    assert ticket.apply("ticket.assigned", assigned(None), T0 + timedelta(minutes=9))  # back to the queue
    assert ticket.agent is None and ticket.assignment_known
    assert not ticket.apply("ticket.created", {**CREATED, "number": 1}, T0)  # a duplicate changes nothing
    assert ticket.number == 100042


def test_the_projection_names_its_team_as_the_newest_assignment_did_or_by_its_id():
    named = view(("ticket.assigned", {**assigned(), "team_name": "Network & VPN"}, 1))
    assert (named.team, named.context()["team"], named.context()["team_name"]) == (
        "network", "network", "Network & VPN",
    )  # fmt: skip
    older = view(
        ("ticket.assigned", {**assigned(), "team_name": "Network & VPN"}, 1), ("ticket.assigned", assigned(), 2)
    )
    assert (older.team_name, older.context()["team_name"]) == (None, "network")  # an event before names: the id


def test_the_lead_is_greeted_by_the_name_the_assignment_gave_or_by_none():
    named = view(("ticket.created", CREATED, 0), ("ticket.assigned", {**assigned(), "team_lead_name": "Tess Lead"}, 1))
    breached = {"clock": "resolution"}
    assert ("lead", {"name": "Tess Lead", "email": "lead@example.com"}) in email_recipients(
        "sla.breached", breached, named
    )
    older = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(), 1))  # an event from before the name
    assert ("lead", {"name": None, "email": "lead@example.com"}) in email_recipients("sla.breached", breached, older)


def test_recipients_of_each_event_type():
    ticket = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(), 1))
    author = {"author": {"type": "requester", "name": "Ana"}}
    emails = {kind: [(a, r["email"]) for a, r in email_recipients(kind, {**assigned(), **author}, ticket)]
              for kind in EMAIL_AUDIENCES}  # fmt: skip
    requester, agent = ("requester", "ana@example.com"), ("agent", "jane@example.com")
    assert emails == {
        "ticket.created": [requester],
        "ticket.replied": [requester],
        "ticket.resolved": [requester],
        "ticket.closed": [requester],
        "ticket.assigned": [agent],
        "ticket.message_added": [agent],
        "ticket.reopened": [agent],
        "ticket.mail_kept": [agent],
        "sla.warning": [agent],
        "sla.breached": [agent, ("lead", "lead@example.com")],
    }
    assert email_recipients("ticket.status_changed", {}, ticket) == []
    assert email_recipients("ticket.priority_changed", {}, ticket) == []


def test_a_requester_closing_a_request_not_resolved_tells_its_agent_too():
    ticket = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(), 1))
    to = lambda data: [(a, r["email"]) for a, r in email_recipients("ticket.closed", data, ticket)]  # noqa: E731
    requester, agent = ("requester", "ana@example.com"), ("agent", "jane@example.com")
    assert to({"by": "requester", "previous_status": "in_progress"}) == [requester, agent]
    assert to({"by": "requester", "previous_status": "waiting_on_requester"}) == [requester, agent]
    assert to({"by": "requester", "previous_status": "resolved"}) == [requester]  # the agent's work was done
    assert to({"by": "auto", "previous_status": "resolved"}) == [requester]
    assert to({"by": "requester"}) == [requester]  # an older event: nothing says it was open
    unassigned = view(("ticket.created", CREATED, 0))  # closed before notify heard of its assignment
    closing = {"by": "requester", "previous_status": "new"}
    assert [a for a, _ in email_recipients("ticket.closed", closing, unassigned)] == ["requester"]  # not held up
    queued = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(None, None), 1))
    assert (
        email_recipients("ticket.closed", {"by": "requester", "previous_status": "new"}, queued)[0][0] == ("requester")
        and len(email_recipients("ticket.closed", {"by": "requester", "previous_status": "new"}, queued)) == 1
    )


def test_an_agent_s_message_and_a_queued_ticket_email_nobody():
    queued = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(None, None), 1))
    assert email_recipients("ticket.message_added", {"author": {"type": "agent", "name": "Jane"}}, queued) == []
    assert email_recipients("ticket.message_added", {"author": {"type": "requester", "name": "Ana"}}, queued) == []
    assert email_recipients("sla.breached", {}, queued) == []
    assert email_recipients("ticket.assigned", assigned(None, None), queued) == []


def test_a_breach_nobody_would_hear_of_goes_to_the_desk_s_escalation_address_when_one_is_set():
    """A team left with nobody (no agent took the ticket, no lead): the missed deadline is not announced to no one
    (an admin tester's find); only the breach, and only when nobody else is emailed."""
    queued = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(None, None), 1))
    desk = "desk@example.com"
    assert email_recipients("sla.breached", {}, queued, escalation=desk) == [("desk", {"name": None, "email": desk})]
    assert email_recipients("sla.breached", {}, queued) == []  # no address set: as before
    assert email_recipients("sla.warning", {}, queued, escalation=desk) == []  # a warning is the agent's alone
    agent = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned("jane", None), 1))
    assert [a for a, _ in email_recipients("sla.breached", {}, agent, escalation=desk)] == ["agent"]  # heard
    lead = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(None), 1))
    assert [a for a, _ in email_recipients("sla.breached", {}, lead, escalation=desk)] == ["lead"]


def test_the_worker_s_emails_of_a_breach_nobody_would_hear_of_go_to_the_configured_address():
    from types import SimpleNamespace

    from services.notify import handlers
    from shared.config import load_settings

    queued = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(None, None), 1))
    data = {"clock": "first_response", "instance": 0, "priority": "high", "policy_version": 1,
            "due_at": "2026-11-27T10:00:00.000Z", "breached_at": "2026-11-27T10:00:00.001Z"}  # fmt: skip
    envelope = events.make_event("sla.breached", "t1", data, producer="sla")
    data = events.load_data(envelope)
    settings = load_settings({"NOTIFY_ESCALATION_EMAIL": "desk@example.com", "TICKETFLOW_DEV": "1"})
    (email,) = handlers._emails(SimpleNamespace(settings=settings), envelope, data, queued)
    assert email.recipient == "desk@example.com" and "nobody else was told" in email.body
    unset = SimpleNamespace(settings=load_settings({"TICKETFLOW_DEV": "1"}))
    assert handlers._emails(unset, envelope, data, queued) == []


def test_a_reopened_ticket_back_with_its_agent_emails_the_reopening_not_an_assignment():
    """A requester's reply to a resolved ticket: the agent hears of the message and the reopening; the ticket coming
    back to that same agent is no news (a third email for one reply). Back to another agent, it is."""
    ticket = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(), 1))
    back = {**assigned(), "reason": "reopen", "previous_agent_id": "jane"}
    assert email_recipients("ticket.assigned", back, ticket) == []
    other = {**assigned(), "reason": "reopen", "previous_agent_id": "omar"}  # the previous one away: jane now
    assert [r["email"] for _, r in email_recipients("ticket.assigned", other, ticket)] == ["jane@example.com"]
    assert email_recipients("ticket.assigned", {**back, "reason": "manual"}, ticket)  # given again by a lead: said
    assert email_recipients("ticket.reopened", {"reason": "x", "by": "jane"}, ticket) == []  # her own doing
    assert email_recipients("ticket.reopened", {"reason": "x", "by": "omar"}, ticket)  # another agent's: said


def test_a_message_that_reopens_a_ticket_and_its_reopening_each_email_the_agent():
    """Contract section 7: the agent hears of the message and of the reopening (the message's email says it reopened
    the ticket too, for the one read first)."""
    ticket = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(), 1))
    message = {"message_id": "m1", "body": "back", "author": {"type": "requester", "name": "Ana"}, "reopens": True}
    assert [r["email"] for _, r in email_recipients("ticket.message_added", message, ticket)] == ["jane@example.com"]
    reopened = {"reason": "requester replied", "message_id": "m1"}
    assert [r["email"] for _, r in email_recipients("ticket.reopened", reopened, ticket)] == ["jane@example.com"]


def test_while_its_agent_is_away_the_lead_hears_of_the_requesters_words_a_kept_mail_a_reopen_and_a_deadline_coming():
    ticket = view(("ticket.created", CREATED, 0), ("ticket.assigned", {**assigned(), "team_lead_name": "Tess"}, 1))
    author = {"author": {"type": "requester", "name": "Ana"}, "reason": "x", "by": "omar", "clock": "resolution"}
    emails = {kind: [(a, r["email"]) for a, r in email_recipients(kind, {**assigned(), **author}, ticket, True)]
              for kind in EMAIL_AUDIENCES}  # fmt: skip
    agent, lead = ("agent", "jane@example.com"), ("lead", "lead@example.com")
    assert {kind: found for kind, found in emails.items() if lead in found} == {
        "ticket.message_added": [agent, lead],
        "ticket.mail_kept": [agent, lead],
        "ticket.reopened": [lead],  # the ticket goes to another agent: the one away hears nothing of it
        "sla.warning": [agent, lead],
        "sla.breached": [agent, lead],  # as ever: once
    }
    assert ("lead", {"name": "Tess", "email": "lead@example.com"}) in email_recipients(
        "ticket.message_added", author, ticket, agent_away=True
    )
    jane = {"name": "Jane", "email": "jane@example.com"}
    assert email_recipients("ticket.message_added", author, ticket) == [("agent", jane)]  # in: the agent alone
    own = view(("ticket.created", CREATED, 0), ("ticket.assigned", assigned(lead="JANE@example.com"), 1))
    assert [a for a, _ in email_recipients("ticket.message_added", author, own, True)] == ["agent"]  # leads itself
    assert email_recipients("ticket.reopened", {"reason": "x", "by": "jane"}, ticket, True) == []  # her own doing
    reopening = {"author": {"type": "requester", "name": "Ana"}, "reopens": True}
    assert [a for a, _ in email_recipients("ticket.message_added", reopening, ticket, True)] == ["lead"]
    assert email_recipients("ticket.reopened", {"reason": "x"}, own, True) == []  # it led the team itself: nobody


def test_a_recipient_not_known_yet_waits_rather_than_being_dropped():
    with pytest.raises(NotKnownYet):
        email_recipients("ticket.replied", {}, None)  # ticket.created not seen yet
    created_only = view(("ticket.created", CREATED, 0))
    with pytest.raises(NotKnownYet):
        email_recipients("sla.warning", {}, created_only)  # ticket.assigned not seen yet
    assert email_recipients("ticket.assigned", assigned(), created_only)[0][1]["email"] == "jane@example.com"


def test_internal_notes_cannot_travel_in_any_event():
    """There is no internal-note event, and an event that smuggles one in is refused before any handler runs."""
    assert not any("note" in kind for kind in events.EVENT_TYPES)
    data = {"reply_id": "r", "agent_id": "a", "agent_name": "A", "body": "secret", "first_response": False}
    with pytest.raises(events.InvalidEvent):
        events.make_event("ticket.replied", "t1", {**data, "internal": True}, producer="assignment")


def test_notification_ids_are_one_per_event_channel_and_recipient():
    one = notification_id("e1", "email", "a@example.com")
    assert one == notification_id("e1", "email", "a@example.com")
    others = {
        notification_id("e2", "email", "a@example.com"),
        notification_id("e1", "webhook", "a@example.com"),
        notification_id("e1", "email", "b@example.com"),
        notification_id("e1|email", "", "a@example.com"),
    }
    assert one not in others and len(others) == 4


def _notification() -> Notification:
    return Notification("n1", "e1", "ticket.created", "t1", "email", "a@example.com", "[#1] x", "body", T0)


def test_failed_attempts_follow_the_delays_then_dead_and_a_retry_starts_over():
    record, delays = _notification(), (1.0, 5.0)
    record.failed("SMTP 451", T0, delays)
    assert (record.status, record.attempts, record.next_attempt_at) == ("failed", 1, T0 + timedelta(seconds=1))
    record.failed("SMTP 451", T0, delays)
    assert record.next_attempt_at == T0 + timedelta(seconds=5)
    assert record.recorded == []  # a failed attempt that will be retried is not a failed notification
    record.failed("SMTP 554", T0, delays)
    assert (record.status, record.attempts, record.next_attempt_at) == ("dead", 3, None)
    failed = {"notification_id": "n1", "channel": "email", "recipient": "a@example.com",
              "event_type": "ticket.created", "error": "SMTP 554"}  # fmt: skip
    assert record.recorded == [("notification.failed", failed)]
    record.retry(T0)
    assert (record.status, record.next_attempt_at, record.step) == ("pending", T0, 0)
    with pytest.raises(NotDead):
        record.retry(T0)
    record.succeeded(T0)
    assert (record.status, record.attempts, record.sent_at, record.last_error) == ("sent", 4, T0, None)
    assert record.recorded[-1][0] == "notification.sent"


def test_an_unreachable_relay_never_uses_up_the_retries_and_waits_at_most_a_minute():
    record, delays = _notification(), (1.0, 5.0, 30.0, 120.0, 600.0)
    waits = []
    for _ in range(50):  # a relay down far longer than all the delays together
        record.relay_down("connection refused (127.0.0.1:25)", T0, delays)
        waits.append((record.next_attempt_at - T0).total_seconds())
    assert (record.status, record.step, record.attempts, record.recorded) == ("failed", 0, 50, [])
    assert waits[:4] == [1.0, 5.0, 30.0, RELAY_WAIT_MAX] and set(waits[3:]) == {RELAY_WAIT_MAX}
    record.failed("SMTP 451", T0, delays)  # the relay is back and answers this message: that counts
    assert (record.status, record.step, record.relay_waits) == ("failed", 1, 0)
    record.relay_down("connection refused (127.0.0.1:25)", T0, delays)  # down again: its waits start over
    assert (record.next_attempt_at, record.step) == (T0 + timedelta(seconds=1), 1)
    record.succeeded(T0)
    assert (record.status, record.relay_waits) == ("sent", 0)
