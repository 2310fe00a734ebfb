"""The agents' console: queues (refreshing by themselves), the ticket page and its actions."""

from __future__ import annotations

import hashlib
import logging
from contextlib import nullcontext

from flask import Blueprint, Response, g, get_template_attribute, redirect, render_template, request, url_for
from markupsafe import Markup

from services.portal import attachments, console, domain, finding, handlers
from services.portal.admin import replies
from services.portal.client import Refused, Unreachable, path_id
from services.portal.handlers import UserError, every_topic
from services.portal.pages import agent_required, error_page, passed_on, portal
from shared.clock import now
from shared.events import format_time

log = logging.getLogger(__name__)

blueprint = Blueprint("console", __name__, url_prefix="/console")
FILTERS = ("status", "priority", "topic", "agent", "in_team")  # the last two: leads' and admins' (console.QUERY_NAMES)
PRIORITIES = ("emergency", "high", "normal", "low")


def _filters(bulk_form: dict | None = None) -> dict:
    """The queue's filters: the page's query, or those the bulk form carried (`filter_<name>`)."""
    if bulk_form is not None:
        return {name: bulk_form[f"filter_{name}"] for name in FILTERS if bulk_form.get(f"filter_{name}")}
    return {name: request.args.get(name) for name in FILTERS if request.args.get(name)}


@blueprint.get("/")
@agent_required
def queue():
    return _queue("console/queue.html")


@blueprint.get("/queue")
@agent_required
def queue_table():
    """The list alone: what the queue page fetches every few seconds (htmx) to stay current. portal.js sends the
    digest of the list it shows (`shown`, from this answer's X-Shown): the same list again is 204, which htmx does
    not swap, so that focus, a selection and a screen reader's place in it stay (an accessibility tester's find:
    every refresh threw the focus on a tab or a pager link to the page's top)."""
    answer = _queue("console/_queue.html")
    if not isinstance(answer, str):  # an error page, with its status
        return answer
    digest = list_digest(answer)
    if request.args.get("shown") == digest:
        return "", 204
    return answer, 200, {"X-Shown": digest}


@blueprint.post("/bulk")
@agent_required
def bulk():
    """One action on the tickets ticked in a queue; back on the queue, which says what happened to each."""
    form = request.form.to_dict()
    back = {"view": form.get("view") or "mine", **_filters(form), **_paging(form)}
    try:
        outcome = console.bulk(
            portal(), g.session, request.form.getlist("ticket_ids"), form.get("action", ""), form, g.get("request_id")
        )
    except UserError as exc:
        selected = request.form.getlist("ticket_ids")
        return _queue("console/queue.html", bulk_form=form, bulk_errors=exc.errors, selected=selected), exc.status
    # those not done come back ticked, with what was chosen and written: tried again in one click once they can be
    kept = {name: form[name] for name in BULK_KEPT if form.get(name)} if outcome["again"] else None
    portal().store.set_flash(g.session["_id"], "bulk", "", {"bulk": outcome, "form": kept}, now())
    return redirect(url_for("console.queue", **back), 303)


def _paging(source) -> dict:
    """A later page of the queue: assignment's cursor, the row number it starts at (for "tickets 201 to 400") and
    the cursors of the pages between the first and it (for "Previous page"), from the page's query or the bulk
    form; {} for the first page."""
    cursor, start = source.get("cursor") or "", console.queue_start(source.get("start") or "")
    if not cursor:
        return {}
    back = ",".join(domain.earlier_pages(source.get("back") or ""))
    return {"cursor": cursor} | ({"start": str(start)} if start else {}) | ({"back": back} if back else {})


BULK_KEPT = ("action", "status", "priority", "team", "agent_id", "resolution")  # a bulk form's choices and words


@blueprint.get("/bulk")
@agent_required
def bulk_form_address():
    """The address the bulk form answered from after an error, opened again (Enter in the bar, a copied link)."""
    return redirect(url_for("console.queue"), 303)


