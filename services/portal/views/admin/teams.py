"""Teams (the topics each routes, its lead, its agents) and intake's help topics."""

from __future__ import annotations

from flask import g, redirect, url_for

from services.portal.admin import people
from services.portal.handlers import UserError
from services.portal.pages import admin_required, error_page, portal
from services.portal.views.admin import blueprint, form_data, page

NOTICES = {
    "added": "The team is added. Until it has agents (from each agent's page), the tickets that come to it wait in "
    "its queue.",
    "saved": "The team's changes are saved.",
    "lead": "The team's leads are saved.",
    "topic": "The topic is saved.",
    "retired": "The topic is retired: it is no longer on the form, and its tickets keep it. A team that takes it is "
    "marked in the list of teams.",
    "restored": "The topic is back on the form.",
    "deleted": "The team is deleted. Any topics it took go to General until another team takes them.",
}


def _question(exc: UserError) -> tuple[list | None, list | None]:
    """The topics a form asks about and what it says of them (people.TopicQuestion), or (None, None)."""
    if isinstance(exc, people.TopicQuestion):
        return exc.asked, exc.question
    return None, None


def _list(form: dict | None = None, errors=None, message=None, status=200, asked=None, question=None):
    directory = people.directory(portal(), g.session)
    return page(
        "admin/teams.html", "teams", status, form=form or {}, errors=errors or {}, message=message, notices=NOTICES,
        asked=asked, question=question, **directory,
    )  # fmt: skip


@blueprint.get("/teams")
@admin_required
def teams():
    return _list()


@blueprint.post("/teams")
@admin_required
def add_team():
    form = form_data("topics")
    try:
        people.create_team(portal(), g.session, form)
    except UserError as exc:
        return _list(form, exc.errors, exc.message, exc.status, *_question(exc))
    return redirect(url_for("admin.teams", notice="added"), 303)


@blueprint.post("/topics")
@admin_required
def put_topic():
    form = form_data()
    try:
        people.put_topic(portal(), g.session, form)
    except UserError as exc:
        return _list(form, exc.errors, exc.message, exc.status)
    return redirect(url_for("admin.teams", notice="topic", _anchor="topics-title"), 303)


@blueprint.post("/topics/<topic_id>/retired")
@admin_required
def topic_retired(topic_id: str):
    """The form's `retired` is "true" (off the form) or "false" (back on it)."""
    retired = form_data().get("retired") == "true"
    try:
        people.set_topic_retired(portal(), g.session, topic_id, retired)
    except UserError as exc:
        if exc.status == 404:
            back = ("Back to the topics", url_for("admin.teams", _anchor="topics-title"))
            return error_page(404, "No such topic", "It does not exist, or no longer does.", back=back)
        said = [message for messages in exc.errors.values() for message in messages]
        return _list({}, {}, " ".join(said) or exc.message, exc.status)
    return redirect(url_for("admin.teams", notice="retired" if retired else "restored", _anchor="topics-title"), 303)


def _edit(team_id: str, form: dict | None = None, errors=None, message=None, status=200, asked=None, question=None):
    directory = people.directory(portal(), g.session)
    team = next((team for team in directory["teams"] if team["id"] == team_id), None)
    if team is None:
        back = ("Back to the teams", url_for("admin.teams"))
        return error_page(404, "No such team", "It does not exist, or no longer does.", back=back)
    leads = [lead["id"] for lead in team["leads"]]
    if form is None:
        form = {"name": team["name"], "topics": team["topics"], "leads": leads}
    else:  # the other form's fields as stored: saving them as shown changes nothing
        form = {"leads": leads, "name": team["name"], "topics": team["topics"], **form}
    return page(
        "admin/team.html", "teams", status, team=team, topic_options=directory["topic_options"], form=form,
        errors=errors or {}, message=message, notices=NOTICES, asked=asked, question=question,
        disabled=directory["disabled"],
    )  # fmt: skip


@blueprint.get("/teams/<team_id>")
@admin_required
def team(team_id: str):
    return _edit(team_id)


@blueprint.post("/teams/<team_id>")
@admin_required
def change_team(team_id: str):
    form = form_data("topics")
    try:
        people.change_team(portal(), g.session, team_id, form)
    except UserError as exc:
        return _edit(team_id, form, exc.errors, exc.message, exc.status, *_question(exc))
    return redirect(url_for("admin.team", team_id=team_id, notice="saved"), 303)


@blueprint.post("/teams/<team_id>/delete")
@admin_required
def delete_team(team_id: str):
    try:
        people.delete_team(portal(), g.session, team_id)
    except UserError as exc:
        if exc.status == 404:
            return _edit(team_id)  # gone already: the page says so
        return _edit(team_id, None, exc.errors, exc.message, exc.status)
    return redirect(url_for("admin.teams", notice="deleted"), 303)


@blueprint.post("/teams/<team_id>/lead")
@admin_required
def team_lead(team_id: str):
    form = form_data("leads")
    try:
        people.set_leads(portal(), g.session, team_id, form.get("leads", []))
    except UserError as exc:
        return _edit(team_id, None, exc.errors, exc.message, exc.status)
    return redirect(url_for("admin.team", team_id=team_id, notice="lead"), 303)
