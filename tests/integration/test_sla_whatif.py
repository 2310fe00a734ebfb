"""POST /policies/{priority}/what-if, in-process, on the session's real MongoDB and broker.

The tickets live in a window of their own far in the future, under a `low` policy of seconds (first
response 3 s, next response 6 s, resolution 12 s), driven by events with explicit times: nothing waits
for a real second, and the deadline timer never reaches them. Their outcomes, and those under a
stricter and a looser draft, are worked out by hand below.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from services.sla import schemas, whatif
from shared.clock import now
from shared.events import format_time, parse_time
from tests.harness import auth_header, flushed
from tests.integration.conftest import EventTap
from tests.integration.sla_fixtures import (  # fixtures: pytest finds them by their short names
    STATS_KEYS,
    admin,
    agent,
    assert_problem,
    forget_tickets_fixture,  # noqa: F401
    policies_restored_fixture,  # noqa: F401
    policy_body,
    sla_app_fixture,  # noqa: F401
    sla_client_fixture,  # noqa: F401
    sla_ctx_fixture,  # noqa: F401
    sla_db_fixture,  # noqa: F401
    sla_handle_fixture,  # noqa: F401
    sla_seed_fixture,  # noqa: F401
    ticket_event,
    utc,
)
from tests.integration.test_sla_api import INVALID_POLICIES

SECONDS = policy_body(first_response_minutes=0.05, next_response_minutes=0.1, resolution_minutes=0.2)  # 3, 6, 12 s
STRICTER = policy_body(first_response_minutes=0.025, next_response_minutes=0.05, resolution_minutes=0.15)  # 1.5, 3, 9
LOOSER = policy_body(first_response_minutes=0.1, next_response_minutes=0.15, resolution_minutes=0.5)  # 6, 9, 30
CLOCK_ORDER = ("first_response", "next_response", "resolution")


def what_if(client, priority: str, body: dict, since=None, headers=None):
    query = {"since": format_time(since)} if since is not None else {}
    return client.post(f"/policies/{priority}/what-if", json=body, query_string=query, headers=headers or admin())


def answer_of(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture(name="far_window")
def far_window_fixture(monkeypatch):
    """The tickets' window far in the future: the API's check that `since` is not in the future reads a clock past
    it (the replay itself reads the real one)."""
    monkeypatch.setattr(schemas, "now", lambda: utc(3000, 1, 1))


@pytest.fixture(name="history")
def history_fixture(sla_client, sla_ctx, sla_seed, sla_handle, forget_tickets, policies_restored, far_window):
    """Six `low` tickets created at t0, each through a history of its own; (t0, {name: ticket id})."""
    assert sla_client.put("/policies/low", json=SECONDS, headers=admin()).status_code == 200
    t0 = utc(2200, 1, 1) + timedelta(minutes=random.randrange(10_000_000))

    def s(seconds: float):
        return t0 + timedelta(seconds=seconds)

    tickets = {name: sla_seed("low", at=t0) for name in ("quick", "late", "paused", "next", "open")}
    tickets["escalated"] = sla_seed("normal", at=t0)  # normal's 240 minutes, then low's from 4 s on
    forget_tickets.extend(tickets.values())
    for kind, name, seconds, data in [
        ("ticket.replied", "quick", 2, {}),
        ("ticket.resolved", "quick", 10, {}),
        ("ticket.replied", "late", 5, {}),
        ("ticket.resolved", "late", 20, {}),
        ("ticket.replied", "paused", 1, {}),
        ("ticket.status_changed", "paused", 5, {"status": "waiting_on_requester", "previous_status": "in_progress"}),
        ("ticket.status_changed", "paused", 25, {"status": "in_progress", "previous_status": "waiting_on_requester"}),
        ("ticket.resolved", "paused", 30, {}),  # 10 s of resolution time, not 30
        ("ticket.priority_changed", "escalated", 4, {"priority": "low", "previous_priority": "normal"}),
        ("ticket.replied", "escalated", 5, {}),
        ("ticket.resolved", "escalated", 11, {}),
        ("ticket.replied", "next", 1, {}),
        ("ticket.message_added", "next", 2, {}),  # next_response 0 runs from 2 s
        ("ticket.replied", "next", 9, {}),
        ("ticket.resolved", "next", 11, {}),
    ]:
        sla_handle(ticket_event(kind, tickets[name], s(seconds), **data))
    flushed(sla_ctx.flusher)  # their sla.deadlines_changed published before a test listens
    return t0, tickets


def rows(figures: dict) -> dict:
    assert all(set(row) == STATS_KEYS and row["priority"] == "low" for row in figures["items"]), figures
    assert [row["clock"] for row in figures["items"]] == list(CLOCK_ORDER)
    return {row["clock"]: row for row in figures["items"]}


def counts(figures: dict) -> dict:
    return {clock: (row["met"], row["breached"], row["open"]) for clock, row in rows(figures).items()}


def changes(answer: dict, tickets: dict, t0) -> set:
    """The changed clocks as (ticket name, clock, (outcome, due second) now, (outcome, due second) drafted)."""
    names = {ticket_id: name for name, ticket_id in tickets.items()}

    def side(outcome: dict):
        seconds = (parse_time(outcome["due_at"]) - t0).total_seconds()
        breached = outcome["breached_at"] and (parse_time(outcome["breached_at"]) - t0).total_seconds()
        return outcome["outcome"], seconds, breached

    return {
        (names[c["ticket_id"]], c["clock"], c["instance"], side(c["current"]), side(c["draft"]))
        for c in answer["changed"]
    }


def test_the_current_policy_replayed_gives_the_figures_of_stats(sla_client, history):
    t0, tickets = history
    answer = answer_of(what_if(sla_client, "low", SECONDS, since=t0))
    assert (answer["priority"], parse_time(answer["since"])) == ("low", t0)
    assert (answer["replayed"], answer["skipped"]) == (6, 0)
    stats = sla_client.get("/stats", query_string={"since": format_time(t0)}, headers=admin()).get_json()
    assert answer["current"]["items"] == [row for row in stats["items"] if row["priority"] == "low"]
    assert answer["draft"]["items"] == answer["current"]["items"] and answer["changed"] == []
    # by hand: first response met by quick (2 s), paused (1 s), next (1 s); breached by late (5 s) and
    # escalated (5 s: 4 s under normal, so low's 3 s had passed when it became low); open: open
    assert counts(answer["current"]) == {
        "first_response": (3, 2, 1),
        "next_response": (0, 1, 0),
        "resolution": (4, 1, 1),
    }
    first = rows(answer["current"])["first_response"]
    assert (first["median_seconds"], first["p90_seconds"], first["measured"]) == (2.0, 5.0, 5)
    resolution = rows(answer["current"])["resolution"]
    assert (resolution["median_seconds"], resolution["measured"]) == (11.0, 5)  # 10, 20, 10 (paused), 11, 11
    assert answer["current"]["policy"]["version"] == sla_client.get("/policies/low", headers=admin()).json["version"]
    assert answer["draft"]["policy"] == {"priority": "low", **SECONDS}


def test_a_stricter_draft_breaches_what_was_met_ticket_by_ticket(sla_client, history):
    t0, tickets = history
    answer = answer_of(what_if(sla_client, "low", STRICTER, since=t0))
    assert changes(answer, tickets, t0) == {
        ("quick", "first_response", 0, ("met", 3, None), ("breached", 1.5, 1.5)),
        ("quick", "resolution", 0, ("met", 12, None), ("breached", 9, 9)),
        # paused from 5 s to 25 s: 7 s (current) or 4 s (draft) were left at 25 s; resolved at 30 s
        ("paused", "resolution", 0, ("met", 32, None), ("breached", 29, 29)),
        # 4 s ran under normal; then low's target, from 4 s on with those 4 s kept
        ("escalated", "resolution", 0, ("met", 12, None), ("breached", 9, 9)),
        ("next", "resolution", 0, ("met", 12, None), ("breached", 9, 9)),
    }
    assert counts(answer["draft"]) == {"first_response": (2, 3, 1), "next_response": (0, 1, 0), "resolution": (0, 5, 1)}
    assert rows(answer["draft"])["first_response"]["compliance_percent"] == 40.0
    # the times to answer are the same events: only the judgement changes
    assert (
        rows(answer["draft"])["resolution"]["median_seconds"] == rows(answer["current"])["resolution"]["median_seconds"]
    )


def test_a_looser_draft_meets_what_was_breached_ticket_by_ticket(sla_client, history):
    t0, tickets = history
    answer = answer_of(what_if(sla_client, "low", LOOSER, since=t0))
    assert changes(answer, tickets, t0) == {
        ("late", "first_response", 0, ("breached", 3, 3), ("met", 6, None)),
        ("late", "resolution", 0, ("breached", 12, 12), ("met", 30, None)),
        # at 4 s the 4 s under normal already passed low's 3 s (due at once) but not the draft's 6 s
        ("escalated", "first_response", 0, ("breached", 4, 4), ("met", 6, None)),
        ("next", "next_response", 0, ("breached", 8, 8), ("met", 11, None)),
    }
    assert counts(answer["draft"]) == {"first_response": (5, 0, 1), "next_response": (1, 0, 0), "resolution": (5, 0, 1)}
    breached = sum(row["breached"] for row in answer["current"]["items"])
    assert breached - sum(row["breached"] for row in answer["draft"]["items"]) == len(answer["changed"])


def test_after_a_policy_change_the_current_figures_are_those_of_the_policy_now(sla_client, history):
    t0, tickets = history
    stricter = answer_of(what_if(sla_client, "low", STRICTER, since=t0))
    changed = sla_client.put("/policies/low", json=STRICTER, headers=admin())
    assert changed.status_code == 200, changed.get_json()
    answer = answer_of(what_if(sla_client, "low", STRICTER, since=t0))
    assert answer["current"]["items"] == stricter["draft"]["items"]  # every clock replayed under the new version
    assert answer["draft"]["items"] == answer["current"]["items"] and answer["changed"] == []
    stats = sla_client.get("/stats", query_string={"since": format_time(t0)}, headers=admin()).get_json()
    low = [row for row in stats["items"] if row["priority"] == "low"]
    assert low != answer["current"]["items"]  # /stats keeps what happened under the old version


def test_changes_come_oldest_first_and_since_leaves_older_tickets_out(sla_client, history):
    t0, tickets = history
    later = answer_of(what_if(sla_client, "low", LOOSER, since=t0 + timedelta(seconds=1)))
    assert (later["replayed"], later["changed"]) == (0, [])
    assert all(row["met"] == row["breached"] == row["open"] == 0 for row in later["draft"]["items"])
    answer = answer_of(what_if(sla_client, "low", STRICTER, since=t0))
    order = [(change["ticket_id"], CLOCK_ORDER.index(change["clock"])) for change in answer["changed"]]
    assert order == sorted(order)  # all started at t0: then by ticket id, clock and instance


def test_it_writes_nothing_no_policy_version_no_clock_no_event(sla_client, sla_db, history, settings):
    t0, tickets = history
    policies = list(sla_db.policies.find())
    clocks = list(sla_db.clocks.find({"_id": {"$in": list(tickets.values())}}))
    tap = EventTap(settings.amqp_url, settings.exchange)
    try:
        for draft in (STRICTER, LOOSER, SECONDS):
            answer_of(what_if(sla_client, "low", draft, since=t0))
        assert tap.envelopes() == []
    finally:
        tap.close()
    assert list(sla_db.policies.find()) == policies
    assert list(sla_db.clocks.find({"_id": {"$in": list(tickets.values())}})) == clocks


def test_the_compact_copy_holds_each_clocks_history_as_stored(sla_ctx, sla_db, history):
    t0, tickets = history
    copies = {doc["_id"]: doc for doc in sla_ctx.clocks.histories.since(t0, "low")}
    assert set(copies) == set(tickets.values())
    for doc in sla_db.clocks.find({"_id": {"$in": list(tickets.values())}}):
        stored = [
            (c["kind"], c["instance"], whatif.steps_of(c["history"]), c["state"], c["elapsed"]) for c in doc["clocks"]
        ]
        copied = [
            (c["kind"], c["instance"], c["steps"], c["state"], c["elapsed"]) for c in copies[doc["_id"]]["clocks"]
        ]
        assert copied == stored
    assert (
        sla_db.clock_histories.find_one({"_id": tickets["paused"]})["v"]
        == sla_db.clocks.find_one({"_id": tickets["paused"]})["_v"]
    )


def test_an_event_delivered_again_makes_the_copy_a_process_died_before_making(
    sla_ctx, sla_db, sla_seed, sla_handle, forget_tickets, policies_restored
):
    t0 = utc(2300, 1, 1) + timedelta(minutes=random.randrange(10_000_000))
    ticket_id = sla_seed("low", at=t0)
    forget_tickets.append(ticket_id)
    before = sla_db.clock_histories.find_one({"_id": ticket_id})
    resolved = ticket_event("ticket.resolved", ticket_id, t0 + timedelta(seconds=5))
    sla_handle(resolved)
    sla_db.clock_histories.replace_one({"_id": ticket_id}, before)  # as if it died between the two writes
    sla_handle(resolved)  # redelivered: already applied, nothing to save
    copy = sla_db.clock_histories.find_one({"_id": ticket_id})
    assert copy["v"] == sla_db.clocks.find_one({"_id": ticket_id})["_v"] == before["v"] + 1
    [ticket] = [t for t in sla_ctx.clocks.histories.since(t0, "low") if t["_id"] == ticket_id]
    assert {clock["kind"]: clock["state"] for clock in ticket["clocks"]} == {
        "first_response": "stopped",
        "resolution": "stopped",
    }


def test_tickets_saved_before_clocks_kept_their_history_are_copied_once_and_counted_as_skipped(
    sla_client, sla_ctx, sla_db, sla_seed, forget_tickets, policies_restored, far_window
):
    assert sla_client.put("/policies/low", json=SECONDS, headers=admin()).status_code == 200
    t0 = utc(2300, 1, 1) + timedelta(minutes=random.randrange(10_000_000))
    old, new = sla_seed("low", at=t0), sla_seed("low", at=t0)
    forget_tickets.extend([old, new])
    # as sla stored it before: no history in the clocks, no copy
    doc = sla_db.clocks.find_one({"_id": old})
    sla_db.clocks.update_one({"_id": old}, {"$set": {"clocks": [{**c, "history": []} for c in doc["clocks"]]}})
    sla_db.clock_histories.delete_one({"_id": old})
    sla_db.migrations.delete_many({})
    assert answer_of(what_if(sla_client, "low", LOOSER, since=t0))["replayed"] == 1  # the old one unseen

    assert sla_ctx.clocks.backfill_histories() >= 2  # every ticket of this database, once
    assert sla_ctx.clocks.backfill_histories() == 0
    answer = answer_of(what_if(sla_client, "low", LOOSER, since=t0))
    assert (answer["replayed"], answer["skipped"]) == (1, 1)
    assert counts(answer["current"])["first_response"] == (0, 0, 1)  # the new one only


def test_since_defaults_to_30_days_ago(sla_client):
    answer = answer_of(what_if(sla_client, "high", policy_body()))
    stats = sla_client.get("/stats", headers=admin()).get_json()
    assert abs((parse_time(answer["since"]) - parse_time(stats["since"])).total_seconds()) < 60


# --- refusals ----------------------------------------------------------------------------------------


def test_only_an_admin_may_ask(sla_client):
    assert_problem(sla_client.post("/policies/low/what-if", json=policy_body()), 401)
    for role in ("portal", "agent"):
        headers = agent() if role == "agent" else auth_header(role)
        assert_problem(what_if(sla_client, "low", policy_body(), headers=headers), 403)


@pytest.mark.parametrize(("change", "field"), INVALID_POLICIES)
def test_a_draft_is_checked_as_put_checks_a_policy(sla_client, change, field):
    body = {**policy_body(), **change} if isinstance(change, dict) else change
    assert_problem(what_if(sla_client, "normal", body), 422, field)


def test_every_problem_of_a_draft_is_named_at_once_and_an_unknown_priority_is_404(sla_client):
    body = policy_body(first_response_minutes=-1, warn_at_percent=[200])
    del body["calendar"]
    problem = assert_problem(what_if(sla_client, "low", body), 422)
    assert {"first_response_minutes", "warn_at_percent", "calendar"} <= set(problem["errors"]), problem
    assert_problem(what_if(sla_client, "urgent", policy_body()), 404)


@pytest.mark.parametrize("since", ["2026-11-27", "2026-11-27T09:30:00", "2026-13-01T00:00:00Z", ""])
def test_a_bad_since_is_422(sla_client, since):
    response = sla_client.post(
        "/policies/low/what-if", json=policy_body(), query_string={"since": since}, headers=admin()
    )
    assert_problem(response, 422, "since")


def test_the_document_describes_the_what_if(sla_client):
    operation = sla_client.get("/openapi.json").get_json()["paths"]["/policies/{priority}/what-if"]["post"]
    assert "Nothing changes: no policy version, no clock, no event." in operation["description"]
    assert {"200", "422"} <= set(operation["responses"])
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["since"]


def test_a_since_in_the_future_is_refused_beside_it_not_answered_with_nothing(sla_client):
    ahead = what_if(sla_client, "low", SECONDS, since=now() + timedelta(days=1))
    assert_problem(ahead, 422)
    assert ahead.get_json()["errors"] == {"since": ["Must not be in the future: the replay covers tickets since then."]}
    assert what_if(sla_client, "low", SECONDS, since=now() - timedelta(minutes=1)).status_code == 200


def test_since_may_come_in_the_body_beside_the_draft_as_in_the_query(sla_client, history):
    t0, _ = history
    in_query = answer_of(what_if(sla_client, "low", STRICTER, since=t0))
    in_body = answer_of(what_if(sla_client, "low", {**STRICTER, "since": format_time(t0)}))
    both = answer_of(what_if(sla_client, "low", {**STRICTER, "since": format_time(t0)}, since=t0))
    assert in_body == in_query == both and in_body["replayed"] == 6 and parse_time(in_body["since"]) == t0

    twice = what_if(sla_client, "low", {**STRICTER, "since": format_time(t0)}, since=t0 + timedelta(seconds=1))
    assert_problem(twice, 422, "since")


def test_a_since_in_the_body_is_checked_as_in_the_query_with_the_drafts_fields(sla_client):
    ahead = what_if(sla_client, "low", {**SECONDS, "since": format_time(now() + timedelta(days=1))})
    assert ahead.get_json()["errors"] == {"since": ["Must not be in the future: the replay covers tickets since then."]}
    assert_problem(what_if(sla_client, "low", {**SECONDS, "since": "yesterday"}), 422, "since")
    assert_problem(what_if(sla_client, "low", {**SECONDS, "since": None}), 422, "since")
    draft = what_if(sla_client, "low", {**SECONDS, "since": format_time(now()), "first_response_minutes": 0})
    assert set(draft.get_json()["errors"]) == {"first_response_minutes"}  # the draft's own checks, since aside