@blueprint.post("/availability")
@agent_required
def availability():
    """The agent switches its own availability (the small form on the queue page)."""
    try:
        console.set_available(portal(), g.session, request.form.get("available") == "true")
    except UserError as exc:
        return error_page(exc.status, "That did not work", exc.message)
    return redirect(url_for("console.queue"), 303)


def _queue(template: str, bulk_form: dict | None = None, bulk_errors: dict | None = None, selected=()):
    me = console.profile(portal(), g.session)
    if me.get("unknown") and g.session.get("role") == "agent":
        said = (
            f"This account is for the agent {me['id']}, whom the help desk does not know: it has no queue. An "
            "admin disables and deletes this account (Accounts), then adds the agent on the Agents page with this "
            "email address, which adds its account again."
        )
        return error_page(409, "Your agent profile is missing", said)
    filters = _filters(bulk_form)
    topics = every_topic(portal(), console.actor(g.session))
    # a value the list does not offer (an old bookmark, an edited address): the queue without it, the reason beside
    filter_errors = _filter_problems(filters, {topic["id"] for topic in topics})
    filters = {name: value for name, value in filters.items() if name not in filter_errors}
    view = request.args.get("view", "mine") if bulk_form is None else bulk_form.get("view") or "mine"
    # a later page, or the one the bulk form was on; a page of the list with a filter dropped is another list's
    paging = {} if filter_errors else _paging(request.args if bulk_form is None else bulk_form)
    cursor = paging.get("cursor")
    start = console.queue_start(paging.get("start", "")) if cursor else 1
    leads = bool(domain.led_teams(me))
    try:
        queues = console.queues(portal(), g.session, view, filters, leads=leads, cursor=cursor, start=start)
    except Refused as refused:
        named = {console.FILTER_NAMES.get(field, field) for field in refused.errors or {}} & set(filters)
        if cursor and refused.status in (400, 422) and not named:  # the page's address: edited
            back = url_for("console.queue", view=view, **filters)
            said = Markup('Its address no longer leads to a page of the queue. <a href="{}">Open its first page</a>.')
            return error_page(400, "That page of the queue is not there", said.format(back))
        if not filters or refused.status not in (400, 403, 422):
            return error_page(400, "That filter does not work", refused.detail)
        # the queue without the filters assignment refused (another team's, for a lead), the reason beside them
        filter_errors |= _refused_filters(refused, named, filters)
        filters = {name: value for name, value in filters.items() if name not in filter_errors}
        cursor, start, paging = None, 1, {}
        try:
            queues = console.queues(portal(), g.session, view, filters, leads=leads)
        except Refused as again:
            return error_page(400, "That filter does not work", again.detail)
    queues["cursor"], queues["start"] = cursor, start
    queues["back"] = domain.earlier_pages(paging.get("back") or "")
    queues["here"] = {**filters, **paging}  # the list's refresh asks for this page again
    whole = template == "console/queue.html"  # not the list alone that refreshes every few seconds
    may_lead = g.session.get("role") == "admin" or bool(me.get("lead_of"))
    said = whole and bulk_form is None and (g.session.get("flash") or {}).get("bulk")  # as loaded: only if one
    flash = portal().store.pop_flash(g.session["_id"], "bulk", "", now()) if said else None
    if flash and flash.get("form"):  # some were not done: ticked again, the form as it was sent
        bulk_form, selected = flash["form"], flash["bulk"]["again"]
    teams, agents, known, findable = _choices(me) if whole and may_lead else ([], [], {}, [])
    own = set(me.get("teams") or [])  # the team filter: an admin's every team, an agent's own (others refused)
    filter_teams = teams if g.session.get("role") == "admin" else [team for team in teams if team["id"] in own]
    if unknown := _unknown_filters(filters, known, teams):  # filtered to nothing by a name nobody has: without it
        filter_errors |= unknown
        filters = {name: value for name, value in filters.items() if name not in unknown}
        try:
            queues = console.queues(portal(), g.session, view, filters, leads=leads)
        except Refused as again:
            return error_page(400, "That filter does not work", again.detail)
        queues["cursor"], queues["start"], queues["back"], queues["here"] = None, 1, [], dict(filters)
    offered = {agent["id"] for agent in findable}  # an agent the list does not offer: shown, not changed
    filter_agent = filters.get("agent") if filters.get("agent") not in offered else None
    lists = {"agent": findable, "in_team": filter_teams}  # a list to choose from only where the page shows one
    for name, words in filter_errors.items():
        if name in lists and not lists[name] and words == [CHOOSE[name]]:
            filter_errors[name] = [LEFT_OUT[name]]
    notice, warns = _queue_notice(request.args.get("notice", ""), request.args.get("team"), teams)
    ended = request.args.get("from") if notice and domain.plain_id(request.args.get("from") or "") else None
    shown = dict(
        me=me,
        queues=queues,
        per_page=console.QUEUE_LIMIT,
        filters=filters,
        topics=topics,
        priorities=PRIORITIES,
        statuses=domain.AGENT_STATUS,
        open_statuses=domain.OPEN_STATUS,
        notice=notice,
        notice_warns=warns,
        draft_ended=ended,  # a transfer's note, sent: its draft ends (data-draft-sent)
        bulk=(flash or {}).get("bulk"),
        bulk_form=bulk_form or {},
        errors=bulk_errors or {},
        selected=set(selected),
        may_lead=may_lead,
        teams=teams,
        agents=agents,
        filter_agents=findable,
        filter_teams=filter_teams,
        filter_errors=filter_errors,
        filter_agent_name=_not_offered(filter_agent, known) if filter_agent else None,
    )
    listed = render_template("console/_queue.html", **shown)  # the list, as its refresh (queue_table) renders it
    if not whole:
        return listed
    return render_template(
        template,
        listed=Markup(listed),
        listed_digest=list_digest(listed),
        availability_shown=_availability_digest(me),
        **shown,
    )


