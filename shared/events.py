"""The event wire contract between the services: the envelope and one data schema per event type.

On the wire (and in every dict this module returns) times are strings like 2026-11-27T09:30:00.000Z;
`load_data` gives handlers the data with aware UTC datetimes instead.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime
from functools import cache

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate
from marshmallow.decorators import post_dump, validates_schema

from shared.schemas import FILE_NAME_MAX, FILES_NAMED_MOST

SCHEMA_VERSION = 1
PUBLISHED_BY = {  # which service publishes which event types (only its producer may)
    "intake": (
        "ticket.created",
        "ticket.message_added",
        "ticket.reopened",
        "ticket.closed",
        "ticket.mail_kept",  # a mail about the ticket kept for the agents, not added to the conversation
    ),
    "assignment": (
        "ticket.assigned",
        "ticket.replied",
        "ticket.status_changed",
        "ticket.priority_changed",
        "ticket.resolved",
        "agent.updated",  # an agent was created or changed: the other services' projections of who is in which team
    ),
    "sla": (
        "sla.warning",
        "sla.breached",
        "sla.deadlines_changed",  # the deadlines of a ticket's running clocks changed: the queues' order
    ),
    "notify": ("notification.sent", "notification.failed"),
    "search": (),  # a projection: it publishes nothing (its broker user may publish no event type)
}
PRODUCERS: dict[str, str] = {kind: service for service, kinds in PUBLISHED_BY.items() for kind in kinds}
EVENT_TYPES: tuple[str, ...] = tuple(PRODUCERS)
SERVICES = tuple(PUBLISHED_BY)
PRIORITIES = ("low", "normal", "high", "emergency")  # least urgent first: the order of the APIs' enums
BY_URGENCY = PRIORITIES[::-1]  # most urgent first: how queues, policies and statistics are ordered
STATUSES = ("new", "assigned", "in_progress", "waiting_on_requester", "resolved", "closed")
OPEN_STATUSES = STATUSES[:4]  # a ticket someone still has to work on
SOURCES = ("web", "email", "phone", "api")
# A mail's Message-ID (without <>) that a header may name again: printable ASCII without spaces or angle brackets.
MAIL_MESSAGE_ID = re.compile(r"[!-;=?-~]{1,250}")
CLOCKS = ("first_response", "next_response", "resolution")
CHANNELS = ("email", "webhook")
ASSIGN_REASONS = ("auto", "claim", "manual", "transfer", "reopen")
DESK_NAME = "The help desk"  # who events name (by_name) for an admin who is no agent: never their address

# Fixed forever: changing it would change every derived event id and defeat deduplication.
_ID_NAMESPACE = uuid.UUID("ce126d0f-cd2c-5943-b16f-6ed54b31df6d")
_RFC3339_UTC = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:[Zz]|\+00:00)", re.ASCII)


class InvalidEvent(ValueError):
    """An event that breaks the contract; `.errors` holds marshmallow's messages or a sentence."""

    def __init__(self, errors: dict | str) -> None:
        super().__init__(errors if isinstance(errors, str) else f"invalid event: {errors}")
        self.errors = errors


class UnsupportedVersion(InvalidEvent):
    """An envelope of a newer `schema_version` than this code reads: a newer producer's event, which this
    consumer must not half-understand (dead-lettered until a consumer that reads it is deployed)."""


