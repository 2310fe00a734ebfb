"""Configuration, tokens and error flattening: the plumbing every service uses the same way."""

import time

import jwt
import pytest

from shared.auth import AuthError, decode_token, issue_token
from shared.config import DEV_SECRET, ConfigError, load_settings
from shared.mongo import read_ahead
from shared.web import flatten_errors

K = "k" * 32
OTHER = "o" * 32


def test_defaults_follow_the_contract():
    settings = load_settings({})
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.mongo_url == "mongodb://127.0.0.1:27017"
    assert (settings.namespace, settings.exchange, settings.database_name("intake")) == (
        "ticketflow",
        "ticketflow.events",
        "ticketflow_intake",
    )
    assert (settings.smtp_url, settings.notify_from, settings.auto_close_hours) == (
        "smtp://127.0.0.1:8025",
        "helpdesk@localhost",
        72.0,
    )


def test_a_missing_secret_stops_the_process_with_a_clear_message():
    with pytest.raises(ConfigError, match="TICKETFLOW_JWT_SECRET is not set"):
        load_settings({}).require_secret()
    assert load_settings({"TICKETFLOW_DEV": "1"}).require_secret() == DEV_SECRET
    secret = "s3cret-" * 6
    assert load_settings({"TICKETFLOW_JWT_SECRET": secret}).require_secret() == secret
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_settings({"TICKETFLOW_JWT_SECRET": "short"}).require_secret()


