"""Requesters' access links: a signed token that opens one ticket of one requester until it expires.

notify puts `link_url(...)` in every email to a requester; the portal reads the token with
`read_link(...)`. The token is a JWT signed with a key derived from TICKETFLOW_JWT_SECRET for this
use only, so it is never a bearer token for an API, and an API token is never a link.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import jwt

from shared.auth import signed_by_one_of

ALGORITHM = "HS256"
AUDIENCE = "ticketflow-requester-link"
LINK_PATH = "/t/"  # the portal's route that opens a link: <portal url>/t/<token>


class LinkError(Exception):
    """The link is malformed, tampered with, signed with another key or expired."""


@dataclass(frozen=True)
class Link:
    ticket_id: str
    email: str  # lowercase
    expires_at: int  # epoch seconds


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"ticketflow requester link v1", hashlib.sha256).digest()


def mint_link_token(secret: str, ticket_id: str, email: str, days: float, now: float | None = None) -> str:
    """A fresh token (a random id in each) opening `ticket_id` for `email` during `days` days."""
    issued = int(time.time() if now is None else now)
    claims = {
        "aud": AUDIENCE,
        "sub": email.strip().lower(),
        "tid": ticket_id,
        "iat": issued,
        "exp": issued + int(days * 86400),
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(claims, _key(secret), algorithm=ALGORITHM)


def read_link_token(secret: str | Sequence[str], token: str, now: float | None = None) -> Link:
    """The link a valid token stands for; LinkError otherwise. `secret`: or the secrets a link may be signed with
    (the secret, and the one before it while it changes: the links emailed before still open)."""
    if not token or len(token) > 2048:
        raise LinkError("not a link token")
    try:
        claims = signed_by_one_of(
            [_key(each) for each in ((secret,) if isinstance(secret, str) else secret)],
            lambda key: jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["aud", "sub", "tid", "exp", "iat"], "verify_exp": now is None},
            ),
        )
    except jwt.PyJWTError as exc:
        raise LinkError(str(exc)) from None
    if now is not None and int(claims["exp"]) <= now:
        raise LinkError("the link has expired")
    email, ticket_id = claims["sub"], claims["tid"]
    if not (isinstance(email, str) and "@" in email and isinstance(ticket_id, str) and ticket_id):
        raise LinkError("the link's claims are not valid")
    return Link(ticket_id=ticket_id, email=email.lower(), expires_at=int(claims["exp"]))


def link_url(portal_url: str, token: str) -> str:
    """The address a requester follows: the portal's base URL, /t/, the token."""
    return f"{portal_url.rstrip('/')}{LINK_PATH}{token}"
