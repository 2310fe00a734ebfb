"""assignment's HTTP schemas: what each body accepts and refuses, and the JSON each response dumps."""

from datetime import UTC, datetime

import pytest
from marshmallow import Schema, ValidationError

from services.assignment.domain import Ticket
from services.assignment.schemas import (
    AgentCreateSchema,
    AgentListQuerySchema,
    AgentListSchema,
    AgentPatchSchema,
    AgentSchema,
    AssignSchema,
    NoteCreateSchema,
    NoteSchema,
    PriorityChangeSchema,
    QueueQuerySchema,
    ReplyCreateSchema,
    ReplySchema,
    ResolveSchema,
    StatusChangeSchema,
    TeamCreateSchema,
    TeamListSchema,
    TeamPatchSchema,
    TicketListSchema,
    TicketSchema,
)

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
AGENT = {
    "id": "jane",
    "name": "Jane Doe",
    "email": "jane@example.com",
    "teams": ["network"],
    "capacity": 10,
    "available": True,
    "lead": False,
}


def errors(schema: Schema, data: dict) -> dict:
    """marshmallow's messages for data, or {} when it loads."""
    try:
        schema.load(data)
    except ValidationError as err:
        return err.messages
    return {}


# ---- POST /agents -------------------------------------------------------------------------------


def test_agent_create_fills_defaults_and_normalizes_email():
    loaded = AgentCreateSchema().load(
        {"id": "jane", "name": "Jane", "email": " Jane@Example.COM ", "teams": ["network"], "capacity": 1}
    )
    assert loaded == {
        "id": "jane",
        "name": "Jane",
        "email": "jane@example.com",
        "teams": ["network"],
        "capacity": 1,
        "available": True,
    }


@pytest.mark.parametrize("agent_id", ["jane", "j", "jane.doe_1-x", "0ops", "a" * 64])
def test_agent_ids_that_fit(agent_id):
    assert errors(AgentCreateSchema(), {**AGENT, "id": agent_id}) == {}


@pytest.mark.parametrize("agent_id", ["", "Jane", "-jane", ".jane", "_jane", "ja ne", "jané", "a" * 65, "jane\n", 7])
def test_agent_ids_that_do_not_fit(agent_id):
    assert list(errors(AgentCreateSchema(), {**AGENT, "id": agent_id})) == ["id"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", ""),
        ("name", "   "),
        ("name", "x" * 201),
        ("name", None),
        ("email", "not-an-email"),
        ("email", "jane@"),
        ("email", "a" * 250 + "@example.com"),
        ("teams", []),
        ("teams", "network"),
        ("teams", ["network", "network"]),
        ("teams", ["Network"]),
        ("teams", ["-net"]),
        ("teams", ["a" * 41]),
        ("teams", ["net\n"]),
        ("teams", [1]),
        ("capacity", 0),
        ("capacity", -1),
        ("capacity", 1001),
        ("capacity", "5"),
        ("capacity", 5.0),
        ("capacity", 5.5),
        ("capacity", True),
        ("capacity", None),
        ("available", "true"),
        ("available", 1),
        ("available", None),
        ("lead", "false"),
        ("lead", 0),
    ],
)
def test_agent_create_refuses(field, value):
    assert list(errors(AgentCreateSchema(), {**AGENT, field: value})) == [field]


@pytest.mark.parametrize(
    "field, value",
    [("name", "x" * 200), ("teams", ["a" * 40, "vpn", "net-ops_2"]), ("capacity", 1000), ("lead", True)],
)
def test_agent_create_accepts_the_edges(field, value):
    assert errors(AgentCreateSchema(), {**AGENT, field: value}) == {}


@pytest.mark.parametrize("field", ["id", "name", "email", "teams", "capacity"])
def test_agent_create_requires(field):
    body = {key: value for key, value in AGENT.items() if key != field}
    assert errors(AgentCreateSchema(), body) == {field: ["Missing data for required field."]}


def test_agent_create_refuses_unknown_fields():
    assert list(errors(AgentCreateSchema(), {**AGENT, "open_tickets": 3})) == ["open_tickets"]