@pytest.mark.parametrize(
    "env",
    [{"TICKETFLOW_AUTO_CLOSE_HOURS": "soon"}, {"TICKETFLOW_RETRY_DELAYS": "1,0"}, {"TICKETFLOW_NAMESPACE": "a.b"}],
)
def test_bad_settings_are_refused(env):
    with pytest.raises(ConfigError):
        load_settings(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TICKETFLOW_OUTBOX_SWEEP_INTERVAL": "often"}, "TICKETFLOW_OUTBOX_SWEEP_INTERVAL must be a number"),
        ({"TICKETFLOW_OUTBOX_SWEEP_INTERVAL": "0"}, "TICKETFLOW_OUTBOX_SWEEP_INTERVAL must be a number greater than 0"),
        ({"TICKETFLOW_AUTO_CLOSE_INTERVAL": "1m"}, "TICKETFLOW_AUTO_CLOSE_INTERVAL must be a number"),
        ({"TICKETFLOW_AUTO_CLOSE_INTERVAL": "-5"}, "TICKETFLOW_AUTO_CLOSE_INTERVAL must not be negative"),
        ({"TICKETFLOW_RECONCILE_INTERVAL": "soon"}, "TICKETFLOW_RECONCILE_INTERVAL must be a number"),
        ({"TICKETFLOW_RECONCILE_INTERVAL": "0"}, "TICKETFLOW_RECONCILE_INTERVAL must be a number greater than 0"),
        ({"TICKETFLOW_LOG_LEVEL": "LOUD"}, "TICKETFLOW_LOG_LEVEL must be one of"),
        ({"TICKETFLOW_METRICS_PORT": "nine"}, "TICKETFLOW_METRICS_PORT must be a port number"),
        ({"TICKETFLOW_METRICS_PORT": "70000"}, "TICKETFLOW_METRICS_PORT must be a port number"),
    ],
)
def test_bad_intervals_log_level_and_metrics_port_are_refused_with_a_clear_message(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_intervals_log_level_and_metrics_port_are_read_from_the_environment():
    assert load_settings({}).metrics_port is None
    settings = load_settings(
        {
            "TICKETFLOW_OUTBOX_SWEEP_INTERVAL": "5",
            "TICKETFLOW_AUTO_CLOSE_INTERVAL": "0.2",
            "TICKETFLOW_RECONCILE_INTERVAL": "7",
            "TICKETFLOW_LOG_LEVEL": "debug",
            "TICKETFLOW_METRICS_PORT": "9100",
        }
    )
    assert (settings.outbox_sweep_interval, settings.auto_close_interval, settings.reconcile_interval) == (5, 0.2, 7)
    assert (settings.log_level, settings.metrics_port) == ("DEBUG", 9100)


def test_tokens_round_trip_with_roles_and_agent_id():
    principal = decode_token(K, issue_token(K, "agent", agent_id="jane"))
    assert (principal.role, principal.agent_id, principal.actor) == ("agent", "jane", "jane")
    assert decode_token(K, issue_token(K, "portal")).actor == "portal:portal"


@pytest.mark.parametrize(
    "token",
    [
        issue_token(OTHER, "admin"),
        jwt.encode({"sub": "x", "role": "root", "exp": int(time.time()) + 60}, K, algorithm="HS256"),
        jwt.encode({"sub": "x", "role": "admin", "exp": int(time.time()) - 60}, K, algorithm="HS256"),
        jwt.encode({"sub": "x", "role": "agent", "exp": int(time.time()) + 60}, K, algorithm="HS256"),
        jwt.encode({"sub": "x", "role": "admin"}, K, algorithm="HS256"),
        "not-a-token",
    ],
    ids=["another-secret", "unknown-role", "expired", "agent-without-agent-id", "no-expiry", "not-a-token"],
)
def test_bad_tokens_are_refused(token):
    with pytest.raises(AuthError):
        decode_token(K, token)


def test_validation_messages_are_flattened_by_field_path():
    messages = {
        "requester": {"email": ["Not a valid email address."]},
        "extra": ["Unknown field."],
        "_schema": ["Invalid input type."],
    }
    assert flatten_errors(messages) == {
        "requester.email": ["Not a valid email address."],
        "extra": ["Unknown field."],
        "_schema": ["Invalid input type."],
    }


def test_intake_binds_exactly_what_the_topology_registry_says():
    from services.intake.handlers import HANDLERS
    from shared.events import EVENT_TYPES
    from shared.topology import SUBSCRIPTIONS

    assert sorted(HANDLERS) == sorted(SUBSCRIPTIONS["intake"]) == sorted(EVENT_TYPES)


def test_assignment_binds_exactly_what_the_topology_registry_says():
    from services.assignment.handlers import HANDLERS
    from shared.topology import SUBSCRIPTIONS

    assert sorted(HANDLERS) == sorted(SUBSCRIPTIONS["assignment"])


def test_sla_binds_exactly_what_the_topology_registry_says():
    from services.sla.handlers import HANDLERS
    from shared.topology import SUBSCRIPTIONS

    assert sorted(HANDLERS) == sorted(SUBSCRIPTIONS["sla"])


def test_notify_binds_exactly_what_the_topology_registry_says():
    from services.notify.handlers import HANDLERS
    from shared.topology import SUBSCRIPTIONS

    assert sorted(HANDLERS) == sorted(SUBSCRIPTIONS["notify"])
    assert not any(kind.startswith("notification.") for kind in SUBSCRIPTIONS["notify"])


# --- saving with a version check, and pages -----------------------------------------------------


def test_update_saves_the_change_and_retries_on_a_concurrent_save():
    from shared.mongo import Stale
    from shared.saving import update

    loads, saves = [], []

    def save(doc, result):
        saves.append((dict(doc), result))
        if len(saves) == 1:
            raise Stale("d1")  # someone saved in between: read again and change the fresh copy

    load = lambda: loads.append(1) or {"n": len(loads)}  # noqa: E731
    doc, result = update(load, lambda d: d.update(seen=d["n"]) or "changed", save)
    assert (doc, result, len(loads)) == ({"n": 2, "seen": 2}, "changed", 2)
    assert saves == [({"n": 1, "seen": 1}, "changed"), ({"n": 2, "seen": 2}, "changed")]


def test_update_saves_nothing_when_the_change_returns_no_change():
    from shared.saving import NO_CHANGE, update

    saves = []
    doc, result = update(lambda: {"n": 1}, lambda d: NO_CHANGE, lambda d, r: saves.append(d))
    assert (doc, result, saves) == ({"n": 1}, NO_CHANGE, [])


def test_update_gives_up_with_a_conflict_after_its_attempts(monkeypatch):
    from shared import saving
    from shared.errors import Conflict
    from shared.mongo import Stale

    monkeypatch.setattr(saving, "back_off", lambda attempt: None)
    attempts = []

    def always_stale(doc, result):
        attempts.append(1)
        raise Stale("d1")

    with pytest.raises(Conflict, match="busy"):
        saving.update(lambda: {}, lambda d: None, always_stale, "busy")
    assert len(attempts) == saving.SAVE_ATTEMPTS


def test_read_after_first_skips_only_the_first_read_when_asked():
    from shared.saving import read_after_first

    reads = []

    def find(key, extra=None):
        reads.append((key, extra))
        return {"key": key}

    skipping = read_after_first(find, True)
    assert skipping("a") is None and reads == []  # the first news: nothing read
    assert skipping("a", extra=1) == {"key": "a"} and reads == [("a", 1)]  # the attempt after a Stale insert reads
    reading = read_after_first(find, False)
    assert reading("b") == {"key": "b"} and reads[-1] == ("b", None)


def test_a_paginator_filters_after_the_cursor_of_the_last_item_in_its_order():
    from datetime import UTC, datetime

    from shared.cursors import Key, Paginator

    at = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    newest_first = Paginator((Key("at", "created_at", datetime), Key("id", "_id", str)), descending=True)
    cursor = newest_first.cursor({"created_at": at, "_id": "n1", "other": 1})
    assert newest_first.after(cursor) == {
        "created_at": {"$lte": at},  # the same, as a range an index walks from
        "$or": [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": "n1"}}],
    }
    by_number = Paginator((Key("n", "number", int),), descending=True)
    assert by_number.after(by_number.cursor({"number": 100042})) == {"number": {"$lt": 100042}}
    assert newest_first.order == [("created_at", -1), ("_id", -1)]


@pytest.mark.parametrize(
    "values",
    [{"n": "1"}, {"n": -1}, {"n": 2**63}, {"n": True}, {"m": 1}, {"n": 1, "x": 2}, [1]],
    ids=["text", "negative", "beyond-64-bits", "bool", "other-key", "extra-key", "list"],
)
def test_a_paginator_refuses_a_cursor_it_did_not_give_out(values):
    import base64
    import json

    from shared.cursors import Key, Paginator
    from shared.errors import Invalid

    forged = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
    with pytest.raises(Invalid):
        Paginator((Key("n", "number", int),)).after(forged)


@pytest.mark.parametrize("at", ["2026-11-27T09:30:00", "0001-01-01T00:00:00+01:00", "yesterday", 5])
def test_a_time_cursor_needs_a_zone_and_a_time_utc_can_hold(at):
    import base64
    import json
    from datetime import datetime

    from shared.cursors import Key, Paginator
    from shared.errors import Invalid

    forged = base64.urlsafe_b64encode(json.dumps({"at": at, "id": "x"}).encode()).decode()
    with pytest.raises(Invalid):
        Paginator((Key("at", "created_at", datetime), Key("id", "_id", str))).after(forged)


# --- who reads which ticket (shared.access) and URLs without secrets (shared.redact) -------------


def test_the_access_rule_is_assignments_for_agents_and_the_contracts_for_requesters():
    from shared.access import TicketFacts, may_read
    from shared.auth import Principal

    ticket = TicketFacts("t1", "ana@example.com", "network", "jane")
    net = {"id": "omar", "teams": ["network"]}
    assert may_read(Principal("x", "admin"), ticket, None)
    assert may_read(Principal("portal", "portal"), ticket, None)
    assert may_read(Principal("a", "portal", requester_email="ana@example.com"), ticket, None)
    assert may_read(Principal("a", "portal", requester_email="ana@example.com", ticket_id="t1"), ticket, None)
    assert not may_read(Principal("a", "portal", requester_email="ana@example.com", ticket_id="t2"), ticket, None)
    assert not may_read(Principal("b", "portal", requester_email="bob@example.com"), ticket, None)
    assert may_read(Principal("omar", "agent", "omar"), ticket, net)
    assert may_read(Principal("jane", "agent", "jane"), ticket, {"id": "jane", "teams": ["hardware"]})
    assert not may_read(Principal("kim", "agent", "kim"), ticket, {"id": "kim", "teams": ["hardware"]})
    assert not may_read(Principal("zed", "agent", "zed"), ticket, None)  # an agent nobody announced
    assert not may_read(Principal("x", "admin"), None, None)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:pw@hooks.example.com/in?token=x#frag", "https://hooks.example.com/in"),
        ("https://hooks.example.com:8443/a/b", "https://hooks.example.com:8443/a/b"),
        ("http://[2001:db8::1]:80/x?y=1", "http://[2001:db8::1]:80/x"),
        ("https://user@h.example/", "https://h.example/"),
    ],
)
def test_redact_url_drops_credentials_query_and_fragment(url, shown):
    from shared.redact import redact_url, redact_urls

    assert redact_url(url) == shown
    assert redact_urls(f"HTTP 500 from {url} after 2 s") == f"HTTP 500 from {shown} after 2 s"


