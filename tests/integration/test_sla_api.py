"""sla's HTTP API (policies, calendars, clocks, breaches, stats), in-process, on the session's real MongoDB and broker.

A ticket's clocks are put in place by sla's own handlers from the envelopes the other services would
publish (`sla_seed`, `sla_handle`); breaches are recorded from sla.breached envelopes as the worker does.
Data that other tests must not count (stats, breaches) lies in a far-future window and is removed afterwards.
"""

from __future__ import annotations

import base64
import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.sla import handlers, store
from services.sla.domain import DEFAULT_MINUTES
from shared.errors import Conflict
from shared.events import BY_URGENCY, parse_time
from tests.harness import auth_header, requester_header, walk_pages
from tests.integration.conftest import event_from
from tests.integration.sla_fixtures import (  # fixtures: pytest finds them by their short names
    BREACH_KEYS,
    CLOCK_KEYS,
    POLICY_KEYS,
    STATS_KEYS,
    admin,
    agent,
    assert_problem,
    breached_event,
    calendar_body,
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
    unique,
    utc,
)

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
POLICY_SENTENCE = (
    "Changing a policy applies to tickets created afterwards, and to running clocks at their ticket's next "
    "priority change; clocks record the version they run under."
)


def far_future():
    """A moment in a window of its own, so that no other test's breaches or tickets count."""
    return utc(2100, 1, 1) + timedelta(minutes=random.randrange(10_000_000))


def get_json(client, path: str, headers=None, **query) -> dict:
    response = client.get(path, query_string=query, headers=headers or admin())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def put_policy(client, priority: str, body: dict):
    return client.put(f"/policies/{priority}", json=body, headers=admin())


def use_defaults(client, *priorities: str) -> None:
    """The default terms for these priorities (a test that counts on them asks for policies_restored too)."""
    for priority in priorities:
        first, following, resolution = DEFAULT_MINUTES[priority]
        terms = {"first_response_minutes": first, "next_response_minutes": following, "resolution_minutes": resolution}
        response = put_policy(client, priority, policy_body(**terms, warn_at_percent=[80]))
        assert response.status_code == 200, response.get_json()


# --- rights ------------------------------------------------------------------------------------------

ROUTES = [  # (method, path, roles allowed)
    ("get", "/policies", {"agent", "admin"}),
    ("get", "/policies/high", {"agent", "admin"}),
    ("put", "/policies/high", {"admin"}),
    ("get", "/policies/high/versions", {"agent", "admin"}),
    ("post", "/policies/high/what-if", {"admin"}),
    ("get", "/calendars", {"agent", "admin"}),
    ("get", "/calendars/24x7", {"agent", "admin"}),
    ("put", "/calendars/some-calendar", {"admin"}),
    ("delete", "/calendars/some-calendar", {"admin"}),
    ("get", "/tickets/no-such-ticket", {"portal", "agent", "admin"}),
    ("get", "/breaches", {"agent", "admin"}),
    ("get", "/stats", {"agent", "admin"}),
]


@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES)
def test_every_operation_needs_a_token_and_a_role_that_may(sla_client, method, path, allowed):
    call = getattr(sla_client, method)
    body = {"json": {"nonsense": True}} if method in ("put", "post") else {}  # refused before the body is read
    assert_problem(call(path, **body), 401)
    assert_problem(call(path, headers={"Authorization": "Bearer not-a-jwt"}, **body), 401)
    for role in {"portal", "agent", "admin"} - allowed:
        assert_problem(call(path, headers=auth_header(role, "jane" if role == "agent" else None), **body), 403)
    if method == "get":
        for role in allowed:
            response = call(path, headers=auth_header(role, "jane" if role == "agent" else None))
            assert response.status_code in (200, 404), (role, response.get_data(as_text=True))


def test_probes_and_document_need_no_token(sla_client):
    assert sla_client.get("/healthz").status_code == 200
    document = sla_client.get("/openapi.json").get_json()
    paths = {"/policies", "/policies/{priority}", "/policies/{priority}/versions", "/policies/{priority}/what-if",
             "/calendars", "/calendars/{calendar_id}", "/tickets", "/tickets/{ticket_id}", "/breaches",
             "/stats"}  # fmt: skip
    assert paths <= set(document["paths"])
    put = document["paths"]["/policies/{priority}"]["put"]
    assert POLICY_SENTENCE in put["description"]
    assert "applies from the moment it is saved" in document["paths"]["/calendars/{calendar_id}"]["put"]["description"]
    assert {"200", "201", "422"} <= set(document["paths"]["/calendars/{calendar_id}"]["put"]["responses"])


# --- policies ----------------------------------------------------------------------------------------


def test_policies_are_listed_in_priority_order_with_the_contract_defaults(sla_client):
    page = get_json(sla_client, "/policies", agent())
    assert page["next_cursor"] is None
    assert [item["priority"] for item in page["items"]] == ["emergency", "high", "normal", "low"]
    for item in page["items"]:
        assert set(item) == POLICY_KEYS, item
        assert isinstance(item["version"], int) and item["version"] >= 1
        assert RFC3339_Z.match(item["changed_at"]), item
        if item["version"] == 1:  # as seeded: the defaults
            minutes = (item["first_response_minutes"], item["next_response_minutes"], item["resolution_minutes"])
            assert minutes == DEFAULT_MINUTES[item["priority"]]
            assert (item["warn_at_percent"], item["calendar"]) == ([80], "24x7")


def test_one_policy_and_an_unknown_priority(sla_client):
    policy = get_json(sla_client, "/policies/emergency")
    assert set(policy) == POLICY_KEYS and policy["priority"] == "emergency"
    assert_problem(sla_client.get("/policies/urgent", headers=admin()), 404)
    assert_problem(sla_client.get("/policies/urgent/versions", headers=admin()), 404)
    assert_problem(put_policy(sla_client, "urgent", policy_body()), 404)


def test_a_change_raises_the_version_the_same_terms_keep_it_and_the_versions_explain(sla_client, policies_restored):
    before = get_json(sla_client, "/policies/high")
    changed = put_policy(sla_client, "high", policy_body(first_response_minutes=0.05, warn_at_percent=[90, 50]))
    assert changed.status_code == 200, changed.get_json()
    policy = changed.get_json()
    assert set(policy) == POLICY_KEYS
    assert policy["version"] == before["version"] + 1
    assert policy["first_response_minutes"] == 0.05 and policy["warn_at_percent"] == [50, 90]

    again = put_policy(sla_client, "high", policy_body(first_response_minutes=0.05, warn_at_percent=[50, 90]))
    assert again.status_code == 200 and again.get_json()["version"] == policy["version"]
    assert get_json(sla_client, "/policies/high") == policy

    versions = get_json(sla_client, "/policies/high/versions", agent())
    assert versions["next_cursor"] is None
    numbers = [item["version"] for item in versions["items"]]
    assert numbers == sorted(numbers, reverse=True) and numbers[0] == policy["version"] and numbers[-1] == 1
    assert versions["items"][0] == policy
    previous = versions["items"][1]
    assert previous["version"] == before["version"]
    assert previous["first_response_minutes"] == before["first_response_minutes"]
    assert parse_time(previous["changed_at"]) <= parse_time(policy["changed_at"])