# ---- PATCH /agents/{id} ------------------------------------------------------------------------


def test_agent_patch_takes_any_one_field():
    for field in ("name", "email", "teams", "capacity", "available", "lead"):
        assert AgentPatchSchema().load({field: AGENT[field]}) == {field: AGENT[field]}


def test_agent_patch_refuses_an_empty_body():
    assert errors(AgentPatchSchema(), {}) == {"_schema": ["Give at least one field to change."]}


def test_agent_patch_normalizes_email():
    assert AgentPatchSchema().load({"email": "JANE@example.com "}) == {"email": "jane@example.com"}


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", "  "),
        ("email", "nope"),
        ("teams", []),
        ("teams", ["vpn", "vpn"]),
        ("capacity", "3"),
        ("capacity", 0),
        ("capacity", False),
        ("available", "no"),
        ("lead", None),
        ("id", "other"),
        ("open_tickets", 0),
    ],
)
def test_agent_patch_refuses(field, value):
    assert list(errors(AgentPatchSchema(), {field: value})) == [field]


def test_agent_list_query():
    assert AgentListQuerySchema().load({}) == {}
    assert AgentListQuerySchema().load({"team": "network"}) == {"team": "network"}
    assert list(errors(AgentListQuerySchema(), {"team": "Network"})) == ["team"]


# ---- teams --------------------------------------------------------------------------------------


def test_team_create_defaults_topics_to_a_new_empty_list():
    first = TeamCreateSchema().load({"id": "network", "name": "Network"})
    assert first == {"id": "network", "name": "Network", "topics": []}
    first["topics"].append("vpn")
    assert TeamCreateSchema().load({"id": "n2", "name": "N2"})["topics"] == []


@pytest.mark.parametrize(
    "field, value",
    [
        ("id", "Network"),
        ("id", "net.work"),  # team ids are topic-like: no dots
        ("id", "a" * 41),
        ("id", ""),
        ("name", ""),
        ("name", "\t "),
        ("name", "x" * 201),
        ("topics", ["VPN"]),
        ("topics", ["vpn", "vpn"]),
        ("topics", "vpn"),
        ("topics", None),
        ("lead", "jane"),
    ],
)
def test_team_create_refuses(field, value):
    body = {"id": "network", "name": "Network", "topics": ["network", "vpn"], field: value}
    assert list(errors(TeamCreateSchema(), body)) == [field]


@pytest.mark.parametrize("field", ["id", "name"])
def test_team_create_requires(field):
    body = {key: value for key, value in {"id": "network", "name": "Network"}.items() if key != field}
    assert list(errors(TeamCreateSchema(), body)) == [field]


def test_team_patch():
    assert TeamPatchSchema().load({"topics": []}) == {"topics": []}
    assert TeamPatchSchema().load({"name": "Networks"}) == {"name": "Networks"}
    assert errors(TeamPatchSchema(), {}) == {"_schema": ["Give at least one field to change."]}
    assert list(errors(TeamPatchSchema(), {"name": " "})) == ["name"]
    assert list(errors(TeamPatchSchema(), {"topics": ["a", "a"]})) == ["topics"]
    assert list(errors(TeamPatchSchema(), {"id": "other"})) == ["id"]


# ---- ticket commands ----------------------------------------------------------------------------


def test_assign_takes_an_agent_or_a_team():
    assert AssignSchema().load({"agent_id": "jane.doe"}) == {"agent_id": "jane.doe"}
    assert AssignSchema().load({"team": "network"}) == {"team": "network"}


@pytest.mark.parametrize("body", [{}, {"agent_id": "jane", "team": "network"}])
def test_assign_needs_exactly_one(body):
    assert list(errors(AssignSchema(), body)) == ["_schema"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"agent_id": "Jane"}, "agent_id"),
        ({"agent_id": None}, "agent_id"),
        ({"team": "net.work"}, "team"),
        ({"team": "network", "reason": "x"}, "reason"),
    ],
)
def test_assign_refuses(body, field):
    assert list(errors(AssignSchema(), body)) == [field]


