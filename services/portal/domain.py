"""The portal's rules: accounts and passwords, sign-in lockout, what people read in words, collisions.

No flask, no HTTP, no database here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from shared.events import (
    format_time,
    parse_time,
)
from shared.schemas import ATTACHMENT_MAX_BYTES, ATTACHMENTS_MAX_BYTES, hidden_character

ROLES = ("agent", "admin")
PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # argon2 hashes anything, but a megabyte password is a denial of service
MAX_FAILURES = 5  # failed sign-ins for one email within FAILURE_WINDOW lock it for LOCK_TIME
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_TIME = timedelta(minutes=15)
PRESENCE_SECONDS = 30  # an agent who has a ticket open polls every few seconds; gone after this long
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LABEL = re.compile(r"^[^.\s@]+$")


def email_ok(email: str) -> bool:
    """An address mail can go to, as the services check it: one @, a local part of at most 64 characters, a
    domain of dot-separated labels none of them empty ("example..com" is not one), 254 characters in all."""
    if not EMAIL.match(email or "") or len(email) > 254:
        return False
    local, domain = email.rsplit("@", 1)
    return (
        len(local) <= 64
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and all(_LABEL.match(label) for label in domain.split("."))
    )


QUERY_MAX = 500  # search's own limit on q: longer is answered next to the field before any call

AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NAMED_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # a team's or help topic's id, as assignment and intake take it
NAMED_ID_RULE = "Use 1 to 40 lowercase letters, digits, - or _."  # and say it

# Status in words for the requester (the service's status names are for machines)
REQUESTER_STATUS = {
    "new": ("Received", "We have your request; it is waiting for an agent."),
    "assigned": ("With an agent", "An agent has your request and will answer soon."),
    "in_progress": ("Being worked on", "An agent is working on your request."),
    "waiting_on_requester": ("Waiting for your reply", "The agent is waiting to hear from you: reply below."),
    "resolved": ("Resolved", "We think this is solved. Not so? Reply below and we will reopen it."),
    "closed": ("Closed", "This request is closed. Open a new one if you need more help."),
}
AGENT_STATUS = {
    "new": "New",
    "assigned": "Assigned",
    "in_progress": "In progress",
    "waiting_on_requester": "Waiting on requester",
    "resolved": "Resolved",
    "closed": "Closed",
}
WORKING_STATUSES = ("in_progress", "waiting_on_requester")  # what an agent sets (_forms.html's status_choices)
OPEN_STATUS = {status: words for status, words in AGENT_STATUS.items() if status not in ("resolved", "closed")}
CLOCK_NAMES = {"first_response": "First response", "next_response": "Next response", "resolution": "Resolution"}
CLOCK_STATES = {
    "running": "Running",
    "paused": "Paused (waiting on the requester)",
    "met": "Met",
    "breached": "Breached",
    "stopped": "Stopped",
}


def clock_state_words(clock: dict) -> str:
    """A clock's state in words; a stopped one (resolved or closed) says whether it stopped within its target, a met
    one whether it was met late (as the reports count it: breached)."""
    state = clock.get("state")
    if state == "stopped":
        return "Stopped after its breach" if clock.get("breached_at") else "Stopped within its target"
    if state == "met" and clock.get("breached_at"):
        return "Met late, after its breach"
    if paused_after_breach(clock):
        return "Breached, then paused (waiting on the requester)"
    return CLOCK_STATES.get(state, state)


def counting(clock: dict) -> bool:
    """Whether the clock's time runs now (running, or breached and running): its due time says when it breaches."""
    return clock.get("state") in ("running", "breached") and not paused_after_breach(clock)


def paused_after_breach(clock: dict) -> bool:
    """A clock past its target that waits on the requester: sla says `breached` (its state while it is still
    active), with no due time while it does not count."""
    return clock.get("state") == "breached" and not clock.get("due_at")


def clock_look(clock: dict) -> str:
    """The state a clock is drawn as: a clock met or stopped after its breach looks breached, not met."""
    state = clock.get("state")
    return "breached" if state in ("met", "stopped") and clock.get("breached_at") else state


def deadline(clocks: dict, at: datetime | None = None) -> dict:
    """The soonest due time of the clocks still counting (running, or breached and running) and its time left as of
    `at` (`deadline_left`, in words; None without `at`); whether one of them is breached, paused or not
    (`breached`), else which clock was breached before it was met or paused (`missed`: its name, the first such;
    None); and, when nothing counts, whether a clock waits on the requester (`paused`)."""
    known = {name: clock for name, clock in clocks.items() if clock}
    due = {
        name: parse_time(clock["due_at"]) for name, clock in known.items() if counting(clock) and clock.get("due_at")
    }
    breached = any(clock.get("state") == "breached" for clock in known.values())
    missed = next((CLOCK_NAMES.get(name, name) for name, clock in known.items() if clock.get("breached_at")), None)
    waiting = any(clock.get("state") == "paused" or paused_after_breach(clock) for clock in known.values())
    paused = not due and waiting
    left = None
    if due and at is not None:  # the soonest's time left, as the ticket's page says it (the queue, by its due time)
        soonest = min(due, key=due.get)
        clock = known[soonest]
        if due[soonest] < at or clock.get("breached_at"):  # past it: since when (sla's time left stops at 0: it
            # read "under a minute left"; a clock that resumed after its breach is due at its resume: a review's; at
            # its very moment it is still in time, as sla counts it)
            passed = parse_time(clock["breached_at"]) if clock.get("breached_at") else due[soonest]
            left = remaining_words(-(at - passed).total_seconds())
        elif clock.get("remaining_seconds") is not None:
            business = " (business time)" if counts_business_time(clock, at) else ""
            left = remaining_words(clock["remaining_seconds"]) + business
    return {**_soonest(due), "breached": breached, "missed": None if breached else missed, "paused": paused,
            "deadline_left": left}  # fmt: skip