def test_new_tickets_run_under_the_new_version_and_old_ones_at_their_next_priority_change(
    sla_client, sla_seed, sla_handle, policies_restored
):
    created = handlers.now() - timedelta(minutes=1)
    old_ticket = sla_seed("high", at=created)
    old_version = get_json(sla_client, "/policies/high")["version"]
    policy = put_policy(sla_client, "high", policy_body(first_response_minutes=30, resolution_minutes=90)).get_json()
    assert policy["version"] == old_version + 1

    new_ticket = sla_seed("high", at=created)
    clocks = get_json(sla_client, f"/tickets/{new_ticket}")["clocks"]
    assert clocks["first_response"]["policy_version"] == policy["version"]
    assert parse_time(clocks["first_response"]["due_at"]) == created + timedelta(minutes=30)
    assert parse_time(clocks["resolution"]["due_at"]) == created + timedelta(minutes=90)

    old = get_json(sla_client, f"/tickets/{old_ticket}")["clocks"]
    assert old["first_response"]["policy_version"] == old_version  # until its priority changes
    sla_handle(ticket_event("ticket.priority_changed", old_ticket, created, priority="high", previous_priority="low"))
    retargeted = get_json(sla_client, f"/tickets/{old_ticket}")["clocks"]
    assert retargeted["first_response"]["policy_version"] == policy["version"]
    assert parse_time(retargeted["first_response"]["due_at"]) == created + timedelta(minutes=30)


INVALID_POLICIES = [  # (overrides or a whole body, the field named in errors)
    ({"first_response_minutes": 0}, "first_response_minutes"),
    ({"next_response_minutes": -5}, "next_response_minutes"),
    ({"resolution_minutes": "480"}, "resolution_minutes"),
    ({"resolution_minutes": True}, "resolution_minutes"),
    ({"resolution_minutes": 10**30}, "resolution_minutes"),
    ({"first_response_minutes": {"a": [1, {"b": None}]}}, "first_response_minutes"),
    ({"warn_at_percent": [0, 80]}, "warn_at_percent"),
    ({"warn_at_percent": [80, 100]}, "warn_at_percent"),
    ({"warn_at_percent": [80.5]}, "warn_at_percent"),
    ({"warn_at_percent": [80, 80]}, "warn_at_percent"),
    ({"warn_at_percent": "80"}, "warn_at_percent"),
    ({"warn_at_percent": [True]}, "warn_at_percent"),
    ({"calendar": "no-such-calendar"}, "calendar"),
    ({"calendar": "not a calendar id!"}, "calendar"),
    ({"calendar": ["24x7"]}, "calendar"),
    ({"priority": "high"}, "priority"),
    ([], "_schema"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_POLICIES)
def test_an_invalid_policy_is_422_with_the_field_and_changes_nothing(sla_client, change, field):
    before = get_json(sla_client, "/policies/normal")
    body = {**policy_body(), **change} if isinstance(change, dict) else change
    assert_problem(put_policy(sla_client, "normal", body), 422, field)
    assert get_json(sla_client, "/policies/normal") == before


def test_a_missing_field_and_every_other_problem_are_named_at_once(sla_client):
    body = policy_body(first_response_minutes=-1, warn_at_percent=[200])
    del body["calendar"]
    problem = assert_problem(put_policy(sla_client, "low", body), 422)
    assert {"first_response_minutes", "warn_at_percent", "calendar"} <= set(problem["errors"]), problem


def put_raw(client, path: str, raw: bytes):
    return client.put(path, data=raw, headers={**admin(), "Content-Type": "application/json"})


@pytest.mark.parametrize(
    "number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0.0", b"9" * 400], ids=lambda n: n[:10].decode()
)
def test_non_finite_or_huge_minutes_are_422(sla_client, number):
    raw = b'{"first_response_minutes": %s, "next_response_minutes": 1, "resolution_minutes": 1, ' % number
    raw += b'"warn_at_percent": [], "calendar": "24x7"}'
    assert_problem(put_raw(sla_client, "/policies/low", raw), 422, "first_response_minutes")


@pytest.mark.parametrize("raw", [b"{", b"", b"[1,", b'{"a": 1}}'])
def test_broken_json_is_400(sla_client, raw):
    response = put_raw(sla_client, "/policies/low", raw)
    assert_problem(response, 400)  # an empty body too: it is not JSON (not taken for {}, every field missing)


@pytest.mark.parametrize(
    "raw", [b'{"resolution_minutes": ' + b"9" * 5000 + b"}", b"[" * 100_000 + b"]" * 100_000], ids=["digits", "depth"]
)
def test_json_the_parser_cannot_take_is_400(sla_client, raw):
    assert_problem(put_raw(sla_client, "/policies/low", raw), 400)


def test_a_policy_may_use_a_calendar_and_its_deadlines_count_open_hours_only(sla_client, sla_seed, policies_restored):
    calendar_id = unique("office")
    hours = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    created = sla_client.put(f"/calendars/{calendar_id}", json={"timezone": "UTC", "hours": hours}, headers=admin())
    assert created.status_code == 201, created.get_json()
    policy = put_policy(sla_client, "low", policy_body(first_response_minutes=120, calendar=calendar_id))
    assert policy.status_code == 200 and policy.get_json()["calendar"] == calendar_id

    friday_afternoon = utc(2026, 11, 27, 16, 0)  # a Friday: one open hour left, the second on Monday
    clocks = get_json(sla_client, f"/tickets/{sla_seed('low', at=friday_afternoon)}")["clocks"]
    assert clocks["first_response"]["due_at"] == "2026-11-30T10:00:00.000Z"


# --- calendars ---------------------------------------------------------------------------------------


