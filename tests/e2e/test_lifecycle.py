"""A ticket's whole life through the public APIs of the four services, all running as real processes.

A requester submits a ticket; it is auto-assigned to the least-loaded agent of the routed team; the
requester gets the receipt and the agent the assignment email; the agent replies (first response met);
an admin raises the priority (sla re-targets); the agent resolves; the requester writes again and the
ticket reopens to the same agent; the agent resolves again; the requester closes it. After each step,
once the events have flowed, intake's, assignment's and sla's views agree; every email arrives once.
"""

from __future__ import annotations

from collections import Counter

import requests

from services.notify.domain import EMAIL_AUDIENCES  # who is emailed for which event
from tests.e2e.conftest import System, unique
from tests.harness import wait_until

REQUESTER = {"name": "Ana Ruiz", "email": "ana.ruiz@example.com"}


def help_desk(system: System, agents: int = 2, capacity: int = 5) -> dict:
    """A topic, a team routing it, an unavailable lead and `agents` agents: {topic, team, lead, agents}."""
    topic, team = unique("e2e"), unique("team")
    system.ok("PUT", "intake", f"/topics/{topic}", json={"name": "End to end"})
    system.ok("POST", "assignment", "/teams", json={"id": team, "name": "End to end", "topics": [topic]})
    lead = {"id": unique("lead"), "name": "Lena Lead", "email": f"{unique('lead')}@example.com", "teams": [team],
            "capacity": 1, "available": False, "lead": True}  # fmt: skip
    system.ok("POST", "assignment", "/agents", json=lead)
    people = []
    for i in range(agents):
        agent = {"id": unique(f"agent{i}"), "name": f"Agent {i}", "email": f"{unique('agent')}@example.com",
                 "teams": [team], "capacity": capacity}  # fmt: skip
        system.ok("POST", "assignment", "/agents", json=agent)
        people.append(agent)
    return {"topic": topic, "team": team, "lead": lead, "agents": people}


def submit(system: System, topic: str, priority: str = "normal", subject: str = "VPN drops every hour") -> dict:
    request = {"subject": subject, "description": "Since Monday the VPN drops every hour.", "requester": REQUESTER,
               "topic": topic, "priority": priority, "source": "web"}  # fmt: skip
    return system.ok("POST", "intake", "/tickets", role="portal", json=request)


def views(system: System, ticket_id: str) -> tuple[dict, dict, dict]:
    intake = system.ok("GET", "intake", f"/tickets/{ticket_id}")
    assignment = system.ok("GET", "assignment", f"/tickets/{ticket_id}")
    sla = system.ok("GET", "sla", f"/tickets/{ticket_id}")
    return intake, assignment, sla


def agree(system: System, ticket_id: str, status: str, agent_id: str | None, priority: str, check=None, timeout=20):
    """Wait until the three views show this status, agent and priority (and `check(intake, assignment, sla)`)."""

    def settled():
        intake, assignment, sla = views(system, ticket_id)
        same = (
            intake["status"] == assignment["status"] == status
            and (intake["assignee"] or {}).get("agent_id") == assignment["agent_id"] == agent_id
            and intake["priority"] == assignment["priority"] == sla["priority"] == priority
        )
        return (intake, assignment, sla) if same and (check is None or check(intake, assignment, sla)) else None

    return wait_until(settled, timeout=timeout, message=f"views of {ticket_id} agree on {status}/{agent_id}/{priority}")


def expected_emails(system: System, ticket_id: str, people: dict[str, str]) -> Counter:
    """(recipient, event type) of every email the ticket's events call for, from intake's timeline."""
    timeline = system.items("intake", f"/tickets/{ticket_id}/timeline")
    expected = Counter()
    for entry in timeline:
        for audience in EMAIL_AUDIENCES.get(entry["type"], ()):
            if entry["type"] == "ticket.assigned" and "queue" in entry["summary"].lower():
                continue  # waiting in the team's queue: nobody to tell
            if entry["type"] == "ticket.assigned" and entry["summary"].startswith("Back with "):
                continue  # a reopened ticket back with its agent: the reopening's email tells them
            if entry["type"] == "ticket.closed" and audience == "agent":
                continue  # closed once resolved (as here): the agent's work was done, nobody tells them
            expected[(people[audience], entry["type"])] += 1
    return expected


def emails_once(system: System, ticket: dict, people: dict[str, str]) -> Counter:
    """Wait until notify sent what the timeline calls for; each record's email arrived exactly once."""
    expected = expected_emails(system, ticket["id"], people)

    def sent():
        emails = [
            r for r in system.items("notify", "/notifications", {"ticket_id": ticket["id"]}) if r["channel"] == "email"
        ]
        done = Counter((r["recipient"], r["event_type"]) for r in emails if r["status"] == "sent")
        return emails if done == expected and len(emails) == sum(expected.values()) else None

    records = wait_until(sent, timeout=20, message=f"notify sent {dict(expected)}")
    for record in records:
        arrived = [
            m for m in system.smtp.received if m["Message-ID"].strip() == f"<{record['id']}+{ticket['id']}@ticketflow>"
        ]
        assert len(arrived) == 1, (record["event_type"], record["recipient"], len(arrived))
        assert arrived[0]["To"] == record["recipient"]
        subject = arrived[0]["Subject"]  # an SLA alert's says what it is between the two
        assert subject.startswith(f"[#{ticket['number']}] ") and subject.endswith(ticket["subject"])
    return expected


