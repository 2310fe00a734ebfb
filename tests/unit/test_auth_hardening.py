"""Bearer tokens: issuer, clock-skew leeway and a lifetime cap."""

from __future__ import annotations

import time

import jwt
import pytest

from shared import links
from shared.auth import AuthError, decode_token, issue_token
from shared.config import ConfigError, load_settings, refuse_dev_on_public_bind

K = "k" * 32
HOUR = 3600


def forge(lifetime: float = 60, iat_offset: float = 0, **claims) -> str:
    """A token signed with K: `lifetime` seconds from iat, iat `iat_offset` seconds from now."""
    iat = int(time.time() + iat_offset)
    base = {"sub": "x", "role": "admin", "iss": "ticketflow", "iat": iat, "exp": iat + int(lifetime)}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, K, algorithm="HS256")


def test_issued_tokens_name_ticketflow_as_their_issuer_and_decode():
    token = issue_token(K, "agent", agent_id="jane")
    assert jwt.decode(token, K, algorithms=["HS256"])["iss"] == "ticketflow"
    assert decode_token(K, token).agent_id == "jane"


@pytest.mark.parametrize("iss", [None, "someone-else", "Ticketflow"])
def test_a_token_from_another_issuer_or_none_is_refused(iss):
    with pytest.raises(AuthError):
        decode_token(K, forge(iss=iss))


def test_a_token_without_iat_is_refused():
    with pytest.raises(AuthError, match="iat"):
        decode_token(K, forge(iat=None))


def test_a_small_clock_skew_is_tolerated_and_a_large_one_is_not():
    decode_token(K, forge(iat_offset=20))  # issued by a clock 20 s ahead
    decode_token(K, forge(iat_offset=-70, lifetime=60))  # expired 10 s ago
    decode_token(K, forge(nbf=int(time.time()) + 20))
    for token in (forge(iat_offset=90), forge(iat_offset=-200, lifetime=60), forge(nbf=int(time.time()) + 90)):
        with pytest.raises(AuthError):
            decode_token(K, token)


@pytest.mark.parametrize(
    "role,extra", [("admin", {}), ("agent", {"agent_id": "jane"}), ("portal", {"requester_email": "a@example.com"})]
)
def test_tokens_living_longer_than_the_cap_are_refused(role, extra):
    assert decode_token(K, forge(24 * HOUR, role=role, **extra)).role == role
    with pytest.raises(AuthError, match="longer than 24 hours"):
        decode_token(K, forge(24 * HOUR + 1, role=role, **extra))
    with pytest.raises(AuthError, match="longer than 1 hours"):
        decode_token(K, forge(2 * HOUR, role=role, **extra), max_hours=1)
    if role != "portal":  # issue_token makes wide portal tokens only (the portal server's own)
        with pytest.raises(AuthError):
            decode_token(K, issue_token(K, role, agent_id=extra.get("agent_id"), ttl=25 * HOUR))


def test_the_portal_servers_own_token_has_no_cap_unless_configured():
    assert decode_token(K, forge(365 * 24 * HOUR, role="portal")).role == "portal"
    with pytest.raises(AuthError, match="longer than 2 hours"):
        decode_token(K, forge(3 * HOUR, role="portal"), portal_max_hours=2)


def test_the_token_lifetime_settings_are_read_and_checked():
    settings = load_settings({})
    assert (settings.token_max_hours, settings.portal_token_max_hours) == (24.0, 24.0)
    settings = load_settings({"TICKETFLOW_TOKEN_MAX_HOURS": "8", "TICKETFLOW_PORTAL_TOKEN_MAX_HOURS": "720"})
    assert (settings.token_max_hours, settings.portal_token_max_hours) == (8.0, 720.0)
    for name in ("TICKETFLOW_TOKEN_MAX_HOURS", "TICKETFLOW_PORTAL_TOKEN_MAX_HOURS"):
        for bad in ("forever", "-1", "0"):
            with pytest.raises(ConfigError, match=name):
                load_settings({name: bad})