def _availability_digest(me: dict) -> str:
    """The digest of the agent's availability line: what its refresh sends back."""
    return list_digest(get_template_attribute("console/_availability.html", "line")(me))


@blueprint.get("/availability")
@agent_required
def availability_line():
    """The agent's availability line alone, which the queue page asks for every 30 s: an admin or a lead may set
    the agent away meanwhile (the page said "available" until a reload: an admin tester's find). Unchanged (the
    digest it sends, `shown`), 204: htmx swaps nothing. A list swapped with it out of band lost the focus of its
    rows, hence a part of its own."""
    me = console.profile(portal(), g.session)
    digest = _availability_digest(me)
    if request.args.get("shown") == digest:
        return "", 204
    return get_template_attribute("console/_availability.html", "availability")(me, digest)


def list_digest(listed: str) -> str:
    """What a list as shown is known by: its refresh sends it back (`shown`), and an unchanged list is 204."""
    return hashlib.sha256(listed.encode()).hexdigest()[:32]


CHOOSE = {  # a filter's value the list does not offer: what to do instead (each filter is a list to choose from)
    "status": "Choose a status from the list: " + ", ".join(domain.OPEN_STATUS.values()) + "; or any open.",
    "priority": "Choose a priority from the list: " + ", ".join(p.capitalize() for p in PRIORITIES) + "; or any.",
    "topic": "Choose a topic from the list, or any.",
    "agent": "Choose an agent from the list, or anyone.",
    "in_team": "Choose a team from the list, or any.",
}


LEFT_OUT = {  # the same, for a filter the page offers no list of (an agent's, or a list that did not load)
    "agent": "The agent in the address is not one this queue can be narrowed to: it was left out.",
    "in_team": "The team in the address is not one this queue can be narrowed to: it was left out.",
}