def test_reply():
    assert ReplyCreateSchema().load({"body": "Try again"}) == {"body": "Try again"}
    body = {"body": "x" * 20000, "status": "waiting_on_requester"}
    assert ReplyCreateSchema().load(body) == body
    assert ReplyCreateSchema().load({"body": "ok", "status": "in_progress"})["status"] == "in_progress"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "body"),
        ({"body": ""}, "body"),
        ({"body": " \n\t"}, "body"),
        ({"body": "x" * 20001}, "body"),
        ({"body": None}, "body"),
        ({"body": "ok", "status": "resolved"}, "status"),
        ({"body": "ok", "status": "new"}, "status"),
        ({"body": "ok", "status": None}, "status"),
        ({"body": "ok", "public": True}, "public"),
    ],
)
def test_reply_refuses(body, field):
    assert list(errors(ReplyCreateSchema(), body)) == [field]


def test_note():
    assert NoteCreateSchema().load({"body": "x" * 20000}) == {"body": "x" * 20000}


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "body"),
        ({"body": ""}, "body"),
        ({"body": "   "}, "body"),
        ({"body": "x" * 20001}, "body"),
        ({"body": "ok", "status": "in_progress"}, "status"),
    ],
)
def test_note_refuses(body, field):
    assert list(errors(NoteCreateSchema(), body)) == [field]


@pytest.mark.parametrize("status", ["in_progress", "waiting_on_requester"])
def test_status(status):
    assert StatusChangeSchema().load({"status": status}) == {"status": status}


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "status"),
        ({"status": "resolved"}, "status"),
        ({"status": "closed"}, "status"),
        ({"status": "assigned"}, "status"),
        ({"status": "In_Progress"}, "status"),
        ({"status": "in_progress", "note": "x"}, "note"),
    ],
)
def test_status_refuses(body, field):
    assert list(errors(StatusChangeSchema(), body)) == [field]


@pytest.mark.parametrize("priority", ["low", "normal", "high", "emergency"])
def test_priority(priority):
    assert PriorityChangeSchema().load({"priority": priority}) == {"priority": priority}


@pytest.mark.parametrize("body", [{}, {"priority": "urgent"}, {"priority": "HIGH"}, {"priority": None}])
def test_priority_refuses(body):
    assert list(errors(PriorityChangeSchema(), body)) == ["priority"]


def test_resolve():
    assert ResolveSchema().load({"resolution": "x" * 5000}) == {"resolution": "x" * 5000}


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "resolution"),
        ({"resolution": ""}, "resolution"),
        ({"resolution": "  "}, "resolution"),
        ({"resolution": "x" * 5001}, "resolution"),
        ({"resolution": "done", "status": "resolved"}, "status"),
    ],
)
def test_resolve_refuses(body, field):
    assert list(errors(ResolveSchema(), body)) == [field]


# ---- GET /queue ---------------------------------------------------------------------------------


def test_queue_query_leaves_absent_filters_absent():
    assert QueueQuerySchema().load({}) == {"limit": 50}


def test_queue_query_takes_every_filter():
    query = {"agent_id": "jane.doe", "team": "network", "status": "waiting_on_requester", "limit": "200", "cursor": "x"}
    assert QueueQuerySchema().load(query) == {**query, "limit": 200}


@pytest.mark.parametrize(
    "field, value",
    [
        ("limit", "0"),
        ("limit", "201"),
        ("limit", "ten"),
        ("status", "resolved"),
        ("status", "closed"),
        ("agent_id", "Jane"),
        ("team", "net.work"),
        ("cursor", ""),
        ("cursor", "x" * 501),
    ],
)
def test_queue_query_refuses(field, value):
    assert list(errors(QueueQuerySchema(), {field: value})) == [field]


# ---- responses ----------------------------------------------------------------------------------


