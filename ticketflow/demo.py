"""`ticketflow demo`: fill a running system with a small help desk and walk tickets through their lives.

It talks only to the public HTTP APIs, with development tokens signed by the local secret, the way
a portal, agents and an admin would. Safe to run again: existing teams and agents are patched back
to the demo's values, and every run files a fresh dozen tickets.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.auth import issue_token
from ticketflow.local import masked
from ticketflow.status import ApiError, call, pages, readiness

OPEN = ("new", "assigned", "in_progress", "waiting_on_requester")
DEFAULT_MINUTES = {  # sla's default policy: first response / next response / resolution
    "emergency": "15 / 30 / 240",
    "high": "60 / 120 / 480",
    "normal": "240 / 480 / 1440",
    "low": "480 / 960 / 4320",
}


class DemoError(Exception):
    """Something the demo cannot go on without; one line for the user."""


@dataclass
class Ticket:
    spec: dict
    id: str = ""
    number: int = 0
    team: str | None = None
    agent_id: str | None = None
    agent_status: str | None = None  # what the requester waits to see in intake before answering
    view: dict = field(default_factory=dict)  # intake's ticket, timeline, clocks and mail at the end

    @property
    def label(self) -> str:
        return f"#{self.number}"


class Client:
    """JSON calls to the four APIs with the right token for each actor."""

    def __init__(self, urls: dict[str, str], secret: str) -> None:
        self.urls, self.secret = urls, secret
        self._tokens: dict[str, str] = {}

    def token(self, actor: str) -> str:
        """'admin', 'portal' or an agent id."""
        if actor not in self._tokens:
            role = actor if actor in ("admin", "portal") else "agent"
            agent_id = actor if role == "agent" else None
            self._tokens[actor] = issue_token(self.secret, role, agent_id=agent_id, sub=f"demo-{actor}", ttl=3600)
        return self._tokens[actor]

    def __call__(self, method: str, service: str, path: str, actor: str, body=None, ok=(200, 201), headers=None):
        status, answer = self.send(method, service, path, actor, body, headers)
        if status not in ok:
            detail = answer.get("detail") or answer.get("title") or answer
            raise DemoError(
                f"{method} {service}{path} as {actor}: {status} {detail} {answer.get('errors', '')}".strip()
            )
        return answer

    def send(self, method: str, service: str, path: str, actor: str, body=None, headers=None):
        try:
            return call(method, f"{self.urls[service]}{path}", self.token(actor), body, headers, timeout=10)
        except ApiError as exc:
            raise DemoError(f"{service} does not answer ({exc}); is it still running?") from None

    def items(self, service: str, path: str, actor: str, **params) -> list[dict]:
        try:
            return pages(self.urls[service], path, self.token(actor), params)
        except ApiError as exc:
            raise DemoError(str(exc)) from None


def _print(line: str) -> None:
    print(masked(line))  # a URL given with a password shows it as ***


def run(urls: dict[str, str], secret: str, wait: float = 30.0, out: Callable[[str], None] = _print) -> list[Ticket]:
    """The whole demo; returns the tickets it filed, each with its final `view`."""
    wait_ready(urls, wait, out)
    api = Client(urls, secret)
    set_up_help_desk(api, out)
    tickets = file_tickets(api, out)
    route(api, tickets, wait, out)
    walk(api, tickets, wait, out)
    settle(api, tickets, wait)
    for ticket in tickets:
        out(lifecycle(ticket))
    return tickets


def wait_ready(urls: dict[str, str], wait: float, out) -> None:
    deadline, said = time.monotonic() + wait, False
    while True:
        states = {service: readiness(url) for service, url in urls.items()}
        missing = {service: state for service, state in states.items() if state != "ready"}
        if not missing:
            out("ticketflow demo: " + ", ".join(f"{s} {urls[s]}" for s in urls) + ": all ready")
            return
        where = ", ".join(f"{s} {urls[s]} {state}" for s, state in missing.items())
        if time.monotonic() >= deadline:
            raise DemoError(f"not ready after {wait:g} s: {where}. Start the system with `make run`.")
        if not said:
            out(f"ticketflow demo: waiting up to {wait:g} s for {where}")
            said = True
        time.sleep(0.5)


def set_up_help_desk(api: Client, out) -> None:
    for team in TEAMS:
        _create_or_patch(api, "/teams", team)
    out("teams:    " + "  ".join(f"{t['id']} ({', '.join(t['topics'])})" for t in TEAMS))
    for agent in AGENTS:
        _create_or_patch(api, "/agents", agent)
    out("agents:   " + "  ".join(f"{a['id']}{'*' if a['lead'] else ''} {a['teams'][0]} cap {a['capacity']}"
                                 for a in AGENTS) + "   (* team lead)")  # fmt: skip
    year = datetime.now(UTC).year
    calendar = {
        "timezone": "Europe/Madrid",
        "hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": [f"{year}-12-25", f"{year + 1}-01-01", f"{year + 1}-01-06"],
    }
    api("PUT", "sla", "/calendars/office", "admin", calendar)
    out(f"calendar: office: Europe/Madrid, mon-fri 09:00-17:00, holidays {', '.join(calendar['holidays'])}")
    out("SLA policies (minutes to first response / next response / resolution; calendar), left as they are:")
    for policy in api("GET", "sla", "/policies", "admin")["items"]:
        out(_policy_line(policy))


def _policy_line(policy: dict) -> str:
    minutes = " / ".join(
        f"{policy[f'{clock}_minutes']:g}" for clock in ("first_response", "next_response", "resolution")
    )
    default = DEFAULT_MINUTES.get(policy["priority"])
    note = f"   (changed; the default is {default})" if default and minutes != default else ""
    terms = f"warn at {policy['warn_at_percent']} %   {policy['calendar']}   v{policy['version']}"
    return f"  {policy['priority']:<9} {minutes:<16} {terms}{note}"


def _create_or_patch(api: Client, path: str, document: dict) -> None:
    """Create it; if it exists (409), set the demo's values on it again."""
    status, answer = api.send("POST", "assignment", path, "admin", document)
    if status == 409:
        changes = {key: value for key, value in document.items() if key != "id"}
        api("PATCH", "assignment", f"{path}/{document['id']}", "admin", changes)
    elif status != 201:
        raise DemoError(f"POST assignment{path} {document['id']}: {status} {answer.get('detail', answer)}")


