"""notify's HTTP API (errors, roles, notifications, webhooks), in-process, on the session's real MongoDB and broker.

Notifications are put in place by notify's own handler from the envelopes the other services would publish
(`notify_event`), or inserted through the store with the times and statuses a test needs
(`make_notification`, then `make_dead` / `make_failed` / `make_sent`). No worker runs, so nothing is sent.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import time
import uuid
from datetime import timedelta

import pytest

from services.notify import handlers, webhook_sender
from shared.events import parse_time
from shared.links import read_link_token
from tests.harness import auth_header, requester_header, walk_pages
from tests.integration.conftest import event_from
from tests.integration.notify_fixtures import (  # fixtures: pytest finds them by their short names
    NOTIFICATION_KEYS,
    SECRET,
    WEBHOOK_KEYS,
    admin,
    agent,
    assert_problem,
    assigned_event,
    created_event,
    make_dead,
    make_failed,
    make_notification_fixture,  # noqa: F401
    make_sent,
    notify_app_fixture,  # noqa: F401
    notify_client_fixture,  # noqa: F401
    notify_ctx_fixture,  # noqa: F401
    notify_db_fixture,  # noqa: F401
    notify_event_fixture,  # noqa: F401
    portal,
    unique_email,
    webhook_body,
)

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def get_json(client, path: str, headers=None, **query) -> dict:
    response = client.get(path, query_string=query, headers=headers or admin())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def add_webhook(client, **overrides) -> dict:
    response = client.post("/webhooks", json=webhook_body(**overrides), headers=admin())
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# --- rights ------------------------------------------------------------------------------------------

ROUTES = [  # (method, path, roles allowed)
    ("get", "/notifications", {"agent", "admin"}),
    ("get", "/notifications/no-such-notification", {"agent", "admin"}),
    ("post", "/notifications/no-such-notification/retry", {"admin"}),
    ("post", "/webhooks", {"admin"}),
    ("get", "/webhooks", {"admin"}),
    ("delete", "/webhooks/no-such-webhook", {"admin"}),
]


def _headers(role: str) -> dict[str, str]:
    return auth_header(role, "jane" if role == "agent" else None)


@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES)
def test_every_operation_needs_a_token_and_a_role_that_may(notify_client, method, path, allowed):
    call = getattr(notify_client, method)
    body = {"json": webhook_body()} if path == "/webhooks" and method == "post" else {}  # valid: refused anyway
    assert_problem(call(path, **body), 401)
    assert_problem(call(path, headers={"Authorization": "Bearer not-a-jwt"}, **body), 401)
    for role in {"portal", "agent", "admin"} - allowed:
        assert_problem(call(path, headers=_headers(role), **body), 403)
    if method == "get":
        for role in allowed:
            response = call(path, headers=_headers(role))
            assert response.status_code in (200, 404), (role, response.get_data(as_text=True))


def test_a_refused_request_changes_nothing(notify_client, notify_ctx, make_notification):
    """The portal and an agent may neither retry nor register or delete webhooks."""
    dead = make_dead(notify_ctx, make_notification())
    hook = add_webhook(notify_client)
    for headers in (portal(), agent()):
        assert_problem(notify_client.post(f"/notifications/{dead.id}/retry", headers=headers), 403)
        assert_problem(notify_client.post("/webhooks", json=webhook_body(), headers=headers), 403)
        assert_problem(notify_client.delete(f"/webhooks/{hook['id']}", headers=headers), 403)
    assert notify_ctx.notifications.get(dead.id).status == "dead"
    assert [h["id"] for h in get_json(notify_client, "/webhooks")["items"]].count(hook["id"]) == 1
    assert_problem(notify_client.get("/notifications", headers=portal()), 403)


def test_probes_and_document_need_no_token(notify_client):
    assert notify_client.get("/healthz").status_code == 200
    document = notify_client.get("/openapi.json").get_json()
    paths = {"/notifications", "/notifications/{notification_id}", "/notifications/{notification_id}/retry",
             "/webhooks", "/webhooks/{webhook_id}"}  # fmt: skip
    assert paths <= set(document["paths"])
    description = document["info"]["description"]
    for words in ("sla.breached", "X-Ticketflow-Signature", "X-Ticketflow-Delivery", "TICKETFLOW_RETRY_DELAYS",
                  "Internal notes are never sent"):  # fmt: skip
        assert words in description
    schemas = document["components"]["schemas"]
    notification = schemas["Notification"]["properties"]
    assert set(notification) == NOTIFICATION_KEYS
    assert "null once sent or dead" in notification["next_attempt_at"]["description"]
    assert schemas["WebhookCreate"]["properties"]["secret"].get("writeOnly") is True
    assert "secret" not in schemas["Webhook"]["properties"]
    assert {"200", "404", "409"} <= set(
        document["paths"]["/notifications/{notification_id}/retry"]["post"]["responses"]
    )
    assert "201" in document["paths"]["/webhooks"]["post"]["responses"]
    assert "204" in document["paths"]["/webhooks/{webhook_id}"]["delete"]["responses"]


# --- notifications -----------------------------------------------------------------------------------


def test_a_requester_whose_name_is_only_their_address_is_greeted_without_it(notify_event):
    """Mail in names a requester whose mail gave no name by the part of the address before the @."""
    named = created_event(uuid.uuid4().hex, "hank.t63@example.com")
    named["data"]["requester"]["name"] = "Hank.T63"
    (record,) = notify_event(named)
    assert record.body.startswith("Hello,\n") and "hank" not in record.html.split("</p>")[0].lower()
    (other,) = notify_event(created_event(uuid.uuid4().hex, "hank.t63@example.com"))  # "Ana Ruiz" at that address
    assert other.body.startswith("Hello Ana Ruiz,\n")
    typed = created_event(uuid.uuid4().hex, "ana@example.com")
    typed["data"]["requester"]["name"] = "Ana"  # a name typed on the form that is the address's too: a name
    (ana,) = notify_event(typed)
    assert ana.body.startswith("Hello Ana,\n")


def test_a_ticket_created_gives_the_requester_a_receipt_in_the_contract_shape(notify_client, notify_event):
    ticket_id, email = uuid.uuid4().hex, unique_email()
    envelope = created_event(ticket_id, email, subject="Printer on fire")
    (record,) = notify_event(envelope)
    page = get_json(notify_client, "/notifications", admin(), ticket_id=ticket_id)
    assert page["next_cursor"] is None
    (item,) = page["items"]
    assert set(item) == NOTIFICATION_KEYS, item  # never html, webhook_id, endpoint or step
    number = envelope["data"]["number"]
    assert item["id"] == record.id
    assert item["event_id"] == envelope["event_id"]
    assert (item["event_type"], item["ticket_id"], item["channel"]) == ("ticket.created", ticket_id, "email")
    assert (item["recipient"], item["subject"]) == (email, f"[#{number}] Printer on fire")
    assert str(number) in item["body"]
    assert item["body"] == record.body != record.html  # the plain-text email
    assert (item["status"], item["attempts"], item["last_error"], item["sent_at"]) == ("pending", 0, None, None)
    assert RFC3339_Z.match(item["created_at"]) and RFC3339_Z.match(item["next_attempt_at"])
    assert parse_time(item["next_attempt_at"]) == parse_time(item["created_at"])  # due at once
    assert get_json(notify_client, f"/notifications/{record.id}", admin()) == item


def test_one_notification_by_id_shows_a_failed_and_a_sent_attempt(notify_client, notify_ctx, make_notification):
    failed = make_failed(notify_ctx, make_notification())
    item = get_json(notify_client, f"/notifications/{failed.id}")
    assert (item["status"], item["attempts"], item["last_error"]) == ("failed", 1, "connection refused")
    delay = notify_ctx.settings.retry_delays[0]
    assert parse_time(item["next_attempt_at"]) > parse_time(item["created_at"])
    assert parse_time(item["next_attempt_at"]) - handlers.now() <= timedelta(seconds=delay)
    sent = make_sent(notify_ctx, make_notification())
    item = get_json(notify_client, f"/notifications/{sent.id}", admin())
    assert (item["status"], item["attempts"], item["last_error"], item["next_attempt_at"]) == ("sent", 1, None, None)
    assert RFC3339_Z.match(item["sent_at"])


def test_an_unknown_notification_is_404(notify_client):
    body = assert_problem(notify_client.get(f"/notifications/{uuid.uuid4()}", headers=agent()), 404)
    assert body["type"].endswith("not-found")
    assert_problem(notify_client.post(f"/notifications/{uuid.uuid4()}/retry", headers=admin()), 404)


def test_a_ticket_assigned_gives_the_agent_an_email(notify_client, notify_event):
    ticket_id, agent_email = uuid.uuid4().hex, unique_email("jane")
    notify_event(created_event(ticket_id))
    (record,) = notify_event(assigned_event(ticket_id, agent_email))
    items = get_json(notify_client, "/notifications", recipient=agent_email)["items"]
    assert [(i["id"], i["event_type"], i["ticket_id"]) for i in items] == [(record.id, "ticket.assigned", ticket_id)]


def test_an_assignment_older_than_the_one_notify_knows_emails_nobody(notify_event):
    """Two assignments heard out of order (bob's, made first, came back from its retry after the lead gave the
    ticket to jane): bob has the ticket no more and is not told it is his (a race hunter's find). The newest one
    heard again is its one email still."""
    from datetime import UTC, datetime

    ticket_id, jane, bob = uuid.uuid4().hex, unique_email("jane"), unique_email("bob")
    notify_event(created_event(ticket_id))
    first, then = datetime(2026, 12, 6, 9, 0, tzinfo=UTC), datetime(2026, 12, 6, 9, 5, tzinfo=UTC)
    newest = assigned_event(ticket_id, jane)
    newest["occurred_at"] = then.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    older = assigned_event(ticket_id, bob)
    older["data"] |= {"agent_id": "bob", "agent_name": "Bob Old"}
    older["occurred_at"] = first.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    assert [record.recipient for record in notify_event(newest)] == [jane]
    assert notify_event(older) == []
    assert [record.recipient for record in notify_event(newest)] == [jane]  # heard again: the same one


def test_while_the_agent_is_away_a_requesters_message_reaches_the_team_lead_too(notify_event, notify_ctx):
    """Someone on leave, or gone (their account disabled): the requester's words still reach someone who reads."""
    ticket_id, agent_id = uuid.uuid4().hex, f"away-{uuid.uuid4().hex[:8]}"
    notify_event(created_event(ticket_id))
    assignment = assigned_event(ticket_id, f"{agent_id}@example.com")
    assignment["data"] |= {"agent_id": agent_id, "team_lead_name": "Tess Lead"}
    notify_event(assignment)
    message = {"message_id": uuid.uuid4().hex, "body": "Still broken.",
               "author": {"type": "requester", "name": "Ana Ruiz", "email": "ana@example.com"}}  # fmt: skip

    (present,) = notify_event(event_from("intake", "ticket.message_added", ticket_id, message))
    away = {**agent_updated(agent_id, ["network"])["data"], "available": False}
    handlers.HANDLERS["agent.updated"](notify_ctx, event_from("assignment", "agent.updated", agent_id, away))
    covered = notify_event(event_from("intake", "ticket.message_added", ticket_id, {**message, "message_id": "m2"}))

    assert present.recipient == f"{agent_id}@example.com"
    by_recipient = {record.recipient: record for record in covered}
    assert set(by_recipient) == {f"{agent_id}@example.com", "lead@example.com"}
    lead = by_recipient["lead@example.com"]
    assert lead.body.startswith("Hello Tess Lead,") and "who has this ticket, is away" in lead.body
    assert "Still broken." in lead.body


def test_a_reopening_while_the_agent_is_away_reaches_the_lead_alone(notify_event, notify_ctx):
    """Someone who left (their account disabled) or on leave does not get their old ticket's reopening: assignment
    gives it to an available agent of the team. Its lead hears of it, and of the message that reopened it."""
    ticket_id, agent_id = uuid.uuid4().hex, f"gone-{uuid.uuid4().hex[:8]}"
    notify_event(created_event(ticket_id))
    assignment = assigned_event(ticket_id, f"{agent_id}@example.com")
    assignment["data"] |= {"agent_id": agent_id, "team_lead_name": "Tess Lead"}
    notify_event(assignment)
    away = {**agent_updated(agent_id, ["network"])["data"], "available": False}
    handlers.HANDLERS["agent.updated"](notify_ctx, event_from("assignment", "agent.updated", agent_id, away))
    message = {"message_id": uuid.uuid4().hex, "body": "It is back.", "reopens": True,
               "author": {"type": "requester", "name": "Ana Ruiz", "email": "ana@example.com"}}  # fmt: skip

    wrote = notify_event(event_from("intake", "ticket.message_added", ticket_id, message))
    reopened = notify_event(
        event_from("intake", "ticket.reopened", ticket_id, {"reason": "requester replied", "message_id": "m1"})
    )

    assert [record.recipient for record in wrote] == ["lead@example.com"]
    assert [record.recipient for record in reopened] == ["lead@example.com"]
    assert "who had this ticket, is away" in reopened[0].body and "goes to an available agent" in reopened[0].body
    assert "It is back." in wrote[0].body and "who had this ticket, is away" in wrote[0].body
    assert "who had this ticket, is away" in reopened[0].html


def test_a_redelivered_event_is_listed_once(notify_client, notify_event):
    ticket_id = uuid.uuid4().hex
    envelope = created_event(ticket_id)
    notify_event(envelope)
    notify_event(envelope)
    assert len(get_json(notify_client, "/notifications", ticket_id=ticket_id)["items"]) == 1


def test_lists_are_newest_first_and_pages_cover_each_once(notify_client, make_notification):
    ticket_id, start = uuid.uuid4().hex, handlers.now() - timedelta(hours=1)
    made = [make_notification(ticket_id=ticket_id, created_at=start + timedelta(seconds=i)) for i in range(7)]
    # two at the same millisecond: the id breaks the tie, and neither is lost between pages
    made += [make_notification(ticket_id=ticket_id, created_at=start + timedelta(seconds=3)) for _ in range(2)]
    pages = walk_pages(notify_client, "/notifications", {"ticket_id": ticket_id, "limit": 2}, admin())
    assert [len(page["items"]) for page in pages] == [2, 2, 2, 2, 1]
    ids = [item["id"] for page in pages for item in page["items"]]
    expected = sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)
    assert ids == [record.id for record in expected]
    assert get_json(notify_client, "/notifications", ticket_id=ticket_id)["next_cursor"] is None


