"""A ticket as search knows it, learnt from events only: what the engine indexes, and whose it is.

Events of one ticket may come late, twice or out of order. Each part of the document keeps the time of the
newest event that set it (`watermarks`), so an older event never takes it back; messages and replies are kept
by their ids, so a repeated one is not added twice; a closed ticket stays closed. Internal notes reach no
event (assignment keeps them), so none can reach the document: what is indexed is the subject, the
description, the requester's messages, the agents' public replies and the resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.events import OPEN_STATUSES, format_time
from shared.topology import SUBSCRIPTIONS

# the ticket events search subscribes to (shared.topology): what a ticket's words are, its status, team and agent
INDEXED_EVENTS = tuple(kind for kind in SUBSCRIPTIONS["search"] if kind.startswith("ticket."))


@dataclass
class TicketDoc:
    id: str
    version: int = 0
    number: int | None = None  # None until ticket.created arrives: not indexed before
    subject: str = ""
    description: str = ""
    requester_email: str | None = None
    requester_name: str | None = None  # found by name in a search (a document learnt before it: none)
    messages: list[dict] = field(default_factory=list)  # {id, body, at}, oldest first
    resolution: str | None = None
    status: str = "new"
    team: str | None = None
    agent_id: str | None = None
    created_at: datetime | None = None
    resolved_at: datetime | None = None
    watermarks: dict = field(default_factory=dict)  # part -> occurred_at of the newest event that set it
    updated_at: datetime | None = None  # when search last changed it (reindex catches up from such a time)

    @property
    def indexable(self) -> bool:
        return self.number is not None

    def apply(self, event_type: str, data: dict, at: datetime) -> bool:
        """Learn what the event says; whether anything changed."""
        learn = _LEARN.get(event_type)
        return bool(learn and learn(self, data, at))

    def document(self) -> dict:
        """The engine's document (services/search/engine.py)."""
        return {
            "ticket_id": self.id,
            "number": self.number,
            "subject": self.subject,
            "description": self.description,
            "messages": [m["body"] for m in self.messages],
            "resolution": self.resolution,
            "status": self.status,
            "team": self.team,
            "requester_email": self.requester_email,
            "requester_name": self.requester_name,
            "agent_id": self.agent_id,
            "created_at": format_time(self.created_at) if self.created_at else None,
            "resolved_at": format_time(self.resolved_at) if self.resolved_at else None,
        }

    # --- one function per event ---------------------------------------------------------------

    def _created(self, data: dict, at: datetime) -> bool:
        if self.number is not None:
            return False
        self.number, self.subject, self.description = data["number"], data["subject"], data["description"]
        self.requester_email = data["requester"]["email"].strip().lower()
        self.requester_name = data["requester"].get("name") or None
        self.created_at = at
        return True

    def _message(self, message_id: str, body: str, at: datetime) -> bool:
        if any(m["id"] == message_id for m in self.messages):
            return False
        self.messages.append({"id": message_id, "body": body, "at": at})
        self.messages.sort(key=lambda m: m["at"])
        return True

    def _assigned(self, data: dict, at: datetime) -> bool:
        changed = False
        if self._newer("assignee", at):
            self.team, self.agent_id = data["team"], data.get("agent_id")
            changed = True
        queued = data.get("agent_id") is None  # back in the team's queue: waiting for an agent again
        wanted, movable = ("new", OPEN_STATUSES) if queued else ("assigned", ("new",))
        if self.status in movable and self.status != wanted and self._newer("status", at):
            self.status, changed = wanted, True
        return changed

    def _status_changed(self, data: dict, at: datetime) -> bool:
        if self.status == "closed" or not self._newer("status", at):
            return False
        self.status = data["status"]
        return True

    def _resolved(self, data: dict, at: datetime) -> bool:
        changed = False
        if self._newer("resolution", at):
            if self.resolution and self.resolved_at and self.resolved_at != at:  # an earlier one, whose reopen comes
                # later (two services' events): its words stay findable, as in order (they were lost: a race hunter's)
                self._message(earlier_resolution_id(self.resolved_at), self.resolution, self.resolved_at)
            self.resolution, self.resolved_at, changed = data["resolution"], at, True
        elif self.resolved_at != at:  # came after a newer reopen or resolve: an earlier resolution, still words of it
            changed = self._message(earlier_resolution_id(at), data["resolution"], at)
        if self.status != "closed" and self._newer("status", at):
            self.status, changed = "resolved", True
        return changed

    def _reopened(self, data: dict, at: datetime) -> bool:
        """Open again; its resolution did not hold, so, as in intake, it has none: "similar resolved tickets" never
        offers what failed as what was done (a ticket closed with none is left out there), and a reindex from
        intake's tickets finds the same. What was tried stays findable: the earlier resolution joins the thread's
        words (as intake keeps it in `earlier_resolutions`), as do words of it an agent wrote in a reply."""
        changed = False
        if self._newer("resolution", at):  # a reopen after the resolution (a late, older one changes nothing)
            changed = self.resolution is not None or self.resolved_at is not None
            if self.resolution and self.resolved_at:
                self._message(earlier_resolution_id(self.resolved_at), self.resolution, self.resolved_at)
            self.resolution = self.resolved_at = None
        if self.status != "closed" and self._newer("status", at):
            self.status, changed = "assigned" if self.agent_id else "new", True
        return changed

    def _closed(self, data: dict, at: datetime) -> bool:
        if self.status == "closed":
            return False
        self.status = "closed"  # for good: nothing reopens a closed ticket
        self.watermarks["status"] = max(at, self.watermarks.get("status", at))
        return True

    def learn_whole(self, whole: TicketDoc) -> bool:
        """A reindex's import of the ticket from intake (`whole`) into this document, which events began before
        its ticket.created came (not indexable: a reindex that skipped it left the ticket unfindable, a race
        hunter's find): what it lacks, the messages it lacks, and each part newer there than here."""
        if self.number is not None:
            return False
        self.number, self.subject, self.description = whole.number, whole.subject, whole.description
        self.requester_email, self.requester_name, self.created_at = (
            whole.requester_email, whole.requester_name, whole.created_at,
        )  # fmt: skip
        for message in whole.messages:
            self._message(message["id"], message["body"], message["at"])
        if self._newer("assignee", whole.watermarks["assignee"]):
            self.team, self.agent_id = whole.team, whole.agent_id
        if self.status != "closed" and self._newer("status", whole.watermarks["status"]):
            self.status = whole.status
        if self._newer("resolution", whole.watermarks["resolution"]):
            self.resolution, self.resolved_at = whole.resolution, whole.resolved_at
        return True

    def _newer(self, part: str, at: datetime) -> bool:
        """Whether an event at `at` is newer than what set `part`; if so, it sets it now."""
        seen = self.watermarks.get(part)
        if seen is not None and seen >= at:
            return False
        self.watermarks[part] = at
        return True


