"""`ticketflow demo` and `ticketflow status` against the four services as real processes.

The system runs in a namespace of its own (the session's plus `_demo`), so the demo's teams and
topic routes never meet other tests' tickets; its databases go with the session's, its queues here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import SERVICE_PORTS, load_settings
from tests.harness import wait_until
from ticketflow import demo, mailsink, status
from ticketflow.cleanup import delete_topology
from ticketflow.local import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def system(spawn, infra, tmp_path: Path) -> Iterator[tuple[dict[str, str], object, Path]]:
    """(each api's URL, the settings of the system's namespace, the mail sink's folder)."""
    settings = dataclasses.replace(load_settings(), namespace=f"{os.environ['TICKETFLOW_NAMESPACE']}_demo")
    mail_dir = tmp_path / "mail"
    port = free_port()
    sink = mailsink.start("127.0.0.1", port, mail_dir, echo=lambda *args, **kwargs: None)
    smtp_url = f"smtp://127.0.0.1:{port}"
    env = {"TICKETFLOW_NAMESPACE": settings.namespace, "SMTP_URL": smtp_url, "WEB_CONCURRENCY": "2"}
    try:
        urls = {service: spawn.api(service, env=env).url for service in SERVICE_PORTS}
        for service in SERVICE_PORTS:
            spawn.worker(service, env=env)
        yield urls, settings, mail_dir
    finally:
        for handle in reversed(spawn.handles):  # stopped first: a running worker would declare its queues again
            handle.stop()
        sink.stop()
        with contextlib.suppress(Exception):  # the session's clean-up reports what is left
            delete_topology(infra.amqp_url, settings.namespace)


def test_the_demo_walks_a_dozen_tickets_through_twice_and_status_reports_all_ready(system):
    urls, settings, mail_dir = system
    secret = os.environ["TICKETFLOW_JWT_SECRET"]

    first = _run_demo(urls, secret)
    second = _run_demo(urls, secret)  # the help desk exists already: it is patched, and a new dozen filed

    for tickets in (first, second):
        _check_the_stories(urls, secret, tickets)
    # the emails notify sent are in the sink's folder, each ticket's receipt among them
    texts = [mailsink.describe(path) for path in mailsink.latest(mail_dir, 1000)]
    assert all(any(f"[#{t.number}]" in text for text in texts) for t in first + second)
    assert {t.number for t in first}.isdisjoint(t.number for t in second)

    report = wait_until(lambda: (r := status.collect(urls, settings)).ready and r, timeout=30)
    assert status.render(report, settings.namespace).endswith("all ready")
    teams = {row["team"]: row for row in report.teams}
    assert set(teams) == {"network", "hardware", "access", "general"}
    still_open = [t for t in first + second if t.view["ticket"]["status"] not in ("resolved", "closed")]
    assert sum(row["open"] for row in teams.values()) == len(still_open)
    assert report.breaches == []


def _run_demo(urls: dict[str, str], secret: str) -> list:
    lines: list[str] = []
    try:
        return demo.run(urls, secret, wait=90, out=lines.append)
    finally:
        print("\n".join(lines))  # in the report when the test fails


def _check_the_stories(urls: dict[str, str], secret: str, tickets: list) -> None:
    assert len(tickets) == 12
    for ticket in tickets:
        view = ticket.view
        assert ticket.team and view["ticket"]["team"] == ticket.team, (ticket.label, view["ticket"])
        types = [event["type"] for event in view["timeline"]]
        assert types[0] == "ticket.created" and "ticket.assigned" in types, (ticket.label, types)
        assert demo.reached(ticket, view["ticket"]["status"], view["timeline"]), (ticket.label, view["ticket"])
        receipt = [n for n in view["mail"] if n["event_type"] == "ticket.created"]
        assert [n["recipient"] for n in receipt] == [ticket.spec["requester"]["email"]]
        assert all(n["status"] == "sent" for n in view["mail"]), (ticket.label, view["mail"])
        assert view["clocks"]["first_response"]["state"] in ("running", "met", "stopped")
    final = {t.spec["expect"]: t.view["ticket"]["status"] for t in tickets if t.spec["expect"]}
    assert final["closed"] == "closed" and final["resolved"] == "resolved"
    assert final["waiting_on_requester"] == "waiting_on_requester" and final["in_progress"] == "in_progress"
    assert final["reopened"] in ("new", "assigned", "in_progress")
    claimed = [t for t in tickets if any(h["action"] == "claimed" for h in _history(urls, secret, t))]
    assert claimed and all(t.team == "hardware" for t in claimed), "tickets waiting in the hardware queue are claimed"


def _history(urls: dict[str, str], secret: str, ticket) -> list[dict]:
    client = demo.Client(urls, secret)
    return client("GET", "assignment", f"/tickets/{ticket.id}", "admin")["history"]
