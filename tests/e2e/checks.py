"""Checks of a run of many tickets through the whole system, shared by the modules that make such runs
(test_many_tickets and the fault tests): submit them, then check that each was assigned once, the services'
views agree and each email arrived once.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import System
from tests.e2e.test_lifecycle import REQUESTER, submit
from tests.harness import wait_until


def submit_all(system: System, topic: str, priorities: list[str], during=None) -> list[dict]:
    """Submit one ticket per priority from 8 threads; `during(n)` runs after the n-th submission."""
    done, lock = [], threading.Lock()

    def one(priority: str) -> dict:
        ticket = submit(system, topic, priority=priority, subject=f"Laptop for a new hire ({priority})")
        with lock:
            done.append(ticket)
            if during:
                during(len(done))
        return ticket

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, priorities))


def check_the_run(system: System, desk: dict, tickets: list[dict], resolve_some: bool) -> dict[str, dict]:
    """Wait until every ticket is assigned or queued and the views agree; the invariants of the whole run."""
    capacity = {agent["id"]: agent["capacity"] for agent in desk["agents"]}

    views: dict[str, dict] = {}

    def assignment_views() -> dict[str, dict] | None:
        """Each ticket asked for until assignment has assigned or queued it, then not again: a poll asks for the
        tickets not seen yet, up to the first still waiting, so a backlog is not read over and over while the
        workers work through it."""
        for ticket in tickets:
            if ticket["id"] not in views:
                view = system.ok("GET", "assignment", f"/tickets/{ticket['id']}")
                if not view["history"]:
                    return None
                views[ticket["id"]] = view
        return views

    # an outage's or a kill's backlog takes a busy machine minutes to work through, with one worker per service
    wait_until(assignment_views, timeout=300, interval=0.5, message="every ticket assigned or queued")
    load = Counter(v["agent_id"] for v in views.values() if v["agent_id"] and v["status"] != "resolved")
    assert all(load[agent] <= capacity[agent] for agent in load), load
    if resolve_some:
        for view in list(views.values())[::3]:
            if view["agent_id"] and view["priority"] == "normal":
                system.ok("POST", "assignment", f"/tickets/{view['ticket_id']}/resolve", "agent", view["agent_id"],
                          json={"resolution": "Done."})  # fmt: skip
    agreed = {
        t["id"]: wait_until(lambda t=t: _agreed(system, t["id"]), timeout=120, message=f"views of {t['id']}")
        for t in tickets
    }
    for agent in system.items("assignment", "/agents", {"team": desk["team"]}):
        assert agent["open_tickets"] <= agent["capacity"], agent
    return agreed


def _agreed(system: System, ticket_id: str) -> dict | None:
    """assignment's view of the ticket once intake's and sla's agree with it, else None."""
    intake = system.ok("GET", "intake", f"/tickets/{ticket_id}")
    assignment = system.ok("GET", "assignment", f"/tickets/{ticket_id}")
    sla = system.ok("GET", "sla", f"/tickets/{ticket_id}")
    same = (
        intake["status"] == assignment["status"]
        and (intake["assignee"] or {}).get("agent_id") == assignment["agent_id"]
        and intake["priority"] == assignment["priority"] == sla["priority"]
    )
    return assignment if same else None


def assigned_once(system: System, ticket_id: str) -> list[dict]:
    timeline = system.items("intake", f"/tickets/{ticket_id}/timeline")
    given = [e for e in timeline if e["type"] == "ticket.assigned" and "queue" not in e["summary"].lower()]
    assert len(given) <= 1, given  # nobody reassigns in these runs: one agent at most, once
    return timeline


def _email(desk: dict, agent_id: str) -> str:
    return next(agent["email"] for agent in desk["agents"] if agent["id"] == agent_id)


def _emails(system: System, ticket: dict) -> dict[str, int]:
    """Emails of the ticket per recipient, a message and its resends (the same Message-ID) counted once."""
    mine = {(m["To"], m["Message-ID"]) for m in list(system.smtp.received) if f"[#{ticket['number']}]" in m["Subject"]}
    return dict(Counter(to for to, _ in mine))


def caught_up(system: System, tickets: list[dict], timeout: float = 300.0) -> None:
    """Wait until assignment knows every ticket: the backlog of the outage takes a busy machine minutes to work
    through (one worker per service). Each ticket is asked for until found."""
    missing = {t["id"] for t in tickets}

    def none_missing() -> bool:
        for ticket_id in sorted(missing):
            if system.call("GET", "assignment", f"/tickets/{ticket_id}")[0] != 200:
                return False
            missing.discard(ticket_id)
        return True

    wait_until(none_missing, timeout=timeout, interval=1.0, message="assignment knows every ticket")


def each_ticket_once(system: System, desk: dict, tickets: list[dict]) -> None:
    """After a run in which no process was killed (the desk has room for every ticket): each ticket opened once
    and assigned once, its receipt and its assignment email arrived once each, and no email came twice."""
    caught_up(system, tickets)
    views = check_the_run(system, desk, tickets, resolve_some=False)
    for ticket in tickets:
        timeline = assigned_once(system, ticket["id"])
        kinds = Counter(e["type"] for e in timeline)
        assert kinds["ticket.created"] == 1 and kinds["ticket.assigned"] == 1, (ticket["number"], kinds)
        expected = {REQUESTER["email"]: 1, _email(desk, views[ticket["id"]]["agent_id"]): 1}
        try:
            wait_until(lambda ticket=ticket, expected=expected: _emails(system, ticket) == expected, timeout=60)
        except AssertionError:
            assert _emails(system, ticket) == expected, f"emails of #{ticket['number']}"  # what did arrive
    copies = Counter(m["Message-ID"] for m in list(system.smtp.received))
    twice = [message_id for message_id, count in copies.most_common(3) if count > 1]
    assert not twice, [(message_id, _notification_of(system, message_id)) for message_id in twice]


def _notification_of(system: System, message_id: str) -> dict | None:
    """The record of the notification an email of notify's carries (<notification+ticket@...>): how it was sent."""
    notification_id = message_id.strip("<>").split("@")[0].split("+")[0]
    return system.call("GET", "notify", f"/notifications/{notification_id}")[1]
