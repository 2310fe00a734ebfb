"""Saved replies: texts an admin keeps for the answers agents give again and again, which agents insert into a
reply on a ticket's page (with the ticket's fields filled in) and change before sending. Kept by the portal."""

from __future__ import annotations

from services.portal import domain
from services.portal.client import path_id
from services.portal.console import actor
from services.portal.handlers import Portal, UserError
from services.portal.store import ChangedMeanwhile, TitleTaken
from shared import events
from shared.clock import now

TAKEN = "Another saved reply has this title; choose another, or change that one."


def listed(svc: Portal) -> list[dict]:
    return svc.store.saved_replies_list(domain.SAVED_REPLIES_MAX)


def one(svc: Portal, reply_id: str) -> dict:
    found = svc.store.saved_reply(reply_id)
    if found is None:
        raise UserError("No such saved reply.", {}, status=404)
    return found


def _checked(form: dict) -> tuple[str, str]:
    title, body = form.get("title", "").strip(), form.get("body", "").strip()
    if problems := domain.saved_reply_problems(title, body):
        raise UserError("The saved reply has invalid fields.", problems)
    return title, body


def add(svc: Portal, session: dict, form: dict) -> dict:
    title, body = _checked(form)
    if svc.store.count_saved_replies() >= domain.SAVED_REPLIES_MAX:
        raise UserError(f"There are {domain.SAVED_REPLIES_MAX} saved replies, the most kept; delete one first.", {})
    try:
        return svc.store.add_saved_reply(title, body, session.get("account_id") or "", now())
    except TitleTaken:
        raise UserError("The saved reply has invalid fields.", {"title": [TAKEN]}, status=409) from None


CHANGED = (
    "Someone changed this saved reply since you opened it. Your changes are below and not saved: save them to "
    "replace theirs, or open it again from the list to see theirs."
)


def change(svc: Portal, reply_id: str, form: dict) -> dict:
    title, body = _checked(form)
    version = form.get("version") or ""
    seen = int(version) if version.isascii() and version.isdigit() and len(version) < 10 else 0
    try:
        changed = svc.store.change_saved_reply(reply_id, title, body, now(), seen)
    except TitleTaken:
        raise UserError("The saved reply has invalid fields.", {"title": [TAKEN]}, status=409) from None
    except ChangedMeanwhile:
        raise UserError(CHANGED, status=409) from None
    if changed is None:
        raise UserError("No such saved reply.", {}, status=404)
    return changed


def delete(svc: Portal, reply_id: str) -> None:
    if not svc.store.delete_saved_reply(reply_id):
        raise UserError("No such saved reply.", {}, status=404)


def filled(svc: Portal, session: dict, reply_id: str, ticket_id: str, me: dict) -> str:
    """One saved reply as it reads on this ticket, read with the agent's rights (Refused when it may not)."""
    reply = one(svc, reply_id)
    ticket = svc.services.get("intake", f"/tickets/{path_id(ticket_id)}", actor(session))
    signer = me.get("name") if session.get("agent_id") else None  # an admin who is no agent signs as the desk
    return domain.fill_saved_reply(reply["body"], ticket, signer or events.DESK_NAME)