def test_the_default_limit_is_50(notify_client, make_notification):
    ticket_id = uuid.uuid4().hex
    for _ in range(51):
        make_notification(ticket_id=ticket_id)
    page = get_json(notify_client, "/notifications", ticket_id=ticket_id)
    assert len(page["items"]) == 50 and page["next_cursor"]
    rest = get_json(notify_client, "/notifications", ticket_id=ticket_id, cursor=page["next_cursor"])
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None


def test_filters_by_ticket_recipient_and_status(notify_client, notify_ctx, make_notification):
    ticket_id, other_ticket, email = uuid.uuid4().hex, uuid.uuid4().hex, unique_email()
    pending = make_notification(ticket_id=ticket_id, recipient=email)
    dead = make_dead(notify_ctx, make_notification(ticket_id=ticket_id))
    sent = make_sent(notify_ctx, make_notification(ticket_id=ticket_id, recipient=email))
    elsewhere = make_notification(ticket_id=other_ticket, recipient=email)

    def ids(**query) -> set[str]:
        return {item["id"] for item in get_json(notify_client, "/notifications", admin(), **query)["items"]}

    assert ids(ticket_id=ticket_id) == {pending.id, dead.id, sent.id}
    assert ids(recipient=email) == {pending.id, sent.id, elsewhere.id}
    assert ids(recipient=email.upper()) == {pending.id, sent.id, elsewhere.id}  # as intake's filter (a prober's find)
    assert ids(ticket_id=ticket_id, status="dead") == {dead.id}
    assert ids(ticket_id=ticket_id, recipient=email, status="sent") == {sent.id}
    assert ids(ticket_id=ticket_id, status="failed") == set()
    assert ids(ticket_id=uuid.uuid4().hex) == set()
    for item in get_json(notify_client, "/notifications", status="dead", limit=200)["items"]:
        assert item["status"] == "dead"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "Dead"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJhdCI6IjIwMjYtMDEtMDEiLCJpZCI6IngifQ"}, "cursor"),  # {"at":"2026-01-01","id":"x"}: naive
        ({"ticket_id": "x" * 101}, "ticket_id"),
    ],
)
def test_invalid_list_queries_are_422(notify_client, query, field):
    assert_problem(notify_client.get("/notifications", query_string=query, headers=agent()), 422, field)