def file_tickets(api: Client, out) -> list[Ticket]:
    run_id = uuid.uuid4().hex[:8]
    tickets = []
    for n, spec in enumerate(TICKETS, 1):
        body = {key: spec[key] for key in ("subject", "description", "requester", "topic", "priority", "source")}
        created = api("POST", "intake", "/tickets", "portal", body, headers={"Idempotency-Key": f"demo-{run_id}-{n}"})
        tickets.append(Ticket(spec, id=created["id"], number=created["number"]))
    out(f"tickets:  {len(tickets)} filed, #{tickets[0].number} to #{tickets[-1].number}")
    return tickets


def route(api: Client, tickets: list[Ticket], wait: float, out) -> None:
    """Wait until assignment has routed every ticket: to an agent, or into its team's queue."""
    for ticket in tickets:
        seen = poll(lambda t=ticket: _assignment_view(api, t), wait, f"{ticket.label} was not routed")
        ticket.team, ticket.agent_id = seen["team"], seen["agent_id"]
    waiting = [t for t in tickets if not t.agent_id]
    note = f"; {len(waiting)} wait in a team queue: " + ", ".join(f"{t.label} ({t.team})" for t in waiting)
    out(f"routed:   {len(tickets) - len(waiting)} to an agent{note if waiting else ''}")


def _assignment_view(api: Client, ticket: Ticket) -> dict | None:
    """assignment's ticket once it went to an agent or a queue (its history says so; team alone is set earlier)."""
    status, answer = api.send("GET", "assignment", f"/tickets/{ticket.id}", "admin")
    routed = status == 200 and any(h["action"] in ("assigned", "queued", "claimed") for h in answer["history"])
    return answer if routed else None