def format_time(dt: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z; a naive datetime is taken as UTC."""
    return _as_utc(dt).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_time(s: str) -> datetime:
    """An aware UTC datetime from RFC 3339 ending in Z or +00:00; ValueError for anything else."""
    match = _RFC3339_UTC.fullmatch(s) if isinstance(s, str) else None
    if match is None:
        raise ValueError(f"not an RFC 3339 UTC time (like 2026-11-27T09:30:00.000Z): {s!r}")
    *parts, fraction = match.groups()
    microsecond = int((fraction or "")[:6].ljust(6, "0"))
    return datetime(*map(int, parts), microsecond, tzinfo=UTC)


def _as_utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.utcoffset() is None else dt.astimezone(UTC)


class Timestamp(fields.Field):
    """A time: an RFC 3339 UTC string on the wire, an aware UTC datetime in Python."""

    default_error_messages = {"invalid": "Not an RFC 3339 UTC time like 2026-11-27T09:30:00.000Z."}

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return format_time(value if isinstance(value, datetime) else parse_time(value))

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, datetime):
            return _as_utc(value)
        try:
            return parse_time(value)
        except ValueError:
            raise self.make_error("invalid") from None


class StrictBoolean(fields.Boolean):
    """A JSON true or false, never 1, "yes" or "true"."""

    default_error_messages = {"invalid": "Use true or false (JSON, not in quotes)."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _text(max_length: int, *, required: bool = True) -> fields.String:
    """A non-empty string of at most max_length characters (None allowed when optional)."""
    return fields.String(required=required, allow_none=not required, validate=validate.Length(1, max_length))


def _email(*, required: bool = True) -> fields.Email:
    return fields.Email(required=required, allow_none=not required, validate=validate.Length(max=254))


def _choice(values: tuple[str, ...]) -> fields.String:
    return fields.String(required=True, validate=validate.OneOf(values))


def _integer(minimum: int) -> fields.Integer:
    return fields.Integer(required=True, strict=True, validate=validate.Range(min=minimum))


class _Data(Schema):
    class Meta:
        unknown = EXCLUDE  # a newer producer may add fields; older consumers ignore them


# ---- intake ---------------------------------------------------------------------------------------


class PersonData(_Data):
    name = _text(200)
    email = _email()


class AuthorData(_Data):
    type = fields.String(required=True, validate=validate.OneOf(("requester", "agent")))
    name = _text(200)
    email = _email(required=False)


def _printable_ascii_without_spaces_or_brackets(value: str) -> None:
    if not MAIL_MESSAGE_ID.fullmatch(value):
        raise ValidationError("A Message-ID without <>: printable ASCII without spaces or angle brackets.")


class TicketCreatedData(_Data):
    number = _integer(1)
    subject = _text(200)
    description = _text(20000)
    requester = fields.Nested(PersonData, required=True)
    topic = _text(100)
    priority = _choice(PRIORITIES)
    source = _choice(SOURCES)
    # optional: the Message-ID of the mail that opened it (source email), so that its receipt answers that mail
    mail_message_id = fields.String(validate=[validate.Length(1, 250), _printable_ascii_without_spaces_or_brackets])


def _file_names() -> fields.List:
    """Optional: the names of the files that came with a message or a reply (stored apart, on intake), for its
    emails. Absent when none came, or when the client did not say."""
    return fields.List(
        fields.String(validate=validate.Length(1, FILE_NAME_MAX)), validate=validate.Length(1, FILES_NAMED_MOST)
    )


class TicketMessageAddedData(_Data):
    """The requester's message. `reopens` is true when it reopened a resolved ticket (then the ticket.reopened that
    follows names it by `message_id`, and notify's email of the message says it reopened the ticket); absent
    otherwise."""

    message_id = _text(100)
    body = _text(20000)
    author = fields.Nested(AuthorData, required=True)
    files = _file_names()
    reopens = StrictBoolean()  # optional: true when the message reopened a resolved ticket (absent otherwise)


class TicketReopenedData(_Data):
    """Why it is open again. `by` and `by_name` when an agent or an admin reopened it; `message_id` when the
    requester's message in the same change did (its ticket.message_added carries `reopens`); neither when a message
    written after the agent resolved, but before intake heard of the resolve, reopened it."""

    reason = _text(1000)
    by = fields.String(validate=validate.Length(1, 100))  # who reopened it: an agent id, or "admin"; absent: requester
    by_name = fields.String(validate=validate.Length(1, 200))  # as people read it ("The help desk" for an admin)
    # optional: the requester's message that reopened it, in the same change (its ticket.message_added says so,
    # with `reopens`); absent when a resolve that intake heard of late is reopened by a message written after it
    message_id = fields.String(validate=validate.Length(1, 100))


class TicketClosedData(_Data):
    """`previous_status`: the status it was closed from, as intake had it (a requester may close a request an agent
    still works on: notify tells the agent)."""

    by = _choice(("requester", "auto"))
    # a duplicate's: the number of the request it was merged into (as on its ticket.resolved): added after the contract
    merged_into = fields.Integer(required=False, strict=True, validate=validate.Range(1, 10**15))
    previous_status = fields.String(validate=validate.OneOf(STATUSES))  # optional: added after the contract


MAIL_KEPT_WHY = ("another_sender", "thread_full")


class TicketMailKeptData(_Data):
    """A mail about the ticket that mail in kept for the agents instead of adding it to the conversation: a reply
    from another address than the requester's (`another_sender`: a colleague, an assistant), or the requester's
    reply when the thread has no room left (`thread_full`). The requester never sees it; its agent is emailed.
    `mail_id` is the mail's id in intake's mail log; `body` what the sender wrote (without what it quotes)."""

    mail_id = _text(100)
    why = _choice(MAIL_KEPT_WHY)
    sender = fields.Nested(PersonData, required=True)
    subject = _text(998, required=False)
    body = _text(20000)
    files = _file_names()


# ---- assignment -----------------------------------------------------------------------------------


class TicketAssignedData(_Data):
    """Who has the ticket now; the agent fields are all null when it waits in the team's queue. `team_name` is the
    team's name then, `team_lead_name` its lead's (beside `team_lead_email`: the first of its leads by id who is
    available when the ticket is assigned, else the first by id); `by_name`, present only when a person moved the
    ticket (`manual`, `transfer`), is who: an agent's name, or "The help desk" for an admin who is no agent.
    `previous_team`, on a `transfer`, is the team the ticket was in before: a transfer of a ticket an agent had
    (`previous_agent_id`) to that same team is a hand-back (another agent of the team, or its queue, takes it).
    Producers older than these fields leave them out."""

    agent_id = fields.String(required=True, allow_none=True, validate=validate.Length(1, 100))
    agent_name = fields.String(required=True, allow_none=True, validate=validate.Length(1, 200))
    agent_email = fields.Email(required=True, allow_none=True, validate=validate.Length(max=254))
    team = _text(100)
    team_name = _text(200, required=False)  # the team as people know it (added after the contract: may be absent)
    team_lead_email = _email(required=False)
    team_lead_name = _text(200, required=False)  # that lead's name, for the emails' greeting: after the contract
    previous_agent_id = _text(100, required=False)
    previous_team = _text(100, required=False)  # a transfer's team before: the same for a hand-back
    reason = _choice(ASSIGN_REASONS)
    decision = fields.Dict(keys=fields.String(), allow_none=True)  # rule and candidates, for auto
    by_name = _text(200, required=False)  # who moved it by hand (manual, transfer): added after the contract

    @validates_schema
    def _agent_all_or_nothing(self, data: dict, **kwargs) -> None:
        given = [data.get(name) is not None for name in ("agent_id", "agent_name", "agent_email")]
        if any(given) and not all(given):
            raise ValidationError("agent_id, agent_name and agent_email are all set, or all null (team queue).")


class TicketRepliedData(_Data):
    reply_id = _text(100)
    agent_id = _text(100)
    agent_name = _text(200)
    body = _text(20000)
    first_response = StrictBoolean(required=True)
    files = _file_names()


class TicketStatusChangedData(_Data):
    """`by_name`: who changed it (an agent's name, "The help desk" for an admin); left out when the system did."""

    status = _choice(STATUSES)
    previous_status = _choice(STATUSES)
    by_name = _text(200, required=False)  # who changed it (absent: the system did): added after the contract


class TicketPriorityChangedData(_Data):
    """`by_name`: who changed it (an agent's name, "The help desk" for an admin)."""

    priority = _choice(PRIORITIES)
    previous_priority = _choice(PRIORITIES)
    by_name = _text(200, required=False)  # who changed it: added after the contract


class TicketResolvedData(_Data):
    """`agent_id`: the ticket's agent, whose work it was; `by_name`: who resolved it (that agent, another, or "The
    help desk" for an admin)."""

    agent_id = fields.String(required=True, allow_none=True, validate=validate.Length(1, 100))  # None: no agent
    resolution = _text(20000)
    by_name = _text(200, required=False)  # who resolved it (the ticket's agent or another): added after the contract
    # the number of the same requester's request it was merged into (a duplicate): added after the contract
    merged_into = fields.Integer(required=False, strict=True, validate=validate.Range(1, 10**15))


class AgentUpdatedData(_Data):
    """An agent as it is now (after a create or a change); the envelope's ticket_id is the agent's id."""

    agent_id = _text(100)
    name = _text(200)
    email = _email()
    teams = fields.List(fields.String(validate=validate.Length(1, 100)), required=True)
    lead_of = fields.List(fields.String(validate=validate.Length(1, 100)), required=True)
    available = StrictBoolean(required=True)

    @validates_schema
    def _leads_its_own_teams(self, data: dict, **kwargs) -> None:
        if not set(data.get("lead_of") or ()) <= set(data.get("teams") or ()):
            raise ValidationError({"lead_of": ["An agent leads only teams it is in."]})


# ---- sla and notify -------------------------------------------------------------------------------


class _SlaData(_Data):
    clock = _choice(CLOCKS)
    instance = _integer(0)
    due_at = Timestamp(required=True)
    priority = _choice(PRIORITIES)
    policy_version = _integer(1)


class SlaWarningData(_SlaData):
    percent = fields.Float(required=True, validate=validate.Range(0, 100, min_inclusive=False))


class SlaBreachedData(_SlaData):
    breached_at = Timestamp(required=True)


class SlaDeadlinesChangedData(_Data):
    """Added after the contract: the deadline of each of the ticket's clocks while it runs, null when none runs
    (paused, met, stopped, never started); published whenever one of them changes (clocks started, paused,
    resumed, met or stopped, a new priority, or a business calendar's new hours: then `calendar` names it). A
    consumer keeps the highest `revision` it has seen: an older one arriving late changes nothing."""

    first_response_due_at = Timestamp(required=True, allow_none=True)
    next_response_due_at = Timestamp(required=True, allow_none=True)
    resolution_due_at = Timestamp(required=True, allow_none=True)
    priority = _choice(PRIORITIES)
    revision = _integer(1)
    calendar = _text(64, required=False)  # a move caused by this calendar's new hours alone (no event of the ticket)


class NotificationData(_Data):
    notification_id = _text(100)
    channel = _choice(CHANNELS)
    recipient = _text(2048)
    event_type = _choice(EVENT_TYPES)
    error = fields.String(allow_none=True, validate=validate.Length(max=10000))


DATA_SCHEMAS: dict[str, type[Schema]] = {
    "ticket.created": TicketCreatedData,
    "ticket.message_added": TicketMessageAddedData,
    "ticket.reopened": TicketReopenedData,
    "ticket.closed": TicketClosedData,
    "ticket.mail_kept": TicketMailKeptData,
    "ticket.assigned": TicketAssignedData,
    "ticket.replied": TicketRepliedData,
    "ticket.status_changed": TicketStatusChangedData,
    "ticket.priority_changed": TicketPriorityChangedData,
    "ticket.resolved": TicketResolvedData,
    "agent.updated": AgentUpdatedData,
    "sla.warning": SlaWarningData,
    "sla.breached": SlaBreachedData,
    "sla.deadlines_changed": SlaDeadlinesChangedData,
    "notification.sent": NotificationData,
    "notification.failed": NotificationData,
}


# ---- the envelope ---------------------------------------------------------------------------------


def _canonical_uuid(value: str) -> None:
    try:
        canonical = str(uuid.UUID(value)) == value
    except ValueError:
        canonical = False
    if not canonical:
        raise ValidationError("Not a UUID in canonical form (lowercase, with hyphens).")


class EnvelopeSchema(Schema):
    """The envelope; load gives data in Python form (datetimes), dump gives wire form (strings)."""

    class Meta:
        unknown = RAISE

    event_id = fields.String(required=True, validate=_canonical_uuid)
    type = _choice(EVENT_TYPES)
    schema_version = fields.Integer(required=True, strict=True, validate=validate.Equal(SCHEMA_VERSION))
    occurred_at = Timestamp(required=True)
    producer = _choice(SERVICES)
    ticket_id = _text(100)
    correlation_id = fields.String(load_default=None, validate=validate.Length(max=200))
    data = fields.Dict(required=True, keys=fields.String())

    @validates_schema(skip_on_field_errors=False)
    def _check_type(self, envelope: dict, **kwargs) -> None:
        """The type's own producer sent it, and its data fits the type's schema: loaded here, once (the errors
        of a load are a validation's), and kept in the envelope for the loaded result."""
        kind, errors = envelope.get("type"), {}
        if kind not in DATA_SCHEMAS:
            return
        if envelope.get("producer", PRODUCERS[kind]) != PRODUCERS[kind]:
            errors["producer"] = [f"{kind} is published by {PRODUCERS[kind]}."]
        if "data" in envelope:
            try:
                envelope["data"] = _data_schema(kind).load(envelope["data"])
            except ValidationError as err:
                errors["data"] = err.messages
        if errors:
            raise ValidationError(errors)

    @post_dump
    def _dump_data(self, envelope: dict, **kwargs) -> dict:
        envelope["data"] = _data_schema(envelope["type"]).dump(envelope["data"])
        return envelope


class _NewEnvelopeSchema(EnvelopeSchema):
    """make_event's: the data comes loaded already (strictly, by make_event), so it is not checked and loaded
    twice more; only dumped to wire form. Each pass over the data cost as much as the rest of the envelope."""

    @validates_schema(skip_on_field_errors=False)
    def _check_type(self, envelope: dict, **kwargs) -> None:
        kind = envelope.get("type")
        if kind in PRODUCERS and envelope.get("producer", PRODUCERS[kind]) != PRODUCERS[kind]:
            raise ValidationError({"producer": [f"{kind} is published by {PRODUCERS[kind]}."]})


@cache
def _envelope_schema() -> EnvelopeSchema:
    """One instance, reused: building a marshmallow schema costs far more than using it."""
    return EnvelopeSchema()


@cache
def _new_envelope_schema() -> EnvelopeSchema:
    return _NewEnvelopeSchema()


@cache
def _data_schema(event_type: str) -> Schema:
    return DATA_SCHEMAS[event_type]()


class Decoded(dict):
    """A valid envelope in wire form as `decode` gives it, which keeps its data as loaded (what load_data gives):
    a delivery's handlers then do not check and load the data once more each. Everything else sees a dict."""

    wire_data: dict | None = None
    loaded_data: dict | None = None


# the fields the rules below know, in the wire's order: EnvelopeSchema's (a test keeps them the same, so that a
# field added to the schema is not let through here unchecked, or dropped)
_ENVELOPE_FIELDS = (
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "producer",
    "ticket_id",
    "correlation_id",
    "data",
)
_ENVELOPE_KEYS = frozenset(_ENVELOPE_FIELDS)
_REQUIRED_FIELDS = _ENVELOPE_KEYS - {"correlation_id"}


def _envelope_as_loaded(envelope: dict) -> dict | None:
    """The envelope as EnvelopeSchema loads it, its data not loaded yet; None when any field is not plainly valid.

    The schema's load checks every field of every delivery and of every new event, and costs more than the rest
    of decoding it. These checks are the schema's rules for the fields (the same ones, tested against it),
    written out: a valid envelope, nearly every one, is loaded here, and anything else goes to the schema,
    whose messages say what is wrong.
    """
    given = envelope.keys()
    if not _REQUIRED_FIELDS <= given <= _ENVELOPE_KEYS:
        return None
    event_id, kind, version = envelope["event_id"], envelope["type"], envelope["schema_version"]
    at, ticket_id, correlation_id, data = (
        envelope["occurred_at"],
        envelope["ticket_id"],
        envelope.get("correlation_id"),
        envelope["data"],
    )
    if type(event_id) is not str or type(kind) is not str or kind not in DATA_SCHEMAS:
        return None
    if type(version) is not int or version != SCHEMA_VERSION or envelope["producer"] != PRODUCERS[kind]:
        return None
    if type(ticket_id) is not str or not 1 <= len(ticket_id) <= 100:
        return None
    if correlation_id is not None and (type(correlation_id) is not str or len(correlation_id) > 200):
        return None
    if type(data) is not dict or not all(type(key) is str for key in data):
        return None
    if isinstance(at, datetime):
        at = _as_utc(at)
    else:
        try:
            at = parse_time(at)
        except ValueError:
            return None
    try:
        _canonical_uuid(event_id)
    except ValidationError:
        return None
    return {
        "event_id": event_id,
        "type": kind,
        "schema_version": version,
        "occurred_at": at,
        "producer": PRODUCERS[kind],
        "ticket_id": ticket_id,
        "correlation_id": correlation_id,
        "data": data,
    }


def _dump(loaded: dict) -> dict:
    """A loaded envelope in wire form, as EnvelopeSchema dumps it (its data by its type's schema)."""
    return {
        "event_id": loaded["event_id"],
        "type": loaded["type"],
        "schema_version": loaded["schema_version"],
        "occurred_at": format_time(loaded["occurred_at"]),
        "producer": loaded["producer"],
        "ticket_id": loaded["ticket_id"],
        "correlation_id": loaded["correlation_id"],
        "data": _data_schema(loaded["type"]).dump(loaded["data"]),
    }


def _load(envelope: dict) -> dict:
    loaded = _envelope_as_loaded(envelope)
    if loaded is not None:
        try:
            loaded["data"] = _data_schema(loaded["type"]).load(loaded["data"])
            return loaded
        except ValidationError:
            pass  # the schema's load says what is wrong, with the envelope's other faults if any
    return _load_by_schema(envelope)


def _load_by_schema(envelope: dict) -> dict:
    try:
        return _envelope_schema().load(envelope)
    except ValidationError as err:
        raise InvalidEvent(err.messages) from None


def validate_envelope(envelope: dict) -> dict:
    """A valid wire-form copy of the envelope (times as strings); InvalidEvent with the reasons if not.

    The version is checked first: what else a newer envelope holds follows rules this code does not know,
    so it is UnsupportedVersion whatever its other fields (an added data field within a version is ignored).
    """
    version = envelope.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise UnsupportedVersion(
            f"schema_version {version} is not supported: this consumer reads version {SCHEMA_VERSION} "
            "(deploy a version of the service that reads it, then move the message back from the dead-letter queue)"
        )
    loaded = _load(envelope)
    data = loaded["data"]
    wire = Decoded(_dump(loaded))
    wire.wire_data, wire.loaded_data = wire["data"], data
    return wire


def load_data(envelope: dict) -> dict:
    """The envelope's data for handlers: validated, with datetimes as aware UTC datetimes (a copy of what
    `decode` loaded when its data is still the one decoded: an envelope is not changed after its decoding)."""
    if (
        isinstance(envelope, Decoded)
        and envelope.loaded_data is not None
        and envelope.get("data") is envelope.wire_data
    ):
        return copy.deepcopy(envelope.loaded_data)  # each handler its own, as a load gives (a retry runs again)
    return _load(envelope)["data"]


def make_event(
    type: str,
    ticket_id: str,
    data: dict,
    *,
    producer: str,
    correlation_id: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> dict:
    """A new envelope in wire form; data keys the schema does not know are a producer's bug and raise."""
    envelope = {
        "event_id": str(uuid.uuid4()) if event_id is None else event_id,
        "type": type,
        "schema_version": SCHEMA_VERSION,
        "occurred_at": datetime.now(UTC) if occurred_at is None else occurred_at,
        "producer": producer,
        "ticket_id": ticket_id,
        "correlation_id": correlation_id,
        "data": data,
    }
    if type not in DATA_SCHEMAS:  # not a type of the contract: the envelope's rules say what is wrong
        return validate_envelope(envelope)
    try:
        envelope["data"] = _data_schema(type).load(data, unknown=RAISE)
    except ValidationError as err:
        raise InvalidEvent({"data": err.messages}) from None
    loaded = _envelope_as_loaded(envelope)
    if loaded is not None:
        return _dump(loaded)
    try:
        return _new_envelope_schema().dump(_new_envelope_schema().load(envelope))
    except ValidationError as err:
        raise InvalidEvent(err.messages) from None


def encode(envelope: dict) -> bytes:
    """Compact UTF-8 JSON of a valid envelope."""
    return serialize(validate_envelope(envelope))


def serialize(wire: dict) -> bytes:
    """Compact UTF-8 JSON of an envelope already validated (what make_event returns)."""
    try:
        return json.dumps(wire, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as err:  # e.g. a set or NaN inside `decision`, or a lone surrogate
        raise InvalidEvent(f"not JSON-serializable: {err}") from None


def decode(body: bytes) -> dict:
    """The valid wire-form envelope in a message body; InvalidEvent if it is not one."""
    try:
        envelope = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidEvent(f"malformed JSON: {err}") from None
    if not isinstance(envelope, dict):
        raise InvalidEvent(f"malformed JSON: an event is a JSON object, not {type(envelope).__name__}")
    return validate_envelope(envelope)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in object")  # last-one-wins would lose a value silently
    return obj


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def derived_event_id(*parts: str) -> str:
    """A deterministic event id (uuid5 of the parts joined by "|"), e.g. ticket, clock, instance, threshold, version."""
    if not parts or any("|" in part for part in parts):
        raise ValueError("derived_event_id needs one or more parts, none containing '|'")
    return str(uuid.uuid5(_ID_NAMESPACE, "|".join(parts)))
