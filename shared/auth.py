"""JWT bearer tokens (HS256) with the roles portal, agent and admin (each view names its roles)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

ROLES = ("portal", "agent", "admin")
ALGORITHM = "HS256"


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
    claims = {"sub": sub or agent_id or role, "role": role, "iat": now, "exp": now + int(ttl)}
    if agent_id:
        claims["agent_id"] = agent_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "role"]})
    except jwt.PyJWTError as exc:
        raise AuthError(str(exc)) from None
    role, sub, agent_id = claims.get("role"), claims.get("sub"), claims.get("agent_id")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise AuthError("the token's role or subject is not valid")
    if role == "agent" and not (isinstance(agent_id, str) and agent_id):
        raise AuthError("an agent token needs an agent_id claim")
    return Principal(sub=sub, role=role, agent_id=agent_id if isinstance(agent_id, str) else None)