def _filter_problems(filters: dict, topics: set[str]) -> dict[str, list[str]]:
    """The filters whose value the list does not offer (a status, a priority, a topic), each with what to do."""
    offered = {"status": set(domain.OPEN_STATUS), "priority": set(PRIORITIES), "topic": topics}
    return {name: [CHOOSE[name]] for name, values in offered.items() if filters.get(name) not in (None, *values)}


def _refused_filters(refused: Refused, named: set[str], filters: dict) -> dict[str, list[str]]:
    """The filters assignment refused, each with what to do: those its problem names (`named`; its words are for an
    API: the page's own), a team for a lead's filter on a team it does not lead (the 403's reason), else every one."""
    if named:
        return {name: [CHOOSE[name]] for name in named}
    if refused.status == 403 and "in_team" in filters:
        return {"in_team": [refused.detail]}
    return {name: [refused.detail] for name in filters}


def _not_offered(agent_id: str, known: dict[str, str]) -> str | None:
    """How the agent filter names an agent it filters on but does not offer, and why; None when none is known."""
    if agent_id not in known:
        return None
    if why := portal().store.disabled_agent_ids().get(agent_id):
        return f"{known[agent_id]} (account {why})"
    return f"{known[agent_id]} ({'in no team' if g.session.get('role') == 'admin' else 'not in the teams you lead'})"


def _unknown_filters(filters: dict, known: dict[str, str], teams: list[dict]) -> dict[str, list[str]]:
    """An agent or a team filter the help desk has none of (an admin's old bookmark, an edited address), each with
    what to do; none when the lists did not load (then nothing is known to be missing)."""
    unknown = {}
    if known and filters.get("agent") and filters["agent"] not in known:
        unknown["agent"] = [f"The help desk has no agent “{filters['agent']}”. {CHOOSE['agent']}"]
    if teams and filters.get("in_team") and filters["in_team"] not in {team["id"] for team in teams}:
        unknown["in_team"] = [f"The help desk has no team “{filters['in_team']}”. {CHOOSE['in_team']}"]
    return unknown


def _choices(me: dict) -> tuple[list[dict], list[dict], dict[str, str], list[dict]]:
    """The teams a bulk move may go to; the agents a bulk assign may give tickets to (an admin: every agent in a
    team; a lead: the agents of the teams it leads; never a disabled account's); every agent assignment lists by id
    (its name); and the agents the queue's filter offers: those a bulk assign may give to, and also, after them,
    a disabled account's agent (someone who left, whose tickets a lead hands on) and, for an admin, an agent in no
    team, each `why` it takes no tickets. None of them (no such choice) when assignment does not list them."""
    try:
        teams = console.every_team(portal(), g.session)
    except (Refused, Unreachable):
        return [], [], {}, []
    try:
        agents = portal().services.get("assignment", "/agents", console.actor(g.session))["items"]
    except (Refused, Unreachable):
        return teams, [], {}, []  # the choices still, without saying who is in each
    led, gone = domain.led_teams(me), portal().store.disabled_agent_ids()  # a disabled account's agent: not given
    admin = g.session.get("role") == "admin"
    names = {team["id"]: team["name"] for team in teams}
    seen = [
        {**agent, "team_names": [names.get(team, team) for team in agent["teams"]]}
        for agent in agents
        if admin or led & set(agent.get("teams") or [])
    ]
    givable = [agent for agent in seen if agent.get("teams") and agent["id"] not in gone]
    others = [
        {**agent, "why": "account disabled" if agent["id"] in gone else "in no team"}
        for agent in seen
        if agent not in givable
    ]
    known = {agent["id"]: agent["name"] for agent in agents}
    by_name = lambda agent: agent["name"].casefold()  # noqa: E731
    givable.sort(key=by_name)
    return domain.staffed(teams, agents), givable, known, givable + sorted(others, key=by_name)