def poll(read: Callable[[], object], wait: float, what: str):
    """read() until it answers something truthy; DemoError after `wait` seconds."""
    deadline = time.monotonic() + wait
    while not (result := read()):
        if time.monotonic() >= deadline:
            raise DemoError(f"{what} within {wait:g} s; are all four workers running?")
        time.sleep(0.2)
    return result


def walk(api: Client, tickets: list[Ticket], wait: float, out) -> None:
    """Claim what waits, then play each ticket's steps, step 1 of every ticket, then step 2, ..."""
    out("\nwalking tickets through their lives:")
    waiting = [t for t in tickets if not t.agent_id]
    for ticket in [t for t in waiting if t.spec["walk"]] or waiting[:1]:
        out(f"  {ticket.label:<8} " + claim(api, ticket))
    for step in range(max(len(t.spec["walk"]) for t in tickets)):
        for ticket in tickets:
            if step < len(ticket.spec["walk"]):
                out(f"  {ticket.label:<8} " + play(api, ticket, ticket.spec["walk"][step], wait))


def claim(api: Client, ticket: Ticket) -> str:
    """The team's lead takes a ticket from the team queue (unless a freed slot gave it to someone meanwhile)."""
    lead = next((a["id"] for a in AGENTS if ticket.team in a["teams"] and a["lead"]), None)
    if lead is None:
        return f"waits in the {ticket.team} queue (no demo agent leads that team)"
    status, answer = api.send("POST", "assignment", f"/tickets/{ticket.id}/claim", lead)
    if status == 409:
        ticket.agent_id = (_assignment_view(api, ticket) or {}).get("agent_id")
        return f"{ticket.agent_id or 'nobody':<7} has it meanwhile ({lead} could not claim it: {answer.get('detail')})"
    if status != 200:
        raise DemoError(f"POST assignment/tickets/{ticket.id}/claim as {lead}: {status} {answer.get('detail')}")
    ticket.agent_id = lead
    return f"{lead:<7} claims it from the {ticket.team} queue"


def play(api: Client, ticket: Ticket, move: tuple, wait: float) -> str:
    """One step of a ticket's story; the line that tells it."""
    kind, *args = move
    path = f"/tickets/{ticket.id}"
    agent = ticket.agent_id or "admin"
    if kind == "reply":
        body, status = args
        api("POST", "assignment", f"{path}/replies", agent, {"body": body, "status": status})
        ticket.agent_status = status
        return f"{agent:<7} replies ({status.replace('_', ' ')}): {_short(body)}"
    if kind == "note":
        api("POST", "assignment", f"{path}/notes", agent, {"body": args[0]})
        return f"{agent:<7} adds an internal note: {_short(args[0])}"
    if kind == "priority":
        after = api("POST", "assignment", f"{path}/priority", "admin", {"priority": args[0]})
        return f"{'admin':<7} raises the priority {ticket.spec['priority']} -> {after['priority']}: {_short(args[1])}"
    if kind == "resolve":
        api("POST", "assignment", f"{path}/resolve", agent, {"resolution": args[0]})
        ticket.agent_status = "resolved"
        return f"{agent:<7} resolves it: {_short(args[0])}"
    requester = ticket.spec["requester"]["name"]
    _wait_for_intake(api, ticket, wait)  # the requester answers what they were told
    if kind == "message":
        api("POST", "intake", f"{path}/messages", "portal", {"body": args[0]})
        reopened = " (the ticket was resolved: it reopens)" if ticket.agent_status == "resolved" else ""
        return f"{requester} writes: {_short(args[0])}{reopened}"
    if kind == "close":
        api("POST", "intake", f"{path}/close", "portal")
        return f"{requester} closes it"
    raise ValueError(f"unknown step {kind!r}")


def _wait_for_intake(api: Client, ticket: Ticket, wait: float) -> None:
    if ticket.agent_status:
        status = ticket.agent_status
        poll(lambda: _intake(api, ticket)["status"] == status, wait, f"intake did not show {ticket.label} {status}")


