"""marshmallow schemas of assignment's HTTP API: agents, teams, the queue and the agents' work on tickets."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema
from webargs.fields import DelimitedList

from services.assignment.domain import WORK_STATUSES
from shared.events import CLOCKS, OPEN_STATUSES, PRIORITIES, STATUSES, StrictBoolean, Timestamp
from shared.schemas import FullMatch, QueryBoolean, Strict, file_names, name_text, text, unique

AGENT_ID = FullMatch(r"^[a-z0-9][a-z0-9._-]{0,63}$", error="Use 1 to 64 lowercase letters, digits, ., - or _.")
TEAM_ID = FullMatch(r"^[a-z0-9][a-z0-9_-]{0,39}$", error="Use 1 to 40 lowercase letters, digits, - or _.")
TOPIC_ID = FullMatch(r"^[a-z0-9][a-z0-9_-]{0,39}$", error="Use 1 to 40 lowercase letters, digits, - or _.")


def _ids(validator: FullMatch, minimum: int = 0, **kwargs) -> fields.List:
    """A list of distinct ids, at least `minimum` of them."""
    rules = [validate.Length(min=minimum), unique] if minimum else [unique]
    return fields.List(fields.String(validate=validator), validate=rules, metadata={"uniqueItems": True}, **kwargs)


class Patch(Strict):
    """Every field optional, but a change must change something."""

    @validates_schema
    def _not_empty(self, data: dict, **kwargs) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.")


class _LowercaseEmail:
    @pre_load
    def normalize_email(self, data, **kwargs):
        if isinstance(data, dict) and isinstance(data.get("email"), str):
            data = {**data, "email": data["email"].strip().lower()}
        return data


# ---- agents and teams -----------------------------------------------------------------------------


class AgentCreateSchema(_LowercaseEmail, Strict):
    id = fields.String(required=True, validate=AGENT_ID)
    name = name_text(200, required=True)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    teams = _ids(TEAM_ID, 1, required=True)
    capacity = fields.Integer(required=True, strict=True, validate=validate.Range(1, 1000))
    available = StrictBoolean(load_default=True)
    lead_of = _ids(TEAM_ID)  # the teams it leads, among its teams (default none)
    lead = StrictBoolean(
        metadata={"description": "Deprecated, for older clients: true leads all its teams; use lead_of instead."}
    )


class AgentPatchSchema(_LowercaseEmail, Patch):
    name = name_text(200)
    email = fields.Email(validate=validate.Length(max=254))
    teams = _ids(TEAM_ID, 1)
    capacity = fields.Integer(strict=True, validate=validate.Range(1, 1000))
    available = StrictBoolean()
    lead_of = _ids(TEAM_ID)  # the teams it leads, among its teams
    lead = StrictBoolean(
        metadata={"description": "Deprecated, for older clients: true leads all its teams; use lead_of instead."}
    )


class AgentListQuerySchema(Schema):
    team = fields.String(validate=TEAM_ID)


class AgentSchema(Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String()
    teams = fields.List(fields.String())
    capacity = fields.Integer()
    available = fields.Boolean()
    lead_of = fields.List(fields.String(), metadata={"description": "The teams it leads (a subset of teams)."})
    lead = fields.Boolean(metadata={"description": "Deprecated: whether it leads any team; see lead_of."})
    open_tickets = fields.Integer(metadata={"description": "Tickets assigned to the agent, not resolved or closed."})
    created_at = Timestamp()
    updated_at = Timestamp()


class AgentListSchema(Schema):
    items = fields.List(fields.Nested(AgentSchema))
    next_cursor = fields.String(allow_none=True)


class TeamCreateSchema(Strict):
    id = fields.String(required=True, validate=TEAM_ID)
    name = name_text(200, required=True)
    topics = _ids(TOPIC_ID, load_default=list)


class TeamPatchSchema(Patch):
    name = name_text(200)
    topics = _ids(TOPIC_ID)


class TeamSchema(Schema):
    id = fields.String()
    name = fields.String()
    topics = fields.List(fields.String())
    created_at = Timestamp()
    updated_at = Timestamp()


class TeamListSchema(Schema):
    items = fields.List(fields.Nested(TeamSchema))
    next_cursor = fields.String(allow_none=True)


# ---- tickets --------------------------------------------------------------------------------------


class SlaAlertSchema(Schema):
    kind = fields.String(metadata={"description": "warning or breached"})
    clock = fields.String(metadata={"enum": list(CLOCKS)})
    instance = fields.Integer()
    percent = fields.Float(allow_none=True)
    due_at = Timestamp()
    at = Timestamp()


class SlaSchema(Schema):
    first_response_due_at = Timestamp(allow_none=True)
    next_response_due_at = Timestamp(allow_none=True)
    resolution_due_at = Timestamp(allow_none=True)
    breached = fields.Boolean()
    alerts = fields.List(fields.Nested(SlaAlertSchema), metadata={"description": "The SLA warnings and breaches."})


class NoteSchema(Schema):
    id = fields.String()
    body = fields.String()
    by = fields.String()
    by_name = fields.String(allow_none=True, metadata={"description": "the agent's name then; null for an admin"})
    at = Timestamp()


class ReplySchema(NoteSchema):  # a reply has no by_name: left out of the answer (marshmallow skips what is missing)
    first_response = fields.Boolean()


class CandidateSchema(Schema):
    agent_id = fields.String()
    open_tickets = fields.Integer()
    capacity = fields.Integer()
    available = fields.Boolean()


class DecisionSchema(Schema):
    """Why an automatic assignment went where it went: the rule and every candidate considered."""

    rule = fields.String()
    team = fields.String()
    chosen = fields.String(allow_none=True)
    candidates = fields.List(fields.Nested(CandidateSchema))


class HistoryEntrySchema(Schema):
    at = Timestamp()
    action = fields.String()
    by = fields.String()
    from_ = fields.String(attribute="from", data_key="from", allow_none=True)
    to = fields.String(allow_none=True)
    decision = fields.Nested(DecisionSchema, metadata={"description": "automatic assignments only"})


class TicketSchema(Schema):
    """Dumps the domain Ticket that handlers return (its id is `id`)."""

    ticket_id = fields.String(attribute="id")
    number = fields.Integer()
    subject = fields.String()
    topic = fields.String()
    priority = fields.String(metadata={"enum": list(PRIORITIES)})
    team = fields.String()
    agent_id = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(STATUSES)})
    created_at = Timestamp()
    first_response_at = Timestamp(allow_none=True)
    resolved_at = Timestamp(allow_none=True)
    sla = fields.Nested(SlaSchema)
    notes = fields.List(fields.Nested(NoteSchema))
    history = fields.List(fields.Nested(HistoryEntrySchema))


TICKET_FIELDS = tuple(TicketSchema._declared_fields)
HEAVY_FIELDS = ("notes", "history")  # read from the store only when asked for: most of a ticket's bytes


def only_fields(ticket, names: list[str]) -> dict:
    """What TicketSchema dumps of `ticket` for these of its fields alone (the others are left out)."""
    attributes = (TicketSchema._declared_fields[name].attribute or name for name in names)
    return {attribute: getattr(ticket, attribute) for attribute in attributes}


class QueueQuerySchema(Schema):
    agent_id = fields.String(validate=AGENT_ID, metadata={"description": "only the tickets assigned to this agent"})
    team = fields.String(validate=TEAM_ID, metadata={"description": "only the tickets of this team"})
    status = fields.String(validate=validate.OneOf(OPEN_STATUSES), metadata={"description": "only this open status"})
    priority = fields.String(validate=validate.OneOf(PRIORITIES), metadata={"description": "only this priority"})
    topic = fields.String(validate=TOPIC_ID, metadata={"description": "only the tickets of this topic id"})
    unassigned = QueryBoolean(
        metadata={
            "description": "true: only the tickets no agent has (an agent: its teams' queues); false: only assigned "
            "ones. true cannot be combined with agent_id."
        }
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(
        validate=validate.Length(1, 500), metadata={"description": "a next_cursor given out, with the same filters"}
    )
    only = DelimitedList(
        fields.String(validate=validate.OneOf(TICKET_FIELDS)),
        data_key="fields",
        validate=validate.Length(min=1),
        metadata={
            "description": "only these fields of each ticket, comma-separated (e.g. ticket_id,number,subject,"
            "priority,status,team,agent_id,sla): a lighter page; a ticket's notes and history are read only "
            "when asked for. Default: every field."
        },
    )

    @validates_schema
    def _unassigned_has_no_agent(self, data: dict, **kwargs) -> None:
        if data.get("unassigned") is True and "agent_id" in data:
            raise ValidationError(
                "unassigned=true asks for tickets no agent has: give it without agent_id.", field_name="unassigned"
            )


class TicketListSchema(Schema):
    items = fields.List(fields.Nested(TicketSchema))
    next_cursor = fields.String(allow_none=True)


class AssignSchema(Strict):
    agent_id = fields.String(validate=AGENT_ID)
    team = fields.String(validate=TEAM_ID)

    @validates_schema
    def _exactly_one(self, data: dict, **kwargs) -> None:
        if ("agent_id" in data) == ("team" in data):
            raise ValidationError("Give exactly one of agent_id (reassign) and team (transfer).")


class ReplyCreateSchema(Strict):
    body = text(20000, required=True)
    status = fields.String(validate=validate.OneOf(WORK_STATUSES))
    files = file_names()


class NoteCreateSchema(Strict):
    body = text(20000, required=True)


class StatusChangeSchema(Strict):
    status = fields.String(required=True, validate=validate.OneOf(WORK_STATUSES))


class PriorityChangeSchema(Strict):
    priority = fields.String(required=True, validate=validate.OneOf(PRIORITIES))


class ResolveSchema(Strict):
    resolution = text(5000, required=True)
    merged_into = fields.Integer(
        strict=True,
        validate=validate.Range(1, 10**15),
        metadata={
            "description": "A duplicate: the number of the same requester's request it was merged into (the "
            "portal's merge), carried by `ticket.resolved` so that its email says so. Not this ticket's own."
        },
    )
