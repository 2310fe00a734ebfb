"""notify's rules: who hears of which event, a ticket's projection, and a notification's life. No I/O here."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.events import OPEN_STATUSES
from shared.ordering import newer

_NAMESPACE = uuid.UUID("5b0e7b8e-4c8f-4d0e-9a53-1f6d2b7c9e11")

# Who gets an email for which event. Internal notes are never events, so never sent.
EMAIL_AUDIENCES: dict[str, tuple[str, ...]] = {
    "ticket.created": ("requester",),
    "ticket.replied": ("requester",),
    "ticket.resolved": ("requester",),
    "ticket.closed": ("requester", "agent"),  # the agent: only when its requester closed it unresolved
    "ticket.assigned": ("agent",),
    "ticket.message_added": ("agent",),
    "ticket.reopened": ("agent",),
    "ticket.mail_kept": ("agent",),  # a mail about the ticket that mail in kept for the agents (not the requester's)
    "sla.warning": ("agent",),
    "sla.breached": ("agent", "lead"),
}
# Who hears of a breach nobody above would (no agent, and its team no lead: a team left with nobody): the desk's
# own address, NOTIFY_ESCALATION_EMAIL, when one is set. A missed deadline is never announced to no one.
UNHEARD = ("sla.breached",)
# The assigned agent's emails that also go to the team's lead while the agent is away (unavailable: on leave, or
# gone, its account disabled): the requester's words (or another's about the ticket), a reopen and a deadline
# coming reach someone who reads them.
AWAY_COVER = ("ticket.message_added", "ticket.mail_kept", "ticket.reopened", "sla.warning")


def reopens(event_type: str, data: dict) -> bool:
    """Whether the event reopens its ticket: the reopening itself, or the requester's message that caused it. An
    agent away then loses the ticket (assignment gives it back only to an available agent of its team), so its
    email goes to the team's lead alone: someone on leave, or gone, never hears of the ticket again."""
    return event_type == "ticket.reopened" or (event_type == "ticket.message_added" and bool(data.get("reopens")))


class SendError(Exception):
    """A send that did not succeed (refused, timed out, unreachable); the message says why, for `last_error`.

    `unreachable`: this message was never judged (the mail relay did not answer at all, the send's time ran out
    before the message went out, or the worker stopping cut the wait for the relay's answer): the attempt does
    not count towards `dead` (see Notification.relay_down).
    """

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Message:
    """A rendered email: its subject, plain-text body and HTML body."""

    subject: str
    text: str
    html: str


class NotKnownYet(Exception):
    """The event needs a recipient the ticket's projection does not know yet (its events came out of order)."""


# --- the ticket as notify knows it, from events only ------------------------------------------------


LEARNED_FROM = ("ticket.created", "ticket.assigned", "ticket.priority_changed")  # what TicketView.apply reads


@dataclass
class TicketView:
    """What addressing a message needs: number, subject, requester, assigned agent and team lead."""

    id: str
    version: int = 0
    number: int | None = None
    subject: str | None = None
    priority: str | None = None
    requester: dict | None = None  # {name, email}
    agent: dict | None = None  # {id, name, email}; None while unassigned
    team: str | None = None
    team_name: str | None = None  # as the assignment named it (an older event: None)
    team_lead_email: str | None = None
    team_lead_name: str | None = None  # as the assignment named the lead (an older event: None)
    assignment_known: bool = False  # a ticket.assigned (maybe to nobody: queued) has been seen
    watermarks: dict[str, datetime] = field(default_factory=dict)
    mail_message_id: str | None = None  # the requester's mail that opened it (by mail): its emails thread under it

    def apply(self, event_type: str, data: dict, at: datetime) -> bool:
        """Learn from an event (one of LEARNED_FROM); whether anything changed. Late events never overwrite newer
        ones."""
        if event_type == "ticket.created" and self.number is None:
            self.number, self.subject, self.requester = data["number"], data["subject"], dict(data["requester"])
            self.mail_message_id = data.get("mail_message_id")
            if newer(self.watermarks, "priority", at):
                self.priority = data["priority"]
            return True
        if event_type == "ticket.assigned" and newer(self.watermarks, "assigned", at):
            agent = {"id": data["agent_id"], "name": data["agent_name"], "email": data["agent_email"]}
            self.agent = agent if data["agent_id"] else None
            self.team, self.team_name = data["team"], data.get("team_name")
            self.team_lead_email, self.team_lead_name = data.get("team_lead_email"), data.get("team_lead_name")
            self.assignment_known = True
            return True
        if event_type == "ticket.priority_changed" and newer(self.watermarks, "priority", at):
            self.priority = data["priority"]
            return True
        return False

    def context(self) -> dict:
        """The ticket part of a message's template context."""
        return {
            "id": self.id,
            "number": self.number,
            "subject": self.subject,
            "priority": self.priority,
            "requester": self.requester,
            "agent": self.agent,
            "team": self.team,
            "team_name": self.team_name or self.team,  # what a message calls the team
        }