def copied_deadline(row: dict) -> dict:
    """What assignment's copy says (sla.deadlines_changed, a moment behind sla's own): a due time, or none."""
    sla = row.get("sla") or {}
    first = sla.get("first_response_due_at") if not row.get("first_response_at") else None
    copied = {"first_response": first, "next_response": sla.get("next_response_due_at"),
              "resolution": sla.get("resolution_due_at")}  # fmt: skip
    due = {name: parse_time(value) for name, value in copied.items() if value}
    # the copy says neither whether a breach is past nor whether a clock waits: as `deadline` says "not known"
    return {**_soonest(due), "breached": bool(sla.get("breached")), "missed": None, "paused": False,
            "deadline_left": None}  # fmt: skip


def _soonest(due: dict[str, datetime]) -> dict:
    """The soonest of the clocks' due times (`deadline`) and which target it is (`deadline_clock`: a reply, or the
    fix), or None for both."""
    soonest = min(due, key=due.get) if due else None
    return {"deadline": format_time(due[soonest]) if soonest else None,
            "deadline_clock": CLOCK_NAMES.get(soonest, soonest) if soonest else None}  # fmt: skip


RATINGS = {"good": "Good, I am satisfied", "bad": "Bad, I am not satisfied"}  # what a requester rates a resolution
RATING_COMMENT_MAX = 2000
RATABLE = ("resolved", "closed")


def led_not_joined(teams: object, leads: object) -> list[str]:
    """The teams an agent's form has it lead but not be in: an agent leads only teams it is in (assignment's rule,
    which it checks only once the rest of the form is right; the portal says it with the form's other problems).
    Empty when either is not a list (assignment says what is wrong with it)."""
    if not isinstance(teams, list) or not isinstance(leads, list):
        return []
    return [team for team in leads if team not in teams]


def led_not_joined_words(outside: list[str], names: dict[str, str]) -> str:
    said = ", ".join(names.get(team) or team for team in outside)
    return f"An agent leads only teams it is in: tick {said} under Teams too, or untick it here."


def ratable(ticket: dict) -> bool:
    """Whether the requester is asked how the request was handled: once it is resolved, or closed after the help
    desk worked on it (a resolution, one from before it was reopened, or an agent's reply). One its requester
    closed before anyone answered was not handled: there is nothing to rate."""
    if ticket.get("status") not in RATABLE or merged(ticket):
        return False  # a duplicate merged into another request: that one is rated
    thread = ticket.get("thread") or []
    answered = any(((entry or {}).get("author") or {}).get("type") == "agent" for entry in thread)
    resolved_before = bool(ticket.get("earlier_resolutions"))  # resolved, reopened, then closed: it was worked on
    return ticket["status"] == "resolved" or bool(ticket.get("resolution")) or resolved_before or answered


def rated_earlier(rating: dict | None, ticket: dict) -> bool:
    """Whether the requester's rating was given before the ticket's latest resolution (reopened and resolved again
    since): the page asks about this one, saying which the rating it has was about."""
    if not rating or not rating.get("rated_at") or not ticket.get("resolved_at"):
        return False
    at = rating["rated_at"] if rating["rated_at"].tzinfo else rating["rated_at"].replace(tzinfo=UTC)
    return at < parse_time(ticket["resolved_at"])


def rating_problems(rating: str, comment: str, ticket: dict) -> dict[str, list[str]]:
    """What is wrong with a requester's rating as sent (empty: nothing)."""
    if ticket.get("status") not in RATABLE:
        return {"rating": ["You can rate your request once it is resolved."]}
    if merged(ticket):
        return {"rating": ["This request was merged into another of yours: rate that one."]}
    if not ratable(ticket):
        return {"rating": ["This request was closed before anyone worked on it: there is nothing to rate."]}
    problems: dict[str, list[str]] = {}
    if rating not in RATINGS:
        problems["rating"] = ["Choose Good or Bad."]
    if len(comment) > RATING_COMMENT_MAX:
        problems["comment"] = [f"Keep your comment to {RATING_COMMENT_MAX:,} characters (it has {len(comment):,})."]
    return problems


SAVED_REPLY_TITLE_MAX, SAVED_REPLY_BODY_MAX = 100, 20000  # a reply's body is sent as the API takes one
SAVED_REPLIES_MAX = 500  # a list an agent picks from on every ticket page
SAVED_REPLY_FIELDS = {  # what a saved reply may say, filled in from the ticket it is inserted into
    "{requester_name}": "the requester's name",
    "{requester_first_name}": "the first word of it",
    "{ticket_number}": "the ticket's number",
    "{ticket_subject}": "its subject",
    "{agent_name}": "the name of the agent who inserts it",
}
_SAVED_REPLY_FIELD = re.compile(r"\{[^{}\s]+\}")  # any {word}: a misspelt field is said, not sent as typed
_FIELD_NAMES = "|".join(name.strip("{}") for name in SAVED_REPLY_FIELDS)
_UNCLOSED_FIELD = re.compile(rf"\{{({_FIELD_NAMES})(?!\}})")  # "{requester_name" and no "}": other braces are text
_DOUBLED_FIELD = re.compile(rf"\{{\{{({_FIELD_NAMES})\}}|\{{({_FIELD_NAMES})\}}\}}")  # "{{ticket_number}}"


def saved_reply_problems(title: str, body: str) -> dict[str, list[str]]:
    """What is wrong with a saved reply as typed (empty: nothing)."""
    problems: dict[str, list[str]] = {}
    if not title.strip():
        problems["title"] = ["Enter a title, like “Password reset: how to”."]
    elif len(title) > SAVED_REPLY_TITLE_MAX:
        problems["title"] = [f"Keep the title to {SAVED_REPLY_TITLE_MAX} characters (it has {len(title)})."]
    if not body.strip():
        problems["body"] = ["Enter the reply's text."]
    elif len(body) > SAVED_REPLY_BODY_MAX:
        problems["body"] = [f"Keep the reply to {SAVED_REPLY_BODY_MAX:,} characters (it has {len(body):,})."]
    if "body" not in problems and (wrong := _field_problems(body)):
        problems["body"] = wrong
    return problems


