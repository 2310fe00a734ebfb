"""intake's commands, queries and event handlers: load, call the domain, save with the events it recorded."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from services.intake import files, inbound
from services.intake.domain import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENTS_MAX_BYTES,
    DEFAULT_TOPIC,
    DESK,
    NotResolved,
    ThreadFull,
    Ticket,
    TicketClosed,
    changes_view,
    mib,
    over_the_limits,
    summarize,
    summarize_for_requester,
)
from services.intake.inbound_parts import MAILS
from services.intake.store import (
    AttachmentIdTaken,
    AttachmentStore,
    BlobStore,
    IdempotencyKeys,
    InboundMailStore,
    RateLimits,
    TicketStore,
    TimelineStore,
    TopicStore,
)
from shared import events, outbox
from shared.access import (
    AgentDirectory,
    TicketFacts,
    list_scope,
    may_read,
    may_work_on,
    same_email,
    sees_everything,
)
from shared.auth import Principal
from shared.clock import now
from shared.config import Settings
from shared.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, TooManyRequests
from shared.idempotency import ProcessedEvents
from shared.mongo import database
from shared.relay import OutboxFlusher, PendingOutboxes, outbox_for
from shared.saving import NO_CHANGE, update

SERVICE = "intake"
RATE_WINDOW = timedelta(hours=1)  # fixed windows, on the hour


@dataclass
class Intake:
    """Everything intake's handlers need, wired once per process (see `bootstrap`)."""

    settings: Settings
    tickets: TicketStore
    topics: TopicStore
    keys: IdempotencyKeys
    timeline: TimelineStore
    processed: ProcessedEvents
    pending: PendingOutboxes
    flusher: OutboxFlusher
    limits: RateLimits
    agents: AgentDirectory  # agent_id -> teams, from agent.updated: who reads which ticket
    mails: InboundMailStore  # what each inbound mail became (services/intake/inbox.py)
    blobs: BlobStore  # bytes of any size: attachments' contents, raw mails
    attachments: AttachmentStore

    def ensure_storage(self) -> None:
        self.tickets.ensure_indexes()
        self.blobs.ensure_indexes()
        self.attachments.ensure_indexes()
        self.limits.ensure_indexes()
        self.keys.ensure_indexes()
        self.timeline.ensure_indexes()
        self.processed.ensure_indexes()
        self.pending.ensure_indexes()
        self.mails.ensure_indexes()
        self.topics.seed_defaults()


def bootstrap(settings: Settings) -> Intake:
    """intake's stores on its own database; the tickets' events go to the flusher as they are saved."""
    db = database(settings, SERVICE)
    pending, flusher = outbox_for(settings, SERVICE, db)
    blobs = BlobStore(db)
    return Intake(
        settings,
        TicketStore(db, flusher),
        TopicStore(db),
        IdempotencyKeys(db),
        TimelineStore(db),
        ProcessedEvents(db),
        pending,
        flusher,
        RateLimits(db),
        AgentDirectory(db),
        InboundMailStore(db),
        blobs,
        AttachmentStore(db, blobs),
    )


def _recorded(ticket: Ticket, correlation_id: str | None, at=None) -> dict:
    """The events the ticket recorded, as outbox entries."""
    recorded, ticket.recorded = ticket.recorded, []
    return outbox.stage(SERVICE, ticket.id, recorded, correlation_id, at)