def test_limit_200_is_allowed(notify_client):
    assert get_json(notify_client, "/notifications", agent(), limit=200, ticket_id=uuid.uuid4().hex)["items"] == []


# --- retry -------------------------------------------------------------------------------------------


def test_an_admin_retries_a_dead_notification(notify_client, notify_ctx, make_notification):
    dead = make_dead(notify_ctx, make_notification())
    attempts = len(notify_ctx.settings.retry_delays) + 1
    assert get_json(notify_client, f"/notifications/{dead.id}")["status"] == "dead"
    before = handlers.now()
    response = notify_client.post(f"/notifications/{dead.id}/retry", headers=admin())
    assert response.status_code == 200, response.get_data(as_text=True)
    item = response.get_json()
    assert set(item) == NOTIFICATION_KEYS
    assert (item["id"], item["status"], item["attempts"]) == (dead.id, "pending", attempts)
    assert item["last_error"] == "connection refused"  # why it died stays on record until the next attempt
    assert before <= parse_time(item["next_attempt_at"]) <= handlers.now()  # due now
    assert get_json(notify_client, f"/notifications/{dead.id}", admin()) == item
    stored = notify_ctx.notifications.get(dead.id)
    assert (stored.status, stored.step) == ("pending", 0)  # its delays start over
    # pending now: a second retry is a conflict
    assert_problem(notify_client.post(f"/notifications/{dead.id}/retry", headers=admin()), 409)