def _intake(api: Client, ticket: Ticket) -> dict:
    return api("GET", "intake", f"/tickets/{ticket.id}", "admin")


def reached(ticket: Ticket, status: str, timeline: list[dict]) -> bool:
    """Whether intake's status is what the ticket's story should end in."""
    expect = ticket.spec["expect"]
    if expect == "reopened":
        return status in OPEN and any(e["type"] == "ticket.reopened" for e in timeline)
    return status == expect if expect else status in OPEN


def settle(api: Client, tickets: list[Ticket], wait: float) -> None:
    """Read every ticket until its story has ended, its emails left, and two reads in a row agree."""
    deadline, before = time.monotonic() + wait, None
    while True:
        for ticket in tickets:
            ticket.view = {
                "ticket": _intake(api, ticket),
                "timeline": api.items("intake", f"/tickets/{ticket.id}/timeline", "admin"),
                "mail": api.items("notify", "/notifications", "admin", ticket_id=ticket.id),
            }
        now = [(len(t.view["timeline"]), sorted((n["id"], n["status"]) for n in t.view["mail"])) for t in tickets]
        done = all(
            reached(t, t.view["ticket"]["status"], t.view["timeline"])
            and any(n["event_type"] == "ticket.created" and n["channel"] == "email" for n in t.view["mail"])  # receipt
            and not any(n["status"] == "pending" for n in t.view["mail"])
            for t in tickets
        )
        if (done and now == before) or time.monotonic() >= deadline:
            break
        before = now
        time.sleep(0.5)
    for ticket in tickets:
        status, clocks = api.send("GET", "sla", f"/tickets/{ticket.id}", "admin")
        ticket.view["clocks"] = clocks.get("clocks", {}) if status == 200 else {}


def lifecycle(ticket: Ticket) -> str:
    """Intake's timeline, sla's clocks and notify's emails of one ticket, a few lines."""
    view, spec = ticket.view, ticket.spec
    t = view["ticket"]
    who = (t.get("assignee") or {}).get("agent_id") or "nobody"
    lines = [
        f"\n{ticket.label} {t['subject']}",
        f"  {t['team']} / {who} / {t['priority']} / {t['source']} / {spec['requester']['name']}: now {t['status']}",
    ]
    folded = 0
    for event in view["timeline"]:
        if event["type"].startswith("notification."):
            folded += 1
            continue
        lines.append(f"  {event['occurred_at'][11:23]}  {event['type']:<24} {event['summary']}")
    lines.append("  sla    " + "   ".join(_clock(name, c) for name, c in view["clocks"].items() if c) or "  sla    -")
    by_recipient: dict[str, list[str]] = {}
    for note in sorted(view["mail"], key=lambda n: n["created_at"]):
        by_recipient.setdefault(note["recipient"], []).append(f"{note['event_type'].split('.')[-1]} {note['status']}")
    for recipient, sent in by_recipient.items():
        lines.append(f"  mail   {recipient}: {', '.join(sent)}")
    if folded:
        lines.append(f"         ({folded} notification events on the timeline: the mail lines above)")
    return "\n".join(lines)


def _clock(name: str, clock: dict) -> str:
    state = clock["state"]
    if state in ("met", "stopped"):
        return f"{name} {state} after {_seconds(clock.get('elapsed_seconds'))}"
    if state == "breached":
        return f"{name} BREACHED at {(clock.get('breached_at') or '?')[11:19]}Z"
    if not clock.get("due_at"):  # paused: no deadline while it waits on the requester
        return f"{name} {state} at {_seconds(clock.get('elapsed_seconds'))}"
    return f"{name} {state}, due {clock['due_at'][:16].replace('T', ' ')}Z"


def _seconds(value) -> str:
    if value is None:
        return "?"
    value = float(value)
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.0f} min"


def _short(text: str, width: int = 60) -> str:
    return f'"{text}"' if len(text) <= width else f'"{text[: width - 3]}..."'