# --- reading a cursor ahead ----------------------------------------------------------------------------------


class FakeCursor:
    """An iterable of documents that records how far it was read and whether it was closed."""

    def __init__(self, docs, fail_at=None):
        self.docs, self.fail_at, self.read, self.closed = docs, fail_at, 0, False

    def __iter__(self):
        for doc in self.docs:
            if self.read == self.fail_at:
                raise RuntimeError("the server went away")
            self.read += 1
            yield doc

    def close(self):
        self.closed = True


def test_read_ahead_yields_every_document_in_order_and_closes_the_cursor():
    cursor = FakeCursor([{"_id": i} for i in range(25)])
    assert [doc["_id"] for doc in read_ahead([cursor], batch=4)] == list(range(25))
    assert cursor.closed


def test_read_ahead_raises_the_reads_error_to_the_caller():
    seen = []
    with pytest.raises(RuntimeError, match="went away"):
        for doc in read_ahead([FakeCursor([{"_id": i} for i in range(25)], fail_at=10)], batch=4):
            seen.append(doc["_id"])
    assert seen == list(range(8))  # the two whole batches before the failure


def test_read_ahead_stops_reading_when_the_caller_stops():
    cursor = FakeCursor([{"_id": i} for i in range(1000)])
    documents = read_ahead([cursor], batch=10, batches=2)
    assert next(documents)["_id"] == 0
    documents.close()
    assert cursor.closed and cursor.read <= 50  # a few batches ahead at most, not the whole cursor


def test_read_ahead_reads_several_cursors_at_once_each_in_its_order():
    cursors = [FakeCursor([(n, i) for i in range(30)]) for n in range(3)]
    documents = list(read_ahead(cursors, batch=4))
    assert sorted(documents) == [(n, i) for n in range(3) for i in range(30)]
    assert all([i for m, i in documents if m == n] == list(range(30)) for n in range(3))
    assert all(cursor.closed for cursor in cursors)