@pytest.mark.parametrize("make", ["pending", "failed", "sent"])
def test_only_a_dead_notification_can_be_retried(notify_client, notify_ctx, make_notification, make):
    record = make_notification()
    if make == "failed":
        make_failed(notify_ctx, record)
    elif make == "sent":
        make_sent(notify_ctx, record)
    before = get_json(notify_client, f"/notifications/{record.id}")
    body = assert_problem(notify_client.post(f"/notifications/{record.id}/retry", headers=admin()), 409)
    assert make in body["detail"]
    assert get_json(notify_client, f"/notifications/{record.id}") == before


# --- webhooks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["*" * 80, "*" * 80 + "sla.breached", "*" * 12 + "sla.breached"])
def test_a_webhook_with_a_run_of_stars_is_answered_at_once(notify_client, pattern):
    started = time.monotonic()
    hook = add_webhook(notify_client, events=[pattern])
    assert time.monotonic() - started < 1.0
    assert hook["events"] == [pattern]


def test_webhooks_are_created_listed_and_deleted_without_ever_showing_the_secret(notify_client, notify_db):
    body = webhook_body(events=["ticket.*", "sla.breached", "ticket.*"])
    response = notify_client.post("/webhooks", json=body, headers=admin())
    assert response.status_code == 201, response.get_data(as_text=True)
    hook = response.get_json()
    assert set(hook) == WEBHOOK_KEYS
    assert (hook["url"], hook["events"]) == (body["url"], ["ticket.*", "sla.breached"])  # repeats dropped
    assert RFC3339_Z.match(hook["created_at"])
    assert response.headers["Location"] == f"/webhooks/{hook['id']}"
    assert SECRET not in response.get_data(as_text=True)
    assert notify_db.webhooks.find_one({"_id": hook["id"]})["secret"] == SECRET  # kept, for signing

    second = add_webhook(notify_client, url="http://127.0.0.1:8099/hook", events=["*"])
    listing = notify_client.get("/webhooks", headers=admin())
    assert SECRET not in listing.get_data(as_text=True)
    page = listing.get_json()
    assert page["next_cursor"] is None
    mine = {item["id"]: item for item in page["items"] if item["id"] in (hook["id"], second["id"])}
    assert mine == {hook["id"]: hook, second["id"]: second}  # exactly as created
    times = [parse_time(item["created_at"]) for item in page["items"]]
    assert times == sorted(times)  # oldest first
    assert all(set(item) == WEBHOOK_KEYS for item in page["items"])

    deleted = notify_client.delete(f"/webhooks/{hook['id']}", headers=admin())
    assert (deleted.status_code, deleted.get_data()) == (204, b"")
    assert hook["id"] not in {item["id"] for item in get_json(notify_client, "/webhooks")["items"]}
    assert_problem(notify_client.delete(f"/webhooks/{hook['id']}", headers=admin()), 404)
    assert second["id"] in {item["id"] for item in get_json(notify_client, "/webhooks")["items"]}


def test_a_registered_webhook_gets_a_delivery_of_each_matching_event(notify_client, notify_event):
    ticket_hook = add_webhook(notify_client, events=["ticket.created"])
    sla_hook = add_webhook(notify_client, events=["sla.*"])
    ticket_id = uuid.uuid4().hex
    envelope = created_event(ticket_id)
    notify_event(envelope)
    items = get_json(notify_client, "/notifications", ticket_id=ticket_id)["items"]
    assert sorted(item["channel"] for item in items) == ["email", "webhook"]
    (delivery,) = [item for item in items if item["channel"] == "webhook"]
    assert set(delivery) == NOTIFICATION_KEYS  # no webhook_id, endpoint, html or step
    assert (delivery["recipient"], delivery["subject"], delivery["status"]) == (ticket_hook["url"], None, "pending")
    assert json.loads(delivery["body"]) == envelope
    assert sla_hook["url"] not in {item["recipient"] for item in items}
    hooked = get_json(notify_client, "/notifications", recipient=ticket_hook["url"])["items"]
    assert [item["id"] for item in hooked] == [delivery["id"]]