def main(urls: dict[str, str], wait: float, portal_url: str | None = None) -> int:
    from shared.config import load_settings

    secret = load_settings().require_secret()  # one clear line and exit 1 when it is missing
    try:
        run(urls, secret, wait)
    except DemoError as exc:
        print(masked(f"ticketflow demo: {exc}"))
        return 1
    if portal_url:
        portal_accounts(portal_url, _print)
    return 0


DEMO_ADMIN = "admin@example.com"


def portal_accounts(portal_url: str, out) -> None:
    """Sign-in accounts in the portal for the demo agents and an admin, each with a fresh password, printed."""
    import secrets
    import urllib.error

    from ticketflow.accounts import post_account

    out(f"portal:   {portal_url}/login  (accounts; a password is shown only when the account is made)")
    for email, role, agent_id in [(DEMO_ADMIN, "admin", None)] + [(a["email"], "agent", a["id"]) for a in AGENTS]:
        password = secrets.token_urlsafe(12)
        body = {"email": email, "role": role, "password": password} | ({"agent_id": agent_id} if agent_id else {})
        try:
            post_account(portal_url, body)
            shown = f"password {password}"
        except urllib.error.HTTPError as exc:
            shown = "exists already (its password is the one printed when it was made)" if exc.code == 409 else (
                f"not made: {exc.code} {exc.reason}")  # fmt: skip
        except OSError as exc:
            out(f"          the portal does not answer ({exc}); no accounts made")
            return
        out(f"          {role:<5}  {email:<26} {shown}")


# ---- the help desk and its tickets ------------------------------------------------------------------

TEAMS = [
    {"id": "network", "name": "Network & VPN", "topics": ["network"]},
    {"id": "hardware", "name": "Hardware", "topics": ["hardware"]},
    {"id": "access", "name": "Accounts, access & email", "topics": ["access", "email"]},
    {"id": "general", "name": "General & software", "topics": ["general", "software"]},
]


def _agent(agent_id: str, name: str, team: str, capacity: int, lead: bool = False) -> dict:
    return {"id": agent_id, "name": name, "email": f"{agent_id}@example.com", "teams": [team],
            "capacity": capacity, "available": True, "lead": lead}  # fmt: skip


AGENTS = [
    _agent("marta", "Marta Vidal", "network", 4, lead=True),
    _agent("omar", "Omar Haddad", "network", 3),
    _agent("li", "Li Wei", "hardware", 2, lead=True),  # one agent for three hardware tickets: one waits
    _agent("sofia", "Sofia Lindqvist", "access", 4, lead=True),
    _agent("jonas", "Jonas Berg", "access", 3),
    _agent("ines", "Ines Romero", "general", 5, lead=True),
    _agent("tom", "Tom Baker", "general", 2),
]


def _ticket(name: str, how: str, subject: str, description: str, walk=(), expect: str | None = None) -> dict:
    """A requester's ticket; `how` is "topic priority source"; `walk` its story; `expect` intake's status at the end."""
    topic, priority, source = how.split()
    email = name.lower().replace(" ", ".") + "@example.com"
    return {"subject": subject, "description": description, "requester": {"name": name, "email": email},
            "topic": topic, "priority": priority, "source": source, "walk": list(walk), "expect": expect}  # fmt: skip


