"""The rules of a ticket as intake keeps it: states, the requester's moves, and what other services' events change.

No I/O here. Events from other services may arrive late, twice or out of order, so every field
they set carries a watermark (the occurred_at of the event that set it) and only a newer event
moves it: nothing goes backwards, and a duplicate changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from shared.events import CLOCKS, DESK_NAME, OPEN_STATUSES
from shared.ordering import newer
from shared.redact import redact_tokens, redact_url, redact_urls
from shared.schemas import ATTACHMENT_MAX_BYTES, ATTACHMENTS_MAX_BYTES

DEFAULT_TOPIC = "general"  # mail that names no topic takes it; never retired
DEFAULT_TOPICS = (
    ("general", "General"),
    ("hardware", "Hardware"),
    ("software", "Software"),
    ("network", "Network & VPN"),
    ("access", "Accounts & access"),
    ("email", "Email"),
)
# What one ticket may hold (a MongoDB document stops at 16 MB, and every read carries the thread): the requester's
# messages stop at these; agents' replies, already accepted by assignment, have room up to twice as much, and one
# past that stays on the timeline only.
MAX_THREAD_ENTRIES = 500
MAX_THREAD_BYTES = 4 * 1024 * 1024  # UTF-8 bytes of the bodies in the thread
REPLY_HEADROOM = 2
SLA_CLOCKS = {  # the ticket's due times, by clock (next_response's added after the contract: the soonest, often)
    "first_response": "first_response_due_at",
    "next_response": "next_response_due_at",
    "resolution": "resolution_due_at",
}
# Changes that leave `updated_at` as it is: sla's bookkeeping of the due times, which follows each step of the work
# (a requester's message starts a clock): the portal tells a requester's answer still unseen by the desk from
# `updated_at`, and search's reindex takes it for the status's time.
UNSTAMPED = ("sla.deadlines_changed",)


class TicketClosed(Exception):
    """A closed ticket takes no more messages."""


MAIL_KEPT_REMEMBERED = 50  # mails kept for the agents a ticket remembers announcing (a mail delivered again: once)
EARLIER_KEPT = 10  # the resolutions a ticket reopened keeps, the newest
REQUESTER_REOPENS = "requester replied"  # the reason of a reopen by the requester's message


class NotResolved(Exception):
    """Only a resolved ticket reopens: a closed one stays closed (a new ticket follows it up)."""


class ThreadFull(Exception):
    """The ticket holds as much as one ticket may: its detail says which limit, and what to do."""


def thread_bytes(thread: list[dict]) -> int:
    return sum(len(entry["body"].encode("utf-8", "surrogatepass")) for entry in thread)


@dataclass
class Ticket:
    id: str
    number: int
    subject: str
    description: str
    requester: dict
    topic: str
    priority: str
    source: str
    created_at: datetime
    updated_at: datetime
    status: str = "new"
    assignee: dict | None = None
    team: str | None = None
    sla: dict = field(default_factory=lambda: {**dict.fromkeys(SLA_CLOCKS.values()), "breached": False})
    thread: list[dict] = field(default_factory=list)
    resolved_at: datetime | None = None
    resolution: str | None = None  # what the agent did, as the requester reads it (kept once closed; none reopened)
    earlier_resolutions: list[dict] = field(default_factory=list)  # {resolution, resolved_at} of each reopen's resolve
    merged_into: int | None = None  # resolved as a duplicate: the number of the request it was merged into
    closed_at: datetime | None = None
    mail_kept: list[str] = field(default_factory=list)  # the newest MAIL_KEPT_REMEMBERED mails announced as kept
    watermarks: dict[str, datetime] = field(default_factory=dict)
    version: int = 0
    recorded: list[tuple[str, dict]] = field(default_factory=list)

    @classmethod
    def open(cls, ticket_id: str, number: int, request: dict, now: datetime) -> Ticket:
        """A new ticket; a token pasted into its subject or description is hidden (`add_message`). `request` may
        hold `mail_message_id` (a ticket opened by mail: its event names the mail, which its receipt answers)."""
        ticket = cls(
            id=ticket_id,
            number=number,
            subject=redact_tokens(request["subject"]),
            description=redact_tokens(request["description"]),
            requester=dict(request["requester"]),
            topic=request["topic"],
            priority=request.get("priority", "normal"),
            source=request.get("source", "web"),
            created_at=now,
            updated_at=now,
        )
        ticket._record(
            "ticket.created",
            {
                "number": number,
                "subject": ticket.subject,
                "description": ticket.description,
                "requester": ticket.requester,
                "topic": ticket.topic,
                "priority": ticket.priority,
                "source": ticket.source,
                **({"mail_message_id": request["mail_message_id"]} if request.get("mail_message_id") else {}),
            },
        )
        return ticket

    # --- the requester's moves -------------------------------------------------------------

    def add_message(
        self, message_id: str, body: str, now: datetime, files: list[str] | None = None, by_mail: bool = False
    ) -> None:
        """The requester writes; on a resolved ticket this reopens it. `files`: the names of the files that come with
        the message (stored apart; its event names them). `by_mail`: it came by mail from the requester's address
        (its entry says `"via": "email"`: the portal takes it as the address proven, as a link followed).

        A token in the body, such as the link of another of the requester's requests pasted in, is hidden: the
        link acts as the requester, and every agent who reads the ticket would hold it (mail's are hidden before).
        """
        body = redact_tokens(body)
        if self.status == "closed":
            raise TicketClosed(self.id)
        if problem := self.thread_full(body):
            raise ThreadFull(problem)
        author = {"type": "requester", "name": self.requester["name"]}
        entry = {"id": message_id, "kind": "message", "author": author, "body": body, "created_at": now}
        self.thread.append({**entry, "via": "email"} if by_mail else entry)
        reopens = self.status == "resolved"
        self._record(
            "ticket.message_added",
            {
                "message_id": message_id,
                "body": body,
                "author": {**author, "email": self.requester["email"]},
                **({"files": list(files)} if files else {}),
                **({"reopens": True} if reopens else {}),  # one email to the agent says both
            },
        )
        if reopens:
            self._reopen(now, who={"message_id": message_id})
        self.updated_at = now

    def keep_mail(self, mail_id: str, why: str, sender: dict, subject: str | None, body: str, files: list[str]) -> bool:
        """A mail about the ticket kept for the agents, not added to the conversation (`why`: events.MAIL_KEPT_WHY):
        its event tells the agent. False when this mail was announced before (a delivery again)."""
        if mail_id in self.mail_kept:
            return False
        self.mail_kept = [*self.mail_kept, mail_id][-MAIL_KEPT_REMEMBERED:]
        data = {"mail_id": mail_id, "why": why, "sender": dict(sender), "body": redact_tokens(body)}
        subject = redact_tokens(subject) if subject else None
        optional = {**({"subject": subject} if subject else {}), **({"files": list(files)} if files else {})}
        self._record("ticket.mail_kept", {**data, **optional})
        return True

    def thread_full(self, body: str, headroom: int = 1) -> str | None:
        """Why one more entry with this body does not fit in the thread (None when it does)."""
        entries, size = MAX_THREAD_ENTRIES * headroom, MAX_THREAD_BYTES * headroom
        if len(self.thread) + 1 > entries:
            return f"The ticket's thread holds its maximum of {entries} entries; open a new ticket to go on."
        if thread_bytes(self.thread) + len(body.encode("utf-8", "surrogatepass")) > size:
            return (
                f"The ticket's thread would exceed its maximum of {size // (1024 * 1024)} MB of text; "
                "open a new ticket to go on."
            )
        return None

    def reopen(self, reason: str, by: str, by_name: str, now: datetime) -> None:
        """An agent or an admin (`by`: the agent's id, or "admin"; `by_name` as people read it) reopens a resolved
        ticket: the requester called, the fix did not hold. NotResolved for any other (a closed one stays closed;
        an open one may be resolved in assignment, which intake has not heard of yet)."""
        if self.status != "resolved":
            raise NotResolved(self.status)
        self._reopen(now, reason, {"by": by, "by_name": by_name})
        self.updated_at = now

    def close(self, by: str, now: datetime) -> bool:
        """Close the ticket; closing a closed ticket changes nothing (and records nothing)."""
        if self.status == "closed":
            return False
        previous = self.status
        self._set_status("closed", now)
        self.closed_at = self.updated_at = now
        merged = {"merged_into": self.merged_into} if self.merged_into else {}  # its close email says where it went
        self._record("ticket.closed", {"by": by, **merged, "previous_status": previous})
        return True

    def due_for_auto_close(self, now: datetime, hours: float) -> bool:
        return (
            self.status == "resolved"
            and self.resolved_at is not None
            and (now - self.resolved_at).total_seconds() >= hours * 3600
        )

    # --- what other services' events change ------------------------------------------------

    def apply(self, event_type: str, data: dict, at: datetime) -> bool:
        """Apply another service's event; returns whether anything changed."""
        apply = _APPLY.get(event_type)
        changed = bool(apply and apply(self, data, at))
        if changed and event_type not in UNSTAMPED:
            self.updated_at = max(self.updated_at, at)
        return changed

    def _assigned(self, data: dict, at: datetime) -> bool:
        changed = False
        queued = data.get("agent_id") is None  # waiting in the team's queue, nobody has it
        if self._newer("assignee", at):
            self.assignee = None if queued else {"agent_id": data["agent_id"], "name": data["agent_name"]}
            self.team = data["team"]
            changed = True
        # queued: it waits for an agent again, whatever it was; assigned: "new" becomes "assigned"
        movable = OPEN_STATUSES if queued else ("new",)
        wanted = "new" if queued else "assigned"
        if self.status in movable and self.status != wanted and self._newer("status", at):
            self.status = wanted
            changed = True
        return changed

    def _status_changed(self, data: dict, at: datetime) -> bool:
        if self.status in ("resolved", "closed") or not self._newer("status", at):
            return False
        self.status = data["status"]
        return True

    def _resolved(self, data: dict, at: datetime) -> bool:
        if self.status == "closed":
            # resolved before the requester closed it, heard after (assignment's resolve and intake's close are two
            # queues): what was done is kept, as sla and search keep it; the ticket stays closed
            before_closing = self.closed_at is not None and at < self.closed_at
            undone = [earlier["resolved_at"] for earlier in self.earlier_resolutions if earlier.get("resolved_at")]
            if not before_closing or any(known >= at for known in [*undone, self.resolved_at] if known is not None):
                return False  # (one a reopen undid, heard again: a reviewer's, it came back after the close)
            self.resolved_at, self.resolution, self.merged_into = at, data.get("resolution"), data.get("merged_into")
            return True
        if not self._newer("status", at):
            return False
        self.status, self.resolved_at, self.resolution = "resolved", at, data.get("resolution")
        self.merged_into = data.get("merged_into")
        written = [e["created_at"] for e in self.thread if e["kind"] == "message" and e["created_at"] > at]
        if written:  # the requester wrote while the resolve was on its way: their message reopens it, as it would have
            self._reopen(max(written))
        return True

    def _replied(self, data: dict, at: datetime) -> bool:
        if any(entry["id"] == data["reply_id"] for entry in self.thread):
            return False
        if self.thread_full(data["body"], REPLY_HEADROOM):  # kept on the timeline; the ticket stays saveable
            return False
        reply = {
            "id": data["reply_id"],
            "kind": "reply",
            "author": {"type": "agent", "name": data["agent_name"]},
            "body": data["body"],
            "created_at": at,
        }
        self.thread.append(reply)
        self.thread.sort(key=lambda entry: entry["created_at"])
        return True

    def _priority_changed(self, data: dict, at: datetime) -> bool:
        if not self._newer("priority", at):
            return False
        self.priority = data["priority"]
        return True

    def _sla(self, data: dict, at: datetime, breached: bool) -> bool:
        changed = False
        due_field = SLA_CLOCKS.get(data["clock"])
        if due_field and not self.sla.get("deadlines_revision") and self._newer(f"sla_{data['clock']}", at):
            self.sla[due_field] = data["due_at"]
            changed = True
        if breached and not self.sla["breached"]:
            self.sla["breached"] = True
            changed = True
        return changed

    def _deadlines(self, data: dict) -> bool:
        """sla.deadlines_changed: the running clocks' deadlines, unless a later revision came first; a warning or
        breach read afterwards leaves them as they are."""
        if data["revision"] <= self.sla.get("deadlines_revision", 0):
            return False
        self.sla.update({due: data[due] for due in SLA_CLOCKS.values()}, deadlines_revision=data["revision"])
        return True

    # --- helpers ----------------------------------------------------------------------------

    def _newer(self, name: str, at: datetime) -> bool:
        return newer(self.watermarks, name, at)

    def _reopen(self, now: datetime, reason: str = REQUESTER_REOPENS, who: dict | None = None) -> None:
        self._set_status("assigned" if self.assignee else "new", now)
        if self.resolution:  # what was tried stays readable (the newest EARLIER_KEPT, oldest first)
            earlier = {"resolution": self.resolution, "resolved_at": self.resolved_at}
            self.earlier_resolutions = [*self.earlier_resolutions, earlier][-EARLIER_KEPT:]
        self.resolved_at = self.resolution = self.merged_into = None
        self._record("ticket.reopened", {"reason": reason, **(who or {})})

    def _set_status(self, status: str, now: datetime) -> None:
        self.status = status
        self.watermarks["status"] = max(now, self.watermarks.get("status", now))

    def _record(self, event_type: str, data: dict) -> None:
        self.recorded.append((event_type, data))


_APPLY = {
    "ticket.assigned": Ticket._assigned,
    "ticket.status_changed": Ticket._status_changed,
    "ticket.resolved": Ticket._resolved,
    "ticket.replied": Ticket._replied,
    "ticket.priority_changed": Ticket._priority_changed,
    "sla.warning": lambda t, d, at: t._sla(d, at, breached=False),
    "sla.breached": lambda t, d, at: t._sla(d, at, breached=True),
    "sla.deadlines_changed": lambda t, d, at: t._deadlines(d),
}


def changes_view(event_type: str) -> bool:
    """Whether another service's event of this type can change intake's view of a ticket."""
    return event_type in _APPLY


def follows_up_words(number: int) -> str:
    """How a follow-up's description starts (a mail answering a closed ticket): it says which closed ticket it
    follows, and finds the follow-up again for the next such mail."""
    return f"(Follows up ticket #{number}, which was closed.)"


def summarize(event_type: str, data: dict) -> str:
    """One line a requester or an agent can read: what happened, and why. A resolve's `data` may carry the
    resolver's `agent_name`, a creation's its `topic_name` (the events have the ids alone: the handler adds the
    names intake knows)."""
    describe = _SUMMARIES.get(event_type)
    try:
        return describe(data) if describe else event_type
    except (KeyError, TypeError):
        return event_type


def _by_whom(data: dict) -> str:
    """Who reopened it: " by Jane Doe" (an agent), " by the help desk" (an admin), "" (the requester's message)."""
    if not data.get("by"):
        return ""
    name = data.get("by_name") or data["by"]
    return f" by {'the help desk' if name == 'The help desk' else name}"


def summarize_for_requester(event_type: str, data: dict) -> str | None:
    """What a requester-scoped reader sees of the event; None: nothing.

    Never an agent's or lead's email, a webhook URL or a delivery error: an email sent says so, not to
    whom; webhook deliveries and failures are left out.
    """
    if event_type == "notification.sent":
        if data.get("channel") != "email" or data.get("event_type") == "ticket.mail_kept":
            return None  # someone else's mail is the agents' to read, and so is the email that tells them of it
        return f"Email about {_about(data['event_type'])} sent"
    if event_type in ("notification.failed", "ticket.mail_kept"):
        return None
    if event_type == "sla.deadlines_changed":
        return None  # the desk's targets, moving at each step of the work: noise on a requester's timeline
    if event_type == "ticket.reopened" and (data.get("by") or data["reason"] != REQUESTER_REOPENS):
        return "Reopened by the help desk"  # an agent's reason is the agents' own
    return summarize(event_type, data)


EVENT_WORDS = {  # what a notification was about, as people say it
    "ticket.created": "the new ticket",
    "ticket.assigned": "the assignment",
    "ticket.replied": "a reply",
    "ticket.message_added": "a requester's message",
    "ticket.status_changed": "a status change",
    "ticket.priority_changed": "a priority change",
    "ticket.resolved": "the resolution",
    "ticket.reopened": "the reopening",
    "ticket.closed": "the closing",
    "ticket.mail_kept": "a mail kept for the agents",
    "sla.warning": "an SLA warning",
    "sla.breached": "an SLA breach",
    "sla.deadlines_changed": "the SLA deadlines",
}


def _about(event_type: str) -> str:
    return EVENT_WORDS.get(event_type, event_type)


def _recipient(data: dict) -> str:
    """Who a notification went to, as agents and admins read it: a webhook's URL without its secrets."""
    return redact_url(data["recipient"]) if data["channel"] == "webhook" else data["recipient"]


def _team(data: dict) -> str:
    """The team by its name, which the event carries since assignment sends it; an older event's by its id."""
    return data.get("team_name") or f"team {data['team']}"


DESK = DESK_NAME  # how assignment's events name an admin who is no agent


def _by(data: dict) -> str:
    """The words " by <who>" when the event names the person who acted (assignment sends `by_name` since it was
    added); none when it does not."""
    by = data.get("by_name")
    return f" by {'the help desk' if by == DESK else by}" if by else ""


def _handed_back(data: dict) -> bool:
    """Whether a transfer took the ticket from its agent into its own team: a hand-back (its agent away), not a
    move to another team, nor a queued ticket's pick tried again."""
    same_team = data.get("previous_team") == data["team"]
    return data.get("reason") == "transfer" and same_team and bool(data.get("previous_agent_id"))


def _assigned_summary(data: dict) -> str:
    if data.get("agent_id") is None:
        if _handed_back(data):
            return f"Handed back to {_team(data)}'s queue{_by(data)}: waiting there"
        if data.get("reason") == "transfer":
            return f"Transferred to {_team(data)}{_by(data)}: waiting in its queue"
        return f"Waiting in {_team(data)}'s queue: nobody is free"
    who = f"{data['agent_name']} ({data.get('team_name') or data['team']})"
    reason = data.get("reason")
    if reason == "auto":
        decision = data.get("decision") or {}
        candidates = decision.get("candidates") or []
        rule = decision.get("rule", "least loaded available agent")
        among = f"{len(candidates)} candidate" + ("" if len(candidates) == 1 else "s")
        return f"Assigned to {who} automatically: {rule}, among {among}"
    if reason == "claim":
        return f"Claimed by {who}"
    if _handed_back(data):
        return f"Handed back to {_team(data)}{_by(data)} and assigned to {who}"
    if reason == "transfer":
        return f"Transferred to {_team(data)}{_by(data)} and assigned to {who}"
    if reason == "reopen":
        if data.get("decision"):  # the previous agent could not take it back: the team's rule chose
            rule = data["decision"].get("rule", "least loaded available agent")
            return f"Assigned to {who} after reopening, automatically ({rule}): the previous agent was not free"
        return f"Back with {who} after reopening"
    before = f" from {data['previous_agent_name']}" if data.get("previous_agent_name") else ""  # intake's name of them
    if reason == "manual" and data.get("by_name") == data["agent_name"]:  # a lead who gave it to themselves
        return f"Taken over{before} by {who}" if data.get("previous_agent_id") else f"Taken by {who}"
    by_hand = (_by(data) or " by a lead or an admin") if reason == "manual" else ""
    return f"Reassigned{before} to {who}{by_hand}" if data.get("previous_agent_id") else f"Assigned to {who}{by_hand}"


def _sla_summary(data: dict, breached: bool) -> str:
    clock = data["clock"].replace("_", " ")
    if breached:
        return f"SLA breached: {clock} target ({data['priority']} priority) was due at {_when(data['due_at'])}"
    return f"SLA warning: {data['percent']:g}% of the {clock} target used (due {_when(data['due_at'])})"


def _deadlines_summary(data: dict) -> str:
    running = [
        f"{clock.replace('_', ' ')} due {_when(data[f'{clock}_due_at'])}"
        for clock in CLOCKS
        if data.get(f"{clock}_due_at") is not None
    ]
    if not running:
        return f"SLA deadlines: no clock running ({data['priority']} priority)"
    if data.get("calendar"):  # moved by new business hours, not by anything done on the ticket
        return f"SLA deadlines moved to the new hours of calendar {data['calendar']}: {', '.join(running)}"
    return f"SLA deadlines ({data['priority']} priority): {', '.join(running)}"


def _when(value) -> str:
    return value.strftime("%-d %b %Y, %H:%M UTC") if isinstance(value, datetime) else str(value)


def _resolved_by(data: dict) -> str:
    """Who resolved, as " by Ada Lovelace": the name the event gives, else the agent's name or id."""
    return _by(data) or " by " + (data.get("agent_name") or _resolver(data["agent_id"]))


def _resolver(agent_id: str | None) -> str:
    """An agent's id as it is; an admin or a script ("admin:boss@example.com") is the help desk: a requester reads
    the timeline too, and never a staff address (section 3)."""
    return agent_id if agent_id and ":" not in agent_id else "the help desk"


_SUMMARIES = {
    "ticket.created": lambda d: (
        f"Ticket #{d['number']} opened by {d['requester']['name']} via {d['source']}: "
        f"{d['subject']} ({d.get('topic_name') or d['topic']}, {d['priority']} priority)"
    ),
    "ticket.message_added": lambda d: f"{d['author']['name']} ({d['author']['type']}) wrote a message",
    "ticket.reopened": lambda d: f"Reopened{_by_whom(d)}: {d['reason']}",
    "ticket.mail_kept": lambda d: (
        f"Mail from {d['sender']['name']} <{d['sender']['email']}> kept for the agents, not added to the "
        + ("conversation: they are not the requester" if d["why"] == "another_sender" else "full conversation")
    ),
    "ticket.closed": lambda d: (
        "Closed by the requester" if d["by"] == "requester" else "Closed automatically after staying resolved"
    ),
    "ticket.assigned": _assigned_summary,
    "ticket.replied": lambda d: f"{d['agent_name']} replied" + (" (first response)" if d.get("first_response") else ""),
    "ticket.status_changed": lambda d: (  # in words: "waiting on requester", not waiting_on_requester
        f"Status changed from {d['previous_status'].replace('_', ' ')} to {d['status'].replace('_', ' ')}{_by(d)}"
    ),
    "ticket.priority_changed": lambda d: f"Priority changed from {d['previous_priority']} to {d['priority']}{_by(d)}",
    "ticket.resolved": lambda d: (
        f"Merged into #{d['merged_into']}{_resolved_by(d)}"
        if d.get("merged_into")  # a duplicate: its resolution says only that, to the requester
        else f"Resolved{_resolved_by(d)}: {d['resolution']}"
    ),
    "sla.warning": lambda d: _sla_summary(d, breached=False),
    "sla.breached": lambda d: _sla_summary(d, breached=True),
    "sla.deadlines_changed": _deadlines_summary,
    "notification.sent": lambda d: (
        f"{d['channel'].capitalize()} about {_about(d['event_type'])} sent to {_recipient(d)}"
    ),
    "notification.failed": lambda d: (
        f"{d['channel'].capitalize()} about {_about(d['event_type'])} to {_recipient(d)} "
        f"failed: {redact_urls(d.get('error') or 'unknown error')}"
    ),
}


# --- attachments ------------------------------------------------------------------------------
# What one attached file, and the files of one mail or one form post together, may weigh (shared.schemas).
# A ticket's attachments live apart from its document (AttachmentStore, BlobStore): no 16 MB limit applies.


def over_the_limits(files: Iterable[tuple[str, int]]) -> tuple[str, str] | None:
    """The first file, by (name, size), that breaks a limit, and which: ("file", name) past ATTACHMENT_MAX_BYTES,
    ("together", name) for the one that takes the files past ATTACHMENTS_MAX_BYTES; None when they all fit."""
    total = 0
    for name, size in files:
        if size > ATTACHMENT_MAX_BYTES:
            return "file", name
        total += size
        if total > ATTACHMENTS_MAX_BYTES:
            return "together", name
    return None


def mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"