# --- webhooks into the private network -------------------------------------------------------------


@pytest.fixture
def no_allowed_networks(notify_ctx, monkeypatch):
    """notify as deployed: TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS empty (the session admits loopback)."""
    monkeypatch.setattr(notify_ctx, "settings", dataclasses.replace(notify_ctx.settings, webhook_allowed_networks=()))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8099/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost:8099/hook", "localhost is this machine, by name"),
        ("http://LOCALHOST./hook", "localhost. is this machine, by name"),  # whatever it resolves to here
        ("http://hooks.localhost/hook", "hooks.localhost is this machine, by name"),
        ("https://[::1]:8443/hook", "::1 is a loopback address"),
        ("https://[::ffff:10.0.0.1]/hook", "::ffff:a00:1 is a private address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ],
)
def test_a_webhook_into_the_private_network_is_refused_at_registration(notify_client, no_allowed_networks, url, why):
    response = notify_client.post("/webhooks", json=webhook_body(url=url), headers=admin())
    (message,) = assert_problem(response, 422, "url")["errors"]["url"]
    assert why in message and "TICKETFLOW_WEBHOOK_ALLOWED_NETWORKS" in message
    assert url not in {item["url"] for item in get_json(notify_client, "/webhooks")["items"]}


def test_a_name_that_resolves_into_the_private_network_is_refused_at_registration(
    notify_client, no_allowed_networks, monkeypatch
):
    monkeypatch.setattr(webhook_sender, "resolve", lambda host, port: ["93.184.215.14", "10.0.0.1"])
    response = notify_client.post("/webhooks", json=webhook_body(url="https://hooks.example.com/x"), headers=admin())
    (message,) = assert_problem(response, 422, "url")["errors"]["url"]
    assert "hooks.example.com resolves to 10.0.0.1, which is a private address" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8099/hook", "http://localhost:8099/hook"])
def test_an_allowed_network_admits_a_webhook_on_this_host(notify_client, notify_ctx, url):
    assert ipaddress.ip_network("127.0.0.0/8") in notify_ctx.settings.webhook_allowed_networks  # tests/conftest.py
    assert add_webhook(notify_client, url=url)["url"] == url


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (["10.0.0.1"], "10.0.0.1, which is a private address"),
        (["169.254.169.254"], "169.254.169.254, which is a cloud metadata"),
    ],
)
def test_a_delivery_to_a_name_now_resolving_into_the_private_network_fails_without_connecting(
    notify_client, notify_ctx, notify_event, monkeypatch, answer, why
):
    hook = add_webhook(notify_client, url="https://hooks.example.com/rebinding", events=["ticket.created"])
    ticket_id = uuid.uuid4().hex
    (delivery,) = [r for r in notify_event(created_event(ticket_id)) if r.channel == "webhook"]
    monkeypatch.setattr(webhook_sender, "resolve", lambda host, port: answer)  # the name's answer changed since
    monkeypatch.setattr(webhook_sender, "_post", lambda *args: pytest.fail("connected to a refused address"))

    handlers.send(notify_ctx, handlers.claim(notify_ctx, delivery.id))

    record = get_json(notify_client, f"/notifications/{delivery.id}")
    assert (record["status"], record["attempts"], record["recipient"]) == ("failed", 1, hook["url"])
    assert record["last_error"].startswith("refused: Must point to a public address: hooks.example.com resolves to ")
    assert why in record["last_error"]


def test_an_unknown_webhook_is_404(notify_client):
    assert_problem(notify_client.delete(f"/webhooks/{uuid.uuid4().hex}", headers=admin()), 404)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "ftp://files.example.com/hook"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "hooks.example.com/no-scheme"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://exa mple.com/hook"}, "url"),
        ({"url": "https://bad_host!.example.com/"}, "url"),
        ({"url": "https://999.1.1.1/hook"}, "url"),
        ({"url": "https://hooks.example.com:99999/"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url"),
        ({"url": "https://hooks.example.com/#frag"}, "url"),
        ({"url": 42}, "url"),
        ({"events": []}, "events"),
        ({"events": "ticket.*"}, "events"),
        ({"events": ["Ticket.*"]}, "events"),
        ({"events": ["ticket created"]}, "events"),
        ({"events": ["notification.*"]}, "events"),  # notify never forwards its own events
        ({"events": ["nothing.matches"]}, "events"),
        ({"events": [7]}, "events"),
        ({"events": ["ticket.*"] * 51}, "events"),
        ({"secret": "short"}, "secret"),
        ({"secret": "x" * 257}, "secret"),
        ({"secret": "sixteen-chars-ok\n"}, "secret"),
        ({"secret": None}, "secret"),
        ({"active": True}, "active"),
    ],
)
def test_an_invalid_webhook_is_422_and_not_stored(notify_client, overrides, field):
    before = get_json(notify_client, "/webhooks")["items"]
    response = notify_client.post("/webhooks", json=webhook_body(**overrides), headers=admin())
    body = assert_problem(response, 422, field)
    assert set(body["errors"]) == {field}, body  # the other fields were fine
    assert get_json(notify_client, "/webhooks")["items"] == before


@pytest.mark.parametrize("missing", ["url", "events", "secret"])
def test_each_webhook_field_is_required(notify_client, missing):
    body = webhook_body()
    del body[missing]
    assert_problem(notify_client.post("/webhooks", json=body, headers=admin()), 422, missing)