TICKETS = [
    _ticket(
        "Ana Ruiz",
        "hardware normal web",
        "Printer on floor 3 will not print",
        "The printer by the kitchen on floor 3 says 'Paper jam in tray 2' but there is no paper stuck. "
        "Nothing has printed since this morning and the queue has 14 jobs in it.",
        [
            (
                "reply",
                "Could you send a photo of the printer's display? Then we know which jam it means.",
                "waiting_on_requester",
            ),
            ("message", "Photo attached: it still says 'Paper jam tray 2' with the tray empty."),
            ("resolve", "A torn sheet was stuck behind tray 2; removed it and cleared the print queue."),
            ("close",),
        ],
        expect="closed",
    ),
    _ticket(
        "Ben Okafor",
        "network high email",
        "VPN drops every hour",
        "Since Monday my VPN disconnects about every hour, in the middle of calls. I'm working from home "
        "on the company laptop, on fibre at home.",
        [
            ("reply", "Thanks Ben, we're looking at the VPN gateway logs for your sessions.", "in_progress"),
            ("note", "Rekey every 60 min on the old IKEv2 profile: he still has the 2023 profile. Push the new one."),
            ("resolve", "Pushed the new VPN profile (8 h rekey); please reconnect once."),
            ("message", "It dropped again at 10:00 today, after reconnecting with the new profile."),
        ],
        expect="reopened",
    ),
    _ticket(
        "Carla Mendes",
        "access high phone",
        "Password reset: locked out after the holidays",
        "I forgot my password over the holidays and now my account is locked after too many tries.",
        [
            ("reply", "I've unlocked the account and sent a reset link to your phone.", "in_progress"),
            ("resolve", "Account unlocked, password reset by the user."),
        ],
        expect="resolved",
    ),
    _ticket(
        "Dana Kowalski",
        "hardware normal web",
        "Laptop for a new hire starting Monday",
        "Sam Patel joins the marketing team on Monday and needs a laptop with the standard setup, "
        "a headset and access to the marketing shared drive.",
        [("reply", "We'll image a laptop on Friday; Sam can pick it up at the IT desk on Monday at 9.", "in_progress")],
        expect="in_progress",
    ),
    _ticket(
        "Elena Petrova",
        "email low web",
        "Shared mailbox for the events team",
        "Could we get a shared mailbox events@ for the events team, so we stop forwarding to each other?",
        [
            (
                "reply",
                "Happy to. Who should have access, and should they be able to send as events@?",
                "waiting_on_requester",
            )
        ],
        expect="waiting_on_requester",
    ),
    _ticket(
        "Farid Haddad",
        "network normal web",
        "Wi-Fi in meeting room Orion keeps disconnecting",
        "In Orion (2nd floor) laptops lose the Wi-Fi every few minutes. Other rooms are fine.",
    ),
    _ticket(
        "Grace Liu",
        "software normal email",
        "Excel crashes when I open the budget file",
        "Excel closes without a message when I open budget-2027.xlsx from the finance share. Other files open fine.",
        [
            (
                "reply",
                "Could you try opening it with Excel in safe mode (hold Ctrl while starting Excel)?",
                "in_progress",
            )
        ],
        expect="in_progress",
    ),
    _ticket(
        "Hugo Martin",
        "access normal web",
        "Access to the Finance shared drive",
        "I moved to the controlling team and need read/write access to the Finance shared drive.",
        [
            ("priority", "high", "quarter close is tomorrow and Hugo cannot work without the drive"),
            (
                "reply",
                "Approved by your manager; you're in the Finance group now. Sign out and in again.",
                "in_progress",
            ),
            ("resolve", "Added to the Finance-RW group."),
        ],
        expect="resolved",
    ),
    _ticket(
        "Irene Sato",
        "email normal phone",
        "Outlook on my phone stopped syncing",
        "Since yesterday the Outlook app on my phone shows no new mail. The laptop is fine.",
    ),
    _ticket(
        "Jakub Nowak",
        "hardware low web",
        "Second monitor flickering",
        "My second monitor flickers every few seconds; it got worse this week.",
        [
            (
                "reply",
                "Does it still flicker with another cable? There are spare ones at the IT desk.",
                "waiting_on_requester",
            )
        ],
        expect="waiting_on_requester",
    ),
    _ticket(
        "Karim Benali",
        "network emergency phone",
        "No internet in the Valencia office",
        "Nobody in the Valencia office has internet since 8:40, wired or Wi-Fi. Phones work.",
        [
            (
                "reply",
                "The provider confirms an outage; we're switching the office to the 4G backup line.",
                "in_progress",
            ),
            ("resolve", "Failover to the 4G backup line; the provider fixed the fibre at 11:05."),
        ],
        expect="resolved",
    ),
    _ticket(
        "Laura Rossi",
        "software low api",
        "Install VS Code and Python on my workstation",
        "Please install Visual Studio Code and Python 3.12 on my workstation for the data course.",
        [("close",)],
        expect="closed",
    ),
]
