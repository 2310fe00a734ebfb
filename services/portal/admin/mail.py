"""Mail in, as intake recorded it (GET /mail): what each inbound mail became, and why."""

from __future__ import annotations

from services.portal import domain
from services.portal.console import actor
from services.portal.handlers import Portal

OUTCOMES = domain.MAIL_OUTCOMES


def inbound(svc: Portal, session: dict, outcome: str | None, cursor: str | None) -> dict:
    """A page of inbound mails, newest first, of one outcome or all."""
    params = {"limit": 50} | ({"outcome": outcome} if outcome else {}) | ({"cursor": cursor} if cursor else {})
    answer = svc.services.get("intake", "/mail", actor(session), **params)
    return {"mails": answer["items"], "next_cursor": answer["next_cursor"]}