def _field_problems(body: str) -> list[str]:
    """What is wrong with the fields a saved reply's text names, each kind of mistake said at once: it would reach
    requesters as typed."""
    said = []
    doubled = _DOUBLED_FIELD.search(body)
    inner = _DOUBLED_FIELD.sub(lambda found: "", body)  # "{{ticket_number}}" is said as doubled, not as unknown
    unknown = sorted({f for f in _SAVED_REPLY_FIELD.findall(inner) if f not in SAVED_REPLY_FIELDS})
    if unknown:
        known = ", ".join(SAVED_REPLY_FIELDS)
        said.append(f"Unknown {'field' if len(unknown) == 1 else 'fields'} {', '.join(unknown)}: use {known}.")
    if doubled:
        said.append("Put one pair of braces around a field, like {requester_first_name}.")
    said += [f"“{found}” needs its closing brace: {found}}}." for found in _unclosed(body)]
    return said


def _unclosed(body: str) -> list[str]:
    return list(dict.fromkeys(found.group() for found in _UNCLOSED_FIELD.finditer(body)))


def fill_saved_reply(body: str, ticket: dict, agent_name: str) -> str:
    """The saved reply's text with its fields filled in from the ticket (an unknown one stays as written)."""
    name = ((ticket.get("requester") or {}).get("name") or "").strip()
    values = {
        "{requester_name}": name,
        "{requester_first_name}": name.split()[0] if name else "",
        "{ticket_number}": str(ticket.get("number") or ""),
        "{ticket_subject}": ticket.get("subject") or "",
        "{agent_name}": agent_name,
    }
    return _SAVED_REPLY_FIELD.sub(lambda found: values.get(found.group(), found.group()), body)


def requester_view_digest(ticket: dict, attachments: list[dict]) -> str:
    """A short digest of what the requester's page of a ticket shows: it changes when anything on it would."""
    shown = [
        requester_status_words(ticket),  # the status, and whether an agent has it ("Waiting for an agent")
        ticket.get("resolution"),
        (ticket.get("earlier_resolutions") or [])[-1:],  # what was tried, once reopened (the status may be the same)
        [entry.get("id") for entry in ticket.get("thread") or []],
        sorted(a.get("id") or "" for a in attachments),
    ]
    return hashlib.sha256(repr(shown).encode()).hexdigest()[:16]


MERGED_WORDS = ("Merged", "This is the same as another of your requests, where we go on: see below which.")
UNASSIGNED_AT_WORK = (
    "Waiting for an agent",
    "The help desk has your request and what you added; an agent will take it on.",
)


def requester_status_words(ticket: dict) -> tuple[str, str]:
    """A ticket's status as requesters read it, (title, explanation): "Being worked on" only when an agent has
    it (a reply to one in the team's queue moves it to in progress with nobody on it yet)."""
    status = shown_status(ticket)
    if status == "in_progress" and "assignee" in ticket and not ticket.get("assignee"):
        return UNASSIGNED_AT_WORK
    if status == "resolved" and merged(ticket):
        return MERGED_WORDS
    return REQUESTER_STATUS.get(status, (status or "", ""))


def shown_status(ticket: dict) -> str:
    """The status the requester's pages go by: waiting on the requester who wrote last, since anything else changed
    the ticket, is in progress already (the page right after their message, before assignment's status change
    reaches intake). A wait an agent set after the message (a call, a note) stays a wait."""
    status = ticket.get("status") or ""
    last = (ticket.get("thread") or [{}])[-1]
    if status != "waiting_on_requester" or (last.get("author") or {}).get("type") != "requester":
        return status
    try:
        answered = parse_time(last["created_at"]) >= parse_time(ticket["updated_at"])
    except (KeyError, TypeError, ValueError):  # a ticket without its times: as intake says it
        return status
    return "in_progress" if answered else status


def requester_update_words(ticket: dict, thread_seen: int, status_seen: str) -> str:
    """What the requester is told when their open page updates itself (read out by screen readers)."""
    thread = ticket.get("thread") or []
    new = thread[thread_seen:] if 0 <= thread_seen <= len(thread) else []
    replied = any((entry.get("author") or {}).get("type") != "requester" for entry in new)
    title = requester_status_words(ticket)[0]
    moved = shown_status(ticket) != status_seen
    if replied and moved:
        return f"The help desk replied, and the status changed to “{title}”."
    if replied:
        return "The help desk replied: the conversation below is up to date."
    if moved:
        return f"The status changed to “{title}”."
    return "This request was updated."


MAIL_OUTCOMES = {  # intake's outcome of an inbound mail -> what the pages call it
    "ticket": "Opened a ticket",
    "message": "Added to a ticket",
    "kept": "Kept for people to read",
    "ignored": "Automatic: nothing done",
    "refused": "Refused (too big)",
}


def policy_oddities(policy: dict) -> list[str]:
    """What in an SLA policy (or a draft) is allowed but likely a slip: a response target at or past the
    resolution's. Nothing while a number is one sla refuses (words, a target not above 0, a warning not a whole
    percent from 1 to 99, or one given twice): those are said next to their fields first, and a slip is asked
    about once the numbers will do."""
    targets = [policy.get(name) for name in ("first_response_minutes", "next_response_minutes", "resolution_minutes")]
    warnings = policy.get("warn_at_percent") or []
    if not all(_number(minutes) and minutes > 0 for minutes in targets):
        return []
    whole = [percent for percent in warnings if isinstance(percent, int) and not isinstance(percent, bool)]
    if len(whole) != len(warnings) or len(set(whole)) != len(whole) or not all(1 <= p <= 99 for p in whole):
        return []  # sla takes whole, distinct percents from 1 to 99
    resolution, said = policy["resolution_minutes"], []
    for name, words in (("first_response_minutes", "first response"), ("next_response_minutes", "next response")):
        minutes = policy[name]
        if minutes >= resolution:
            said.append(
                f"The {words} target ({minutes:g} min) is not shorter than the resolution target "
                f"({resolution:g} min): a ticket nobody answers breaches its resolution first."
            )
    return said


def team_takers(team: dict, disabled: dict) -> list[dict]:
    """A team's agents who take its tickets now: available, their account not disabled (`disabled`: the agents
    whose accounts are, store.disabled_agent_ids)."""
    return [agent for agent in team.get("members") or [] if agent.get("available") and agent["id"] not in disabled]