def test_24x7_is_built_in_first_and_cannot_change(sla_client):
    always = {
        "id": "24x7",
        "timezone": "UTC",
        "hours": {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "holidays": [],
        "version": 1,
    }
    page = get_json(sla_client, "/calendars", agent())
    assert page["items"][0] == always and page["next_cursor"] is None
    assert get_json(sla_client, "/calendars/24x7") == always
    assert_problem(sla_client.put("/calendars/24x7", json=calendar_body(), headers=admin()), 409)
    assert get_json(sla_client, "/calendars/24x7") == always


def test_a_calendar_is_created_201_replaced_200_and_listed_by_id(sla_client):
    first, second = sorted([unique("cal"), unique("cal")])
    created = sla_client.put(f"/calendars/{second}", json=calendar_body(), headers=admin())
    assert created.status_code == 201, created.get_json()
    assert created.headers["Location"] == f"/calendars/{second}"
    again = sla_client.put(f"/calendars/{second}", json=calendar_body(), headers=admin())  # a repeated PUT
    assert again.status_code == 200 and again.get_json() == created.get_json()  # version 1 still
    body = created.get_json()
    assert set(body) == {"id", "timezone", "hours", "holidays", "version", "updated_at"}
    assert (body["id"], body["timezone"], body["version"]) == (second, "Europe/Madrid", 1)
    assert body["hours"] == calendar_body()["hours"] and body["holidays"] == ["2026-12-25"]

    replaced = sla_client.put(
        f"/calendars/{second}", json=calendar_body(holidays=["2027-01-06", "2027-01-01", "2027-01-06"]), headers=admin()
    )
    assert replaced.status_code == 200, replaced.get_json()
    assert replaced.get_json()["version"] == 2 and replaced.get_json()["holidays"] == ["2027-01-01", "2027-01-06"]
    assert get_json(sla_client, f"/calendars/{second}") == replaced.get_json()

    saturdays = {"timezone": "UTC", "hours": {"sat": [["10:00", "12:00"]]}}
    without_holidays = sla_client.put(f"/calendars/{first}", json=saturdays, headers=admin())
    assert without_holidays.status_code == 201 and without_holidays.get_json()["holidays"] == []
    ids = [item["id"] for item in get_json(sla_client, "/calendars")["items"]]
    assert ids[0] == "24x7" and ids[1:] == sorted(ids[1:]) and ids.index(first) < ids.index(second)


def test_a_calendar_no_policy_named_is_deleted_and_its_id_is_free_again(sla_client):
    calendar_id = unique("mistake")
    assert sla_client.put(f"/calendars/{calendar_id}", json=calendar_body(), headers=admin()).status_code == 201
    deleted = sla_client.delete(f"/calendars/{calendar_id}", headers=admin())
    assert deleted.status_code == 204, deleted.get_json()
    assert_problem(sla_client.get(f"/calendars/{calendar_id}", headers=admin()), 404)
    assert calendar_id not in [item["id"] for item in get_json(sla_client, "/calendars")["items"]]
    assert_problem(sla_client.delete(f"/calendars/{calendar_id}", headers=admin()), 404)
    refused = put_policy(sla_client, "low", policy_body(calendar=calendar_id))
    assert_problem(refused, 422, "calendar")
    again = sla_client.put(f"/calendars/{calendar_id}", json=calendar_body(timezone="UTC"), headers=admin())
    assert again.status_code == 201 and again.get_json()["timezone"] == "UTC"
    assert get_json(sla_client, f"/calendars/{calendar_id}")["timezone"] == "UTC"


def test_a_calendar_any_policy_version_named_stays(sla_client, policies_restored):
    calendar_id = unique("office")
    assert sla_client.put(f"/calendars/{calendar_id}", json=calendar_body(), headers=admin()).status_code == 201
    named = put_policy(sla_client, "low", policy_body(calendar=calendar_id)).get_json()["version"]
    put_policy(sla_client, "low", policy_body(calendar="24x7"))  # no longer the current one: still named
    problem = assert_problem(sla_client.delete(f"/calendars/{calendar_id}", headers=admin()), 409)
    assert f"the low priority policy's version {named}." in problem["detail"], problem
    assert get_json(sla_client, f"/calendars/{calendar_id}")["id"] == calendar_id
    assert "built in" in assert_problem(sla_client.delete("/calendars/24x7", headers=admin()), 409)["detail"]


def test_a_calendar_deleted_while_a_policy_names_it_comes_back(sla_ctx, policies_restored, monkeypatch):
    first, second = unique("office"), unique("office")
    for calendar_id in (first, second):
        handlers.put_calendar(sla_ctx, calendar_id, calendar_body())
    # The delete lands between the policy's check of the calendar and its save: the save brings it back.
    save = sla_ctx.policies.replace

    def deleted_first(current, terms, at):
        assert sla_ctx.calendars.delete(terms["calendar"], at)
        return save(current, terms, at)

    monkeypatch.setattr(sla_ctx.policies, "replace", deleted_first)
    assert handlers.put_policy(sla_ctx, "low", policy_body(calendar=first)).calendar == first
    assert handlers.get_calendar(sla_ctx, first)["_id"] == first
    monkeypatch.setattr(sla_ctx.policies, "replace", save)

    # The policy's save lands between the delete's check and its mark: the delete puts it back and says why.
    mark = sla_ctx.calendars.delete

    def named_meanwhile(calendar_id, at):
        handlers.put_policy(sla_ctx, "low", policy_body(calendar=calendar_id))
        return mark(calendar_id, at)

    monkeypatch.setattr(sla_ctx.calendars, "delete", named_meanwhile)
    with pytest.raises(Conflict, match="Not deleted: .* is the calendar of the "):
        handlers.delete_calendar(sla_ctx, second)
    assert handlers.get_calendar(sla_ctx, second)["_id"] == second


def test_an_unknown_calendar_is_404(sla_client):
    assert_problem(sla_client.get(f"/calendars/{unique('nope')}", headers=admin()), 404)


INVALID_CALENDARS = [  # (overrides, the field path named in errors)
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "Europe"}, "timezone"),
    ({"timezone": 5}, "timezone"),
    ({"hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "hours.mon"),
    ({"hours": {"tue": [["17:00", "09:00"]]}}, "hours.tue"),
    ({"hours": {"wed": [["9:00", "17:00"]]}}, "hours.wed"),
    ({"hours": {"thu": [["09:00", "24:30"]]}}, "hours.thu"),
    ({"hours": {"fri": [["09:00"]]}}, "hours.fri"),
    ({"hours": {"funday": [["09:00", "17:00"]]}}, "hours.funday"),
    ({"hours": {}}, "hours"),
    ({"hours": {"mon": []}}, "hours"),
    ({"hours": [["09:00", "17:00"]]}, "hours"),
    ({"holidays": ["2026-02-30"]}, "holidays.0"),
    ({"holidays": ["2026-12-25", "25/12/2026"]}, "holidays.1"),
    ({"holidays": "2026-12-25"}, "holidays"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_CALENDARS)
def test_an_invalid_calendar_is_422_with_the_field_path(sla_client, change, field):
    calendar_id = unique("bad")
    assert_problem(
        sla_client.put(f"/calendars/{calendar_id}", json=calendar_body(**change), headers=admin()), 422, field
    )
    assert_problem(sla_client.get(f"/calendars/{calendar_id}", headers=admin()), 404)


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "posix/Europe/Berlin", "right/UTC"])
def test_a_time_zone_that_names_no_place_is_422(sla_client, zone):
    """Files of the zone database that are no place (the host's own zone, which slim images lack; a zone of no
    offset): a calendar in one worked here and stopped every clock on another host (a reviewer's find)."""
    body = calendar_body(timezone=zone)
    assert_problem(sla_client.put(f"/calendars/{unique('cal')}", json=body, headers=admin()), 422, "timezone")


def test_a_stored_calendar_that_no_longer_parses_stops_no_clock(sla_client, sla_db, sla_ctx, sla_seed, monkeypatch):
    """A calendar stored before the rule (or in a zone this host's database lacks) counts as 24x7, and every other
    calendar and clock goes on: one raised for all, and every clock's read answered 500 (a reviewer's find)."""
    calendar_id = unique("poison")
    sla_db.calendars.insert_one({"_id": calendar_id, "timezone": "Nowhere/Atlantis", "hours": {"mon": ["09:00-17:00"]},
                                 "holidays": [], "version": 1})  # fmt: skip
    monkeypatch.setattr(sla_ctx.calendars, "_fresh_until", 0.0)  # read again now, with it
    try:
        ticket_id = sla_seed()
        assert sla_client.get(f"/tickets/{ticket_id}", headers=admin()).status_code == 200
        assert calendar_id not in sla_ctx.calendars.parsed()  # left out: counts as 24x7
        sla_db.calendars.update_one({"_id": calendar_id}, {"$set": {"timezone": "posix/Europe/Berlin"}})
        monkeypatch.setattr(sla_ctx.calendars, "_fresh_until", 0.0)
        # a zone refused since it was stored, that this host still reads: read as stored (24x7 turned its nights on)
        assert sla_ctx.calendars.parsed()[calendar_id].timezone == "posix/Europe/Berlin"
    finally:
        sla_db.calendars.delete_one({"_id": calendar_id})