def test_a_webhook_body_that_is_not_an_object_or_not_json(notify_client):
    assert_problem(notify_client.post("/webhooks", json=["https://hooks.example.com/"], headers=admin()), 422)
    assert_problem(notify_client.post("/webhooks", headers=admin()), 422, "url")  # no body at all
    bad_json = notify_client.post("/webhooks", data="{", content_type="application/json", headers=admin())
    assert_problem(bad_json, 400)
    not_json = notify_client.post("/webhooks", data="url=x", content_type="text/plain", headers=admin())
    assert_problem(not_json, 400)


def test_valid_urls_and_patterns_are_accepted(notify_client):
    for url in ("http://localhost:8080/hook", "https://[::1]:8443/h?x=1", "https://hooks.example.com."):
        assert add_webhook(notify_client, url=url)["url"] == url
    hook = add_webhook(notify_client, events=["*", "sla.warning", "ticket.*_added"])
    assert hook["events"] == ["*", "sla.warning", "ticket.*_added"]


# --- who reads which notifications; webhook URLs without secrets ------------------------------------


def agent_updated(agent_id: str, teams: list[str]) -> dict:
    data = {"agent_id": agent_id, "name": "A", "email": f"{agent_id}@example.com", "teams": teams, "lead_of": [],
            "available": True}  # fmt: skip
    return event_from("assignment", "agent.updated", agent_id, data)


@pytest.fixture(params=["stamped", "before the backfill"])
def stamps_or_ids(request, notify_ctx, monkeypatch) -> None:
    """An agent's list read through the team and agent stamped on each notification, or (until the worker's
    backfill of older ones) through the ids of the tickets the agent may see."""
    if request.param == "stamped":
        notify_ctx.notifications.stamps.backfill(notify_ctx.views.stamps())
    else:
        monkeypatch.setattr(notify_ctx.notifications.stamps, "backfilled", lambda: False)


@pytest.mark.usefixtures("stamps_or_ids")
def test_an_agent_reads_the_notifications_of_its_teams_tickets_and_its_own_only(notify_client, notify_ctx,
                                                                                notify_event):  # fmt: skip
    net, stranger = f"net-{uuid.uuid4().hex[:8]}", f"nobody-{uuid.uuid4().hex[:8]}"
    handlers.HANDLERS["agent.updated"](notify_ctx, agent_updated(net, ["network"]))
    network_ticket, hardware_ticket = uuid.uuid4().hex, uuid.uuid4().hex
    (network_receipt,) = notify_event(created_event(network_ticket))
    (hardware_receipt,) = notify_event(created_event(hardware_ticket))
    notify_event(assigned_event(network_ticket, unique_email()))  # team network
    hardware = assigned_event(hardware_ticket, unique_email())
    hardware["data"]["team"] = "hardware"
    notify_event(hardware)

    as_net = auth_header("agent", net)
    assert_problem(notify_client.get(f"/notifications/{hardware_receipt.id}", headers=as_net), 404)
    assert_problem(notify_client.get(f"/notifications/{network_receipt.id}", headers=auth_header("agent", stranger)),
                   404)  # fmt: skip
    assert get_json(notify_client, f"/notifications/{network_receipt.id}", as_net)["id"] == network_receipt.id
    assert get_json(notify_client, "/notifications", as_net, ticket_id=hardware_ticket)["items"] == []
    assert len(get_json(notify_client, "/notifications", as_net, ticket_id=network_ticket)["items"]) == 2
    pages = walk_pages(notify_client, "/notifications", {"limit": 200}, as_net, max_pages=1000)
    seen = {item["ticket_id"] for page in pages for item in page["items"]}
    assert network_ticket in seen and hardware_ticket not in seen
    assert get_json(notify_client, "/notifications", auth_header("agent", stranger))["items"] == []

    moved = assigned_event(network_ticket, unique_email())  # to hardware: no longer net's
    moved["data"]["team"] = "hardware"
    notify_event(moved)
    assert get_json(notify_client, "/notifications", as_net, ticket_id=network_ticket)["items"] == []
    mine = assigned_event(hardware_ticket, f"{net}@example.com")  # assigned to net, in hardware
    mine["data"].update(team="hardware", agent_id=net)
    notify_event(mine)
    assert len(get_json(notify_client, "/notifications", as_net, ticket_id=hardware_ticket)["items"]) == 3


def test_a_mail_kept_for_the_agents_emails_its_agent_as_unchecked_and_goes_to_no_webhook(notify_client, notify_event):
    """A colleague's reply kept off the conversation: its words reach the ticket's agent without links, said to be
    from a sender nobody checked; a webhook on every ticket event does not get them (a third party's words)."""
    hook = add_webhook(notify_client, events=["ticket.*"])
    ticket_id, agent = uuid.uuid4().hex, unique_email("jane")
    notify_event(created_event(ticket_id))
    notify_event(assigned_event(ticket_id, agent))
    data = {"mail_id": "m1", "why": "another_sender", "sender": {"name": "Bo", "email": "bo@example.org"},
            "body": "Same here: see https://evil.example/login"}  # fmt: skip
    records = notify_event(event_from("intake", "ticket.mail_kept", ticket_id, data))
    assert [(record.channel, record.recipient) for record in records] == [("email", agent)]
    assert "Same here: see https://evil.example/login" in records[0].body
    assert 'href="https://evil.example' not in records[0].html  # no link to click in it
    assert "Nobody checked who sent it" in records[0].body
    notify_client.delete(f"/webhooks/{hook['id']}", headers=admin())


