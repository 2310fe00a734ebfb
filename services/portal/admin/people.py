"""Agents, teams and topics: assignment's agents and teams, intake's help topics, the agents' portal accounts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from services.portal import domain
from services.portal.admin import number, path_id, refusal, require_id, unchanged_since_opened
from services.portal.admin.welcome import queue_welcome
from services.portal.client import Refused, Unreachable
from services.portal.console import actor, every_team, forget_names, team_names
from services.portal.handlers import ACCOUNT_TAKEN, Portal, UserError, agent_untaken, create_account, every_topic
from services.portal.store import AccountExists
from shared.clock import now

log = logging.getLogger(__name__)


def directory(svc: Portal, session: dict) -> dict:
    """The agents, the teams (each with its members and leads) and the help topics."""
    who = actor(session)
    agents = svc.services.get("assignment", "/agents", who)["items"]
    teams = every_team(svc, session)  # the names kept for other pages, fresh after a team is added or renamed
    routes = domain.topic_routes(teams)
    for team in teams:
        team["members"] = [agent for agent in agents if team["id"] in agent["teams"]]
        team["leads"] = [agent for agent in team["members"] if team["id"] in agent.get("lead_of", [])]
        team["elsewhere"] = {topic: routes[topic] for topic in team.get("topics") or [] if routes[topic] != team["id"]}
    topics = every_topic(svc, who)
    retired = {topic["id"] for topic in topics if topic.get("retired")}
    for team in teams:  # a topic retired is off the form: a team that takes only such gets no new ticket from it
        team["retired"] = [topic for topic in team.get("topics") or [] if topic in retired]
    accounts = svc.store.list_accounts()
    return {
        "agents": agents, "teams": teams, "topics": topics,
        "with_account": {account.get("agent_id") for account in accounts},
        "disabled": svc.store.disabled_agent_ids(),  # every account of the agent disabled, or deleted
        "team_options": [(team["id"], f"{team['name']} ({team['id']})") for team in teams],
        "topic_options": [(topic["id"], topic_label(topic)) for topic in topics],
    }  # fmt: skip


def agent(svc: Portal, session: dict, agent_id: str) -> dict:
    return svc.services.get("assignment", f"/agents/{path_id(agent_id)}", actor(session))


def add_account(svc: Portal, session: dict, email: str, role: str, agent_id: str | None) -> tuple[dict, str | None]:
    """An account of an admin, or of an agent assignment has (one for an id it does not know would sign in to
    an empty console): the account and its one-time link."""
    if role == "agent" and agent_id and domain.AGENT_ID.match(agent_id):
        try:
            agent(svc, session, agent_id)
        except Refused as refused:
            if refused.status != 404:
                raise
            problem = f"No agent has the id {agent_id}. To add a new agent, use Agents: it adds the account too."
            said = domain.account_problems(email, role, agent_id) | {"agent_id": [problem]}  # the email's said too
            raise UserError("The account has invalid fields.", said) from None
        email_of_nobody_else(svc, session, agent_id, email, rule=ACCOUNT_OF_ANOTHER)
    return create_account(svc, email, role, agent_id, None, agent_field="agent_id")


def agent_body(form: dict) -> dict:
    """The fields of an agent as assignment takes them (what does not fit goes as typed: assignment says why)."""
    return {
        "name": form.get("name", "").strip(),
        "email": form.get("email", "").strip(),
        "teams": form.get("teams", []),
        "capacity": number(form.get("capacity")),
        "lead_of": form.get("lead_of", []),
        "available": bool(form.get("available")),
    }


def create_agent(svc: Portal, session: dict, form: dict) -> tuple[dict, str, bool]:
    """A new agent with its portal account: (the agent, a one-time token to set a password, whether it is emailed)."""
    body = {"id": form.get("id", "").strip(), **agent_body(form)}
    with _and_the_rest(svc, session, "POST", "/agents", body):
        _all_said(
            # no email: assignment refuses it, and says at once what else the form lacks
            lambda: body["email"] and _account_possible(svc, body["email"].lower()),
            lambda: body["email"] and email_of_nobody_else(svc, session, body["id"], body["email"]),
            lambda: _leads_its_teams(svc, session, body),
            lambda: body["id"] and _id_free(svc, session, body["id"]),
        )
    try:
        created = svc.services.post("assignment", "/agents", actor(session), body)
    except Refused as refused:
        raise refusal(refused, conflict="id") from None
    account, token = create_account(svc, created["email"], "agent", created["id"], None, agent_field="id")
    if form.get("send_email"):
        queue_welcome(svc, account, created.get("name"))
    return created, token or "", bool(form.get("send_email"))


def _id_free(svc: Portal, session: dict, agent_id: str) -> None:
    """A new agent's id that an account signs in as already (409, next to the id): an agent that exists, or one
    deleted from assignment whose account is left (agent_untaken), each said in the words of this form."""
    try:
        agent_untaken(svc, agent_id, "id")
    except UserError as taken:
        try:
            agent(svc, session, agent_id)
            gone = False
        except Refused as refused:
            gone = refused.status == 404
        except Unreachable:  # assignment does not say: agent_untaken's words, which claim neither
            raise taken from None
        account = svc.store.accounts_of_agent(agent_id)[0]["email"]
        said = (
            f"The account {account} still signs in as {agent_id}, an agent deleted since: choose another id, "
            "or disable and delete that account first (Accounts)."
            if gone
            else f"An agent with the id {agent_id} exists already: choose another id for the new agent."
        )
        raise UserError(taken.message, {"id": [said]}, 409) from None


def _account_possible(svc: Portal, email: str, but: str | None = None) -> None:
    """The portal's own rules for the agent's account, checked before assignment adds the agent or changes its
    address (`but`: the agent's own account, which moves to it)."""
    problems = domain.account_problems(email, "admin", None).get("email")
    if problems:
        raise UserError("The account needs another email address.", {"email": problems})
    taken = svc.store.account_by_email(email)
    if taken and taken["_id"] != but:
        raise UserError(ACCOUNT_TAKEN, {"email": [ACCOUNT_TAKEN]}, 409)


@dataclass(frozen=True)
class Saved:
    """What an agent's change did besides: {team unticked: its hand-back's outcome}, and how many waiting tickets
    of its teams went to the agent (a new team, more capacity, available again)."""

    handed: dict[str, dict]
    given: int
    signs_in_with: str | None = None  # the agent's account signs in with its new address now


def save_agent(svc: Portal, session: dict, agent_id: str, form: dict) -> Saved:
    """The agent page's changes. An email another agent has is refused here, next to the field: that agent
    would get this one's assignment and breach emails (assignment's API refuses it too). A team
    unticked: assignment hands the agent's open tickets there back to it, as for "Remove from <team>"; they are
    counted first, for the page to say how many went. Waiting tickets given to the agent by the change are counted
    from its open tickets before and after."""
    body = agent_body(form)
    agents = svc.services.get("assignment", "/agents", actor(session))["items"]
    own = next((a for a in agents if a["id"] == agent_id), None)
    moving = _account_moving(svc, agent_id, (own or {}).get("email"), body["email"])
    with _and_the_rest(svc, session, "PATCH", f"/agents/{path_id(agent_id)}", body):
        _all_said(
            lambda: email_of_nobody_else(svc, session, agent_id, body["email"], agents),
            lambda: moving and _account_possible(svc, body["email"].strip().lower(), but=moving["_id"]),
            lambda: _leads_its_teams(svc, session, body),
            lambda: _may_be_available(svc, agent_id, body.get("available")),
        )
    unchanged_since_opened(form, own, "agent", body)
    if own and body["name"] == own.get("name"):  # unchanged: saved without it (one made before a rule it breaks)
        del body["name"]
    kept = body["teams"] if isinstance(body["teams"], list) else []
    left = [team for team in (own or {}).get("teams", []) if team not in kept]
    held = {team: _held(svc, session, agent_id, team) for team in left}  # read first: a silence changes nothing
    changed = change_agent(svc, session, agent_id, body)
    handed = {team: _handed_back(svc, session, agent_id, team, held[team]) for team in left}
    went = sum(outcome["moved"] for outcome in handed.values())
    before, after = (own or {}).get("open_tickets"), changed.get("open_tickets")
    given = after - (before - went) if isinstance(before, int) and isinstance(after, int) else 0
    return Saved(handed, max(given, 0), moving and _move_account(svc, moving, body["email"].strip().lower()))


def _account_moving(svc: Portal, agent_id: str, old: str | None, new: str | None) -> dict | None:
    """The agent's account that signs in with the agent's address, when the form changes that address: it signs in
    with the new one after the change (the emails of a password reset went to the old one, which the person may
    have left). None when the address stays, or the account signs in with another address (made so)."""
    old, new = (old or "").strip().lower(), (new or "").strip().lower()
    if not old or not new or old == new:
        return None
    return next((a for a in svc.store.accounts_of_agent(agent_id) if a["email"] == old), None)


def _move_account(svc: Portal, account: dict, new: str) -> str | None:
    """The account signs in with `new`: its password links (emailed to the old address) end, and both addresses
    are told by email. The new address, or None when it did not move (another account took the address meanwhile,
    or the account's address changed meanwhile: the agent's is changed all the same)."""
    try:
        moved = svc.store.move_account(account["_id"], account["email"], new)
    except AccountExists:
        moved = False
    if not moved:
        log.warning("account %s: it still signs in with its address, not the agent's new %s", account["_id"], new)
        return None
    at = now()
    svc.store.end_password_links_of(account["_id"])
    svc.store.add_account_notice(account["email"], "address-changed-old", at, account_id=account["_id"], address=new)
    svc.store.add_account_notice(new, "address-changed-new", at, account_id=account["_id"], address=new)
    log.info("account %s: signs in with %s in place of %s", account["_id"], new, account["email"])
    return new


def moved_words(signs_in_with: str | None) -> str:
    """The agent's account that moved to the new address, in a sentence ("" for none)."""
    if not signs_in_with:
        return ""
    return f"They sign in with {signs_in_with} from now on; both addresses were told by email."


def given_words(given: int) -> str:
    """Waiting tickets an agent's change gave the agent, in a sentence ("" for none)."""
    if not given:
        return ""
    return f"{given} waiting ticket{'' if given == 1 else 's'} of their teams went to them."


def _all_said(*checks: Callable[[], object]) -> None:
    """Run every check; their refusals together as one UserError (the first one's message and status)."""
    refusals = []
    for check in checks:
        try:
            check()
        except UserError as refused:
            refusals.append(refused)
    if refusals:
        errors: dict[str, list[str]] = {}
        for refused in refusals:
            for name, said in refused.errors.items():
                errors.setdefault(name, []).extend(said)
        raise UserError(refusals[0].message, errors, refusals[0].status)


def _leads_its_teams(svc: Portal, session: dict, body: dict) -> None:
    """domain.led_not_joined, said by the teams' names (read only when there is something to say)."""
    if outside := domain.led_not_joined(body.get("teams"), body.get("lead_of")):
        problem = domain.led_not_joined_words(outside, team_names(svc, session))
        raise UserError("The agent has invalid fields.", {"lead_of": [problem]})


@contextmanager
def _and_the_rest(svc: Portal, session: dict, method: str, path: str, body: dict) -> Iterator[None]:
    """What the portal refuses in an agent's form (an email of an account or of another agent, a team led but not
    joined) is said with the form's other problems, as assignment finds them: assignment is sent the form with an
    empty email, which its rules always refuse (so nothing is stored or changed), and its other field errors join
    the portal's."""
    try:
        yield
    except UserError as refused:
        try:
            svc.services.call("assignment", method, path, actor(session), json={**body, "email": ""})
        except Refused as checked:
            ours = bool(body.get("email"))  # an email typed: its error is the portal's, not the probe's empty one
            others = {name: said for name, said in refusal(checked).errors.items() if not (ours and name == "email")}
            refused.errors = {**others, **refused.errors}
        except Unreachable:
            pass  # the email's problem alone, as before
        raise


AGENT_OF_ANOTHER = ("The agent needs another email address.", "each agent's emails go to its own.")
# an account signing in as one agent with another's address, whose emails that other gets
ACCOUNT_OF_ANOTHER = ("The account needs another email address.", "an agent's account signs in with its own.")


def email_of_nobody_else(
    svc: Portal,
    session: dict,
    agent_id: str,
    email: str,
    agents: list | None = None,
    rule: tuple[str, str] = AGENT_OF_ANOTHER,
) -> None:
    """409 next to the email when an agent other than `agent_id` has it (in any case); `rule`: (the message, why)."""
    wanted = (email or "").strip().lower()
    agents = agents if agents is not None else svc.services.get("assignment", "/agents", actor(session))["items"]
    own = next((a for a in agents if a["id"] == agent_id), None)
    if not wanted or (own is not None and (own.get("email") or "").strip().lower() == wanted):
        return  # unchanged: agents that share one already may still change the rest
    taken = next((a for a in agents if a["id"] != agent_id and (a.get("email") or "").strip().lower() == wanted), None)
    if taken is not None:
        raise UserError(rule[0], {"email": [f"{taken['name']} ({taken['id']}) has this email address: {rule[1]}"]}, 409)


def leaves(svc: Portal, session: dict, account: dict) -> str:
    """A disabled account's agent (someone who left) becomes unavailable: no new tickets go to it. What was done:
    "disabled-agent" (unavailable now), "disabled-agent-available" (assignment refused or did not answer, and the
    agent still takes tickets), "disabled-shared" (another account still signs in as the agent, one made before one
    account an agent was the rule: left as it is), "disabled" (no agent). Its open tickets stay its own until an
    admin hands them back (its page in Agents)."""
    if not account.get("agent_id"):
        return "disabled"
    if account["agent_id"] not in svc.store.disabled_agent_ids():
        return "disabled-shared"
    try:
        change_agent(svc, session, account["agent_id"], {"available": False})
    except (UserError, Unreachable) as exc:
        log.warning("the agent %s of a disabled account is still available: %s", account["agent_id"], exc)
        return "disabled-agent-available"
    return "disabled-agent"


DISABLED_AGENT = (
    "Its account is disabled or deleted, so it cannot sign in to work on tickets: enable the account first, or "
    "give the agent a new one."
)


def _may_be_available(svc: Portal, agent_id: str, available: object) -> None:
    if available is True and agent_id in svc.store.disabled_agent_ids():
        raise UserError("The agent cannot take tickets.", {"available": [DISABLED_AGENT]}, 409)


def still_away(svc: Portal, session: dict, account: dict) -> bool:
    """Whether an enabled account's agent is still unavailable (as disabling left it), for the page to say so."""
    try:
        return bool(account.get("agent_id")) and not agent(svc, session, account["agent_id"]).get("available", True)
    except (Refused, Unreachable):
        return False


def change_agent(svc: Portal, session: dict, agent_id: str, changes: dict) -> dict:
    try:
        return svc.services.call("assignment", "PATCH", f"/agents/{path_id(agent_id)}", actor(session), json=changes)
    except Refused as refused:
        raise refusal(refused) from None


HAND_BACK_MAX = 200  # an agent's open tickets read at once (a page of assignment's queue)


def remove_from_team(svc: Portal, session: dict, agent_id: str, team: str) -> dict:
    """Take the agent out of one team (it stops leading it too; assignment refuses to leave it in none).
    assignment then hands the agent's open tickets of that team back to the team: each to another of its agents
    by the rule, or to its queue. They are counted first, for the page to say how many went (and a service that
    does not answer then changes nothing)."""
    held = _held(svc, session, agent_id, team)
    teams = [name for name in agent(svc, session, agent_id)["teams"] if name != team]
    change_agent(svc, session, agent_id, {"teams": teams})
    return _handed_back(svc, session, agent_id, team, held)


def _handed_back(svc: Portal, session: dict, agent_id: str, team: str, held: dict) -> dict:
    """What the agent's change handed back, as `hand_back_words` says it: the tickets counted before it that are no
    longer the agent's ("moved"), and those still with it ("stayed": past the change's bound, or changing just
    then; assignment's reconciler hands them back). When assignment does not answer the second read, what was
    counted before."""
    try:
        after = {ticket["ticket_id"] for ticket in _held(svc, session, agent_id, team)["items"]}
    except (Refused, Unreachable):
        after = set()
    stayed = [ticket.get("number") for ticket in held["items"] if ticket["ticket_id"] in after]
    moved = len(held["items"]) - len(stayed)
    return {
        "moved": moved,
        "failed": [],
        "more": False,
        "at_least": bool(held.get("next_cursor")) and not stayed,  # uncounted ones went too only when none stayed
        "stayed": stayed,
        "unread": bool(held.get("next_cursor")) and bool(stayed),
        "nobody": _unstaffed(svc, session, team, moved),
    }


def _unstaffed(svc: Portal, session: dict, team: str, moved: int) -> str | None:
    """Why the tickets handed back wait in the team's queue, when nobody there takes tickets now (none said when
    assignment does not answer: the page says where they went)."""
    if not moved:
        return None
    try:
        agents = svc.services.get("assignment", "/agents", actor(session))["items"]
    except (Refused, Unreachable):
        return None
    named = {"id": team, "name": team_names(svc, session).get(team) or team}
    return domain.unstaffed_words(domain.staffed([named], agents)[0], moved)


def hand_back(svc: Portal, session: dict, agent_id: str, team: str) -> dict:
    """Transfer the agent's open tickets of a team back to that team: of a team it is not in, or of any team once
    it is unavailable (away, or gone: its account disabled). assignment picks another available agent of the team,
    or the ticket waits in its queue (a transfer's way: a ticket that waits there is new again).

    {"moved": tickets handed back, "failed": [(number, reason)], "more": whether some were left unread}."""
    found = agent(svc, session, agent_id)
    named = team_names(svc, session).get(team) or team
    if team not in found["teams"]:  # a transfer here could pick again a ticket assignment just handed back
        raise UserError(f"The agent is not in {named}: assignment hands its tickets there back by itself.", status=409)
    if found.get("available", True):
        raise UserError(
            f"The agent is in {named} and available: its tickets there stay with it. Set it away first to "
            "hand them back.",
            status=409,
        )
    outcome = _transfer_back(svc, session, team, _held(svc, session, agent_id, team))
    return outcome | {"nobody": _unstaffed(svc, session, team, outcome["moved"])}


def stranded(svc: Portal, session: dict, agent_found: dict) -> dict[str, int]:
    """The agent's open tickets that may go back to their teams, counted by team: in teams it is not in (which
    assignment hands back by itself: the page says so), or all of them while it is unavailable (none read past
    HAND_BACK_MAX; none said when assignment does not answer: the page shows the rest)."""
    every = not agent_found.get("available", True)
    try:
        held = svc.services.get("assignment", "/queue", actor(session), agent_id=agent_found["id"], limit=HAND_BACK_MAX)
    except (Refused, Unreachable):
        return {}
    counts: dict[str, int] = {}
    for ticket in held["items"]:
        if ticket.get("team") and (every or ticket["team"] not in agent_found["teams"]):
            counts[ticket["team"]] = counts.get(ticket["team"], 0) + 1
    return counts


def _held(svc: Portal, session: dict, agent_id: str, team: str) -> dict:
    return svc.services.get("assignment", "/queue", actor(session), agent_id=agent_id, team=team, limit=HAND_BACK_MAX)


def _transfer_back(svc: Portal, session: dict, team: str, held: dict) -> dict:
    who = actor(session)
    outcome: dict = {"moved": 0, "failed": [], "more": bool(held.get("next_cursor"))}
    for ticket in held["items"]:
        try:
            svc.services.post("assignment", f"/tickets/{path_id(ticket['ticket_id'])}/assign", who, {"team": team})
            outcome["moved"] += 1
        except Refused as refused:  # closed or moved meanwhile: said, the others go on
            outcome["failed"].append((ticket.get("number"), refused.detail or refused.title))
        except Unreachable:
            outcome["failed"].append((ticket.get("number"), "assignment did not answer"))
    return outcome


STAYED_NAMED = 5  # tickets still with the agent named by number; the rest counted


def hand_back_words(team: str, outcome: dict) -> str:
    """What became of the tickets, in a sentence or a few."""
    moved, more_than = outcome["moved"], "More than " if outcome.get("at_least") else ""
    said = []
    if moved:
        said.append(
            f"{more_than}{moved} open ticket{'' if moved == 1 and not more_than else 's'} of {team} went back to the "
            "team: each to another of its agents, or to its queue."
        )
    elif not outcome.get("stayed"):
        said.append(f"No open ticket of {team} was with the agent.")
    said += [f"#{number or '?'} stayed with the agent: {reason}" for number, reason in outcome["failed"]]
    if stayed := outcome.get("stayed"):
        shown = ", ".join(f"#{number or '?'}" for number in stayed[:STAYED_NAMED])
        others = f" and {len(stayed) - STAYED_NAMED} more" if len(stayed) > STAYED_NAMED else ""
        more = " (and perhaps more, beyond those counted)" if outcome.get("unread") else ""
        said.append(
            f"{len(stayed)} still with the agent for now ({shown}{others}){more}: assignment hands "
            f"{'it' if len(stayed) == 1 else 'them'} back to {team} by itself shortly."
        )
    if outcome["more"]:
        said.append(f"It held more than {HAND_BACK_MAX}: hand back the rest from this page.")
    if outcome.get("nobody"):
        said.append(outcome["nobody"])
    return " ".join(said)


MOVE_TOPICS = "move_topics"  # the form's box: yes, take these topics from the team that has them now


class TopicQuestion(UserError):
    """Not a mistake in the form: a question the page asks before the team takes topics another team has.
    `question`: what would happen, a sentence a topic; `asked`: the topics the form's box then says yes to."""

    def __init__(self, message: str, question: list[str], asked: list[str]) -> None:
        super().__init__(message, status=200)
        self.question, self.asked = question, asked


def check_topics(svc: Portal, session: dict, team_id: str, form: dict, new_team: bool = False) -> dict[str, list]:
    """A topic newly given to a team that another team names is asked about once more (its tickets would move
    here, away from that team's agents): yes is the form's MOVE_TOPICS, which names the topics asked about. What
    the team has already is left as it is (the teams' list points it out).

    The moves said yes to: {other team: its topics without the moved ones}, to save once this team has them.
    Between the two saves both teams name the topic, and it goes to the first of them by id (assignment's rule):
    the team it had or this one, never general."""
    if not team_id:
        return {}
    teams = every_team(svc, session)
    if new_team and any(team["id"] == team_id for team in teams):
        return {}  # the id is taken: assignment says so, next to the id
    taken = domain.topic_moves(teams, team_id, form.get("topics", []))
    names = {team["id"]: f"{team.get('name') or team['id']} ({team['id']})" for team in teams}
    if taken and not set(taken) <= set((form.get(MOVE_TOPICS) or "").split(",")):
        raise TopicQuestion(
            "Move a topic from another team?",
            [f"Topic {topic}: its tickets go to {names[other]} now; with this team they would come here instead."
             for topic, other in taken.items()],
            sorted(taken),
        )  # fmt: skip
    return domain.topics_left(teams, team_id, set(taken))


def _take_topics_off(svc: Portal, session: dict, left: dict[str, list]) -> None:
    """After a move: each other team's topics without the moved ones. One that could not be changed still names
    them, and, first by id, still gets their tickets: said (UserError), after this team was saved."""
    kept = []
    for other, topics in left.items():
        path = f"/teams/{path_id(other)}"
        try:
            svc.services.call("assignment", "PATCH", path, actor(session), json={"topics": topics})
        except (Refused, Unreachable) as exc:
            log.warning("topics not taken off team %s after a move: %s", other, exc)
            kept.append(other)
    if kept:
        teams = ", ".join(kept)
        raise UserError(
            f"Saved, but {teams} could not be changed: it still names the moved topics, and where its id comes first "
            "it still gets their tickets. Save this team again to try once more, or take them off there.",
            status=502,
        )


def _name_untaken(
    others: list[dict], item_id: str, name: str, what: str, field: str = "name", new_id: str | None = None
) -> None:
    """A name another team (or topic) has already, case and spaces aside, said next to the field: the queue's
    choices, the requesters' list and the reports name them, and two of one name cannot be told apart there.
    (The services take such names: the page asks for names people can tell apart.) `new_id`: the id field of a
    form that adds one, whose id, if not one the services take, is said at once with the name, not after it."""
    other = next(
        (o for o in others if o["id"] != item_id and name and domain.same_name(o.get("name") or "", name)), None
    )
    if other is not None:
        said = f"The {what} {other['id']} is named “{other['name']}” already: choose a name people can tell apart."
        errors = {field: [said]}
        if new_id and not domain.NAMED_ID.fullmatch(item_id):
            errors[new_id] = [domain.NAMED_ID_RULE]
        raise UserError("Some answers need another look.", errors)


def create_team(svc: Portal, session: dict, form: dict) -> dict:
    body = {"id": form.get("id", "").strip(), "name": form.get("name", "").strip(), "topics": form.get("topics", [])}
    _name_untaken(every_team(svc, session), body["id"], body["name"], "team", new_id="id")
    _topics_known(svc, session, body["topics"])
    left = check_topics(svc, session, body["id"], form, new_team=True)
    try:
        created = svc.services.post("assignment", "/teams", actor(session), body)
    except Refused as refused:
        raise refusal(refused, conflict="id") from None
    forget_names(svc, "teams")
    _take_topics_off(svc, session, left)
    return created


def _topics_known(svc: Portal, session: dict, topics: list) -> None:
    """Topics given to a team are intake's (the form offers only those; an edited form may send others, which no
    ticket would ever have): one intake does not list is refused next to the list. Unchecked while intake does
    not answer (assignment takes any id)."""
    if not topics:
        return
    try:
        known = {topic["id"] for topic in every_topic(svc, actor(session))}
    except (Refused, Unreachable):
        return
    if unknown := [topic for topic in topics if topic not in known]:
        said = f"No help topic has the id {unknown[0]}: choose topics from the list."
        raise UserError("The team's topics are not help topics.", {"topics": [said]})


def change_team(svc: Portal, session: dict, team_id: str, form: dict) -> dict:
    body = {"name": form.get("name", "").strip(), "topics": form.get("topics", [])}
    teams = every_team(svc, session)
    unchanged_since_opened(form, next((team for team in teams if team["id"] == team_id), None), "team", body)
    if any(team["id"] == team_id and team.get("name") == body["name"] for team in teams):
        del body["name"]  # unchanged: saved without it (one made before a rule it breaks, or one another shares)
    else:
        _name_untaken(teams, team_id, body["name"], "team")
    had = next((team.get("topics") or [] for team in teams if team["id"] == team_id), [])
    _topics_known(svc, session, [topic for topic in body["topics"] if topic not in had])  # what it had stays
    left = check_topics(svc, session, team_id, form)
    try:
        changed = svc.services.call("assignment", "PATCH", f"/teams/{path_id(team_id)}", actor(session), json=body)
    except Refused as refused:
        raise refusal(refused) from None
    forget_names(svc, "teams")
    _take_topics_off(svc, session, left)
    return changed


def delete_team(svc: Portal, session: dict, team_id: str) -> None:
    """Remove a team added by mistake (assignment refuses one with agents or tickets, saying why: 409)."""
    try:
        svc.services.call("assignment", "DELETE", f"/teams/{path_id(team_id)}", actor(session))
    except Refused as refused:
        raise refusal(refused) from None
    forget_names(svc, "teams")


def set_leads(svc: Portal, session: dict, team_id: str, leads: list[str]) -> None:
    """Make `leads` the team's leads (none when empty; a team may have several, as an agent's page can make it):
    each member's lead_of gains or loses the team."""
    members = svc.services.get("assignment", "/agents", actor(session), team=team_id)["items"]
    if not set(leads) <= {member["id"] for member in members}:
        raise UserError("Choose among the team's agents.", {"leads": ["Choose among the team's agents."]})
    for member in members:
        led = member.get("lead_of", [])
        wanted = [t for t in led if t != team_id] + ([team_id] if member["id"] in leads else [])
        if sorted(wanted) != sorted(led):
            change_agent(svc, session, member["id"], {"lead_of": wanted})


def topic_label(topic: dict) -> str:
    return f"{topic['name']} ({topic['id']}{', retired' if topic.get('retired') else ''})"


def set_topic_retired(svc: Portal, session: dict, topic_id: str, retired: bool) -> dict:
    """Take one of intake's help topics off the form (its tickets keep it), or bring it back."""
    path, body = f"/topics/{path_id(topic_id)}", {"retired": retired}
    try:  # its name left out: a rename made meanwhile stays, and intake creates no topic that is not there
        return svc.services.call("intake", "PUT", path, actor(session), json=body)
    except Refused as refused:
        if refused.status == 422 and "name" in refused.errors:
            raise UserError("No such topic.", {}, status=404) from None
        raise refusal(refused, {}) from None


def put_topic(svc: Portal, session: dict, form: dict) -> dict:
    """Add or rename one of intake's help topics. Both fields left empty are both said at once."""
    body = {"name": form.get("topic_name", "").strip()}
    if not body["name"] and not form.get("topic_id", "").strip():
        said = {"topic_id": ["Enter the topic's id."], "topic_name": ["Enter the topic's name."]}
        raise UserError("Enter the topic's id and name.", said)
    topic_id = require_id(form.get("topic_id", ""), "topic_id", "topic", 40)
    _name_untaken(every_topic(svc, actor(session)), topic_id, body["name"], "topic", "topic_name", "topic_id")
    try:
        saved = svc.services.call("intake", "PUT", f"/topics/{topic_id}", actor(session), json=body)
    except Refused as refused:
        raise refusal(refused, {"id": "topic_id", "name": "topic_name"}) from None
    forget_names(svc, "topics")
    return saved