def test_a_calendar_changed_under_running_clocks_keeps_the_time_they_counted_and_moves_their_deadlines(
    sla_client, sla_ctx, sla_db, sla_seed, sla_handle, policies_restored, monkeypatch
):
    """An office open every hour made yesterday and today holidays while a ticket's clocks run: the two hours they
    counted before stay counted (they were recounted away, while the deadline stayed: two reviewers' find), the
    timer looks at them at once and moves their deadline past the holidays."""
    calendar_id, today = unique("office"), handlers.now().date()
    every_hour = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    body = {"timezone": "UTC", "hours": every_hour, "holidays": []}
    assert sla_client.put(f"/calendars/{calendar_id}", json=body, headers=admin()).status_code == 201
    assert (
        put_policy(sla_client, "normal", policy_body(resolution_minutes=600, calendar=calendar_id)).status_code == 200
    )
    ticket_id = sla_seed("normal", at=handlers.now() - timedelta(hours=2))
    holidays = [(today - timedelta(days=1)).isoformat(), today.isoformat()]

    changed = sla_client.put(f"/calendars/{calendar_id}", json={**body, "holidays": holidays}, headers=admin())

    assert changed.status_code == 200
    resolution = get_json(sla_client, f"/tickets/{ticket_id}")["clocks"]["resolution"]
    assert 2 * 3600 <= resolution["elapsed_seconds"] < 2.5 * 3600
    # the timer looks at it once every process reads the new hours (each keeps what it parsed for up to a second)
    assert sla_db.clocks.find_one({"_id": ticket_id})["next_due"] <= handlers.now() + timedelta(seconds=3)
    saved, save = [], sla_ctx.clocks.save
    monkeypatch.setattr(sla_ctx.clocks, "save", lambda *args: saved.append(args[3]) or save(*args))
    handlers.announce_due(sla_ctx, ticket_id)
    due = parse_time(get_json(sla_client, f"/tickets/{ticket_id}")["clocks"]["resolution"]["due_at"])
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert tomorrow + timedelta(hours=7) <= due <= tomorrow + timedelta(hours=8)  # 600 - 120 minutes, from tomorrow
    [moved] = [json.loads(entry["body"]) for staged in saved for entry in staged.values()]
    assert moved["type"] == "sla.deadlines_changed" and moved["data"]["calendar"] == calendar_id  # the reason told

    # any event's step follows the calendar too (the timer's look may come after it, a review's find), and the look
    # a change asks for never puts a ticket's due time later than it was (a warning due now is said now)
    other = sla_seed("normal", at=handlers.now() - timedelta(hours=1))
    sla_db.clocks.update_one({"_id": other}, {"$set": {"next_due": handlers.now() - timedelta(minutes=1)}})
    assert sla_client.put(f"/calendars/{calendar_id}", json=body, headers=admin()).status_code == 200  # hours back
    assert sla_db.clocks.find_one({"_id": other})["next_due"] < handlers.now()  # not moved later
    replied = handlers.now()
    sla_handle(ticket_event("ticket.replied", ticket_id, replied))
    due = parse_time(get_json(sla_client, f"/tickets/{ticket_id}")["clocks"]["resolution"]["due_at"])
    assert abs(due - (replied + timedelta(hours=8))) < timedelta(minutes=5)  # every hour counts again: 480 left


def test_a_missing_timezone_and_a_bad_calendar_id_are_422(sla_client):
    body = calendar_body()
    del body["timezone"]
    assert_problem(sla_client.put(f"/calendars/{unique('cal')}", json=body, headers=admin()), 422, "timezone")
    assert_problem(sla_client.put("/calendars/-dash-first", json=calendar_body(), headers=admin()), 422, "id")


# --- a ticket's clocks -------------------------------------------------------------------------------


def agent_updated(agent_id: str, teams: list[str]) -> dict:
    data = {"agent_id": agent_id, "name": "A", "email": f"{agent_id}@example.com", "teams": teams, "lead_of": [],
            "available": True}  # fmt: skip
    return event_from("assignment", "agent.updated", agent_id, data)


def assigned(ticket_id: str, team: str, agent_id: str | None = None, at=None) -> dict:
    agent = {
        "agent_id": agent_id,
        "agent_name": agent_id and "A",
        "agent_email": agent_id and f"{agent_id}@example.com",
    }
    data = {**agent, "team": team, "reason": "auto", "decision": None}
    return event_from("assignment", "ticket.assigned", ticket_id, data, occurred_at=at)


def test_a_new_ticket_shows_its_clocks_to_portal_agent_and_admin(sla_client, sla_seed, sla_handle, policies_restored):
    use_defaults(sla_client, "emergency")
    created = handlers.now() - timedelta(minutes=2)
    ticket_id = sla_seed("emergency", at=created)
    sla_handle(agent_updated("jane", ["network"]))
    sla_handle(assigned(ticket_id, "network"))
    for role in ("portal", "agent", "admin"):
        view = get_json(sla_client, f"/tickets/{ticket_id}", auth_header(role, "jane" if role == "agent" else None))
        assert set(view) == {"ticket_id", "priority", "clocks"}
        assert (view["ticket_id"], view["priority"]) == (ticket_id, "emergency")
    clocks = view["clocks"]
    assert set(clocks) == {"first_response", "next_response", "resolution"}
    assert clocks["next_response"] is None  # until a requester message follows an agent reply
    first = clocks["first_response"]
    assert set(first) == CLOCK_KEYS
    assert (first["state"], first["instance"], first["met_at"], first["breached_at"]) == ("running", 0, None, None)
    assert RFC3339_Z.match(first["due_at"]) and first["calendar"] == "24x7"  # the default policies' calendar
    assert parse_time(first["due_at"]) == created + timedelta(minutes=DEFAULT_MINUTES["emergency"][0])
    assert 120 <= first["elapsed_seconds"] < 180
    assert first["remaining_seconds"] == pytest.approx(15 * 60 - first["elapsed_seconds"], abs=1e-6)


def test_clocks_follow_replies_messages_pauses_and_breaches(sla_client, sla_seed, sla_handle, policies_restored):
    use_defaults(sla_client, "normal")
    start = handlers.now() - timedelta(hours=5)
    ticket_id = sla_seed("normal", at=start)  # first response due after 240 minutes: breached an hour ago
    view = get_json(sla_client, f"/tickets/{ticket_id}")["clocks"]
    assert view["first_response"]["state"] == "breached"
    assert parse_time(view["first_response"]["breached_at"]) == start + timedelta(minutes=240)
    assert view["first_response"]["remaining_seconds"] == 0

    sla_handle(ticket_event("ticket.replied", ticket_id, start + timedelta(hours=4, minutes=30)))
    sla_handle(ticket_event("ticket.message_added", ticket_id, start + timedelta(hours=4, minutes=40)))
    sla_handle(ticket_event("ticket.status_changed", ticket_id, start + timedelta(hours=4, minutes=50),
                            status="waiting_on_requester", previous_status="in_progress"))  # fmt: skip
    view = get_json(sla_client, f"/tickets/{ticket_id}")["clocks"]
    first, following, resolution = view["first_response"], view["next_response"], view["resolution"]
    assert first["state"] == "met" and parse_time(first["met_at"]) == start + timedelta(hours=4, minutes=30)
    assert first["elapsed_seconds"] == 4.5 * 3600
    assert (following["state"], following["instance"]) == ("running", 0)
    assert parse_time(following["due_at"]) == start + timedelta(hours=4, minutes=40 + 480)
    assert resolution["state"] == "paused" and resolution["due_at"] is None
    assert resolution["elapsed_seconds"] == pytest.approx((4 * 60 + 50) * 60)


