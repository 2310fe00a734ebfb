"""marshmallow schemas of sla's HTTP API: policies, calendars, clocks, breaches and statistics.

The PUT bodies are checked by the domain's own rules (`validate_policy`, `parse_calendar`) before any
field is read, so the API and the worker agree on what a valid policy or calendar is; the fields below
describe the bodies for the OpenAPI document and only ever see values the domain accepted.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from services.sla.business_time import CalendarError, parse_calendar
from services.sla.domain import MAX_MINUTES, STATS_WINDOW, PolicyError, validate_policy
from shared.clock import now
from shared.events import BY_URGENCY, CLOCKS, Timestamp
from shared.schemas import Strict

STATES = ("running", "paused", "met", "breached", "stopped")
HHMM = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
CALENDAR_ID = {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", "description": "letters, digits, _, . or -"}


def _minutes(clock: str) -> fields.Float:
    rule = validate.Range(0, MAX_MINUTES, min_inclusive=False)
    return fields.Float(
        required=True,
        validate=rule,
        metadata={"description": f"{clock} target, > 0 (may be fractional)", "exclusiveMinimum": True},
    )


class PolicyPutSchema(Strict):
    first_response_minutes = _minutes("first_response")
    next_response_minutes = _minutes("next_response")
    resolution_minutes = _minutes("resolution")
    warn_at_percent = fields.List(
        fields.Integer(strict=True, validate=validate.Range(1, 99)), required=True, metadata={"uniqueItems": True}
    )
    calendar = fields.String(required=True, metadata=CALENDAR_ID)

    @pre_load
    def _domain_rules(self, data, **kwargs):
        """The domain's checks of a policy (the calendar's existence is the handler's: it needs the store)."""
        try:
            validate_policy(data)
        except PolicyError as exc:
            raise ValidationError(exc.errors) from None
        return data


def _periods() -> fields.List:
    period = fields.List(fields.String(metadata={"pattern": HHMM}), validate=validate.Length(2, 2))
    return fields.List(period, metadata={"description": 'open periods ["HH:MM", "HH:MM"]; 24:00 ends a day'})


class HoursSchema(Strict):
    mon = _periods()
    tue = _periods()
    wed = _periods()
    thu = _periods()
    fri = _periods()
    sat = _periods()
    sun = _periods()


class CalendarPutSchema(Strict):
    timezone = fields.String(required=True, metadata={"description": "an IANA time zone, e.g. Europe/Madrid"})
    hours = fields.Nested(HoursSchema, required=True, metadata={"description": "a day left out is closed"})
    holidays = fields.List(fields.String(metadata={"format": "date"}), metadata={"description": "YYYY-MM-DD"})

    @pre_load
    def _domain_rules(self, data, **kwargs):
        """The domain's checks of a calendar: every problem, under its field path (hours.mon, holidays.0)."""
        try:
            parse_calendar("new", data)
        except CalendarError as exc:
            raise ValidationError(exc.errors) from None
        return data


# --- responses ---------------------------------------------------------------------------------------


class PolicySchema(Schema):
    priority = fields.String(metadata={"enum": list(BY_URGENCY)})
    version = fields.Integer()
    first_response_minutes = fields.Float()
    next_response_minutes = fields.Float()
    resolution_minutes = fields.Float()
    warn_at_percent = fields.List(fields.Integer())
    calendar = fields.String()
    changed_at = Timestamp(allow_none=True, metadata={"description": "when this version took effect"})


class PolicyListSchema(Schema):
    items = fields.List(fields.Nested(PolicySchema))
    next_cursor = fields.String(allow_none=True)


class CalendarSchema(Schema):
    id = fields.String(attribute="_id")
    timezone = fields.String()
    hours = fields.Dict(keys=fields.String(), values=fields.List(fields.List(fields.String())))
    holidays = fields.List(fields.String())
    version = fields.Integer()
    updated_at = Timestamp(metadata={"description": "absent on the built-in 24x7"})


class CalendarListSchema(Schema):
    items = fields.List(fields.Nested(CalendarSchema))
    next_cursor = fields.String(allow_none=True)