def oddities_digest(oddities: list[str]) -> str:
    """What a "Save anyway" button carries: the slips it was shown, as a short digest."""
    return hashlib.sha256("\n".join(oddities).encode()).hexdigest()[:16]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def password_problems(password: str) -> list[str]:
    """What is wrong with a new password (empty: it will do)."""
    if len(password) < PASSWORD_MIN:
        return [f"Use at least {PASSWORD_MIN} characters."]
    if len(password) > PASSWORD_MAX:
        return [f"Use at most {PASSWORD_MAX} characters."]
    if not password.strip():
        return ["Use something other than spaces."]
    return []


def account_problems(email: str, role: str, agent_id: str | None) -> dict[str, list[str]]:
    """Field errors of a new account (empty: valid)."""
    errors: dict[str, list[str]] = {}
    if not email_ok(email or ""):
        errors["email"] = ["Enter an email address like jane@example.com."]
    if role not in ROLES:
        errors["role"] = [f"Choose one of {', '.join(ROLES)}."]
    if role == "agent" and not agent_id:
        errors["agent_id"] = ["An agent account needs the agent's id in assignment (like jane)."]
    elif agent_id and not AGENT_ID.match(agent_id):
        errors["agent_id"] = ["Use lowercase letters, digits, '.', '_' or '-' (like jane)."]
    return errors


MESSAGE_MAX = 20000  # a requester's message, as intake takes it (MessageCreateSchema)
TICKET_FIELDS = (  # (field, label, longest): the requester's form
    ("name", "your name", 200),
    ("email", "your email address", 254),
    ("subject", "a subject", 200),
    ("description", "a description", 20000),
)


def ticket_form_problems(fields: dict[str, str], topics: set[str]) -> dict[str, list[str]]:
    """Field errors of the requester's form, in words a person acts on (empty: valid)."""
    errors: dict[str, list[str]] = {}
    for name, label, longest in TICKET_FIELDS:
        value = fields.get(name, "")
        if not value:
            errors[name] = [f"Enter {label}."]
        elif len(value) > longest:
            errors[name] = [f"Use at most {longest:,} characters (you have {len(value):,})."]
    if "email" not in errors and not email_ok(fields["email"]):
        errors["email"] = ["Enter an email address like ana@example.com."]
    if not fields.get("topic"):
        errors["topic"] = ["Choose what your request is about."]
    elif fields["topic"] not in topics:  # retired while the form was open
        errors["topic"] = ["That choice is no longer offered: choose what your request is about again."]
    return errors


def locked_until(failures: list[datetime], now: datetime) -> datetime | None:
    """When sign-in opens again for an email with these failed attempts; None when it is open now.

    MAX_FAILURES within FAILURE_WINDOW lock the email for LOCK_TIME from the last of them.
    """
    recent = sorted(at for at in failures if at > now - FAILURE_WINDOW - LOCK_TIME)
    for start in range(len(recent) - MAX_FAILURES + 1):
        burst = recent[start : start + MAX_FAILURES]
        if burst[-1] - burst[0] <= FAILURE_WINDOW and burst[-1] + LOCK_TIME > now:
            return burst[-1] + LOCK_TIME
    return None


ALWAYS_CALENDAR = "24x7"  # sla's built-in calendar: every hour counts


def counts_business_time(clock: dict, at: datetime) -> bool:
    """Whether a running clock's time left is business time that differs from the time to its deadline (a calendar
    with hours): "(business time)" says so. Under 24x7 (sla names a clock's calendar) the two agree, and saying it
    would only puzzle; a paused clock's time left, under a calendar with hours, is business time whatever its
    deadline."""
    if clock.get("calendar") == ALWAYS_CALENDAR:
        return False
    if clock.get("state") != "running":
        return True
    try:
        wall = (parse_time(clock["due_at"]) - at).total_seconds()
        return abs(wall - float(clock["remaining_seconds"])) > 60
    except (KeyError, TypeError, ValueError):
        return True