def test_a_message_handled_before_the_reply_it_follows_still_starts_the_next_response(sla_client, sla_seed, sla_handle):
    """The requester's message (intake's event) handled before the agent's earlier reply (assignment's), as a retry
    or a second worker may: the next_response runs from the message (none ever started: a race hunter's find)."""
    start = handlers.now() - timedelta(hours=1)
    ticket_id = sla_seed("normal", at=start)

    sla_handle(ticket_event("ticket.message_added", ticket_id, start + timedelta(minutes=20)))
    sla_handle(ticket_event("ticket.replied", ticket_id, start + timedelta(minutes=10)))

    view = get_json(sla_client, f"/tickets/{ticket_id}")["clocks"]
    assert view["first_response"]["state"] == "met"
    assert view["next_response"]["state"] == "running" and view["next_response"]["instance"] == 0
    assert 40 * 60 <= view["next_response"]["elapsed_seconds"] < 50 * 60  # from the message, not the reply


def test_a_ticket_sla_has_not_seen_is_404(sla_client):
    assert_problem(sla_client.get(f"/tickets/{uuid.uuid4().hex}", headers=auth_header("portal")), 404)


# --- breaches ----------------------------------------------------------------------------------------


@pytest.fixture(name="five_breaches")
def five_breaches_fixture(sla_handle, forget_tickets):
    """Five sla.breached recorded, a minute apart from `start` on: (start, [(ticket, clock, priority)...])."""
    start, recorded = far_future(), []
    for i, (clock, priority) in enumerate(
        [
            ("first_response", "normal"),
            ("resolution", "high"),
            ("first_response", "high"),
            ("next_response", "normal"),
            ("first_response", "normal"),
        ]  # fmt: skip
    ):
        ticket_id = uuid.uuid4().hex
        forget_tickets.append(ticket_id)
        envelope = breached_event(ticket_id, start + timedelta(minutes=i), clock, priority=priority)
        sla_handle(envelope)
        sla_handle(envelope)  # a redelivery is listed once
        recorded.append((ticket_id, clock, priority, envelope["event_id"]))
    return start, recorded