class ClockSchema(Schema):
    state = fields.String(metadata={"enum": list(STATES)})
    instance = fields.Integer(metadata={"description": "0; next_response counts 0, 1, 2... one per cycle"})
    due_at = Timestamp(allow_none=True, metadata={"description": "null while paused"})
    met_at = Timestamp(allow_none=True)
    breached_at = Timestamp(allow_none=True)
    elapsed_seconds = fields.Float(metadata={"description": "business seconds counted so far"})
    remaining_seconds = fields.Float(metadata={"description": "business seconds left to the target (0 once past)"})
    policy_version = fields.Integer()
    calendar = fields.String(metadata={"description": "the calendar its seconds count in: 24x7, or a calendar's id"})


class ClocksSchema(Schema):
    first_response = fields.Nested(ClockSchema, allow_none=True)
    next_response = fields.Nested(ClockSchema, allow_none=True, metadata={"description": "null until one starts"})
    resolution = fields.Nested(ClockSchema, allow_none=True)


class TicketClocksSchema(Schema):
    ticket_id = fields.String()
    priority = fields.String(metadata={"enum": list(BY_URGENCY)})
    clocks = fields.Nested(ClocksSchema)


class TicketsQuerySchema(Schema):
    ticket_id = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        required=True,
        validate=validate.Length(1, 200),
        metadata={"description": "a ticket's id, repeated for each (1 to 200)"},
    )


class TicketClocksListSchema(Schema):
    items = fields.List(fields.Nested(TicketClocksSchema))
    next_cursor = fields.String(allow_none=True, dump_default=None, metadata={"description": "always null: one page"})


class _Window(Schema):
    """A query's `since` and `until`: one after the other (a window that ends before it starts is a mistake, said,
    not an empty answer)."""

    @validates_schema
    def _in_order(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError({"until": ["Must not be before since."]})


class BreachQuerySchema(_Window):
    since = Timestamp(metadata={"description": "breached at or after this UTC time (ending in Z)"})
    until = Timestamp(metadata={"description": "breached before this UTC time (ending in Z); default: no end"})
    priority = fields.String(validate=validate.OneOf(BY_URGENCY))
    clock = fields.String(validate=validate.OneOf(CLOCKS))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(1, 500))


class BreachSchema(Schema):
    event_id = fields.String(metadata={"description": "the sla.breached event's id"})
    ticket_id = fields.String()
    clock = fields.String(metadata={"enum": list(CLOCKS)})
    instance = fields.Integer()
    priority = fields.String(metadata={"enum": list(BY_URGENCY)})
    due_at = Timestamp()
    breached_at = Timestamp()
    policy_version = fields.Integer()


class BreachListSchema(Schema):
    items = fields.List(fields.Nested(BreachSchema))
    next_cursor = fields.String(allow_none=True)


class StatsQuerySchema(_Window):
    since = Timestamp(metadata={"description": "tickets created at or after this UTC time; default 30 days ago"})
    until = Timestamp(metadata={"description": "tickets created before this UTC time; default: no end"})

    @validates_schema
    def _after_the_default_since(self, data, **kwargs):
        """`until` alone, before the 30 days `since` is by default: said, not an empty answer."""
        if data.get("until") and not data.get("since") and data["until"] < now() - STATS_WINDOW:
            raise ValidationError({"until": ["Must not be before since, 30 days ago by default: give since too."]})


class BucketSchema(Schema):
    up_to_seconds = fields.Float(allow_none=True, metadata={"description": "upper bound, inclusive; null: beyond"})
    count = fields.Integer(metadata={"description": "finished clocks whose time is over the bucket before, up to this"})


class StatsRowSchema(Schema):
    priority = fields.String(metadata={"enum": list(BY_URGENCY)})
    clock = fields.String(metadata={"enum": list(CLOCKS)})
    met = fields.Integer()
    breached = fields.Integer()
    open = fields.Integer()
    stopped = fields.Integer()
    compliance_percent = fields.Float(allow_none=True, metadata={"description": "met / (met + breached)"})
    median_seconds = fields.Float(allow_none=True)
    p90_seconds = fields.Float(allow_none=True)
    measured = fields.Integer(metadata={"description": "clocks with a final time (the median's sample)"})
    histogram = fields.List(
        fields.Nested(BucketSchema), metadata={"description": "the measured times in buckets (1 min to 7 days, more)"}
    )