QUEUE_NOTICES = {  # {team}: the team's name when the page's list of teams has it
    "handed-on": "The ticket is with {team} now, out of your sight: an agent there has it.",
    "handed-on-waiting": "The ticket is with {team} now, out of your sight: it waits in their queue.",
}


def _queue_notice(notice: str, team_id: str | None, teams: list[dict]) -> tuple[str | None, bool]:
    """The queue's notice, and whether it warns: after a ticket was handed on to a team where nobody takes tickets
    now (`teams`: staffed, the page's transfer choices), it says that too. Only a known team's name is shown."""
    said = QUEUE_NOTICES.get(notice)
    if said is None:
        return None, False
    team = next((team for team in teams if team["id"] == team_id), None)
    name = (team or {}).get("name") or "another team"
    if waits := domain.unstaffed_words(team):  # why it waits, and until when: said once
        return f"The ticket is with {name} now, out of your sight. {waits}", True
    return said.format(team=name), False


@blueprint.get("/search")
@agent_required
def search():
    """Tickets by their words (search's ranking and snippets), filtered by status and team, a page at a time."""
    me = console.profile(portal(), g.session)
    form = {name: request.args.get(name, "") for name in (*finding.FIELDS, "cursor", "start", "back")}
    found, requester, errors, message, status = None, None, {}, None, 200
    if any(form[name].strip() for name in finding.FIELDS):
        try:
            found = finding.search(portal(), g.session, form)
            requester = finding.from_requester(portal(), g.session, form)  # an address: that requester's tickets
        except UserError as exc:
            errors, message, status = exc.errors, exc.message, exc.status
    page = render_template(
        "console/search.html",
        form=form,
        found=found,
        requester=requester,
        start=_start(form["start"]) if form["cursor"] else 1,
        back=domain.earlier_pages(form["back"]) if form["cursor"] else [],
        per_page=finding.PAGE,
        errors=errors,
        message=message,
        teams=finding.teams(portal(), g.session, me, form.get("team") or ""),
        statuses=domain.AGENT_STATUS,
    )
    return page, status


def _start(text: str) -> int:
    """The number of a page's first result (for "results 21 to 40"): only a count shown, never trusted further."""
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 100_000 else 1


def _ticket(
    ticket_id: str, form: dict | None = None, message: str | None = None, status=200, held_since: str | None = None
):
    """The ticket's page; `held_since`: a reply or resolve was held back, the ticket having changed since that
    snapshot: the page lists the changes from the same read that gives its new `seen`, so that a send from it
    ("anyway") confirms exactly what it showed."""
    me = console.profile(portal(), g.session)
    try:
        page = console.ticket_page(portal(), g.session, ticket_id, me)
    except Refused as refused:
        if refused.status not in (403, 404):
            raise
        if form is None:
            return error_page(404, "No such ticket here", "It does not exist, or it is not in your teams.")
        # an action on a ticket that left the agent's sight since the page was opened: nothing was done, and what
        # they typed is given back to copy
        typed = next((form[name] for name in ("body", "resolution", "reason") if (form.get(name) or "").strip()), None)
        # (said as a likelihood: a form sent to an address the agent never saw, a ticket that is not, says the same)
        gone = (
            "Nothing was done: it is not among the tickets you may see now. It may have been handed on to a team you "
            "are not in, or you may no longer be in its team."
        )
        return error_page(404, "This ticket is out of your sight now", gone, kept=typed)
    seen = page.view.snapshot().encode()
    held = domain.Snapshot.decode(held_since) if held_since else None
    changes = console.changes_since(portal(), g.session, page.view, held) if held else []
    others = console.presence(portal(), g.session, ticket_id, me.get("name") or "")  # here from the first moment
    saved = replies.listed(portal()) if "reply" in page.rights else []  # their titles: the text comes when chosen
    html = render_template(
        "console/ticket.html",
        live=_live(page.view, seen, [], others, page.clocks),
        me=me,
        page=page,
        ticket=page.view.ticket,
        work=page.view.work,
        attachments=page.view.attachments,
        seen=seen,
        form=form or {},
        message=message,
        changes=changes,
        notice=_notice(page.view.ticket),
        statuses=domain.AGENT_STATUS,
        priorities=PRIORITIES,
        mail_outcomes=domain.MAIL_OUTCOMES,
        similar=finding.similar(portal(), g.session, ticket_id),
        confirmed=console.address_proven(portal(), console.actor(g.session), page.view.ticket),
        bounced=domain.last_bounce(page.mail),
        saved_replies=saved,
        rating=_rating(ticket_id),
        ratings=domain.RATINGS,
        ratable=domain.RATABLE,
    )
    return html, status