def test_agent_dumps_exactly_the_agent_json():
    stored = {**AGENT, "open_tickets": 2, "open": ["t1", "t2"], "_v": 3, "last_assigned_at": T0}
    dumped = AgentSchema().dump({**stored, "created_at": T0, "updated_at": T0})
    assert dumped == {
        **AGENT,
        "open_tickets": 2,
        "created_at": "2026-11-27T09:30:00.000Z",
        "updated_at": dumped["created_at"],
    }
    assert AgentListSchema().dump({"items": [stored], "next_cursor": None})["next_cursor"] is None


def test_team_list_dumps_the_team_json():
    team = {"id": "network", "name": "Network", "topics": ["vpn"], "created_at": T0, "updated_at": T0, "_v": 1}
    dumped = TeamListSchema().dump({"items": [team], "next_cursor": None})
    assert dumped == {
        "items": [
            {
                "id": "network",
                "name": "Network",
                "topics": ["vpn"],
                "created_at": "2026-11-27T09:30:00.000Z",
                "updated_at": "2026-11-27T09:30:00.000Z",
            }
        ],
        "next_cursor": None,
    }


def make_ticket(**overrides) -> Ticket:
    """What handlers give the views: the domain Ticket, whose id is `id`."""
    fields = {
        "id": "t1",
        "number": 100042,
        "subject": "VPN drops",
        "topic": "vpn",
        "priority": "high",
        "team": "network",
        "created_at": T0,
        "notes": [{"id": "n1", "body": "call back", "by": "jane", "at": T0}],
        "history": [{"at": T0, "action": "queued", "by": "auto", "from": None, "to": None, "decision": {"rule": "x"}}],
        "replies": 0,
        "version": 4,
    }
    ticket = Ticket(**{**fields, **overrides})
    ticket.sla["first_response_due_at"] = T0
    return ticket


def test_ticket_dumps_exactly_the_ticket_json():
    dumped = TicketSchema().dump(make_ticket())
    z = "2026-11-27T09:30:00.000Z"
    assert dumped == {
        "ticket_id": "t1",
        "number": 100042,
        "subject": "VPN drops",
        "topic": "vpn",
        "priority": "high",
        "team": "network",
        "agent_id": None,
        "status": "new",
        "created_at": z,
        "first_response_at": None,
        "resolved_at": None,
        "sla": {
            "first_response_due_at": z,
            "next_response_due_at": None,
            "resolution_due_at": None,
            "breached": False,
            "alerts": [],
        },
        "notes": [{"id": "n1", "body": "call back", "by": "jane", "at": z}],
        # the decision travels with the history: "why did this go to Jane?" has an answer
        "history": [{"at": z, "action": "queued", "by": "auto", "from": None, "to": None, "decision": {"rule": "x"}}],
    }


def test_ticket_dumps_history_moves_and_sla_alerts():
    alert = {"kind": "warning", "clock": "first_response", "instance": 0, "at": T0, "percent": 75.0, "due_at": T0}
    ticket = make_ticket(
        agent_id="jane",
        history=[{"at": T0, "action": "transferred", "by": "admin:ops", "from": "general", "to": "network"}],
    )
    ticket.sla.update(alerts=[alert], breached=True)
    dumped = TicketListSchema().dump({"items": [ticket], "next_cursor": "abc"})
    item = dumped["items"][0]
    assert dumped["next_cursor"] == "abc"
    assert item["agent_id"] == "jane"
    assert item["history"][0]["from"] == "general" and item["history"][0]["to"] == "network"
    assert item["sla"]["breached"] is True
    assert item["sla"]["alerts"] == [{**alert, "at": "2026-11-27T09:30:00.000Z", "due_at": "2026-11-27T09:30:00.000Z"}]


def test_reply_and_note_dump():
    note = {"id": "n1", "body": "internal", "by": "jane", "at": T0}
    assert NoteSchema().dump(note) == {**note, "at": "2026-11-27T09:30:00.000Z"}
    reply = {**note, "id": "r1", "first_response": True}
    assert ReplySchema().dump(reply) == {**reply, "at": "2026-11-27T09:30:00.000Z"}
