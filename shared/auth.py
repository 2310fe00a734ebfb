"""JWT bearer tokens (HS256) with the roles portal, agent and admin (each view names its roles)."""

from __future__ import annotations

import time
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

    @property
    def actor(self) -> str:
        """Who did it, for histories and timelines."""
        return self.agent_id or f"{self.role}:{self.sub}"


def issue_token(secret: str, role: str, agent_id: str | None = None, ttl: int = 3600, sub: str | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "agent" and not agent_id:
        raise ValueError("an agent token needs an agent id")
    now = int(time.time())
    claims = {"sub": sub or agent_id or role, "role": role, "iss": ISSUER, "iat": now, "exp": now + int(ttl)}
    if agent_id:
        claims["agent_id"] = agent_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(
    secret: str,
    token: str,
    *,
    max_hours: float | None = DEFAULT_MAX_HOURS,
    portal_max_hours: float | None = None,
    leeway: float = LEEWAY,
) -> Principal:
    """The principal of a valid token; AuthError otherwise.

    Valid: signed with `secret`, issued by ticketflow, within its iat/nbf/exp (with `leeway` seconds
    of clock skew), and living no longer than `max_hours` (exp - iat), or `portal_max_hours` for the
    portal server's own token (role portal without requester_email; None: no cap).
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "sub", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(str(exc)) from None
    role, sub, agent_id = claims.get("role"), claims.get("sub"), claims.get("agent_id")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise AuthError("the token's role or subject is not valid")
    if role == "agent" and not (isinstance(agent_id, str) and agent_id):
        raise AuthError("an agent token needs an agent_id claim")
    portal_server = role == "portal" and not claims.get("requester_email")
    cap = portal_max_hours if portal_server else max_hours
    if cap is not None and int(claims["exp"]) - int(claims["iat"]) > cap * 3600:
        raise AuthError(f"the token lives longer than {cap:g} hours (exp - iat); ask for a shorter-lived one")
    return Principal(sub=sub, role=role, agent_id=agent_id if isinstance(agent_id, str) else None)