def earlier_resolution_id(resolved_at: datetime) -> str:
    """The thread's id of a resolution that a reopen set aside (one a resolve: its time), so a repeat adds none."""
    return f"resolution-{format_time(resolved_at)}"


_LEARN = {
    "ticket.created": TicketDoc._created,
    "ticket.message_added": lambda doc, data, at: doc._message(data["message_id"], data["body"], at),
    "ticket.replied": lambda doc, data, at: doc._message(data["reply_id"], data["body"], at),
    "ticket.assigned": TicketDoc._assigned,
    "ticket.status_changed": TicketDoc._status_changed,
    "ticket.resolved": TicketDoc._resolved,
    "ticket.reopened": TicketDoc._reopened,
    "ticket.closed": TicketDoc._closed,
}


# --- what "similar resolved tickets" shows ---------------------------------------------------------

SIMILAR_SPARE = 5  # candidates fetched beyond `limit`, for the repeats similar_places leaves out


def similar_places(docs: list[dict], order: list[tuple[int, float]], limit: int) -> list[tuple[int, float]]:
    """The (position, score) pairs of `order` that take a place in similar's answer, in that order, up to `limit`.
    A ticket with the subject and the resolution of one before it is left out: the same thing fixed the same way
    again takes no second place (the first is the better match). A ticket closed without a resolution (its
    requester closed it first) is left out too: the panel is what was done before, and nothing says what was."""
    places, seen = [], set()
    for i, score in order:
        same = tuple(" ".join((docs[i].get(name) or "").casefold().split()) for name in ("subject", "resolution"))
        if same[1] and same in seen or not same[1] and docs[i].get("status") == "closed":
            continue
        seen.add(same)
        places.append((i, score))
        if len(places) == limit:
            break
    return places
