"""Agents: the list (teams, capacity, availability, open tickets), adding one with its account, editing one,
setting one away and taking one out of a team."""

from __future__ import annotations

from flask import g, redirect, request, url_for

from services.portal.admin import people
from services.portal.handlers import UserError
from services.portal.pages import admin_required, name_of, portal
from services.portal.views.admin import blueprint, form_data, page
from shared.clock import now

LISTS = ("teams", "lead_of")
NOTICES = {
    "saved": "The agent's changes are saved.",
    "available": "The agent is available: new tickets may be assigned to them.",
    "unavailable": "The agent is away: no new tickets are assigned to them.",
}


def _list(form: dict | None = None, errors=None, message=None, created=None, status=200):
    directory = people.directory(portal(), g.session)
    form = form if form is not None else {"send_email": "on"}  # away until they can sign in (below)
    return page(
        "admin/agents.html", "agents", status, form=form, errors=errors or {}, message=message, notices=NOTICES,
        created=created, done=_availability_said(directory["agents"]), **directory,
    )  # fmt: skip


def _availability_said(agents: list[dict]) -> str | None:
    """After "Set away" or "Set available": which agent, by its name as assignment has it (the address names it by
    id only), and what it holds; None for any other notice (the page's own words)."""
    key, who = request.args.get("notice"), request.args.get("agent")
    found = next((agent for agent in agents if agent.get("id") == who), None)
    if key not in ("available", "unavailable") or found is None:
        return None
    held = found.get("open_tickets") or 0
    tickets = f"{held} open ticket{'' if held == 1 else 's'}"
    if key == "available":
        return f"{found['name']} is available: new tickets may be assigned to them (they have {tickets} now)."
    more = " Hand them back from their page for others of their teams to take on." if held else ""
    return f"{found['name']} is away: no new tickets are assigned to them. They still hold {tickets}.{more}"


@blueprint.get("/agents")
@admin_required
def agents():
    return _list()


@blueprint.post("/agents")
@admin_required
def add_agent():
    form = form_data(*LISTS)
    try:
        agent, token, emailed = people.create_agent(portal(), g.session, form)
    except UserError as exc:
        return _list(form, exc.errors, exc.message, status=exc.status)
    link = portal().settings.portal_url + url_for("auth.password", token=token)
    return _list(created={"agent": agent, "link": link, "emailed": emailed})


def _edit(agent_id: str, form: dict | None = None, errors=None, message=None, status=200):
    agent = people.agent(portal(), g.session, agent_id)
    team_options = people.directory(portal(), g.session)["team_options"]
    if form is None:
        form = {**agent, "capacity": str(agent["capacity"]), "available": "on" if agent["available"] else ""}
    done = None
    said = (g.session.get("flash") or {}).get("agent") and portal().store.pop_flash(
        g.session["_id"], "agent", agent_id, now()
    )  # a hand-back's outcome, once
    if said:
        done, message = (said["text"], message) if said.get("ok") else (None, message or said["text"])
    return page(
        "admin/agent.html", "agents", status, agent=agent, team_options=team_options, form=form, errors=errors or {},
        message=message, notices=NOTICES, done=done, stranded=people.stranded(portal(), g.session, agent),
    )  # fmt: skip


@blueprint.get("/agents/<agent_id>")
@admin_required
def agent(agent_id: str):
    return _edit(agent_id)


@blueprint.post("/agents/<agent_id>")
@admin_required
def change_agent(agent_id: str):
    form = form_data(*LISTS)
    try:
        saved = people.save_agent(portal(), g.session, agent_id, form)
    except UserError as exc:
        return _edit(agent_id, form, exc.errors, exc.message, exc.status)
    handed, moved = saved.handed, people.moved_words(saved.signs_in_with)
    if not handed and not saved.given and not moved:
        return redirect(url_for("admin.agent", agent_id=agent_id, notice="saved"), 303)
    words = " ".join(people.hand_back_words(_named(team), outcome) for team, outcome in handed.items())
    words = " ".join(part for part in (words, people.given_words(saved.given), moved) if part)
    whole = {"moved": 0, "failed": [f for o in handed.values() for f in o["failed"]],
             "more": any(o["more"] for o in handed.values()),
             "stayed": [n for o in handed.values() for n in o.get("stayed", [])],
             "nobody": any(o.get("nobody") for o in handed.values())}  # fmt: skip
    return _handed_back(agent_id, NOTICES["saved"], words, whole)


@blueprint.post("/agents/<agent_id>/availability")
@admin_required
def agent_availability(agent_id: str):
    available = form_data().get("available") == "true"
    if available and agent_id in portal().store.disabled_agent_ids():  # it would take tickets nobody works on
        return _list(message=people.DISABLED_AGENT, status=409)
    try:
        people.change_agent(portal(), g.session, agent_id, {"available": available})
    except UserError as exc:
        return _list(message=exc.message, status=exc.status)
    return redirect(url_for("admin.agents", notice="available" if available else "unavailable", agent=agent_id), 303)


@blueprint.post("/agents/<agent_id>/teams/<team_id>/remove")
@admin_required
def remove_from_team(agent_id: str, team_id: str):
    return _handing_back(agent_id, team_id, people.remove_from_team, f"The agent is out of {_named(team_id)}.")


@blueprint.post("/agents/<agent_id>/teams/<team_id>/hand-back")
@admin_required
def hand_back(agent_id: str, team_id: str):
    """The agent's open tickets of a team it is no longer in, back to that team (the agent page lists them)."""
    return _handing_back(agent_id, team_id, people.hand_back, "")


def _handing_back(agent_id: str, team_id: str, act, first: str):
    try:
        outcome = act(portal(), g.session, agent_id, team_id)
    except UserError as exc:
        return _edit(agent_id, message=exc.message, errors=exc.errors, status=exc.status)
    return _handed_back(agent_id, first, people.hand_back_words(_named(team_id), outcome), outcome)


def _handed_back(agent_id: str, first: str, words: str, outcome: dict):
    """The agent's page again, saying once what became of the tickets (a reload does not send them again)."""
    ok = not outcome["failed"] and not outcome["more"] and not outcome.get("stayed") and not outcome.get("nobody")
    said = {"text": f"{first} {words}".strip(), "ok": ok}
    portal().store.set_flash(g.session["_id"], "agent", agent_id, said, now())
    return redirect(url_for("admin.agent", agent_id=agent_id), 303)


def _named(team_id: str) -> str:
    return name_of("team_names", team_id)