def closed_while_worked_on(data: dict) -> bool:
    """Whether a ticket.closed is its requester's close of a request not resolved (an agent may be working on it,
    and hears of it); intake's `previous_status` says so (absent from older events: no)."""
    return data.get("by") == "requester" and data.get("previous_status") in OPEN_STATUSES


def email_recipients(
    event_type: str, data: dict, view: TicketView | None, agent_away: bool = False, escalation: str = ""
) -> list[tuple[str, dict]]:
    """(audience, {name, email}) of each email the event causes; NotKnownYet when the projection lacks one.
    `agent_away`: the ticket's agent is unavailable (as its last agent.updated said): an AWAY_COVER event's email
    goes to the team's lead too (not twice to a lead who is the agent), and one that reopens the ticket to the lead
    alone (the ticket goes to another agent, see `reopens`). `escalation`: the desk's address, which hears of an
    UNHEARD event that has nobody else to email (audience "desk")."""
    audiences = EMAIL_AUDIENCES.get(event_type, ())
    if not audiences:
        return []
    if event_type == "ticket.message_added" and data["author"]["type"] != "requester":
        return []  # only the requester's messages are news to the agent
    if event_type == "ticket.reopened" and view is not None and view.agent and data.get("by") == view.agent["id"]:
        return []  # the agent reopened it: no email about its own doing
    if event_type == "ticket.closed" and not (closed_while_worked_on(data) and view and view.assignment_known):
        # resolved first (or merged, or closed by the system): the agent's work was done; or no agent known yet
        # (closed at once): the requester's email does not wait for one
        audiences = ("requester",)
    back = data.get("reason") == "reopen" and data.get("agent_id") == data.get("previous_agent_id")
    if event_type == "ticket.assigned" and back:
        return []  # back to the agent who had it: the reopening's email says so (and the message that reopened it)
    if view is None or view.number is None:
        raise NotKnownYet("the ticket's ticket.created has not arrived yet")
    found = []
    for audience in audiences:
        recipient = _recipient(audience, event_type, data, view)
        if recipient is not None and recipient["email"]:
            found.append((audience, recipient))
    lead = view.team_lead_email
    covered = agent_away and event_type in AWAY_COVER and found and lead
    if covered and lead.casefold() != found[0][1]["email"].casefold():
        found.append(("lead", {"name": view.team_lead_name, "email": lead}))
    if agent_away and reopens(event_type, data):
        return [(audience, recipient) for audience, recipient in found if audience != "agent"]
    if not found and escalation and event_type in UNHEARD:
        found.append(("desk", {"name": None, "email": escalation}))
    return found


def _recipient(audience: str, event_type: str, data: dict, view: TicketView) -> dict | None:
    if audience == "requester":
        return view.requester
    if event_type == "ticket.assigned":  # the event names its agent (or nobody: the ticket waits in a queue)
        return {"name": data["agent_name"], "email": data["agent_email"]} if data["agent_id"] else None
    if not view.assignment_known:
        raise NotKnownYet("the ticket's ticket.assigned has not arrived yet")
    if audience == "agent":
        return {"name": view.agent["name"], "email": view.agent["email"]} if view.agent else None
    return {"name": view.team_lead_name, "email": view.team_lead_email} if view.team_lead_email else None


