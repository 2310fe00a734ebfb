"""The event wire contract: every type builds, encodes, decodes; anything off-contract is refused."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import events
from shared.events import InvalidEvent

WIRE_TYPES = [
    "ticket.created",
    "ticket.message_added",
    "ticket.reopened",
    "ticket.closed",
    "ticket.mail_kept",
    "ticket.assigned",
    "ticket.replied",
    "ticket.status_changed",
    "ticket.priority_changed",
    "ticket.resolved",
    "agent.updated",
    "sla.warning",
    "sla.breached",
    "sla.deadlines_changed",  # added after the contract
    "notification.sent",
    "notification.failed",
]
DUE = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)

SAMPLE_DATA = {
    "agent.updated": {
        "agent_id": "jane",
        "name": "Jane Doe",
        "email": "jane@example.com",
        "teams": ["network", "general"],
        "lead_of": ["network"],
        "available": True,
    },
    "ticket.created": {
        "number": 100042,
        "subject": "VPN drops every hour",
        "description": "Since Monday ...",
        "requester": {"name": "Ana Ruiz", "email": "ana@example.com"},
        "topic": "network",
        "priority": "normal",
        "source": "web",
    },
    "ticket.message_added": {
        "message_id": "m1",
        "body": "Still broken",
        "author": {"type": "requester", "name": "Ana Ruiz", "email": "ana@example.com"},
    },
    "ticket.reopened": {"reason": "requester wrote after resolution"},
    "ticket.closed": {"by": "requester"},
    "ticket.mail_kept": {
        "mail_id": "3f1c",
        "why": "another_sender",
        "sender": {"name": "Bo Lind", "email": "bo@example.com"},
        "subject": "Re: [#100042] VPN drops",
        "body": "Same here since Monday.",
    },
    "ticket.assigned": {
        "agent_id": "jane",
        "agent_name": "Jane Doe",
        "agent_email": "jane@example.com",
        "team": "network",
        "team_lead_email": None,
        "previous_agent_id": None,
        "reason": "auto",
        "decision": {"rule": "fewest_open", "candidates": [{"agent_id": "jane", "open_tickets": 1}]},
    },
    "ticket.replied": {
        "reply_id": "r1",
        "agent_id": "jane",
        "agent_name": "Jane Doe",
        "body": "Please restart the client",
        "first_response": True,
    },
    "ticket.status_changed": {"status": "waiting_on_requester", "previous_status": "in_progress"},
    "ticket.priority_changed": {"priority": "high", "previous_priority": "normal"},
    "ticket.resolved": {"agent_id": "jane", "resolution": "Replaced the router"},
    "sla.warning": {
        "clock": "first_response",
        "instance": 0,
        "due_at": DUE,
        "percent": 80,
        "priority": "high",
        "policy_version": 1,
    },
    "sla.breached": {
        "clock": "resolution",
        "instance": 0,
        "due_at": DUE,
        "breached_at": DUE + timedelta(seconds=1),
        "priority": "high",
        "policy_version": 2,
    },
    "sla.deadlines_changed": {
        "first_response_due_at": DUE,
        "next_response_due_at": None,
        "resolution_due_at": DUE + timedelta(hours=8),
        "priority": "normal",
        "revision": 1,
    },
    "notification.sent": {
        "notification_id": "n1",
        "channel": "email",
        "recipient": "ana@example.com",
        "event_type": "ticket.created",
        "error": None,
    },
    "notification.failed": {
        "notification_id": "n2",
        "channel": "webhook",
        "recipient": "https://hooks.example.com/x",
        "event_type": "sla.breached",
        "error": "HTTP 503",
    },
}


def make(event_type: str, **overrides) -> dict:
    data = {**SAMPLE_DATA[event_type], **overrides.pop("data", {})}
    args = {"producer": events.PRODUCERS[event_type], "correlation_id": "req-1", **overrides}
    return events.make_event(event_type, "t-1", data, **args)


def test_every_contract_type_has_a_schema_and_its_producer():
    assert list(events.EVENT_TYPES) == WIRE_TYPES
    assert set(events.DATA_SCHEMAS) == set(WIRE_TYPES)
    assert set(events.PRODUCERS) == set(WIRE_TYPES)
    assert events.PRODUCERS["ticket.closed"] == "intake"
    assert events.PRODUCERS["ticket.resolved"] == "assignment"
    assert events.PRODUCERS["sla.breached"] == "sla"
    assert events.PRODUCERS["sla.deadlines_changed"] == "sla"
    assert events.PRODUCERS["notification.failed"] == "notify"


@pytest.mark.parametrize("event_type", WIRE_TYPES)
def test_each_type_builds_and_round_trips(event_type):
    envelope = make(event_type)
    body = events.encode(envelope)
    assert b" " not in body.split(b'"data"')[0]  # compact separators
    decoded = events.decode(body)
    assert decoded == envelope == json.loads(body)
    assert decoded["type"] == event_type and decoded["schema_version"] == 1
    assert decoded["producer"] == events.PRODUCERS[event_type]
    assert uuid.UUID(decoded["event_id"]).version == 4
    assert events.validate_envelope(decoded) == decoded  # validating the wire form changes nothing


def test_times_inside_data_are_strings_on_the_wire_and_datetimes_for_handlers():
    envelope = make("sla.breached")
    assert envelope["data"]["due_at"] == "2026-11-27T10:30:00.000Z"
    assert envelope["data"]["breached_at"] == "2026-11-27T10:30:01.000Z"
    data = events.load_data(events.decode(events.encode(envelope)))
    assert data["due_at"] == DUE and data["due_at"].tzinfo is not None
    assert data["breached_at"] == DUE + timedelta(seconds=1)


@pytest.mark.parametrize("event_type", WIRE_TYPES)
def test_a_delivery_s_data_is_loaded_once_and_handlers_get_what_a_load_gives(event_type, monkeypatch):
    body = events.encode(make(event_type))
    expected = events.load_data(json.loads(body))  # a plain dict: loaded the ordinary way
    loads = []
    real = events._data_schema

    def counting(kind):
        schema = real(kind)
        counted = type(schema)()
        counted.load = lambda *a, **kw: loads.append(kind) or schema.load(*a, **kw)
        return counted

    monkeypatch.setattr(events, "_data_schema", counting)
    decoded = events.decode(body)
    first, second = events.load_data(decoded), events.load_data(decoded)
    assert first == second == expected
    assert first is not second  # each handler its own dict
    assert loads == [event_type], "decode loads the data once; load_data does not load it again"


def test_load_data_loads_a_data_replaced_after_decode():
    decoded = events.decode(events.encode(make("sla.breached")))
    decoded["data"] = {**decoded["data"], "due_at": "2026-11-27T11:30:00.000Z"}
    assert events.load_data(decoded)["due_at"] == DUE + timedelta(hours=1)
    decoded["data"]["due_at"] = "later"
    with pytest.raises(InvalidEvent):
        events.load_data(decoded)


def test_datetimes_given_in_python_form_load_as_aware_utc():
    envelope = make("sla.breached")
    envelope["data"]["due_at"] = datetime(2026, 11, 27, 10, 30)  # naive: taken as UTC
    envelope["data"]["breached_at"] = datetime(2026, 11, 27, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    data = events.load_data(envelope)
    assert data["due_at"].utcoffset() == timedelta(0) and data["due_at"] == DUE
    assert data["breached_at"].utcoffset() == timedelta(0) and data["breached_at"] == DUE


def test_make_event_uses_given_id_time_and_keeps_only_the_keys_given():
    event_id = str(uuid.uuid4())
    at = datetime(2026, 11, 27, 9, 30, 0, 123456)  # naive: taken as UTC
    envelope = make("notification.sent", event_id=event_id, occurred_at=at, data={"error": None})
    assert envelope["event_id"] == event_id
    assert envelope["occurred_at"] == "2026-11-27T09:30:00.123Z"
    minimal = {k: v for k, v in SAMPLE_DATA["ticket.assigned"].items() if k != "team_lead_email"}
    built = events.make_event("ticket.assigned", "t-1", minimal, producer="assignment")
    assert "team_lead_email" not in built["data"] and built["correlation_id"] is None


def test_make_event_refuses_a_data_key_the_schema_does_not_know():
    with pytest.raises(InvalidEvent) as exc:
        make("ticket.assigned", data={"team_lead_emial": "lead@example.com"})
    assert "team_lead_emial" in exc.value.errors["data"]


def test_consumers_ignore_data_fields_a_newer_producer_adds():
    envelope = make("ticket.closed")
    envelope["data"]["closed_via"] = "portal"
    assert events.decode(json.dumps(envelope).encode())["data"] == {"by": "requester"}


@pytest.mark.parametrize("extra", [{}, {"priority": "high"}])
def test_a_newer_schema_version_is_unsupported_whatever_else_its_envelope_holds(extra):
    envelope = {**make("ticket.closed"), "schema_version": 2, **extra}
    with pytest.raises(events.UnsupportedVersion, match="schema_version 2 is not supported"):
        events.decode(json.dumps(envelope).encode())
    with pytest.raises(InvalidEvent) as exc:  # an older or broken version stays plainly invalid
        events.decode(json.dumps({**envelope, "schema_version": 0}).encode())
    assert not isinstance(exc.value, events.UnsupportedVersion)


def test_unknown_envelope_field_is_rejected():
    envelope = {**make("ticket.closed"), "priority": "high"}
    with pytest.raises(InvalidEvent) as exc:
        events.decode(json.dumps(envelope).encode())
    assert "priority" in exc.value.errors


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", "ticket.deleted"),
        ("schema_version", 2),
        ("schema_version", "1"),
        ("event_id", "not-a-uuid"),
        ("event_id", "8FD05E55-4889-4F5D-B578-C1626FB26EB3"),  # a uuid, but in capitals
        ("occurred_at", "2026-11-27T09:30:00.000+01:00"),
        ("occurred_at", "2026-11-27"),
        ("producer", "billing"),
        ("ticket_id", ""),
        ("data", ["not", "an", "object"]),
    ],
)
def test_bad_envelope_fields_are_rejected_by_name(field, value):
    envelope = {**make("ticket.closed"), field: value}
    with pytest.raises(InvalidEvent) as exc:
        events.validate_envelope(envelope)
    assert field in exc.value.errors


def test_a_type_sent_by_another_service_is_rejected():
    with pytest.raises(InvalidEvent) as exc:
        events.make_event("ticket.closed", "t-1", {"by": "auto"}, producer="assignment")
    assert exc.value.errors == {"producer": ["ticket.closed is published by intake."]}


def test_missing_required_data_field_is_named():
    envelope = make("ticket.created")
    del envelope["data"]["subject"]
    with pytest.raises(InvalidEvent) as exc:
        events.validate_envelope(envelope)
    assert exc.value.errors == {"data": {"subject": ["Missing data for required field."]}}
    with pytest.raises(InvalidEvent) as exc:
        events.make_event("ticket.created", "t-1", envelope["data"], producer="intake")
    assert "subject" in exc.value.errors["data"]


@pytest.mark.parametrize(
    ("event_type", "data", "field"),
    [
        ("ticket.created", {"priority": "urgent"}, "priority"),
        ("ticket.created", {"source": "fax"}, "source"),
        ("ticket.created", {"number": "100042"}, "number"),
        ("ticket.created", {"subject": "x" * 201}, "subject"),
        ("ticket.created", {"requester": {"name": "Ana", "email": "not-an-email"}}, "requester"),
        ("ticket.message_added", {"author": {"type": "bot", "name": "x"}}, "author"),
        ("ticket.closed", {"by": "agent"}, "by"),
        ("ticket.assigned", {"reason": "random"}, "reason"),
        ("ticket.assigned", {"agent_id": ""}, "agent_id"),
        ("ticket.replied", {"first_response": 1}, "first_response"),
        ("ticket.status_changed", {"status": "open"}, "status"),
        ("ticket.priority_changed", {"priority": "urgent"}, "priority"),
        ("sla.warning", {"clock": "lunch"}, "clock"),
        ("sla.warning", {"instance": -1}, "instance"),
        ("sla.warning", {"policy_version": 0}, "policy_version"),
        ("sla.warning", {"percent": float("nan")}, "percent"),
        ("sla.breached", {"breached_at": "yesterday"}, "breached_at"),
        ("notification.sent", {"channel": "sms"}, "channel"),
        ("agent.updated", {"lead_of": ["hardware"]}, "lead_of"),
        ("agent.updated", {"teams": "network"}, "teams"),
        ("agent.updated", {"available": "yes"}, "available"),
    ],
)
def test_bad_data_values_are_rejected_by_name(event_type, data, field):
    with pytest.raises(InvalidEvent) as exc:
        make(event_type, data=data)
    assert field in exc.value.errors["data"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"\xff\xfe{}", b"[1, 2]", b'"ticket.created"', b"null", b'{"a": 1, "a": 2}', b'{"a": NaN}'],
)
def test_malformed_or_non_object_json_is_invalid(body):
    with pytest.raises(InvalidEvent) as exc:
        events.decode(body)
    assert str(exc.value).startswith("malformed JSON")
    assert isinstance(exc.value, ValueError)


def test_decode_names_every_problem_at_once():
    envelope = make("ticket.created")
    envelope["occurred_at"] = "soon"
    envelope["data"]["priority"] = "urgent"
    with pytest.raises(InvalidEvent) as exc:
        events.decode(json.dumps(envelope).encode())
    assert set(exc.value.errors) == {"occurred_at", "data"}
    assert set(exc.value.errors["data"]) == {"priority"}


def test_encode_refuses_what_json_cannot_carry():
    with pytest.raises(InvalidEvent):
        events.encode(make("ticket.assigned", data={"decision": {"candidates": {"jane"}}}))


def test_time_format_is_utc_with_z_and_milliseconds():
    dt = datetime(2026, 11, 27, 10, 30, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert events.format_time(dt) == "2026-11-27T09:30:00.999Z"
    assert events.parse_time("2026-11-27T09:30:00Z") == datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    assert events.parse_time("2026-11-27T09:30:00.5+00:00") == datetime(2026, 11, 27, 9, 30, 0, 500000, tzinfo=UTC)
    for bad in ["2026-11-27T09:30:00", "2026-11-27T09:30:00-05:00", "2026-13-01T00:00:00Z", "tomorrow", ""]:
        with pytest.raises(ValueError):
            events.parse_time(bad)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31, 23, 59, 59)),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_times_round_trip(naive, offset_minutes):
    dt = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    text = events.format_time(dt)
    assert text.endswith("Z") and len(text) == len("2026-11-27T09:30:00.000Z") and text[19] == "."
    parsed = events.parse_time(text)
    assert parsed.utcoffset() == timedelta(0)
    assert parsed == dt - timedelta(microseconds=dt.microsecond % 1000)  # milliseconds kept, below truncated
    assert events.format_time(parsed) == text


def test_derived_event_id_is_deterministic_and_differs_per_part():
    parts = ("t-1", "first_response", "0", "80", "1")
    first = events.derived_event_id(*parts)
    assert first == events.derived_event_id(*parts)
    assert str(uuid.UUID(first)) == first and uuid.UUID(first).version == 5
    variants = {events.derived_event_id(*parts[:i], parts[i] + "x", *parts[i + 1 :]) for i in range(len(parts))}
    assert len(variants) == len(parts) and first not in variants
    with pytest.raises(ValueError):
        events.derived_event_id("a|b", "c")


def test_a_derived_id_is_a_valid_event_id():
    event_id = events.derived_event_id("t-1", "resolution", "0", "breach", "2")
    assert make("sla.breached", event_id=event_id)["event_id"] == event_id


def test_agent_updated_is_published_by_assignment_with_the_agent_id_as_its_ticket_id():
    envelope = events.make_event("agent.updated", "jane", SAMPLE_DATA["agent.updated"], producer="assignment")
    assert events.load_data(envelope)["lead_of"] == ["network"]
    with pytest.raises(InvalidEvent):
        events.make_event("agent.updated", "jane", SAMPLE_DATA["agent.updated"], producer="intake")


# ---- the envelope's checks written out (events._envelope_as_loaded) against the schema's --------------------

ENVELOPE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 1),  # a newer version is refused before either load (its own test above)
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            "",
            "t-1",
            "x" * 100,
            "x" * 101,
            "x" * 201,
            "intake",
            "assignment",
            "notify",
            "ticket.closed",
            "ticket.created",
            "2026-11-27T09:30:00.000Z",
            "2026-11-27T09:30:00Z",
            "2026-11-27t09:30:00.5+00:00",
            "2026-11-27T09:30:00.000+01:00",
            "8fd05e55-4889-4f5d-b578-c1626fb26eb3",
            "8FD05E55-4889-4F5D-B578-C1626FB26EB3",
            "8fd05e5548894f5db578c1626fb26eb3",
        ]
    ),
    st.text(max_size=5),
    st.just(datetime(2026, 11, 27, 9, 30)),
    st.just(datetime(2026, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=2)))),
    st.just({"by": "auto"}),
    st.just({"by": "nobody"}),
    st.just({1: "auto"}),
    st.just({"by": "auto", 1: "auto"}),
    st.just(["by", "auto"]),
)


def _by_schema(envelope: dict) -> str:
    """What the schema alone gives for an envelope: its wire form and loaded data, or the errors it names (as
    repr: the order of the keys counts, and 1, 1.0 and True differ)."""
    try:
        loaded = events._load_by_schema(envelope)
    except InvalidEvent as err:
        return repr(("invalid", err.errors))
    return repr(("valid", events._envelope_schema().dump(loaded), loaded["data"]))


def _as_checked(envelope: dict) -> str:
    try:
        wire = events.validate_envelope(envelope)
    except InvalidEvent as err:
        return repr(("invalid", err.errors))
    return repr(("valid", dict(wire), events.load_data(wire)))


def test_the_rules_written_out_know_every_field_of_the_envelope_schema():
    assert events._ENVELOPE_FIELDS == tuple(events.EnvelopeSchema._declared_fields)


@pytest.mark.parametrize("event_type", WIRE_TYPES)
def test_a_valid_envelope_loads_and_dumps_as_the_schema_does_it(event_type):
    envelope = make(event_type)
    for given_form in (envelope, {**envelope, "occurred_at": events.parse_time(envelope["occurred_at"])}):
        assert _as_checked(given_form) == _by_schema(given_form)
        assert _as_checked(given_form).startswith("('valid'")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ticket_id", "x" * 100),
        ("ticket_id", "x" * 101),
        ("ticket_id", ""),
        ("ticket_id", 7),
        ("correlation_id", "x" * 200),
        ("correlation_id", "x" * 201),
        ("correlation_id", None),
        ("correlation_id", 7),
        ("producer", "assignment"),
        ("producer", ["intake"]),
        ("type", "ticket.created"),
        ("type", "ticket.deleted"),
        ("type", ["ticket.closed"]),
        ("schema_version", True),
        ("schema_version", 1.0),
        ("schema_version", "1"),
        ("event_id", "8FD05E55-4889-4F5D-B578-C1626FB26EB3"),
        ("event_id", "8fd05e5548894f5db578c1626fb26eb3"),
        ("event_id", 7),
        ("occurred_at", "2026-11-27t09:30:00.5+00:00"),
        ("occurred_at", "2026-11-27T09:30:00.000+01:00"),
        ("occurred_at", datetime(2026, 11, 27, 9, 30)),
        ("occurred_at", datetime(2026, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=2)))),
        ("occurred_at", 1764236400),
        ("data", {"by": "auto", 1: "auto"}),
        ("data", {"by": "auto", "added_later": 1}),
        ("data", {"by": "nobody"}),
        ("data", None),
        ("priority", "high"),
    ],
)
def test_each_envelope_field_is_valid_or_refused_as_the_schema_says(field, value):
    envelope = {**make("ticket.closed"), field: value}
    assert _as_checked(envelope) == _by_schema(envelope)
    if _as_checked(envelope).startswith("('valid'"):  # and loaded alike (a time in UTC)
        assert repr(events._load(envelope)) == repr(events._load_by_schema(envelope))
    del envelope[field]
    assert _as_checked(envelope) == _by_schema(envelope)


@settings(max_examples=300)
@given(
    event_type=st.sampled_from(["ticket.closed", "ticket.created", "notification.sent"]),
    changes=st.dictionaries(st.sampled_from([*events._ENVELOPE_FIELDS, "priority"]), ENVELOPE_VALUES, max_size=3),
    dropped=st.sets(st.sampled_from(events._ENVELOPE_FIELDS), max_size=2),
)
def test_any_envelope_is_valid_or_refused_as_the_schema_says(event_type, changes, dropped):
    envelope = {**make(event_type), **changes}
    for name in dropped:
        envelope.pop(name, None)
    assert _as_checked(envelope) == _by_schema(envelope)


@pytest.mark.parametrize("event_type", WIRE_TYPES)
@pytest.mark.parametrize("correlation_id", [None, "req-1", "x" * 200])
@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 27, 9, 30, 1, 234567),
        datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 27, 4, 30, 1, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_make_event_gives_what_the_schema_gives(event_type, correlation_id, at):
    event_id, producer = "8fd05e55-4889-4f5d-b578-c1626fb26eb3", events.PRODUCERS[event_type]
    made = events.make_event(
        event_type,
        "t-9",
        SAMPLE_DATA[event_type],
        producer=producer,
        correlation_id=correlation_id,
        event_id=event_id,
        occurred_at=at,
    )
    envelope = {
        "event_id": event_id,
        "type": event_type,
        "schema_version": 1,
        "occurred_at": at,
        "producer": producer,
        "ticket_id": "t-9",
        "correlation_id": correlation_id,
        "data": events._data_schema(event_type).load(SAMPLE_DATA[event_type]),
    }
    by_schema = events._new_envelope_schema().dump(events._new_envelope_schema().load(envelope))
    assert repr(made) == repr(by_schema)


@pytest.mark.parametrize(
    ("field", "value"),
    [("ticket_id", "x" * 101), ("ticket_id", ""), ("correlation_id", "x" * 201), ("event_id", "not-a-uuid")],
)
def test_make_event_refuses_what_the_schema_refuses(field, value):
    args = {"ticket_id": "t-9", "correlation_id": None, "event_id": None} | {field: value}
    with pytest.raises(InvalidEvent) as exc:
        events.make_event(
            "ticket.closed",
            args["ticket_id"],
            {"by": "auto"},
            producer="intake",
            correlation_id=args["correlation_id"],
            event_id=args["event_id"],
        )
    assert field in exc.value.errors