def _notice(ticket: dict) -> str | None:
    """What the address says was just done; a reply that intake has in the thread already is "reply-shown" (the
    page then does not say it is on its way)."""
    notice, sent = request.args.get("notice"), request.args.get("sent")
    if notice == "reply" and sent and any((entry or {}).get("id") == sent for entry in ticket.get("thread") or []):
        return "reply-shown"
    return notice


def _rating(ticket_id: str) -> dict | None:
    """The requester's rating of the ticket, its time as the page's <time> elements carry them."""
    rating = portal().store.rating(ticket_id)
    return {**rating, "rated_at": format_time(rating["rated_at"])} if rating else None


@blueprint.get("/tickets/<ticket_id>")
@agent_required
def ticket(ticket_id: str):
    return _ticket(ticket_id)


@blueprint.get("/tickets/<ticket_id>/saved-replies/<reply_id>")
@agent_required
def saved_reply_text(ticket_id: str, reply_id: str):
    """A saved reply's text with the ticket's details filled in, for the reply box (portal.js asks for it)."""
    try:
        text = replies.filled(portal(), g.session, reply_id, ticket_id, console.profile(portal(), g.session))
    except (UserError, Refused):
        return error_page(404, "No such saved reply", "It does not exist, or the ticket is not yours to read.")
    return Response(text, mimetype="text/plain")


@blueprint.post("/tickets/<ticket_id>/insert")
@agent_required
def insert_saved_reply(ticket_id: str):
    """ "Insert" without JavaScript: the page again, the reply box holding what was typed and then the reply."""
    form = request.form.to_dict()
    if attachments.chosen(request.files.getlist("files")):  # the page comes back: it cannot keep them
        form["choose_again"] = True
    typed, chosen = (form.get("body") or "").rstrip(), form.get("reply_with") or ""
    if not chosen:
        return _ticket(ticket_id, {**form, "action": "reply"}, "Choose a saved reply first, then Insert.", status=422)
    try:
        text = replies.filled(portal(), g.session, chosen, ticket_id, console.profile(portal(), g.session))
    except (UserError, Refused):
        message = "That saved reply no longer exists; choose another."
        return _ticket(ticket_id, {**form, "action": "reply"}, message, status=404)
    body = f"{typed}\n\n{text}" if typed else text
    return _ticket(ticket_id, {**form, "action": "reply", "body": body})