def _request_hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def within_rate_limit(svc: Intake, action: str, address: str) -> None:
    """Count the requester address's action in this hour's window; TooManyRequests (429) past its limit.

    So that intake cannot be used to mail-bomb an address: every ticket mails a receipt to it.
    """
    limits = {"tickets": svc.settings.requester_tickets_per_hour, "messages": svc.settings.requester_messages_per_hour}
    at = now()
    start = at.replace(minute=0, second=0, microsecond=0)
    ends = start + RATE_WINDOW
    count = svc.limits.hit(f"{action}|{address.strip().lower()}|{start:%Y-%m-%dT%H}", ends)
    if count > limits[action]:
        wait = max(1, math.ceil((ends - at).total_seconds()))
        raise TooManyRequests(
            f"This requester address has reached its limit of {limits[action]} {action} per hour; "
            f"try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )


def change_ticket(svc: Intake, ticket_id: str, change: Callable[[Ticket], object], correlation_id: str | None):
    """(ticket, what `change` returned): load, change, save with its events; NO_CHANGE saves nothing."""
    save = lambda ticket, _: svc.tickets.save(ticket, _recorded(ticket, correlation_id))  # noqa: E731
    return update(lambda: svc.tickets.get(ticket_id), change, save, "The ticket is changing too fast; try again.")


# --- who reads which ticket (shared.access: the same rule in every service) --------------------


def _facts(ticket: Ticket) -> TicketFacts:
    agent_id = ticket.assignee["agent_id"] if ticket.assignee else None
    return TicketFacts(ticket.id, ticket.requester.get("email"), ticket.team, agent_id)


def _require_visible(svc: Intake, ticket: Ticket, principal: Principal | None) -> Ticket:
    """The ticket, if the principal may see it (None: intake itself); else 404, as for a ticket that is not there."""
    return _visible_to(svc, ticket, principal)[0]


def _visible_to(svc: Intake, ticket: Ticket, principal: Principal | None) -> tuple[Ticket, dict | None]:
    """As `_require_visible`, with the agent's projection it read (None for anyone but an agent)."""
    if principal is None or sees_everything(principal):
        return ticket, None
    agent = svc.agents.find(principal.agent_id) if principal.role == "agent" else None
    if not may_read(principal, _facts(ticket), agent):
        raise NotFound(f"No ticket {ticket.id}.")
    return ticket, agent


# --- commands ---------------------------------------------------------------------------------


def create_ticket(
    svc: Intake,
    request: dict,
    idempotency_key: str | None,
    correlation_id: str | None,
    principal: Principal | None = None,
) -> tuple[Ticket, bool]:
    """Open a ticket; with an Idempotency-Key the same request gives the same ticket. Returns (ticket, created).

    A requester-scoped token opens tickets for its own requester only, and one scoped to a ticket none (403
    otherwise). A key is its caller's
    (`_own_key`): another caller's same key and body is another request, and claims nothing of the first's.
    """
    idempotency_key = _own_key(idempotency_key, principal)
    if principal is not None and principal.requester_scoped:
        if principal.ticket_id is not None:  # it would open a ticket it may not read (a contract prober's find)
            raise Forbidden("This token acts for one ticket only: it opens no other.")
        if not same_email(request["requester"]["email"], principal.requester_email):
            raise Forbidden("This token acts for another requester: it opens tickets for that requester only.")
    if not svc.topics.known(request["topic"]):
        if replayed := _replayed(svc, request, idempotency_key):  # its topic retired since: the same ticket
            return replayed, False
        raise Invalid(
            "Unknown topic.",
            {"topic": [f"Unknown topic {request['topic']!r}, or one no longer offered; see GET /topics."]},
        )
    ticket_id = uuid.uuid4().hex
    if idempotency_key:
        request_hash = _request_hash(request)
        record = svc.keys.claim(idempotency_key, request_hash, ticket_id, now())
        if record["request_hash"] != request_hash:
            raise Conflict("This Idempotency-Key was used with a different request body.")
        if record["ticket_id"] != ticket_id:  # the key was used before: answer with its ticket
            ticket_id = record["ticket_id"]
            existing = svc.tickets.find(ticket_id)
            if existing is not None:
                return existing, False
    within_rate_limit(svc, "tickets", request["requester"]["email"])  # a repeat with its key is not counted
    return open_new(svc, ticket_id, request, correlation_id)  # (a concurrent request with the same key may win)


def open_new(
    svc: Intake, ticket_id: str, request: dict, correlation_id: str | None = None, mark: dict | None = None
) -> tuple[Ticket, bool]:
    """Open ticket `ticket_id` from a request already checked and counted, its number drawn now, with its
    `ticket.created` (occurred_at: its created_at); (the ticket, created): False when a concurrent opening of the
    same id won, whose ticket it is. `mark`: fields stored with the new document only (documents.insert)."""
    number = svc.tickets.next_number()  # first: the time read after it, so numbers follow creation times closely
    at = now()  # (taken before the number, two openings at once had #N+1 created before #N: a race hunter's find)
    ticket = Ticket.open(ticket_id, number, request, at)
    if not svc.tickets.insert(ticket, _recorded(ticket, correlation_id, at), mark):
        return svc.tickets.get(ticket_id), False
    return ticket, True


def _own_key(idempotency_key: str | None, principal: Principal | None) -> str | None:
    """The key under its caller: a requester-scoped token's requester, else the token's role and subject. Keys
    are chosen by clients (the portal passes on a browser's form key): shared by all, someone who learnt or guessed
    another's key and body would be answered that ticket, and one who used a key first would make the other's
    request a 409."""
    if not idempotency_key:
        return None
    if principal is None:
        return idempotency_key
    owner = (
        f"requester {principal.requester_email}" if principal.requester_scoped else f"{principal.role} {principal.sub}"
    )
    return f"{owner}\n{idempotency_key}"


def _replayed(svc: Intake, request: dict, idempotency_key: str | None) -> Ticket | None:
    """The ticket an earlier request with this key and body opened, if there is one (a read: claims nothing)."""
    record = svc.keys.find(idempotency_key) if idempotency_key else None
    if record is None or record["request_hash"] != _request_hash(request):
        return None
    return svc.tickets.find(record["ticket_id"])


def add_message(
    svc: Intake,
    ticket_id: str,
    body: str,
    correlation_id: str | None,
    principal: Principal | None = None,
    files: list[str] | None = None,
) -> dict:
    """The requester's message; `files`: the names of the files the client attaches to it next (its event names
    them for the agent's email)."""
    message_id = uuid.uuid4().hex
    ticket = _require_visible(svc, svc.tickets.get(ticket_id), principal)  # 404 before any count is spent
    within_rate_limit(svc, "messages", ticket.requester["email"])

    def write(ticket: Ticket) -> None:
        _require_visible(svc, ticket, principal)
        try:
            ticket.add_message(message_id, body, now(), files)
        except TicketClosed:
            raise Conflict("The ticket is closed; open a new ticket instead.") from None
        except ThreadFull as full:
            raise Conflict(str(full)) from None

    ticket, _ = change_ticket(svc, ticket_id, write, correlation_id)
    return next(entry for entry in ticket.thread if entry["id"] == message_id)


def reopen_ticket(
    svc: Intake, ticket_id: str, reason: str, correlation_id: str | None, principal: Principal | None = None
) -> Ticket:
    """An agent who may read the ticket, or an admin, reopens a resolved ticket (the requester called: the fix did
    not hold); any other is 409: a closed one stays closed, and an open one may be resolved in assignment a moment
    before intake hears of it."""

    by, by_name = "admin", DESK  # an admin who is no agent: never their address in an event
    if principal is not None and principal.agent_id:
        by = principal.agent_id
        by_name = (svc.agents.find(by) or {}).get("name") or by

    def reopen(ticket: Ticket) -> None:
        _require_visible(svc, ticket, principal)
        try:
            ticket.reopen(reason, by, by_name, now())
        except NotResolved as status:
            if str(status) == "closed":
                raise Conflict("The ticket is closed, and a closed ticket stays closed: open a new one.") from None
            raise Conflict(
                "The ticket is open: reopened already, or its resolve has not reached intake yet (then try again "
                "in a moment)."
            ) from None

    return change_ticket(svc, ticket_id, reopen, correlation_id)[0]


def close_ticket(
    svc: Intake, ticket_id: str, by: str, correlation_id: str | None, principal: Principal | None = None
) -> Ticket:
    """Close the ticket; closing a closed ticket saves and publishes nothing."""

    def close(ticket: Ticket):
        _require_visible(svc, ticket, principal)
        return None if ticket.close(by, now()) else NO_CHANGE

    return change_ticket(svc, ticket_id, close, correlation_id)[0]


@dataclass(frozen=True)
class Upload:
    """A file as it came in: the name and type its sender gave, and its (decoded) bytes."""

    filename: str | None
    content_type: str | None
    data: bytes


def add_attachments(
    svc: Intake,
    ticket_id: str,
    uploads: list[Upload],
    message_id: str | None,
    idempotency_key: str | None,
    principal: Principal,
) -> tuple[list[dict], bool]:
    """Attach the files to the ticket (to one of its thread messages with message_id): their items, in order, and
    whether they were stored now (False: a repeat of an earlier request with the same Idempotency-Key).

    The ticket's requester (a requester-scoped token), admins, and the agents who may reply on it (its agent, or
    one of its team while it waits unassigned: shared.access.may_work_on): the requester reads every file, so
    a teammate who only sees the ticket adds none to it. With the same Idempotency-Key the same files are not
    stored twice, and other files are refused (409), never dropped.
    """
    if principal.role == "portal" and not principal.requester_scoped:
        raise Forbidden("The portal attaches files for a requester: use a token scoped to the ticket's requester.")
    ticket, agent = _visible_to(svc, svc.tickets.get(ticket_id), principal)
    if principal.role == "agent" and not may_work_on(principal, _facts(ticket), agent):
        raise Forbidden("Only the ticket's agent adds files to it (or its team's agents while it waits unassigned).")
    _check_uploads(uploads)
    if ticket.status == "closed":
        raise Conflict("The ticket is closed; open a new ticket instead.")
    idempotency_key = _own_key(idempotency_key, principal)  # another caller's same key is another upload
    if message_id is None and not principal.requester_scoped:  # they would go with the requester's opening words
        said = "Name the agent's reply the files go with: without one they would read as the requester's."
        raise Invalid("No message named.", {"message_id": [said]})
    if message_id is not None and not _attachable_to(ticket, message_id, principal):
        said = f"message {message_id!r} of yours" if principal.requester_scoped else f"agent's reply {message_id!r}"
        raise Invalid("No such message.", {"message_id": [f"The ticket has no {said}."]})
    created, request_hash = True, None
    if idempotency_key:  # the files as sent, under a key of this ticket's own (POST /tickets: its caller's)
        request_hash = _upload_hash(uploads, message_id)
        key = f"attachments\n{ticket.id}\n{idempotency_key}"
        record, created = svc.keys.claimed(key, request_hash, ticket.id, now())
        if record["request_hash"] != request_hash:
            raise Conflict("This Idempotency-Key was used with other files; send these with a new key.")
    items = []
    for n, upload in enumerate(uploads):  # a repeat puts them again: a request that died half-way is completed
        # with what the files are: the key reused with others once its record expired (48 h) stores them anew
        seed = f"{ticket.id}\n{idempotency_key}\n{request_hash}\n{n}" if idempotency_key else uuid.uuid4().hex
        attachment_id = hashlib.sha256(seed.encode()).hexdigest()[:32]
        name, kind = files.clean_filename(upload.filename), files.declared_type(upload.content_type)
        try:
            items.append(svc.attachments.put(ticket.id, attachment_id, name, kind, upload.data, message_id, "web"))
        except AttachmentIdTaken:
            raise Conflict("This Idempotency-Key was used for another ticket's files.") from None
    return items, created


def _upload_hash(uploads: list[Upload], message_id: str | None) -> str:
    """What an upload's Idempotency-Key stands for: the message and each file's name, type and bytes, in order."""
    described = [message_id, *([upload.filename, upload.content_type, hashlib.sha256(upload.data).hexdigest()]
                                for upload in uploads)]  # fmt: skip
    return hashlib.sha256(json.dumps(described, separators=(",", ":")).encode()).hexdigest()


def _check_uploads(uploads: list[Upload]) -> None:
    """422 for no file or an empty one; 413 naming the file past 10 MiB, or the one that takes all past 25 MiB."""
    if not uploads:
        raise Invalid("No file was sent.", {"file": ["Send one or more files in `file` fields."]})
    for upload in uploads:
        if not upload.data:
            name = files.clean_filename(upload.filename)
            raise Invalid(f"The file {name!r} is empty.", {"file": [f"{name} is empty."]})
    problem = over_the_limits((files.clean_filename(upload.filename), len(upload.data)) for upload in uploads)
    if problem is not None:
        limit, name = problem
        if limit == "file":
            message = f"{name} is larger than {mib(ATTACHMENT_MAX_BYTES)}, the most one file may be."
        else:
            message = (
                f"With {name} the files are larger than {mib(ATTACHMENTS_MAX_BYTES)} together, the most they may be."
            )
        raise TooLarge(message, {"file": [message]})


def _attachable_to(ticket: Ticket, message_id: str, principal: Principal) -> bool:
    """Whether the thread has the message; a requester attaches to its own messages only, agents and admins to the
    agents' replies only (a file under the requester's message would read as the requester's)."""
    kinds = ("message",) if principal.requester_scoped else ("reply",)
    return any(entry["id"] == message_id and entry["kind"] in kinds for entry in ticket.thread)


def put_topic(svc: Intake, topic_id: str, name: str | None, retired: bool | None = None) -> dict:
    if retired and topic_id == DEFAULT_TOPIC:
        raise Invalid(
            "The topic has invalid fields.",
            {"retired": [f"“{DEFAULT_TOPIC}” takes the mail that names no other topic; it cannot be retired."]},
        )
    topic = svc.topics.put(topic_id, name, retired)
    if topic is None:
        raise Invalid("The topic has invalid fields.", {"name": ["A new topic needs a name."]})
    return topic


# --- queries ----------------------------------------------------------------------------------


def get_ticket(svc: Intake, ticket_id: str, principal: Principal | None = None) -> Ticket:
    return _require_visible(svc, svc.tickets.get(ticket_id), principal)


def list_tickets(
    svc: Intake, filters: dict, limit: int, cursor: str | None, principal: Principal | None = None
) -> tuple[list[dict], str | None]:
    """A page of the tickets the principal may see (an agent's teams' and its own, a requester's own), newest first,
    without their threads (each with thread_count): a list never carries whole threads."""
    scope = None
    if principal is not None:
        agent = svc.agents.find(principal.agent_id) if principal.role == "agent" else None
        scope = list_scope(principal, agent)
    page, next_cursor = svc.tickets.page(filters, limit, cursor, scope)
    return [{**vars(ticket), "thread_count": count} for ticket, count in page], next_cursor


def timeline(
    svc: Intake, ticket_id: str, limit: int, cursor: str | None, principal: Principal | None = None
) -> tuple[list[dict], str | None]:
    """A page of the ticket's events, oldest first (NotFound for an unknown ticket, or one the principal may not see).

    A requester-scoped reader gets the requester's version: no recipients, no webhooks, no delivery errors. An agent
    reads no webhook's delivery (webhooks are the admins': an address may carry its secret in its path).
    """
    _require_visible(svc, svc.tickets.get(ticket_id), principal)
    for_requester = principal is not None and principal.requester_scoped
    for_agent = principal is not None and not for_requester and not sees_everything(principal)
    items, next_cursor = svc.timeline.page(ticket_id, limit, cursor, for_requester=for_requester, for_agent=for_agent)
    return [{**item, "event_id": item["_id"]} for item in items], next_cursor


def list_attachments(svc: Intake, ticket_id: str, principal: Principal | None = None) -> list[dict]:
    _require_visible(svc, svc.tickets.get(ticket_id), principal)
    items = svc.attachments.list(ticket_id)
    if principal is None or principal.role != "agent" or not any(item["content_type"] in MAILS for item in items):
        return items
    return [item for item in items if not _the_desks_mail(svc, ticket_id, item)]


def attachment(svc: Intake, ticket_id: str, attachment_id: str, principal: Principal | None = None):
    """(item, bytes, the Content-Type to serve them with); NotFound for an unknown or unseen ticket or file, and
    for an agent, one of the desk's own emails (`_the_desks_mail`)."""
    _require_visible(svc, svc.tickets.get(ticket_id), principal)
    found = svc.attachments.get(ticket_id, attachment_id)
    if found is None:
        raise NotFound(f"No attachment {attachment_id} on ticket {ticket_id}.")
    item, data = found
    if principal is not None and principal.role == "agent" and _the_desks_mail(svc, ticket_id, item, data):
        raise NotFound(f"No attachment {attachment_id} on ticket {ticket_id}.")
    return item, data, files.served_type(item["content_type"], data)


def _the_desks_mail(svc: Intake, ticket_id: str, item: dict, data: bytes | None = None) -> bool:
    """A ticket file that is one of the help desk's own emails, attached whole to a reply ("attach original
    message"): it holds the requester's link, which acts as the requester. Mail in stores none since a reviewer
    found agents downloading them; those stored before are kept from agents (an admin reads the mail as it came)."""
    if item["content_type"] not in MAILS:
        return False
    if data is None:
        found = svc.attachments.get(ticket_id, item["id"])
        data = found[1] if found else b""
    return inbound.the_desks_own(data, [svc.settings.notify_from])


def list_topics(svc: Intake, include_retired: bool = False) -> list[dict]:
    return svc.topics.all(include_retired)


# --- events -----------------------------------------------------------------------------------


def record_and_apply(svc: Intake, envelope: dict) -> None:
    """Apply another service's event to intake's view, then put every event on the ticket's timeline."""
    data = events.load_data(envelope)
    at = events.parse_time(envelope["occurred_at"])

    named = dict(data)  # what the timeline says: a resolver and a topic by the names intake knows, not by id
    if envelope["type"] == "ticket.created":
        named["topic_name"] = svc.topics.name(data["topic"])

    def apply(ticket: Ticket):
        assignee = ticket.assignee or {}
        resolver = data.get("agent_id") if envelope["type"] == "ticket.resolved" else None
        if resolver and assignee.get("agent_id") == resolver:
            named["agent_name"] = assignee.get("name")
        previous = data.get("previous_agent_id") if envelope["type"] == "ticket.assigned" else None
        if previous and assignee.get("agent_id") == previous and assignee.get("name"):  # who had it, by name
            named["previous_agent_name"] = assignee["name"]
        return None if ticket.apply(envelope["type"], data, at) else NO_CHANGE

    # intake's own events changed the ticket when they were stored; notification.* never change it
    if envelope["producer"] != SERVICE and changes_view(envelope["type"]):
        change_ticket(svc, envelope["ticket_id"], apply, envelope.get("correlation_id"))
    svc.timeline.record(
        {
            "event_id": envelope["event_id"],
            "ticket_id": envelope["ticket_id"],
            "type": envelope["type"],
            "producer": envelope["producer"],
            "occurred_at": at,
            "correlation_id": envelope.get("correlation_id"),
            "summary": summarize(envelope["type"], named),
            "requester_summary": summarize_for_requester(envelope["type"], named),
            **({"webhook": True} if data.get("channel") == "webhook" else {}),  # the admins' alone (its address)
        }
    )


def on_agent_updated(svc: Intake, envelope: dict) -> None:
    """An agent's teams, for deciding which tickets it reads (not a ticket's event: no timeline entry)."""
    svc.agents.learn(events.load_data(envelope), events.parse_time(envelope["occurred_at"]))


HANDLERS = {event_type: record_and_apply for event_type in events.EVENT_TYPES} | {"agent.updated": on_agent_updated}