# --- one notification: pending -> sent, or failed (retried) -> dead --------------------------------

STATUSES = ("pending", "sent", "failed", "dead")
RELAY_WAIT_MAX = 60.0  # seconds: a notification waiting for the mail relay tries it at least once a minute


def notification_id(event_id: str, channel: str, recipient: str) -> str:
    """The one id of (event, channel, recipient): a redelivered event finds its notification already there."""
    return str(uuid.uuid5(_NAMESPACE, json.dumps([event_id, channel, recipient])))


@dataclass
class Notification:
    id: str
    event_id: str
    event_type: str
    ticket_id: str
    channel: str  # email | webhook
    recipient: str  # an email address, or the webhook's URL
    subject: str | None
    body: str  # the plain-text email, or the envelope POSTed to the webhook
    created_at: datetime
    version: int = 0
    html: str | None = None
    webhook_id: str | None = None
    endpoint: str = "smtp"  # what one slow server holds up: "smtp", or the webhook's host
    status: str = "pending"
    attempts: int = 0
    step: int = 0  # failed attempts since the first send or the last manual retry (the delay to use)
    relay_waits: int = 0  # attempts in a row that found the mail relay unreachable (they do not count in `step`)
    last_error: str | None = None
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None  # None once sent or dead
    correlation_id: str | None = None  # the causing event's: its notification.sent and .failed carry it on
    # a requester's email: the Message-ID (without <>) of the requester's mail that opened the ticket, which the
    # receipt answers and every later email names first in References (mailer.build_email)
    replying_to: str | None = None
    recorded: list = field(default_factory=list, repr=False)

    def succeeded(self, at: datetime) -> None:
        self.status, self.sent_at, self.attempts, self.last_error = "sent", at, self.attempts + 1, None
        self.next_attempt_at, self.relay_waits = None, 0
        self.recorded.append(("notification.sent", self._event_data(None)))

    def relay_down(self, error: str, at: datetime, delays: tuple[float, ...]) -> None:
        """An attempt that found the mail relay unreachable: the relay's outage, not this message's fault.

        A help desk's mail must not die of an outage of its own relay: the notification stays `failed`
        and is tried again, after the delays growing up to RELAY_WAIT_MAX, for as long as the relay is
        down, without using up its retries. A relay that answers and refuses the message still counts.
        """
        self.attempts, self.last_error, self.status = self.attempts + 1, error[:1000], "failed"
        wait = min(delays[min(self.relay_waits, len(delays) - 1)] if delays else RELAY_WAIT_MAX, RELAY_WAIT_MAX)
        self.next_attempt_at, self.relay_waits = at + timedelta(seconds=wait), self.relay_waits + 1

    def failed(self, error: str, at: datetime, delays: tuple[float, ...]) -> None:
        """A failed attempt: again after the next of `delays`, or dead when they are used up."""
        self.attempts, self.last_error, self.relay_waits = self.attempts + 1, error[:1000], 0
        if self.step < len(delays):
            self.status, self.next_attempt_at = "failed", at + timedelta(seconds=delays[self.step])
            self.step += 1
            return
        self.status, self.next_attempt_at = "dead", None
        self.recorded.append(("notification.failed", self._event_data(self.last_error)))

    def retry(self, at: datetime) -> None:
        """An admin's retry of a dead notification: its delays start again."""
        if self.status != "dead":
            raise NotDead(f"Only a dead notification can be retried; this one is {self.status}.")
        self.status, self.step, self.next_attempt_at = "pending", 0, at

    def _event_data(self, error: str | None) -> dict:
        return {
            "notification_id": self.id,
            "channel": self.channel,
            "recipient": self.recipient,
            "event_type": self.event_type,
            "error": error,
        }


class NotDead(Exception):
    """A retry of a notification that is not dead."""