@blueprint.post("/tickets/<ticket_id>/<action>")
@agent_required
def act(ticket_id: str, action: str):
    form = request.form.to_dict()
    files = attachments.chosen(request.files.getlist("files")) if action == "reply" else []
    if files:  # a page cannot keep them: a reply that comes back asks for them again
        form["choose_again"] = True
    words = form.get("body") or ""
    with_files = words + "".join(f"\x1e{file.name}\x1f{file.size}" for file in files)  # the same page, files and all
    said = (
        handlers.words_digest(ticket_id, action, form.get("seen") or "", with_files)
        if action in ("reply", "note")
        else None
    )
    if wrong_files := attachments.problems(files):  # nothing is sent when its files will not do
        message = next(iter(wrong_files.values()))[0]
        return _ticket(ticket_id, {**form, "action": action, "errors": wrong_files}, message, 422)
    once = handlers.sent_once(portal(), g.session, said, check=bool(words.strip() or files)) if said else None
    with once or nullcontext() as send:
        if send is not None and send.pending:  # kept here, to send again if they never show
            return _ticket(ticket_id, {**form, "action": action}, handlers.STILL_GOING, 409)
        if send is not None and not send.goes:
            return redirect(url_for("console.ticket", ticket_id=ticket_id, notice=f"{action}-before"), 303)
        try:
            answer = console.act(portal(), g.session, ticket_id, action, form, g.get("request_id"), files)
        except console.ChangedMeanwhile:
            if send is not None:
                send.undo()
            not_yet = {"resolve": "It is not resolved yet.", "merge": "It is not merged yet."}.get(
                action, "Your reply has not been sent yet."
            )
            message = f"This ticket changed since you opened it. {not_yet}"
            return _ticket(ticket_id, {**form, "action": action}, message, 409, held_since=form.get("seen"))
        except UserError as exc:  # the action's own text wrong (empty, too long): said as such; else a refusal
            if send is not None:
                send.undo()
            own_text = domain.WRITTEN.get(action, (None,))[0]
            wrong = own_text if own_text in exc.errors else None  # the field the page marks and links to
            refusal = exc.message if wrong else f"That did not work: {exc.message}"
            form = {**form, "action": action, "errors": exc.errors, "wrong_text": wrong}
            return _ticket(ticket_id, form, refusal, status=exc.status)
    if files:
        try:
            console.attach_to_reply(portal(), g.session, ticket_id, answer.get("id"), files, g.get("request_id"))
        except UserError as exc:  # the reply went: a page of its own (a reload must not send it again)
            log.warning("reply %s on ticket %s: its files were not attached: %s", answer.get("id"), ticket_id, exc)
            return redirect(url_for("console.ticket", ticket_id=ticket_id, notice="reply-without-files"), 303)
    if action in ("transfer", "assign") and not console.may_read(portal(), g.session, ticket_id):
        team = answer.get("team") or form.get("team")  # named in the queue, and said if nobody there takes it
        handed = "handed-on" if answer.get("agent_id") else "handed-on-waiting"
        # no page of it here now; `from`: the ticket whose transfer note's draft the queue's notice ends
        ended = {"from": ticket_id} if action == "transfer" else {}
        return redirect(url_for("console.queue", notice=handed, team=team, **ended), 303)
    sent = {"sent": answer["id"]} if action == "reply" and isinstance(answer.get("id"), str) else {}
    return redirect(url_for("console.ticket", ticket_id=ticket_id, notice=action, **sent), 303)


@blueprint.get("/tickets/<ticket_id>/<action>")
@agent_required
def action_address(ticket_id: str, action: str):
    """The address an action's form answered from after an error (the bar shows it), opened again: its ticket."""
    if action not in console.ACTIONS and action != "insert":
        return error_page(404, "No such page", "There is nothing at this address.")
    return redirect(url_for("console.ticket", ticket_id=ticket_id), 303)


@blueprint.get("/tickets/<ticket_id>/live")
@agent_required
def live(ticket_id: str):
    """The conversation, what others changed, who else is here and the SLA clocks: the ticket page polls it (htmx)."""
    me = console.profile(portal(), g.session)
    try:
        state = console.live(portal(), g.session, ticket_id, request.args.get("seen"), me.get("name") or "")
    except Refused as refused:
        if refused.status in (403, 404):  # it left the agent's sight since the page was opened: said, polls stop
            return render_template("console/_live_gone.html")
        return "", 204
    live = _live(state["view"], request.args.get("seen") or "", state["changes"], state["others"], state["clocks"])
    live["conversation_changed"] = live["shown"] != request.args.get("shown")
    noted = (request.args.get("noted") or "").split(".")  # the notices' and the clocks' digests, as the page shows
    live["changes_changed"] = live["noted"].split(".")[0] != noted[0]
    live["presence_changed"] = live["noted"].split(".")[1] != (noted[1] if len(noted) > 1 else "")
    if state["clocks"] is None:  # sla did not answer: the clocks shown stay, the rest goes on
        live["noted"] = ".".join([*live["noted"].split(".")[:2], noted[2] if len(noted) > 2 else ""])
    live["clocks_changed"] = live["noted"].split(".")[2] != (noted[2] if len(noted) > 2 else "")
    if not any(
        live[part] for part in ("conversation_changed", "changes_changed", "presence_changed", "clocks_changed")
    ):
        return "", 204  # as shown: nothing is swapped, so a click or a selection in it is never lost
    return render_template("console/_live_changed.html", live=live)