def remaining_words(seconds: float | None) -> str:
    """Business time left (or over) in words: 2 h 05 min left, 12 min overdue, 40 h left. In hours however many:
    a day of it would read as a calendar day ("1 d" left of an 8-hour office's 24 hours is three days away)."""
    if seconds is None:
        return "no target"
    late = seconds < 0
    minutes = int(abs(seconds) // 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        text = f"{hours:,} h"
    elif hours:
        text = f"{hours} h {minutes:02d} min"
    else:
        text = f"{minutes} min" if minutes else "under a minute"
    return f"{text} overdue" if late else f"{text} left"


@dataclass(frozen=True)
class Snapshot:
    """What an agent saw when opening a ticket: enough to tell what changed since, and who changed it."""

    thread: int = 0
    notes: int = 0
    history: int = 0
    status: str = ""
    agent_id: str | None = None
    priority: str = ""

    def encode(self) -> str:
        return "|".join(  # "|": agent ids may hold dots
            [str(self.thread), str(self.notes), str(self.history), self.status, self.agent_id or "-", self.priority]
        )

    @classmethod
    def decode(cls, text: str | None) -> Snapshot | None:
        parts = (text or "").split("|")
        if len(parts) != 6 or not all(p.isascii() and p.isdigit() for p in parts[:3]):
            return None
        thread, notes, history, status, agent_id, priority = parts
        return cls(int(thread), int(notes), int(history), status, None if agent_id == "-" else agent_id, priority)


@dataclass
class TicketView:
    """A ticket as the console shows it: intake's record and thread, assignment's notes and history."""

    ticket: dict
    work: dict = field(default_factory=dict)  # assignment's view: notes, history, agent, team
    attachments: list[dict] = field(default_factory=list)  # intake's list of the ticket's files

    def snapshot(self) -> Snapshot:
        return Snapshot(
            thread=len(self.ticket.get("thread") or []),
            notes=len(self.work.get("notes") or []),
            history=len(self.work.get("history") or []),
            status=self.work.get("status") or self.ticket.get("status", ""),
            agent_id=self.work.get("agent_id"),
            priority=self.work.get("priority") or self.ticket.get("priority", ""),
        )

    def changes_since(
        self, seen: Snapshot, me: str | None, names: dict[str, str] | None = None, teams: dict[str, str] | None = None
    ) -> list[str]:
        """What changed since `seen`, in words, oldest first; `me`: the reader as the histories record them (an agent's
        id, an admin who is no agent "admin:<address>"); `names`: agents' names by id, `teams` teams'.

        The agent's own doings count only where they change what a reply would say (a reply, a resolve, a status,
        a hand-over: OWN_CHANGES), said as theirs from elsewhere: every action reloads its own page, so a doing of
        theirs that the page has not seen was done in another tab or window (a reply sent twice, unawares), or by a
        send whose answer was lost (the error page, then Back and Send again: it may have gone through)."""
        changes = [
            f"{(entry.get('author') or {}).get('name') or 'The requester'} (requester) wrote a new message"
            for entry in (self.ticket.get("thread") or [])[seen.thread :]
            if entry.get("kind") == "message"
        ]
        previous: dict = {}
        for entry in (self.work.get("history") or [])[seen.history :]:
            if me is None or entry.get("by") != me:
                changes.append(history_words(entry, names, teams))
            elif entry.get("action") in OWN_CHANGES and not _part_of_reply(entry, previous):
                changes.append(f"You, in another tab or window or an earlier try: {done_words(entry, names, teams)}")
            previous = entry
        return changes


HISTORY_WORDS = {
    "claimed": "claimed it",
    "assigned": "assigned it to {to}",
    "queued": "put it back in the team queue",
    "transferred": "transferred it to team {to}",
    "handed_back": "handed it back to team {to}",
    "replied": "replied to the requester",
    "noted": "added an internal note",
    "status_changed": "set the status to {to_words}",
    "priority_changed": "set the priority to {to}",
    "resolved": "resolved it",
    "reopened": "reopened it",
    "closed": "closed it",
}


# The agent's own doings that a page which has not seen them tells of (changes_since): not a note or a claim, and
# none that assignment learns from an event (a reopen, a close), which the agent's own page may read before them.
OWN_CHANGES = frozenset({"replied", "resolved", "status_changed", "transferred", "assigned", "queued"})

SYSTEM_ACTORS = ("system", "assignment", "auto")  # assignment's automatic moves; intake's auto-close


def who_words(by: str | None, names: dict[str, str] | None = None) -> str:
    """Who did something, as agents read it: an agent's name (`names`: by id; else the id as it is), "an admin" for
    an admin who is no agent (whose actor is "admin:<their address>"), "the requester", "the system" for the
    services' own moves."""
    if not by or by in SYSTEM_ACTORS:
        return "the system"
    if by == "requester":
        return "the requester"
    return "an admin" if by.startswith("admin:") else (names or {}).get(by) or by


def _part_of_reply(entry: dict, previous: dict) -> bool:
    """Whether a status change is the one a reply made with it (its "Then set the status to"): said with the reply."""
    return (
        entry.get("action") == "status_changed"
        and previous.get("action") == "replied"
        and previous.get("by") == entry.get("by")
        and previous.get("at") == entry.get("at")
    )


def done_words(entry: dict, names: dict[str, str] | None = None, teams: dict[str, str] | None = None) -> str:
    """What a history entry did, without who: "claimed it", "set the status to in progress", "assigned it to Ada
    Lovelace" (`names`: agents' names by id, `teams` teams'; else the ids as they are)."""
    to = entry.get("to") or ""
    if entry.get("action") in ("assigned", "transferred"):
        to = ((names if entry["action"] == "assigned" else teams) or {}).get(to) or to
    action = entry.get("action", "")
    if action == "transferred" and entry.get("from") == entry.get("to") and entry.get("agent_before"):
        action = "handed_back"  # from its agent into the team it was in
    template = HISTORY_WORDS.get(action, action.replace("_", " ") or "changed it")
    return template.format(to=to, to_words=AGENT_STATUS.get(to, to).lower())


def history_words(entry: dict, names: dict[str, str] | None = None, teams: dict[str, str] | None = None) -> str:
    """A history entry of assignment's as a sentence: "jane: claimed it"; what followed a requester's message says
    so ("the requester's message set the status to in progress"): the requester does nothing in assignment."""
    done = done_words(entry, names, teams)
    if entry.get("by") == "requester" and entry.get("action") == "status_changed":
        return f"the requester's message {done}"
    return f"{who_words(entry.get('by'), names)}: {done}"


def decision_words(entry: dict, names: dict[str, str] | None = None, teams: dict[str, str] | None = None) -> str:
    """The heading of an automatic assignment's reasons: "Why Ada got it (rule)", or, when no agent could take
    the ticket, "Why it was left in Network's queue (rule)" (a record of then: it may have an agent since).
    From the decision itself: a transfer's history entry names the team it went to, not the agent. `names`:
    agents' names by id, `teams` teams' (else the ids)."""
    decision = entry.get("decision") or {}
    rule = decision.get("rule") or "auto"
    chosen = decision["chosen"] if "chosen" in decision else entry.get("to")
    if chosen:
        return f"Why {(names or {}).get(chosen) or chosen} got it ({rule})"
    team = decision.get("team")
    queue = f"{(teams or {}).get(team) or team}'s queue" if team else "the team's queue"
    why = _nobody_words(decision["candidates"]) if isinstance(decision.get("candidates"), list) else rule
    return f"Why it was left in {queue} ({why})"


def _nobody_words(candidates: list) -> str:
    """Why none of the team's agents (the candidates the rule looked at, as they were then) took the ticket."""
    if not candidates:
        return "the team had no agents"
    described = [c for c in candidates if isinstance(c, dict)]
    away = sum(1 for c in described if c.get("available") is False)
    full = sum(1 for c in described if c.get("available") is not False and load_word(c))  # full or over
    if len(candidates) == 1:
        return {(1, 0): "its only agent was away", (0, 1): "its only agent was at capacity"}.get(
            (away, full), "its only agent could not take it"
        )
    why = ", ".join(part for part in (f"{away} away" if away else "", f"{full} at capacity" if full else "") if part)
    return f"none of its {len(candidates)} agents could take it" + (f": {why}" if why else "")


def load_word(agent: dict) -> str:
    """An agent's open tickets against their capacity, as the assign lists say it: "full", "over capacity" (no new
    ticket goes to them automatically either way), or "" (room left, or not known)."""
    taken, capacity = agent.get("open_tickets"), agent.get("capacity")
    if not isinstance(taken, int) or not isinstance(capacity, int) or capacity <= 0 or taken < capacity:
        return ""
    return "over capacity" if taken > capacity else "full"


# Attachments: what intake takes (contract section 10; shared.schemas), checked here first so that a form with files
# too large is answered next to its file field before anything is sent.


def file_problems(files: list[tuple[str, int]]) -> list[str]:
    """What is wrong with the chosen files, (name, size) each, in words a person acts on (empty: they will do)."""
    problems = [f"“{name}” is empty. Choose another file." for name, size in files if size == 0]
    problems += [
        f"“{name}” is larger than {size_words(ATTACHMENT_MAX_BYTES)}, the most a file may have."
        for name, size in files
        if size > ATTACHMENT_MAX_BYTES
    ]
    total = sum(size for _, size in files)
    if not problems and total > ATTACHMENTS_MAX_BYTES:
        problems.append(
            f"The files are {size_words(total)} together, more than the {size_words(ATTACHMENTS_MAX_BYTES)} "
            "that may be sent at once."
        )
    return problems


def size_words(size: int) -> str:
    """A file's size as people read it: 532 bytes, 12 KB, 1.5 MB (of 1024)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    value, unit = (size / 1024, "KB") if size < 1024 * 1024 else (size / (1024 * 1024), "MB")
    text = f"{value:.0f}" if value >= 100 else f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"


def attachments_by_entry(ticket: dict, attachments: list[dict]) -> dict[str | None, list[dict]]:
    """The ticket's files by the thread entry they came with (None: the ticket's opening, and any whose message
    is not in the thread), oldest first, each with `by`: who sent them (that entry's author)."""
    authors = {entry.get("id"): (entry.get("author") or {}).get("name") for entry in ticket.get("thread") or []}
    grouped: dict[str | None, list[dict]] = {}
    for item in sorted(attachments, key=lambda item: item.get("created_at") or ""):
        entry = item.get("message_id") if item.get("message_id") in authors else None
        by = authors[entry] if entry else (ticket.get("requester") or {}).get("name")
        grouped.setdefault(entry, []).append({**item, "by": by, "size_words": size_words(item.get("size") or 0)})
    return grouped


def timeline_with_files_and_mail(
    timeline: list[dict],
    attachments: list[dict],
    kept_mail: list[dict],
    notes: list[dict] = (),
    names: dict[str, str] | None = None,
) -> list[dict]:
    """The ticket's events with its files, the mail kept about it and its internal notes (the console's page
    only), in the order they happened: none of them publishes an event (a note never leaves assignment), but
    they belong in "what happened". A note is named with its author as the conversation names it (`who_words`:
    "an admin", never an admin's address; `names`: agents' by id), never with its words. A kept mail's own event
    (`ticket.mail_kept`, which emails the agent) is left out: the mail's entry says it. SLA deadlines that the next
    entry replaces within a minute (nothing happened between: a requester's message that reopens a ticket starts one
    clock and the reopening resumes another, a moment apart) leave the last alone, the deadlines then in effect."""
    entries = [entry for entry in timeline if entry.get("type") != "ticket.mail_kept"]
    for note in notes:
        who = note.get("by_name") or who_words(note.get("by"), names)
        entries.append({"occurred_at": note.get("at"), "summary": f"Internal note added by {who}"})
    for item in attachments:
        words = f"File {item.get('filename')} ({size_words(item.get('size') or 0)}) attached"
        entries.append({"occurred_at": item.get("created_at"), "summary": words})
    for mail in kept_mail:
        sender = mail.get("sender") or "no sender"
        words = f"Mail from {sender} not added to the conversation: {mail.get('reason')}"
        entries.append({"occurred_at": mail.get("received_at"), "summary": words})
    ordered = sorted(entries, key=lambda entry: _moment(entry.get("occurred_at")))
    return [entry for entry, after in zip(ordered, [*ordered[1:], None], strict=False) if not _replaced(entry, after)]


FOLDED_WITHIN = timedelta(seconds=60)  # deadline lines this close, nothing between: one change told twice


def _replaced(entry: dict, after: dict | None) -> bool:
    deadlines = "sla.deadlines_changed"
    if entry.get("type") != deadlines or after is None or after.get("type") != deadlines:
        return False
    return _moment(after.get("occurred_at")) - _moment(entry.get("occurred_at")) <= FOLDED_WITHIN


def _moment(value: str | None) -> datetime:
    try:
        return parse_time(value) if value else datetime.min.replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


# the console's actions that carry text: (field, what to say next to it when empty, the longest assignment takes)
WRITTEN = {
    "reply": ("body", "Write your reply, or attach a file.", 20_000),
    "note": ("body", "Write the note first.", 20_000),
    "resolve": ("resolution", "Say how it was resolved: the requester reads it.", 5_000),
    "reopen": ("reason", "Say why it reopens: its agent reads it.", 1_000),
}


def written_problems(action: str, body: dict) -> dict[str, list[str]]:
    """What is wrong with the text an action needs (a reply's, a note's, a resolution): empty, or too long for
    assignment; nothing for an action that needs none."""
    if action not in WRITTEN:
        return {}
    name, words, longest = WRITTEN[action]
    if not body.get(name):
        return {name: [words]}
    if len(body[name]) > longest:
        return {name: [f"Keep it to {longest:,} characters (it has {len(body[name]):,})."]}
    return {}


# --- merging a duplicate: the same request sent twice (by mail and on the web, or again a day later) --------

MERGED_INTO = "Merged into your request #"  # how a merged ticket's resolution starts (`is_merged`)
NOTE_LONGEST = WRITTEN["note"][2]


def kept_now(other: dict, assignment_status: str | None) -> dict:
    """The request to keep (as intake shows it) with its status as the services have it now: resolved or closed by
    either counts (intake learns a resolve a moment after assignment, and assignment a close after intake)."""
    if other.get("status") in ("resolved", "closed"):
        return other
    return other | {"status": assignment_status or other.get("status")}


def unproved(ticket: dict, confirmed: bool) -> bool:
    """Whether anyone may have typed the request's address: one from the web form whose address nobody confirmed
    (`confirmed`: someone used a link emailed to it; or its thread has a message by mail from the address, which
    handlers.proven_by_mail takes as proof). Its writer reads what the request is answered, and may not be the
    address's owner."""
    return ticket.get("source") == "web" and not confirmed and not answered_by_mail(ticket)


def last_bounce(mail: list[dict]) -> dict | None:
    """The newest mail about the ticket that is a bounce of one of the desk's emails to it (mail in records a
    delivery report against the ticket whose email it returns, "ignored" as automatic mail), or None: the page
    says the address takes no mail (a tester's agent kept replying to a mailbox that did not exist)."""
    bounces = [m for m in mail if m.get("outcome") == "ignored" and "bounce" in (m.get("reason") or "")]
    return bounces[-1] if bounces else None


def answered_by_mail(ticket: dict) -> bool:
    """Whether the requester wrote on the ticket by mail from its address (intake's thread entry `via` email): whoever
    reads that mailbox did, which proves the address as a link followed does."""
    return any(entry.get("kind") == "message" and entry.get("via") == "email" for entry in ticket.get("thread") or [])


def merge_problem(ticket: dict, other: dict, other_unproved: bool = False) -> str | None:
    """Why `ticket` cannot be merged into `other` (both as intake shows them), in words; None when it can. Only into
    an open request of the same requester: the merged one's requester is sent there, and reads only their own. Not
    into one whose address is not confirmed (`other_unproved`): its writer may be someone who typed the address,
    who would read what the requester writes there."""
    if other.get("id") == ticket.get("id"):
        return "That is this request itself: choose the one to keep."
    if other.get("status") not in OPEN_STATUS:
        status = AGENT_STATUS.get(other.get("status"), other.get("status"))
        return f"#{other.get('number')} is {str(status).lower()}: merge into a request that is still open."
    mine, theirs = ((t.get("requester") or {}).get("email") or "" for t in (ticket, other))
    if not mine or mine.casefold() != theirs.casefold():
        return (
            f"#{other.get('number')} is another requester's: a requester reads only their own requests, so this one's"
            " cannot go on there."
        )
    if other_unproved:
        return (
            f"#{other.get('number')} came from the web form and its address is not confirmed yet (nobody used a link"
            " emailed to it): whoever wrote it may not be this requester, and would read what they write there. Keep"
            " a request whose address is confirmed, or merge once it is."
        )
    return None


def merged_resolution(other: dict, name_it: bool = True) -> str:
    """The merged ticket's resolution, which its requester reads (and is emailed): where the request goes on. The
    kept request's subject only when `name_it`: not to the writer of a request whose address is not confirmed
    (`unproved`), who may not be the requester."""
    named = f" (“{other.get('subject')}”)" if name_it else ""
    return (
        f"{MERGED_INTO}{other.get('number')}{named}: it is the same request, and we go on there."
        " Write to us there, by replying to its emails or on its page."
    )


def _said_at(value: str | None) -> str:
    """A time of a note's words as pages write them (4 Dec 2026, 09:30 UTC)."""
    return _moment(value).strftime("%-d %b %Y, %H:%M UTC") if value else "a time not known"


def is_merged(resolution: str | None) -> bool:
    """Whether a resolution is a merge's (`merged_resolution`): such a ticket is no reference for a similar one."""
    return (resolution or "").startswith(MERGED_INTO)


def merged(ticket: dict) -> bool:
    """Whether the ticket was resolved as a duplicate merged into another (intake's `merged_into`; a ticket resolved
    before intake kept it, by its resolution's words)."""
    return bool(ticket.get("merged_into")) or is_merged(ticket.get("resolution"))


def merged_note(ticket: dict, files: list[dict] = ()) -> str:
    """The internal note the kept request gets: the merged one's subject and its conversation (the requester's words,
    which agents answer from now on, and the replies they answered), and which files stay on it; cut to a note's
    length, saying so. Its first line is the same for every try of one merge (`console.merge` adds it once)."""
    number = ticket.get("number")
    words = [f"Merged from #{number} (“{ticket.get('subject')}”), the same request. What was written there:"]
    words.append(ticket.get("description") or "")
    for entry in ticket.get("thread") or []:
        author = entry.get("author") or {}
        who = "the requester" if author.get("type") == "requester" else f"{author.get('name') or 'an agent'}'s reply"
        words.append(f"Later, {who} ({_said_at(entry.get('created_at'))}):\n{entry.get('body') or ''}")
    names = [item.get("filename") for item in files if item.get("filename")]
    if names:
        words.append(f"Files on #{number}: {', '.join(names)}")
    text = "\n\n".join(words)
    cut = f"\n\n… (the rest on #{number})"
    return text if len(text) <= NOTE_LONGEST else text[: NOTE_LONGEST - len(cut)] + cut


TICKED = re.compile(r"([0-9A-Za-z_-]{1,64}):([0-9]{1,15})")  # a queue row's box: "<ticket id>:<number>"
TICKET_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # a ticket's id as an address carries it (anything else: dropped)


def plain_id(text: str) -> bool:
    """Whether an address's text is a ticket's id as ids are written."""
    return TICKET_ID.fullmatch(text) is not None


def ticked_rows(values: list[str]) -> dict[str, int]:
    """The queue rows a bulk form ticked: ticket id -> its number as the row showed it, each ticket once (however
    often, and under whatever numbers, it was sent); values that are no row's left out."""
    rows: dict[str, int] = {}
    for value in values:
        if (match := TICKED.fullmatch(value)) and match.group(1) not in rows:
            rows[match.group(1)] = int(match.group(2))
    return rows


def password_link_good(link: dict, account: dict) -> bool:
    """A password link still sets its account's password: the account enabled, and the link not older than the
    password's last change (links made in the instant of a change are void with the others)."""
    changed = account.get("password_changed_at")
    return not account.get("disabled_at") and not (changed and link.get("created_at", changed) < changed)


def topic_routes(teams: list[dict], leaving_out: str | None = None) -> dict[str, str]:
    """topic -> the team its tickets go to: the first by id that names it (assignment's rule; a topic no team
    names goes to general). `leaving_out`: as if that team named none."""
    routes: dict[str, str] = {}
    for team in sorted(teams, key=lambda t: t["id"]):
        if team["id"] != leaving_out:
            for topic in team.get("topics") or []:
                routes.setdefault(topic, team["id"])
    return routes


def topic_moves(teams: list[dict], team_id: str, topics: list[str]) -> dict[str, str]:
    """The topics newly given to a team that another team names: {topic: the team whose tickets they are now}."""
    had = next((team.get("topics") or [] for team in teams if team["id"] == team_id), [])
    routes = topic_routes(teams, leaving_out=team_id)
    return {topic: routes[topic] for topic in topics if topic not in had and topic in routes}


def topics_left(teams: list[dict], team_id: str, moved: set[str]) -> dict[str, list[str]]:
    """Each other team that names a topic moving to `team_id` (every one of them: the first by id would keep its
    tickets): {team: its topics without the moved ones}."""
    return {
        team["id"]: [topic for topic in team.get("topics") or [] if topic not in moved]
        for team in teams
        if team["id"] != team_id and moved & set(team.get("topics") or [])
    }


def led_teams(agent: dict) -> set[str]:
    """The teams an agent leads and is in (assignment's rule: a lead who left a team leads it no more)."""
    return set(agent.get("lead_of") or []) & set(agent.get("teams") or [])


def staffed(teams: list[dict], agents: list[dict]) -> list[dict]:
    """The teams, each with `agents` (how many are in it) and `available` (how many of them take tickets now),
    so that a transfer's list can say where nobody would pick a ticket up."""
    out = []
    for team in teams:
        members = [agent for agent in agents if team["id"] in agent.get("teams", [])]
        out.append({**team, "agents": len(members), "available": sum(a.get("available") is True for a in members)})
    return out


def unstaffed_words(team: dict | None, tickets: int = 1) -> str | None:
    """What a transfer of `tickets` tickets to `team` (a `staffed` team) leaves unsaid when nobody there takes
    tickets now: they wait in its queue; None for a team with an agent available, or one whose staffing is not
    known."""
    if not team or team.get("available") is None or team["available"] > 0:
        return None
    agents = team.get("agents")
    why = "it has no agents" if agents == 0 else "its only agent is away" if agents == 1 else "its agents are all away"
    name = team.get("name") or team.get("id")
    waits = "the ticket waits" if tickets == 1 else "the tickets wait"
    return f"Nobody in {name} takes tickets now ({why}): {waits} in its queue until an agent there is available."


def assigned_words(agent: dict | None, me: str | None, tickets: int = 1) -> str | None:
    """What an assign of `tickets` tickets to `agent` (as assignment lists agents, after it) leaves unsaid: that it
    took them past their capacity, or gave the tickets to someone away; "you" when the person gave them to themself
    (`me`, their agent id). None when neither, or when the list does not say."""
    if not agent:
        return None
    you = bool(me) and agent.get("id") == me
    name = agent.get("name") or agent.get("id")
    said = []
    load, capacity = agent.get("open_tickets"), agent.get("capacity")
    away = agent.get("available") is False
    if load_word(agent) == "over capacity":
        who, whose, them = ("You have", "your", "you") if you else (f"{name} has", "their", "them")
        over = f"{who} {load} open tickets now, over {whose} capacity of {capacity}"
        until = f"no new ticket is given to {them} automatically until fewer than {capacity} are open"
        said.append(f"{over}." if away else f"{over}: {until}.")  # away: none is given anyway, said next
    if away:
        stays, it = ("the ticket stays", "it") if tickets == 1 else ("the tickets stay", "them")
        if you:
            said.append(f"You are away: {stays} with you, and no new ticket is given to you automatically.")
        else:
            said.append(f"{name} is away: {stays} with them until someone hands {it} on.")
    return " ".join(said) or None


DEFAULT_PORTS = {"http": 80, "https": 443}


def same_url(a: str, b: str) -> bool:
    """Whether two URLs reach the same place as a server reads them: scheme and host in any case, the scheme's own
    port said or not, an empty path as "/" ("HTTPS://Hooks.example.com:443" is "https://hooks.example.com/").
    The path and query as written (a server may tell their cases apart)."""

    def reached(url: str) -> tuple | str:
        try:
            parts = urlsplit(url.strip())
            port = DEFAULT_PORTS.get(parts.scheme.lower()) if parts.port is None else parts.port
        except ValueError:
            return url
        host = (parts.hostname or "").rstrip(".")
        try:
            host = str(ipaddress.ip_address(host))  # 2001:0db8::1 is 2001:db8::1
        except ValueError:
            pass
        return (parts.scheme.lower(), host, port, parts.path or "/", parts.query)

    return reached(a) == reached(b)


def same_name(a: str, b: str) -> bool:
    """Whether two names would read the same in a list: case, runs of spaces, compatibility forms ("Ｎｅｔ") and
    characters that show as nothing aside."""

    def shown(name: str) -> str:
        return " ".join(
            "".join(c for c in unicodedata.normalize("NFKC", name) if not hidden_character(c)).split()
        ).casefold()

    return shown(a) == shown(b)


EARLIER_PAGES = 25  # the cursors of the pages before this one that a list's address keeps, for its "Previous" link
CURSOR = re.compile(r"[A-Za-z0-9_=-]{1,200}")  # how the services' cursors are written (opaque; anything else dropped)


def earlier_pages(text: str) -> list[str]:
    """The cursors of the pages before this one, oldest first (the first page has none), as the address carries
    them ("back", comma-separated: the services' cursors go one way only); the newest EARLIER_PAGES, each looking
    like a cursor (it is the service that tells a cursor it gave out; a forged one gets its refusal)."""
    cursors = [cursor for cursor in text.split(",") if CURSOR.fullmatch(cursor)]
    return cursors[-EARLIER_PAGES:]