@pytest.mark.usefixtures("stamps_or_ids")
def test_an_agent_reads_no_webhook_delivery_of_its_tickets(notify_client, notify_ctx, notify_event):
    """Webhooks are the admins': a webhook's address may hold its secret in its path (chat services' do), which
    no redaction of credentials and query hides. An agent reads the emails of its tickets, no delivery to one."""
    net = f"net-{uuid.uuid4().hex[:8]}"
    handlers.HANDLERS["agent.updated"](notify_ctx, agent_updated(net, ["network"]))
    hook = add_webhook(notify_client, events=["ticket.created"], url="https://hooks.example.com/services/T0/B0/s3cr3t")
    ticket_id = uuid.uuid4().hex
    records = notify_event(created_event(ticket_id))
    notify_event(assigned_event(ticket_id, unique_email()))  # team network: net's to read
    (delivery,) = [record for record in records if record.channel == "webhook"]

    as_net = auth_header("agent", net)
    listed = get_json(notify_client, "/notifications", as_net, ticket_id=ticket_id)["items"]
    assert listed and {item["channel"] for item in listed} == {"email"}
    assert get_json(notify_client, "/notifications", as_net, recipient=hook["url"])["items"] == []
    assert_problem(notify_client.get(f"/notifications/{delivery.id}", headers=as_net), 404)
    assert get_json(notify_client, f"/notifications/{delivery.id}")["recipient"] == hook["url"]  # an admin's: there
    notify_client.delete(f"/webhooks/{hook['id']}", headers=admin())


def test_webhook_recipients_show_without_credentials_or_query(notify_client, notify_ctx, make_notification):
    ticket_id = uuid.uuid4().hex
    url = "https://bob:s3cret@hooks.example.com/in?token=t0ps3cret"
    record = make_failed(notify_ctx, make_notification(ticket_id=ticket_id, channel="webhook", recipient=url))
    item = get_json(notify_client, f"/notifications/{record.id}")
    assert item["recipient"] == "https://hooks.example.com/in"
    (listed,) = get_json(notify_client, "/notifications", ticket_id=ticket_id)["items"]
    assert listed["recipient"] == "https://hooks.example.com/in"
    assert "s3cret" not in json.dumps([item, listed])


# --- requesters' links: in every email to the requester, whole only for admins ---------------------------

PORTAL = "https://help.example.com/desk"
LINK = re.compile(rf"{re.escape(PORTAL)}/t/([\w.-]+)")


def test_the_requester_s_email_links_to_the_ticket_and_the_agent_s_does_not(notify_ctx):
    settings = dataclasses.replace(notify_ctx.settings, portal_url=PORTAL)
    ctx = dataclasses.replace(notify_ctx, settings=settings)  # as with TICKETFLOW_PORTAL_URL set
    ticket_id, email = uuid.uuid4().hex, unique_email()
    created, assigned = created_event(ticket_id, email.upper()), assigned_event(ticket_id, unique_email("jane"))
    for envelope in (created, assigned):
        handlers.on_event(ctx, envelope)
    receipt = ctx.notifications.get(handlers.notification_id(created["event_id"], "email", email.upper()))
    to_agent = ctx.notifications.get(
        handlers.notification_id(assigned["event_id"], "email", assigned["data"]["agent_email"])
    )

    (token,) = LINK.findall(receipt.body)
    assert LINK.findall(receipt.html) == [token]  # the same link in the HTML part, in an <a href>
    link = read_link_token(settings.require_secret(), token)
    assert (link.ticket_id, link.email) == (ticket_id, email)  # the address in lowercase
    assert "/t/" not in to_agent.body and "/t/" not in to_agent.html


def test_a_link_s_token_shows_to_admins_only(notify_client, notify_ctx, notify_event):
    reader = f"net-{uuid.uuid4().hex[:8]}"
    handlers.HANDLERS["agent.updated"](notify_ctx, agent_updated(reader, ["network"]))
    ticket_id, email = uuid.uuid4().hex, unique_email()
    (receipt,) = notify_event(created_event(ticket_id, email))
    notify_event(assigned_event(ticket_id, unique_email("jane")))  # team network: the agent reads its notifications
    path = f"/notifications/{receipt.id}"

    assert get_json(notify_client, path, admin())["body"] == receipt.body and "/t/eyJ" in receipt.body
    shown = get_json(notify_client, path, auth_header("agent", reader))["body"]
    listed = get_json(notify_client, "/notifications", auth_header("agent", reader), ticket_id=ticket_id)["items"]
    (listed_receipt,) = [item for item in listed if item["id"] == receipt.id]
    for body in (shown, listed_receipt["body"]):
        assert "/t/(hidden)" in body and "eyJ" not in body
    assert shown.replace("/t/(hidden)", "") == re.sub(r"/t/\S+", "", receipt.body)  # the rest as sent
    for requester in (requester_header(email), requester_header(email, ticket_id)):
        assert_problem(notify_client.get(path, headers=requester), 403)
        assert_problem(
            notify_client.get("/notifications", headers=requester, query_string={"ticket_id": ticket_id}), 403
        )


# --- times in emails ---------------------------------------------------------------------------------------


def test_an_sla_warning_email_gives_its_deadline_in_the_desk_s_time_zone(notify_ctx, notify_event, monkeypatch):
    monkeypatch.setattr(notify_ctx, "settings", dataclasses.replace(notify_ctx.settings, time_zone="Europe/Paris"))
    ticket_id, agent_email = uuid.uuid4().hex, unique_email("jane")
    notify_event(created_event(ticket_id))
    notify_event(assigned_event(ticket_id, agent_email))
    data = {"clock": "first_response", "instance": 0, "due_at": "2026-12-07T15:00:00.000Z", "percent": 80.0,
            "priority": "normal", "policy_version": 1}  # fmt: skip

    (warning,) = [r for r in notify_event(event_from("sla", "sla.warning", ticket_id, data)) if r.channel == "email"]

    assert warning.recipient == agent_email
    assert "7 Dec 2026, 16:00 CET" in warning.body and "UTC" not in warning.body