def _live(view: domain.TicketView, seen: str, changes: list, others: list, clocks: list) -> dict:
    """The ticket page's live parts, each with a digest the page sends back with each poll (`shown` for the
    conversation, `noted` for the rest: what changed, who else is here and the SLA clocks, as
    `<digest>.<digest>.<digest>`): a part is swapped only when its digest changed."""
    conversation = render_template("console/_conversation.html", ticket=view.ticket, work=view.work,
                                   attachments=view.attachments)  # fmt: skip
    changed = get_template_attribute("console/_live.html", "changes_notice")(view.ticket, changes)
    present = get_template_attribute("console/_live.html", "presence_notice")(others)
    clocked = get_template_attribute("console/_live.html", "clocks_list")(clocks)
    return {
        "conversation": Markup(conversation),
        "changes": Markup(changed),
        "presence": Markup(present),
        "clocks": Markup(clocked),
        "shown": _digest(conversation),
        "noted": f"{_digest(changed)[:16]}.{_digest(present)[:16]}.{_digest(clocked)[:16]}",
        "ticket_id": view.ticket["id"],
        "seen": seen,
    }


def _digest(html: str) -> str:
    return hashlib.sha256(html.encode()).hexdigest()[:32]


@blueprint.get("/tickets/<ticket_id>/mail/<mail_id>.eml")
@agent_required
def whole_mail(ticket_id: str, mail_id: str):
    """One mail about the ticket, every byte as it came, streamed from intake (always a download; admins')."""
    return _mail_from_intake(ticket_id, mail_id, "raw")


@blueprint.get("/tickets/<ticket_id>/mail/<mail_id>.txt")
@agent_required
def mail_text(ticket_id: str, mail_id: str):
    """One mail's whole text (what the thread cuts at 20,000 characters; links hidden), from intake, as text."""
    return _mail_from_intake(ticket_id, mail_id, "text")


@blueprint.get("/tickets/<ticket_id>/mail/<mail_id>/files/<int:n>")
@agent_required
def mail_file(ticket_id: str, mail_id: str, n: int):
    """A file of a mail kept for the agents (not the ticket's: the requester's page never shows it), from intake,
    always a download."""
    return _mail_from_intake(ticket_id, mail_id, f"files/{n}")


def _mail_from_intake(ticket_id: str, mail_id: str, form: str):
    path = f"/tickets/{path_id(ticket_id)}/mail/{path_id(mail_id)}/{form}"
    try:
        upstream = portal().services.stream("intake", path, console.actor(g.session), request_id=g.get("request_id"))
    except Refused:
        return error_page(404, "No such mail here", "It does not exist, or its ticket is not in your teams.")
    return passed_on(upstream)


@blueprint.get("/tickets/<ticket_id>/attachments/<attachment_id>")
@agent_required
def attachment(ticket_id: str, attachment_id: str):
    """A file of the ticket, streamed from intake with intake's headers (always a download), for who sees it."""
    try:
        upstream = attachments.fetch(
            portal().services, console.actor(g.session), ticket_id, attachment_id, g.get("request_id")
        )
    except Refused:
        return error_page(404, "No such file here", "It does not exist, or its ticket is not in your teams.")
    return passed_on(upstream)
