"""Configuration, tokens and error flattening: the plumbing every service uses the same way."""

import time

import jwt
import pytest

from shared.auth import AuthError, decode_token, issue_token
from shared.config import DEV_SECRET, ConfigError, load_settings
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
        ({"TICKETFLOW_OUTBOX_SWEEP_INTERVAL": "0"}, "TICKETFLOW_OUTBOX_SWEEP_INTERVAL must be greater than 0"),
        ({"TICKETFLOW_AUTO_CLOSE_INTERVAL": "1m"}, "TICKETFLOW_AUTO_CLOSE_INTERVAL must be a number"),
        ({"TICKETFLOW_AUTO_CLOSE_INTERVAL": "-5"}, "TICKETFLOW_AUTO_CLOSE_INTERVAL must not be negative"),
        ({"TICKETFLOW_RECONCILE_INTERVAL": "soon"}, "TICKETFLOW_RECONCILE_INTERVAL must be a number"),
        ({"TICKETFLOW_RECONCILE_INTERVAL": "0"}, "TICKETFLOW_RECONCILE_INTERVAL must be greater than 0"),
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