@pytest.mark.parametrize(
    "bind", ["0.0.0.0:8001", "[::]:8001", "10.0.0.5:8001", "example.com:8001", ":8001", "fd://3", "0.0.0.0"]
)
def test_dev_mode_refuses_a_bind_other_hosts_can_reach(bind):
    with pytest.raises(ConfigError, match="TICKETFLOW_DEV=1 refuses to listen on"):
        refuse_dev_on_public_bind(load_settings({"TICKETFLOW_DEV": "1"}), ["127.0.0.1:8001", bind])
    refuse_dev_on_public_bind(load_settings({}), [bind])  # outside dev mode: the secret is the operator's


@pytest.mark.parametrize("bind", ["127.0.0.1:8001", "127.0.0.2:9000", "[::1]:8001", "localhost:8001", "unix:/tmp/x"])
def test_dev_mode_accepts_loopback_binds(bind):
    refuse_dev_on_public_bind(load_settings({"TICKETFLOW_DEV": "1"}), [bind])


# --- requester-scoped portal tokens --------------------------------------------------------------


def test_a_requester_scoped_portal_token_carries_its_email_lowercased_and_its_ticket():
    principal = decode_token(K, issue_token(K, "portal", requester_email="Ana@Example.com", ticket_id="t1"))
    assert principal.requester_scoped
    assert (principal.requester_email, principal.ticket_id, principal.sub) == (
        "ana@example.com",
        "t1",
        "ana@example.com",
    )
    wide = decode_token(K, issue_token(K, "portal"))
    assert not wide.requester_scoped and wide.requester_email is None and wide.ticket_id is None


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "agent", "agent_id": "jane", "requester_email": "ana@example.com"},
        {"role": "admin", "requester_email": "ana@example.com"},
        {"role": "portal", "requester_email": 7},
        {"role": "portal", "requester_email": "not-an-email"},
        {"role": "portal", "ticket_id": "t1"},  # a ticket without a requester would read as the portal server's
        {"role": "portal", "requester_email": "ana@example.com", "ticket_id": ""},
    ],
)
def test_requester_claims_that_could_widen_or_confuse_a_token_make_it_invalid(claims):
    with pytest.raises(AuthError):
        decode_token(K, forge(**claims))


def test_issue_token_refuses_requester_claims_outside_the_portal_role():
    with pytest.raises(ValueError):
        issue_token(K, "admin", requester_email="ana@example.com")
    with pytest.raises(ValueError):
        issue_token(K, "portal", ticket_id="t1")


def test_while_the_secret_changes_what_the_one_before_signed_is_still_accepted_and_nothing_else():
    old, new = "o" * 32, "n" * 32
    settings = load_settings({"TICKETFLOW_JWT_SECRET": new, "TICKETFLOW_JWT_PREVIOUS_SECRET": old})
    assert settings.accepted_secrets() == (new, old)
    assert load_settings({"TICKETFLOW_JWT_SECRET": new}).accepted_secrets() == (new,)
    accepted = settings.accepted_secrets()
    assert decode_token(accepted, issue_token(old, "admin")).role == "admin"
    assert decode_token(accepted, issue_token(new, "admin")).role == "admin"
    with pytest.raises(AuthError, match="Signature verification failed"):
        decode_token(accepted, issue_token("x" * 32, "admin"))
    with pytest.raises(AuthError, match="expired"):  # the old key's own reason, not "signature"
        decode_token(accepted, issue_token(old, "admin", ttl=-120))
    with pytest.raises(AuthError, match="Signature verification failed"):
        decode_token(new, issue_token(old, "admin"))  # once the previous one is no longer given

    link = links.mint_link_token(old, "t-1", "ana@example.com", 30)
    assert links.read_link_token(accepted, link).ticket_id == "t-1"  # an email sent before the change
    with pytest.raises(links.LinkError):
        links.read_link_token(new, link)
    for bad in ("short", "replace-me"):
        with pytest.raises(ConfigError, match="TICKETFLOW_JWT_PREVIOUS_SECRET"):
            load_settings({"TICKETFLOW_JWT_SECRET": new, "TICKETFLOW_JWT_PREVIOUS_SECRET": bad}).accepted_secrets()