def test_a_ticket_s_whole_life_through_the_public_apis(start_system):
    system = start_system()
    desk = help_desk(system)
    first, second = desk["agents"]
    warm_up = submit(system, desk["topic"], subject="Printer on floor 3 will not print")
    busy_agent = wait_until(lambda: system.ok("GET", "assignment", f"/tickets/{warm_up['id']}")["agent_id"])
    free_agent = second if busy_agent == first["id"] else first

    ticket = submit(system, desk["topic"])
    _, assignment, sla = agree(system, ticket["id"], "assigned", free_agent["id"], "normal",
                               check=lambda i, a, s: s["clocks"]["first_response"]["state"] == "running")  # fmt: skip
    decision = assignment["history"][0]["decision"]
    loads = {c["agent_id"]: c["open_tickets"] for c in decision["candidates"]}
    assert loads[free_agent["id"]] < loads[busy_agent]  # the least-loaded agent of the routed team
    people = {"requester": REQUESTER["email"], "agent": free_agent["email"], "lead": desk["lead"]["email"]}
    wait_until(lambda: system.emails_to(REQUESTER["email"], ticket["number"]))  # the receipt
    wait_until(lambda: system.emails_to(free_agent["email"], ticket["number"]))  # the assignment

    reply = {"body": "Please install the new VPN profile and tell me if it still drops."}
    system.ok("POST", "assignment", f"/tickets/{ticket['id']}/replies", "agent", free_agent["id"], json=reply)
    agree(system, ticket["id"], "in_progress", free_agent["id"], "normal",
          check=lambda i, a, s: s["clocks"]["first_response"]["state"] == "met"
          and any(e.get("body") == reply["body"] for e in i["thread"]))  # fmt: skip

    before = sla["clocks"]["resolution"]
    system.ok("POST", "assignment", f"/tickets/{ticket['id']}/priority", json={"priority": "high"})
    high = system.ok("GET", "sla", "/policies/high")
    _, _, sla = agree(system, ticket["id"], "in_progress", free_agent["id"], "high",
                      check=lambda i, a, s: s["clocks"]["resolution"]["policy_version"] == high["version"]
                      and s["clocks"]["resolution"]["due_at"] != before["due_at"])  # fmt: skip
    assert sla["clocks"]["resolution"]["elapsed_seconds"] >= before["elapsed_seconds"]  # elapsed time kept

    resolve = {"resolution": "New VPN profile installed."}
    system.ok("POST", "assignment", f"/tickets/{ticket['id']}/resolve", "agent", free_agent["id"], json=resolve)
    agree(system, ticket["id"], "resolved", free_agent["id"], "high",
          check=lambda i, a, s: s["clocks"]["resolution"]["state"] == "stopped")  # fmt: skip

    system.ok("POST", "intake", f"/tickets/{ticket['id']}/messages", role="portal", json={"body": "It dropped again."})
    agree(system, ticket["id"], "assigned", free_agent["id"], "high",
          check=lambda i, a, s: s["clocks"]["resolution"]["state"] == "running"
          and (s["clocks"]["next_response"] or {}).get("state") == "running")  # fmt: skip

    system.ok("POST", "assignment", f"/tickets/{ticket['id']}/resolve", "agent", free_agent["id"], json=resolve)
    agree(system, ticket["id"], "resolved", free_agent["id"], "high")
    system.ok("POST", "intake", f"/tickets/{ticket['id']}/close", role="portal")
    ended = ("met", "stopped")
    agree(system, ticket["id"], "closed", free_agent["id"], "high",
          check=lambda i, a, s: all(c is None or c["state"] in ended for c in s["clocks"].values()))  # fmt: skip

    sent = emails_once(system, ticket, people)
    assert sent[(REQUESTER["email"], "ticket.resolved")] == 2 and sent[(free_agent["email"], "ticket.reopened")] == 1
    assert sent[(REQUESTER["email"], "ticket.closed")] == 1 and sent[(free_agent["email"], "ticket.message_added")] == 1

    # What gunicorn refuses before the app sees it is answered as the app answers: problem+json, not a page.
    for service in ("intake", "sla"):
        long_line = requests.get(f"{system.urls[service]}/tickets/{'x' * 9000}", timeout=10)
        many_headers = requests.get(f"{system.urls[service]}/tickets", headers={f"X-H{n}": "v" for n in range(120)},
                                    timeout=10)  # fmt: skip
        for answer, status in ((long_line, 400), (many_headers, 431)):
            assert answer.status_code == status and answer.headers["Content-Type"] == "application/problem+json"
            assert answer.json()["status"] == status and answer.headers["X-Request-ID"]
