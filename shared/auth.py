"""JWT bearer tokens (HS256) with the roles portal, agent and admin (each view names its roles)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jwt

ROLES = ("portal", "agent", "admin")
ALGORITHM = "HS256"
ISSUER = "ticketflow"
LEEWAY = 30  # seconds of clock skew allowed on iat, nbf and exp
DEFAULT_MAX_HOURS = 24.0  # the longest lifetime (exp - iat) of a token, but the portal server's own


class AuthError(Exception):
    """The token is missing, malformed, expired or signed with another key."""


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str
    agent_id: str | None = None
    requester_email: str | None = None  # portal only: the token acts for this one requester (lowercase)
    ticket_id: str | None = None  # with requester_email: for this one ticket only

    @property
    def requester_scoped(self) -> bool:
        """A portal token acting for one requester, not the portal server's own."""
        return self.role == "portal" and self.requester_email is not None

    @property
    def actor(self) -> str:
        """Who did it, for histories and timelines."""
        return self.agent_id or f"{self.role}:{self.sub}"


def issue_token(
    secret: str,
    role: str,
    agent_id: str | None = None,
    ttl: int = 3600,
    sub: str | None = None,
    requester_email: str | None = None,
    ticket_id: str | None = None,
) -> str:
    """A signed token; a portal token with `requester_email` (and maybe `ticket_id`) acts for that requester only."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "agent" and not agent_id:
        raise ValueError("an agent token needs an agent id")
    if requester_email is not None and (role != "portal" or "@" not in requester_email):
        raise ValueError("a requester email (with an @) is for portal tokens only")
    if ticket_id is not None and (requester_email is None or not ticket_id):
        raise ValueError("a ticket id needs a requester email")
    now = int(time.time())
    default_sub = agent_id or (requester_email.strip().lower() if requester_email else role)
    claims = {"sub": sub or default_sub, "role": role, "iss": ISSUER, "iat": now, "exp": now + int(ttl)}
    if agent_id:
        claims["agent_id"] = agent_id
    if requester_email is not None:
        claims["requester_email"] = requester_email.strip().lower()
    if ticket_id is not None:
        claims["ticket_id"] = ticket_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(
    secret: str | Sequence[str],
    token: str,
    *,
    max_hours: float | None = DEFAULT_MAX_HOURS,
    portal_max_hours: float | None = None,
    leeway: float = LEEWAY,
) -> Principal:
    """The principal of a valid token; AuthError otherwise.

    Valid: signed with `secret` (or one of them: the secret, and the one before it while it changes), issued by
    ticketflow, within its iat/nbf/exp (with `leeway` seconds
    of clock skew), and living no longer than `max_hours` (exp - iat), or `portal_max_hours` for the
    portal server's own token (role portal without requester_email; None: no cap).
    """
    try:
        claims = signed_by_one_of(
            (secret,) if isinstance(secret, str) else secret,
            lambda key: jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                leeway=leeway,
                options={"require": ["exp", "iat", "iss", "sub", "role"]},
            ),
        )
    except jwt.PyJWTError as exc:
        raise AuthError(str(exc)) from None
    role, sub, agent_id = claims.get("role"), claims.get("sub"), claims.get("agent_id")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise AuthError("the token's role or subject is not valid")
    if role == "agent" and not (isinstance(agent_id, str) and agent_id):
        raise AuthError("an agent token needs an agent_id claim")
    requester_email, ticket_id = _requester_scope(role, claims)
    cap = lifetime_cap(role, requester_email, max_hours, portal_max_hours)
    if cap is not None and int(claims["exp"]) - int(claims["iat"]) > cap * 3600:
        raise AuthError(f"the token lives longer than {cap:g} hours (exp - iat); ask for a shorter-lived one")
    return Principal(
        sub=sub,
        role=role,
        agent_id=agent_id if isinstance(agent_id, str) else None,
        requester_email=requester_email,
        ticket_id=ticket_id,
    )


def lifetime_cap(
    role: str, requester_email: str | None, max_hours: float | None, portal_max_hours: float | None
) -> float | None:
    """The longest lifetime, in hours, of a token for `role`: `portal_max_hours` for the portal server's own token
    (role portal without requester_email), `max_hours` for any other; None: no cap."""
    return portal_max_hours if role == "portal" and requester_email is None else max_hours


def signed_by_one_of(keys: Sequence, decode: Callable[[object], dict]) -> dict:
    """`decode(key)` with the first key whose signature it finds; the error of the first key otherwise (a token
    signed with none of them, or signed with one and expired: that key's reason, not "signature")."""
    first = None
    for key in keys:
        try:
            return decode(key)
        except jwt.InvalidSignatureError as exc:
            first = first or exc
    raise first or jwt.InvalidSignatureError("no key to check the signature with")


def _requester_scope(role: str, claims: dict) -> tuple[str | None, str | None]:
    """(requester_email lowercased, ticket_id) of a requester-scoped portal token; (None, None) for any other.

    A claim of the wrong type, or on another role, makes the token invalid: read as absent, it would
    widen the token to the portal server's own rights.
    """
    email, ticket_id = claims.get("requester_email"), claims.get("ticket_id")
    if email is None and ticket_id is None:
        return None, None
    if role != "portal":
        raise AuthError("requester_email and ticket_id are claims of portal tokens only")
    if not isinstance(email, str) or "@" not in email:
        raise AuthError("the token's requester_email is not an email address")
    if ticket_id is not None and not (isinstance(ticket_id, str) and ticket_id):
        raise AuthError("the token's ticket_id is not valid")
    return email.strip().lower(), ticket_id