class StatsSchema(Schema):
    since = Timestamp()
    until = Timestamp(allow_none=True)
    items = fields.List(fields.Nested(StatsRowSchema))
    next_cursor = fields.String(allow_none=True)


# --- what-if ------------------------------------------------------------------------------------------

OUTCOMES = ("met", "breached", "open", "stopped")


SINCE = {"description": "tickets created at or after this UTC time (as /stats), not in the future; default 30 days ago"}


def _since_not_ahead(data: dict) -> None:
    """A replay of what has not happened yet is a mistake (a year typed wrong), said, not an empty answer."""
    if data.get("since") and data["since"] > now():
        raise ValidationError({"since": ["Must not be in the future: the replay covers tickets since then."]})


class WhatIfQuerySchema(Schema):
    since = Timestamp(metadata=SINCE)

    @validates_schema
    def _not_ahead(self, data, **kwargs):
        _since_not_ahead(data)


class WhatIfBodySchema(PolicyPutSchema):
    """The draft policy (a PUT /policies/{priority} body) and, in the body or the query, `since`."""

    since = Timestamp(metadata=SINCE)

    @pre_load
    def _domain_rules(self, data, **kwargs):
        """The policy's checks on the draft without `since`, which is not a policy's field."""
        draft = {key: value for key, value in data.items() if key != "since"} if isinstance(data, dict) else data
        super()._domain_rules(draft)
        return data

    @validates_schema
    def _not_ahead(self, data, **kwargs):
        _since_not_ahead(data)


class DraftPolicySchema(Schema):
    priority = fields.String(metadata={"enum": list(BY_URGENCY)})
    first_response_minutes = fields.Float()
    next_response_minutes = fields.Float()
    resolution_minutes = fields.Float()
    warn_at_percent = fields.List(fields.Integer())
    calendar = fields.String()


class CurrentFiguresSchema(Schema):
    policy = fields.Nested(PolicySchema, metadata={"description": "the priority's current policy"})
    items = fields.List(fields.Nested(StatsRowSchema), metadata={"description": "the priority's rows of /stats"})


class DraftFiguresSchema(Schema):
    policy = fields.Nested(DraftPolicySchema, metadata={"description": "the draft, as PUT would store it"})
    items = fields.List(fields.Nested(StatsRowSchema), metadata={"description": "the same rows under the draft"})


class OutcomeSchema(Schema):
    outcome = fields.String(metadata={"enum": list(OUTCOMES), "description": "as /stats counts the clock"})
    due_at = Timestamp(allow_none=True, metadata={"description": "the deadline it last ran to (null while paused)"})
    breached_at = Timestamp(allow_none=True, metadata={"description": "the deadline it passed, if it did"})


class ChangedClockSchema(Schema):
    ticket_id = fields.String()
    clock = fields.String(metadata={"enum": list(CLOCKS)})
    instance = fields.Integer()
    current = fields.Nested(OutcomeSchema)
    draft = fields.Nested(OutcomeSchema)


class AsGiven(fields.Nested):
    """Documented as its nested schema, written out as given: the handler builds these JSON-ready, as a
    what-if can list thousands and marshmallow would spend longer on them than the replay did."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class WhatIfSchema(Schema):
    priority = fields.String(metadata={"enum": list(BY_URGENCY)})
    since = Timestamp()
    current = fields.Nested(CurrentFiguresSchema)
    draft = fields.Nested(DraftFiguresSchema)
    changed = fields.List(
        AsGiven(ChangedClockSchema),
        metadata={"description": "every clock breached one way and not the other, oldest first (the whole list)"},
    )
    replayed = fields.Integer(metadata={"description": "tickets replayed"})
    skipped = fields.Integer(
        metadata={"description": "tickets left out: clocks recorded before sla kept their history"}
    )