def test_breaches_newest_first_with_filters_and_pages(sla_client, five_breaches):
    start, recorded = five_breaches
    since = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    page = get_json(sla_client, "/breaches", admin(), since=since)
    assert page["next_cursor"] is None
    assert [item["ticket_id"] for item in page["items"]] == [ticket for ticket, *_ in reversed(recorded)]
    newest = page["items"][0]
    assert set(newest) == BREACH_KEYS
    assert newest["event_id"] == recorded[-1][3] and newest["instance"] == 0 and newest["policy_version"] == 1
    assert parse_time(newest["breached_at"]) == start + timedelta(minutes=4) and RFC3339_Z.match(newest["due_at"])

    pages = walk_pages(sla_client, "/breaches", {"since": since, "limit": 2}, admin())
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [item for p in pages for item in p["items"]] == page["items"]

    high = get_json(sla_client, "/breaches", since=since, priority="high")["items"]
    assert {item["ticket_id"] for item in high} == {ticket for ticket, _, priority, _ in recorded if priority == "high"}
    normal_first = get_json(sla_client, "/breaches", since=since, priority="normal", clock="first_response")["items"]
    assert [item["ticket_id"] for item in normal_first] == [recorded[4][0], recorded[0][0]]
    later = get_json(sla_client, "/breaches", since=(start + timedelta(minutes=3)).isoformat())["items"]
    assert [item["ticket_id"] for item in later] == [recorded[4][0], recorded[3][0]]  # +00:00 is UTC as well


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "2026-11-27T09:30:00"}, "since"),  # naive
        ({"since": "2026-11-27T09:30:00+01:00"}, "since"),  # not UTC
        ({"since": "2026-02-30T09:30:00Z"}, "since"),
        ({"since": "0000-01-01T00:00:00Z"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-11-27T09:30:00"}, "until"),
        ({"priority": "urgent"}, "priority"),
        ({"clock": "wall"}, "clock"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_breach_queries_are_422(sla_client, query, field):
    assert_problem(sla_client.get("/breaches", query_string=query, headers=admin()), 422, field)


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_forged_cursor_out_of_range_is_422(sla_client, at):
    cursor = base64.urlsafe_b64encode(json.dumps({"at": at, "id": "x"}).encode()).decode().rstrip("=")
    assert_problem(sla_client.get("/breaches", query_string={"cursor": cursor}, headers=admin()), 422, "cursor")


# --- stats -------------------------------------------------------------------------------------------


def test_stats_count_met_breached_open_and_stopped_with_times(
    sla_client, sla_seed, sla_handle, forget_tickets, policies_restored
):
    use_defaults(sla_client, "emergency")
    start = far_future()  # emergency: first response 15, resolution 240 minutes
    tickets = [sla_seed("emergency", at=start) for _ in range(6)]
    forget_tickets.extend(tickets)
    answered, late, resolved, untouched, closed, merged = tickets
    sla_handle(ticket_event("ticket.replied", answered, start + timedelta(minutes=5)))
    sla_handle(ticket_event("ticket.replied", late, start + timedelta(minutes=20)))
    sla_handle(ticket_event("ticket.resolved", resolved, start + timedelta(minutes=10)))
    # closed by its requester, unanswered and unresolved: no response met, and no resolution either
    sla_handle(ticket_event("ticket.closed", closed, start + timedelta(minutes=3)))
    # merged into another ticket: resolved there, not here
    sla_handle(ticket_event("ticket.resolved", merged, start + timedelta(minutes=8), merged_into=100042))

    stats = get_json(sla_client, "/stats", agent(), since=start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert parse_time(stats["since"]) == start and stats["next_cursor"] is None
    assert {(row["priority"], row["clock"]) for row in stats["items"]} == {
        (priority, clock) for priority in BY_URGENCY for clock in ("first_response", "next_response", "resolution")
    }
    assert all(set(row) == STATS_KEYS for row in stats["items"])
    histograms = {(row["priority"], row["clock"]): row.pop("histogram") for row in stats["items"]}
    rows = {(row["priority"], row["clock"]): row for row in stats["items"]}
    assert rows["emergency", "first_response"] == {
        "priority": "emergency", "clock": "first_response", "met": 1, "breached": 1, "open": 1, "stopped": 3,
        "compliance_percent": 50.0, "median_seconds": 750.0, "p90_seconds": 1200.0, "measured": 2,
    }  # fmt: skip
    assert rows["emergency", "resolution"] == {
        "priority": "emergency", "clock": "resolution", "met": 1, "breached": 0, "open": 3, "stopped": 2,
        "compliance_percent": 100.0, "median_seconds": 600.0, "p90_seconds": 600.0, "measured": 1,
    }  # fmt: skip
    empty = rows["low", "next_response"]
    assert (empty["met"], empty["compliance_percent"], empty["median_seconds"], empty["measured"]) == (0, None, None, 0)
    # the measured times in buckets: 300 s (up to 5 min) and 1200 s (up to 30 min); resolved in 600 s (up to 15 min)
    assert filled(histograms["emergency", "first_response"]) == {300: 1, 1800: 1}
    assert filled(histograms["emergency", "resolution"]) == {900: 1}
    assert filled(histograms["low", "next_response"]) == {}
    assert [bucket["up_to_seconds"] for bucket in histograms["low", "next_response"]][-2:] == [604800, None]


def test_stats_from_the_history_copies_are_those_from_the_clocks(
    sla_client, sla_ctx, sla_seed, sla_handle, forget_tickets, policies_restored, monkeypatch
):
    """/stats reads the compact copies of the clocks (a tenth of the cost) once every ticket has one: the same
    rows as from the clocks, for answered, late, resolved, paused and untouched clocks of every priority."""
    use_defaults(sla_client, *BY_URGENCY)
    start = far_future()
    for i, priority in enumerate(BY_URGENCY * 2):
        answered, late, resolved, waiting, untouched, closed = tickets = [
            sla_seed(priority, at=start) for _ in range(6)
        ]
        forget_tickets.extend(tickets)
        sla_handle(ticket_event("ticket.closed", closed, start + timedelta(minutes=4 + i)))
        sla_handle(ticket_event("ticket.replied", answered, start + timedelta(minutes=1 + i)))
        sla_handle(ticket_event("ticket.replied", late, start + timedelta(days=3, minutes=i)))
        sla_handle(ticket_event("ticket.resolved", resolved, start + timedelta(minutes=30 + i)))
        waiting_on = {"status": "waiting_on_requester", "previous_status": "in_progress"}
        sla_handle(ticket_event("ticket.status_changed", waiting, start + timedelta(minutes=2), **waiting_on))
    monkeypatch.setattr(sla_ctx.clocks.histories.days, "tallied", lambda since, until: None)  # not the days
    monkeypatch.setattr(sla_ctx.clocks.histories, "backfilled", lambda: False)
    answers = {False: handlers.stats(sla_ctx, start, start + timedelta(days=1))}
    monkeypatch.setattr(sla_ctx.clocks.histories, "backfilled", lambda: True)
    monkeypatch.setattr(sla_ctx.clocks, "created_since", None)  # not read: the copies are
    answers[True] = handlers.stats(sla_ctx, start, start + timedelta(days=1))
    assert answers[True] == answers[False]
    rows = answers[True]["items"]
    assert sum(row["measured"] for row in rows) == 24 and sum(row["breached"] for row in rows) >= 8
    assert sum(row["open"] for row in rows) and sum(row["stopped"] for row in rows)
    assert sum(row["stopped"] for row in rows if row["clock"] == "resolution") == 8  # the closed ones


def swept(days) -> None:
    """A sweep of every copy, run to its end (StatsDays: SWEEP_SPAN of creation dates a pass)."""
    days.roll_up(sweep=True)
    for _ in range(1000):
        if days.collection.find_one({"_id": days.WATERMARK}).get("sweep_from") is None:
            return
        days.roll_up()
    raise AssertionError("the sweep did not end")


def test_stats_from_the_days_are_those_from_the_copies_before_and_after_each_pass(
    sla_client, sla_ctx, sla_seed, sla_handle, forget_tickets, policies_restored, monkeypatch
):
    """/stats reads each day's figures (StatsDays) and the copies written since its last pass: the same rows as
    from the copies alone, for windows that cut days, after changes and new tickets the pass has not seen."""
    use_defaults(sla_client, *BY_URGENCY)
    days = sla_ctx.clocks.histories.days
    start = far_future().replace(hour=22, minute=0, second=0, microsecond=0)  # the tickets span midnight

    def seed(hours: float) -> list[str]:
        tickets = [sla_seed(priority, at=start + timedelta(hours=hours)) for priority in BY_URGENCY]
        forget_tickets.extend(tickets)
        return tickets

    def same(since, until=None) -> dict:
        assert days.tallied(since, until) is not None  # the days are read
        answer = handlers.stats(sla_ctx, since, until)
        with monkeypatch.context() as patched:
            patched.setattr(days, "tallied", lambda since, until: None)
            assert handlers.stats(sla_ctx, since, until) == answer
        return answer

    def counted(answer: dict) -> int:  # tickets: each has one first response clock
        rows = [row for row in answer["items"] if row["clock"] == "first_response"]
        return sum(row["met"] + row["breached"] + row["open"] + row["stopped"] for row in rows)

    first = seed(0) + seed(3)  # 22:00 and 01:00 the next day
    sla_handle(ticket_event("ticket.replied", first[0], start + timedelta(minutes=5)))
    sla_handle(ticket_event("ticket.resolved", first[1], start + timedelta(minutes=30)))
    swept(days)
    whole = (start - timedelta(hours=1), start + timedelta(days=3))
    assert counted(same(*whole)) == 8

    sla_handle(ticket_event("ticket.replied", first[2], start + timedelta(days=2)))  # late: breached
    sla_handle(ticket_event("ticket.resolved", first[5], start + timedelta(hours=4)))
    later = seed(5)  # 03:00: tickets the pass has not seen
    assert counted(same(*whole)) == 12
    assert days.roll_up() >= 6  # the changed and new copies
    assert counted(same(*whole)) == 12
    assert sum(row["breached"] for row in same(*whole)["items"]) >= 1
    for since, until in [
        (start + timedelta(hours=1), start + timedelta(hours=3, minutes=30)),  # 23:00 to 01:30: the second four
        (start + timedelta(hours=3), start + timedelta(hours=3, seconds=1)),
        (start, None),
        (start + timedelta(hours=5), start + timedelta(hours=5)),  # nothing
    ]:
        same(since, until)
    assert counted(same(start + timedelta(hours=1), start + timedelta(hours=3, minutes=30))) == 4
    assert later


def test_a_copy_written_without_its_time_is_counted_from_the_next_full_pass(
    sla_client, sla_ctx, sla_db, sla_seed, forget_tickets, policies_restored
):
    """A worker of an older version writes copies without `u`: the hourly sweep of every copy takes them in."""
    days = sla_ctx.clocks.histories.days
    start = far_future()
    swept(days)
    ticket = sla_seed("high", at=start)
    forget_tickets.append(ticket)
    sla_db.clock_histories.update_one({"_id": ticket}, {"$unset": {"u": ""}})
    window = (start, start + timedelta(hours=1))
    days.roll_up()
    assert opened(days.tallied(*window)) == {}
    swept(days)
    assert opened(days.tallied(*window)) == {"high": 1}


def opened(tallied: dict) -> dict:
    """Tickets per priority in a tally (each has one first response clock)."""
    return {
        priority: sum(row[name] for name in ("met", "breached", "open", "stopped"))
        for (priority, clock), row in tallied.items()
        if clock == "first_response" and row["open"] + row["met"] + row["breached"] + row["stopped"]
    }


def test_one_pass_at_a_time_and_a_dead_workers_lease_runs_out(sla_ctx, sla_db, sla_seed, forget_tickets):
    days = sla_ctx.clocks.histories.days
    swept(days)
    mark = sla_db.stats_days.find_one({"_id": days.WATERMARK})
    forget_tickets.append(sla_seed("low", at=far_future()))

    def leased(until) -> None:
        sla_db.stats_days.update_one({"_id": days.WATERMARK}, {"$set": {"lease_until": until}})

    leased(handlers.now() + timedelta(minutes=1))  # another worker's pass runs
    try:
        assert days.roll_up() == 0
        assert sla_db.stats_days.find_one({"_id": days.WATERMARK})["upto"] == mark["upto"]
    finally:  # whatever happened, the next test's passes run
        leased(handlers.now() - timedelta(seconds=1))  # its worker died: the lease ran out
    assert days.roll_up() >= 1
    after = sla_db.stats_days.find_one({"_id": days.WATERMARK})
    assert after["upto"] > mark["upto"] and after["lease_until"] is None


def test_a_quiet_day_is_read_as_its_tally_and_a_failed_pass_lets_the_next_one_run(
    sla_client, sla_ctx, sla_db, sla_seed, sla_handle, forget_tickets, policies_restored, monkeypatch
):
    """Days inside the window that no newer copy touches are read as their tally (`s`), the same rows; a pass
    that fails frees its lease at once and moves nothing."""
    use_defaults(sla_client, *BY_URGENCY)
    days = sla_ctx.clocks.histories.days
    start = far_future().replace(hour=12, minute=0, second=0, microsecond=0)
    tickets = [sla_seed(priority, at=start + timedelta(days=d)) for d in range(3) for priority in BY_URGENCY]
    forget_tickets.extend(tickets)
    sla_handle(ticket_event("ticket.replied", tickets[0], start + timedelta(minutes=3)))
    sla_handle(ticket_event("ticket.resolved", tickets[5], start + timedelta(days=1, hours=2)))
    monkeypatch.setattr(store, "ROLL_UP_MARGIN", timedelta(0))  # so that no copy is newer than the pass
    swept(days)
    days.roll_up()
    tallies, read = [], store._tally_of
    monkeypatch.setattr(store, "_tally_of", lambda summary: tallies.append(summary) or read(summary))
    window = (start - timedelta(hours=12), start + timedelta(days=3))
    answer = handlers.stats(sla_ctx, *window)
    assert len(tallies) == 3  # the three days, whole inside the window
    with monkeypatch.context() as patched:
        patched.setattr(days, "tallied", lambda since, until: None)
        assert handlers.stats(sla_ctx, *window) == answer

    mark = sla_db.stats_days.find_one({"_id": days.WATERMARK})
    monkeypatch.setattr(days, "_merge", lambda day, entries: 1 / 0)
    forget_tickets.append(sla_seed("low", at=start))
    with pytest.raises(ZeroDivisionError):
        days.roll_up()
    after = sla_db.stats_days.find_one({"_id": days.WATERMARK})
    assert after["lease_until"] is None and after["upto"] == mark["upto"]


def test_a_sweep_reads_a_span_of_creation_dates_a_pass_and_ends_past_the_newest(
    sla_ctx, sla_db, sla_seed, forget_tickets, monkeypatch
):
    days = sla_ctx.clocks.histories.days
    start = far_future()
    forget_tickets.extend(sla_seed("normal", at=start + timedelta(days=d)) for d in (0, 2, 4))
    monkeypatch.setattr(store, "SWEEP_SPAN", timedelta(days=1))
    days.roll_up(sweep=True)
    passes = 1
    while sla_db.stats_days.find_one({"_id": days.WATERMARK}).get("sweep_from") is not None and passes < 1000:
        days.roll_up()
        passes += 1
    assert 4 <= passes < 1000  # a day each for the three far-future ones (and the days before them), then the end
    assert sla_db.stats_days.find_one({"_id": days.WATERMARK})["full_at"] is not None


def test_a_day_keeps_each_tickets_latest_copy_whatever_the_order_of_the_writes(sla_ctx, sla_db, monkeypatch):
    """Two passes merging into one day at once: neither loses the other's entries (the day is written only if
    unchanged since read), and an entry is replaced only by a later version of its ticket's copy."""
    days = sla_ctx.clocks.histories.days
    day = far_future().replace(hour=0, minute=0, second=0, microsecond=0)
    key = day.strftime("%Y-%m-%d")

    def entry(version: int) -> list:
        return [version, "low", 0, [["resolution", "running", False, version]]]

    try:
        days._merge(day, {"a": entry(2)})
        days._merge(day, {"a": entry(1)})  # an older copy: kept out
        assert json.loads(sla_db.stats_days.find_one({"_id": key})["t"]) == {"a": entry(2)}
        update_one, interleaved = days.collection.update_one, []

        def another_pass_first(query, update, **kwargs):  # another pass writes the day between read and write
            if query.get("_id") == key and not interleaved:
                interleaved.append(True)
                days._merge(day, {"b": entry(1)})
            return update_one(query, update, **kwargs)

        monkeypatch.setattr(days.collection, "update_one", another_pass_first)
        days._merge(day, {"c": entry(1), "a": entry(3)})
        held = json.loads(sla_db.stats_days.find_one({"_id": key})["t"])
        assert interleaved and {ticket: value[0] for ticket, value in held.items()} == {"a": 3, "b": 1, "c": 1}
    finally:
        sla_db.stats_days.delete_one({"_id": key})


def filled(histogram: list[dict]) -> dict:
    return {bucket["up_to_seconds"]: bucket["count"] for bucket in histogram if bucket["count"]}


def test_stats_and_breaches_end_at_until(sla_client, sla_seed, sla_handle, forget_tickets, five_breaches):
    start, recorded = five_breaches  # breached at start + 0..4 minutes
    until = (start + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    since = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    listed = get_json(sla_client, "/breaches", admin(), since=since, until=until)["items"]
    assert [item["ticket_id"] for item in listed] == [recorded[1][0], recorded[0][0]]  # before until, not at it
    pages = walk_pages(sla_client, "/breaches", {"since": since, "until": until, "limit": 1}, admin())
    assert [item for page in pages for item in page["items"]] == listed

    early, late = sla_seed("high", at=start), sla_seed("high", at=start + timedelta(hours=1))
    forget_tickets.extend([early, late])

    def open_clocks(**window) -> tuple[int, str | None]:
        query = {name: moment.strftime("%Y-%m-%dT%H:%M:%SZ") for name, moment in window.items()}
        answer = get_json(sla_client, "/stats", admin(), **query)
        row = next(r for r in answer["items"] if (r["priority"], r["clock"]) == ("high", "resolution"))
        return row["open"], answer["until"] and parse_time(answer["until"])

    hour = start + timedelta(hours=1)
    assert open_clocks(since=start, until=hour) == (1, hour)  # the ticket created at `until` is not in it
    assert open_clocks(since=hour, until=hour + timedelta(hours=1)) == (1, hour + timedelta(hours=1))
    assert open_clocks(since=start, until=hour + timedelta(seconds=1)) == (2, hour + timedelta(seconds=1))
    assert open_clocks(since=start)[1] is None


def test_stats_look_back_30_days_by_default(sla_client):
    since = parse_time(get_json(sla_client, "/stats")["since"])
    expected = handlers.now() - timedelta(days=30)
    assert abs((since - expected).total_seconds()) < 60
    # `until` alone, before that default `since`: said, not an empty answer (a reviewer's find)
    early = {"until": "2020-01-01T00:00:00Z"}
    assert_problem(sla_client.get("/stats", query_string=early, headers=admin()), 422, "until")
    both = {"since": "2019-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}
    assert sla_client.get("/stats", query_string=both, headers=admin()).status_code == 200


@pytest.mark.parametrize("since", ["2026-11-27", "2026-11-27T09:30:00", "2026-13-01T00:00:00Z", ""])
@pytest.mark.parametrize("name", ["since", "until"])
def test_a_bad_stats_since_or_until_is_422(sla_client, since, name):
    assert_problem(sla_client.get("/stats", query_string={name: since}, headers=admin()), 422, name)


# --- who reads which ticket's clocks (shared.access) ------------------------------------------


def test_clocks_answer_404_to_an_agent_of_another_team_and_to_another_requester(sla_client, sla_seed, sla_handle):
    hardware, mine = sla_seed(), sla_seed()  # the seed's requester is ana@example.com
    net, stranger = f"net-{uuid.uuid4().hex[:8]}", f"nobody-{uuid.uuid4().hex[:8]}"
    sla_handle(agent_updated(net, ["network"]))
    sla_handle(assigned(hardware, "hardware"))
    sla_handle(assigned(mine, "hardware", agent_id=net))

    for headers in (auth_header("agent", net), auth_header("agent", stranger), requester_header("bob@example.com"),
                    requester_header("ana@example.com", ticket_id=mine)):  # fmt: skip
        assert_problem(sla_client.get(f"/tickets/{hardware}", headers=headers), 404)
    for headers in (auth_header("agent", net), requester_header("ANA@example.com"), auth_header("admin")):
        assert sla_client.get(f"/tickets/{mine}", headers=headers).status_code == 200

    sla_handle(assigned(mine, "hardware", at=handlers.now() - timedelta(days=1)))  # older: changes nothing
    assert sla_client.get(f"/tickets/{mine}", headers=auth_header("agent", net)).status_code == 200
    sla_handle(assigned(mine, "hardware"))  # newer: back in hardware's queue, no longer net's
    assert_problem(sla_client.get(f"/tickets/{mine}", headers=auth_header("agent", net)), 404)


def test_several_tickets_clocks_at_once_only_those_the_reader_sees_in_the_order_asked(sla_client, sla_seed, sla_handle):
    hardware, mine, unknown = sla_seed(), sla_seed(), uuid.uuid4().hex
    net = f"net-{uuid.uuid4().hex[:8]}"
    sla_handle(agent_updated(net, ["network"]))
    sla_handle(assigned(hardware, "hardware"))
    sla_handle(assigned(mine, "hardware", agent_id=net))
    asked = {"ticket_id": [mine, unknown, hardware, mine]}

    answer = get_json(sla_client, "/tickets", admin(), **asked)
    assert answer["next_cursor"] is None  # a list as every list answers (one page)
    every = answer["items"]
    assert [item["ticket_id"] for item in every] == [mine, hardware]  # unknown left out, each once
    timeless = lambda view: {kind: {k: v for k, v in clock.items() if not k.endswith("_seconds")}  # noqa: E731
                             for kind, clock in view["clocks"].items() if clock}  # fmt: skip
    assert timeless(every[0]) == timeless(get_json(sla_client, f"/tickets/{mine}", admin()))  # as its own read
    for headers, seen in ((auth_header("agent", net), [mine]), (requester_header("ana@example.com", ticket_id=mine),
                          [mine]), (requester_header("bob@example.com"), [])):  # fmt: skip
        assert [item["ticket_id"] for item in get_json(sla_client, "/tickets", headers, **asked)["items"]] == seen

    assert_problem(sla_client.get("/tickets", headers=admin()), 422, "ticket_id")
    too_many = {"ticket_id": [uuid.uuid4().hex for _ in range(201)]}
    assert_problem(sla_client.get("/tickets", query_string=too_many, headers=admin()), 422, "ticket_id")


@pytest.fixture(params=["stamped", "before the backfill"])
def stamps_or_ids(request, sla_ctx, monkeypatch) -> None:
    """An agent's list read through the team and agent stamped on each breach, or (until the worker's backfill
    of older ones) through the ids of the tickets the agent may see."""
    if request.param == "stamped":
        sla_ctx.breaches.stamps.backfill(sla_ctx.access.stamps())
    else:
        monkeypatch.setattr(sla_ctx.breaches.stamps, "backfilled", lambda: False)


def test_an_agent_lists_only_the_breaches_of_its_teams_tickets_and_its_own(sla_client, sla_handle, five_breaches,
                                                                           stamps_or_ids):  # fmt: skip
    start, recorded = five_breaches
    net = f"net-{uuid.uuid4().hex[:8]}"
    sla_handle(agent_updated(net, ["network"]))
    (first, *_), (second, *_), (third, *_) = recorded[:3]
    sla_handle(assigned(first, "network"))
    sla_handle(assigned(second, "hardware", agent_id=net))
    sla_handle(assigned(third, "hardware"))
    since = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    listed = get_json(sla_client, "/breaches", auth_header("agent", net), since=since)["items"]
    assert [item["ticket_id"] for item in listed] == [second, first]
    stranger = auth_header("agent", f"nobody-{uuid.uuid4().hex[:8]}")
    assert get_json(sla_client, "/breaches", stranger, since=since)["items"] == []
    assert len(get_json(sla_client, "/breaches", admin(), since=since)["items"]) == 5

    sla_handle(assigned(first, "hardware", at=handlers.now() - timedelta(days=1)))  # older: changes nothing
    sla_handle(assigned(third, "network"))
    listed = get_json(sla_client, "/breaches", auth_header("agent", net), since=since)["items"]
    assert [item["ticket_id"] for item in listed] == [third, second, first]
    sla_handle(assigned(first, "hardware"))  # newer: no longer network's
    sla_handle(recorded_again := breached_event(second, start + timedelta(minutes=9), "resolution"))
    listed = get_json(sla_client, "/breaches", auth_header("agent", net), since=since)["items"]
    assert [item["event_id"] for item in listed] == [recorded_again["event_id"], recorded[2][3], recorded[1][3]]


@pytest.mark.parametrize("path", ["/stats", "/breaches"])
def test_a_window_that_ends_before_it_starts_is_refused_not_answered_empty(sla_client, path):
    query = {"since": "2026-12-02T00:00:00.000Z", "until": "2026-12-01T00:00:00.000Z"}
    assert_problem(sla_client.get(path, query_string=query, headers=auth_header("admin")), 422, "until")
    same = {"since": "2026-12-01T00:00:00.000Z", "until": "2026-12-01T00:00:00.000Z"}  # empty, but not a mistake
    assert sla_client.get(path, query_string=same, headers=auth_header("admin")).status_code == 200


def test_the_timer_puts_off_a_ticket_only_while_its_next_look_is_the_one_that_failed(sla_ctx, sla_db, sla_seed):
    ticket_id = sla_seed("normal")
    due = sla_db.clocks.find_one({"_id": ticket_id})["next_due"]
    later = handlers.now() + timedelta(minutes=1)

    assert not sla_ctx.clocks.put_off(ticket_id, due - timedelta(seconds=1), later)  # saved since: left as it is
    assert sla_db.clocks.find_one({"_id": ticket_id})["next_due"] == due
    assert sla_ctx.clocks.put_off(ticket_id, due, later)
    assert sla_db.clocks.find_one({"_id": ticket_id})["next_due"] == later


def test_a_calendar_put_again_unchanged_still_asks_the_timer_to_look(sla_client, sla_db, sla_seed, policies_restored):
    """A change review's find: a PUT repeated after one whose save went through but whose look failed (a timeout on
    the clocks) changed nothing, and the deadlines stayed in the old hours. The same hours make no new version."""
    calendar_id = unique("office")
    body = {"timezone": "UTC", "hours": {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
    assert sla_client.put(f"/calendars/{calendar_id}", json=body, headers=admin()).status_code == 201
    assert put_policy(sla_client, "normal", policy_body(calendar=calendar_id)).status_code == 200
    ticket_id = sla_seed("normal")
    sla_db.clocks.update_one({"_id": ticket_id}, {"$set": {"next_due": handlers.now() + timedelta(days=3)}})

    again = sla_client.put(f"/calendars/{calendar_id}", json=body, headers=admin())

    assert again.status_code == 200 and again.get_json()["version"] == 1
    assert sla_db.clocks.find_one({"_id": ticket_id})["next_due"] <= handlers.now() + timedelta(seconds=3)