# --- a send never overlaps another sender's --------------------------------------------------------------


class Mailed(list):
    def __init__(self) -> None:
        super().__init__()
        self.emails: list = []


@pytest.fixture
def mailed(monkeypatch) -> list[tuple[str, float | None]]:
    """What the senders handed to the SMTP server: (Message-ID, the send's `until`), in order; `.emails` the
    emails themselves."""
    sent = Mailed()

    def send_email(config, email, sessions=None, until=None):
        sent.append((email["Message-ID"], until))
        sent.emails.append(email)

    monkeypatch.setattr(handlers.mailer, "send_email", send_email)
    return sent


def test_the_receipt_of_a_ticket_opened_by_mail_answers_that_mail(notify_ctx, notify_event, mailed):
    envelope = created_event(uuid.uuid4().hex, unique_email())
    envelope["data"]["source"], envelope["data"]["mail_message_id"] = "email", "CAF-1234@mail.example.com"
    (receipt,) = notify_event(envelope)
    assert notify_ctx.notifications.get(receipt.id).replying_to == "CAF-1234@mail.example.com"
    handlers.send(notify_ctx, handlers.claim(notify_ctx, receipt.id))
    (email,) = mailed.emails
    assert email["In-Reply-To"] == "<CAF-1234@mail.example.com>"
    assert email["References"].split()[0] == "<CAF-1234@mail.example.com>"

    notify_event(assigned_event(envelope["ticket_id"], "jane@example.com"))
    replied = {"reply_id": "r-1", "agent_id": "jane", "agent_name": "Jane Doe", "body": "Try again.",
               "first_response": True}  # fmt: skip
    replied_envelope = event_from("assignment", "ticket.replied", envelope["ticket_id"], replied)
    (reply,) = [r for r in notify_event(replied_envelope) if r.recipient == receipt.recipient]
    handlers.send(notify_ctx, handlers.claim(notify_ctx, reply.id))
    email = mailed.emails[-1]  # the reply: under the requester's mail too, answering the ticket's thread
    assert email["References"].split() == [
        "<CAF-1234@mail.example.com>",
        f"<ticket-{envelope['ticket_id']}@ticketflow>",
    ]
    assert email["In-Reply-To"] == f"<ticket-{envelope['ticket_id']}@ticketflow>"


def test_a_claim_that_ran_out_before_its_sender_started_is_left_to_the_sender_that_took_it(
    notify_ctx, make_notification, mailed, monkeypatch
):
    """A sender thread that starts after its claim ended (a busy machine): another sender (this worker's pass or
    another worker's) may have claimed the notification meanwhile, and sends it. The late one sends nothing;
    before, both sent and the requester had the email twice."""
    record = make_notification(next_attempt_at=handlers.now())
    late = handlers.claim(notify_ctx, record.id)
    later = handlers.now() + handlers.lease(notify_ctx.settings) + timedelta(seconds=1)
    monkeypatch.setattr(handlers, "now", lambda: later)  # the lease ran out before `late`'s sender ran
    taken = handlers.claim(notify_ctx, record.id)
    assert late is not None and taken is not None

    handlers.send(notify_ctx, late)
    handlers.send(notify_ctx, taken)

    assert len(mailed) == 1
    stored = notify_ctx.notifications.get(record.id)
    assert (stored.status, stored.attempts) == ("sent", 1)


def test_a_claim_that_waited_for_its_sender_is_renewed_and_the_send_ends_before_it_does(
    notify_ctx, make_notification, mailed, monkeypatch
):
    """Half its lease gone before the send starts, nobody else holding it: renewed, then sent, once; the SMTP
    exchange must end one send timeout before the renewed claim does (room to store the outcome)."""
    record = make_notification(next_attempt_at=handlers.now())
    claimed = handlers.claim(notify_ctx, record.id)
    lease = handlers.lease(notify_ctx.settings)
    later = handlers.now() + lease * 0.6
    monkeypatch.setattr(handlers, "now", lambda: later)

    handlers.send(notify_ctx, claimed)

    ((_, until),) = mailed
    room = (lease - timedelta(seconds=notify_ctx.settings.smtp_timeout)).total_seconds()
    assert room - 5 < until - time.monotonic() <= room  # a renewed claim's whole time, not the 40% left of the old
    stored = notify_ctx.notifications.get(record.id)
    assert (stored.status, stored.attempts) == ("sent", 1)


# --- a notification that can never be sent ----------------------------------------------------------------


def test_an_email_no_message_can_carry_ends_dead_at_once_instead_of_being_claimed_forever(
    notify_ctx, make_notification
):
    record = make_notification(recipient='"a\x0bb"@example.com')  # the email validator let such addresses in
    handlers.send(notify_ctx, record)  # what a sender does with a claimed notification
    stored = notify_ctx.notifications.get(record.id)
    assert (stored.status, stored.attempts, stored.next_attempt_at) == ("dead", 1, None)
    assert stored.last_error.startswith("cannot be built: recipient must not contain")


def test_an_unexpected_fault_while_sending_is_a_failed_attempt_tried_again(notify_ctx, make_notification, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the SMTP library tripped")

    monkeypatch.setattr(handlers.mailer, "send_email", broken)
    record = make_notification()
    handlers.send(notify_ctx, record)
    stored = notify_ctx.notifications.get(record.id)
    assert (stored.status, stored.attempts) == ("failed", 1) and stored.next_attempt_at is not None
    assert stored.last_error == "RuntimeError: the SMTP library tripped"
