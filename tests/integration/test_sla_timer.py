"""sla's workers as real processes: warnings and breaches the moment they fall due, each exactly once.

Policies of a few seconds (policy minutes may be fractional) on the emergency priority; the
original terms come back after each test (as a new version).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.sla import handlers
from shared import events
from tests.harness import consumers_on, wait_until
from tests.integration.conftest import event_from
from tests.integration.sla_fixtures import sla_fixture  # noqa: F401 - the `sla` fixture

SHORT = {
    "first_response_minutes": 0.1,  # 6 s: warning at 3 s, breach at 6 s
    "next_response_minutes": 0.1,
    "resolution_minutes": 0.15,  # 9 s: warning at 4.5 s, breach at 9 s
    "warn_at_percent": [50],
    "calendar": "24x7",
}


@pytest.fixture
def short_policy(sla):
    before = sla.policies.get("emergency")
    terms = {name: getattr(before, name) for name in SHORT}
    policy = handlers.put_policy(sla, "emergency", SHORT)
    yield policy
    handlers.put_policy(sla, "emergency", {**terms, "warn_at_percent": list(terms["warn_at_percent"])})


def _created(ticket_id: str, at: datetime, priority: str = "emergency") -> dict:
    data = {
        "number": 1,
        "subject": "Printer on fire",
        "description": "Smoke everywhere.",
        "requester": {"name": "Ana", "email": "ana@example.com"},
        "topic": "hardware",
        "priority": priority,
        "source": "web",
    }
    return event_from("intake", "ticket.created", ticket_id, data, occurred_at=at)


def _alerts(tap, ticket_ids: set[str]) -> list[dict]:
    return [
        env
        for env in tap.envelopes()
        if env["type"] in ("sla.warning", "sla.breached") and env["ticket_id"] in ticket_ids
    ]


def _key(env: dict) -> tuple:
    return env["ticket_id"], env["data"]["clock"], env["data"]["instance"], env["type"], env["data"].get("percent")


def _start_workers(spawn_worker, infra, settings, n: int, env: dict[str, str] | None = None) -> list:
    workers = [spawn_worker("sla", env=env) for _ in range(n)]
    wait_until(lambda: consumers_on(infra.amqp_url, f"{settings.namespace}.sla") >= n, timeout=30)
    return workers


def test_warning_then_breach_exactly_once_with_three_workers_one_killed(
    spawn_worker, infra, settings, publish, tap, sla, short_policy
):
    workers = _start_workers(spawn_worker, infra, settings, 3)
    start = datetime.now(UTC)
    tickets = {uuid.uuid4().hex for _ in range(6)}
    for ticket_id in tickets:
        publish("ticket.created", _created(ticket_id, start))
    wait_until(lambda: len(_alerts(tap, tickets)) >= len(tickets), timeout=60)  # the first warnings are out
    workers[0].kill()  # SIGKILL, between the warnings and the breaches
    expected = len(tickets) * 4  # two clocks, each: a warning at 50 % and a breach
    wait_until(lambda: len({env["event_id"] for env in _alerts(tap, tickets)}) >= expected, timeout=90)
    wait_until(
        lambda: sla.clocks.collection.count_documents({"_id": {"$in": list(tickets)}, "_outbox_n": {"$gt": 0}}) == 0,
        timeout=60,  # the killed worker's markers wait for the sweep; a busy machine takes its time
    )
    published = _alerts(tap, tickets)
    # a worker killed between its publish and its outbox clear publishes again from the sweep: the same event id
    # (contract section 6), which every consumer takes once; what must never be is a second id for one alert
    alerts = list({env["event_id"]: env for env in published}.values())
    counts = Counter(_key(env) for env in alerts)
    assert len(alerts) == expected and set(counts.values()) == {1}, counts
    for env in alerts:
        data, at = env["data"], events.parse_time(env["occurred_at"])
        assert data["priority"] == "emergency" and data["policy_version"] == short_policy.version
        label = "breach" if env["type"] == "sla.breached" else f"warn-{data['percent']:g}"
        ids = (env["ticket_id"], data["clock"], "0", label, str(short_policy.version))
        assert env["event_id"] == events.derived_event_id(*ids)
        target = SHORT[f"{data['clock']}_minutes"] * 60
        assert events.parse_time(data["due_at"]) == start.replace(
            microsecond=start.microsecond // 1000 * 1000
        ) + timedelta(seconds=target)
        if env["type"] == "sla.breached":
            assert events.parse_time(data["breached_at"]) == events.parse_time(data["due_at"]) == at


def test_a_ticket_resolved_a_moment_before_its_deadline_never_breaches(
    spawn_worker, infra, settings, publish, tap, sla, short_policy
):
    # A breach waits this long past its deadline for an event that occurred before it and is still on its
    # way: long enough that a busy machine delivers the resolutions within it, whatever its speed.
    _start_workers(spawn_worker, infra, settings, 2, env={"TICKETFLOW_SLA_BREACH_GRACE": "10"})
    start = datetime.now(UTC)
    resolved, late = {uuid.uuid4().hex for _ in range(4)}, uuid.uuid4().hex
    for ticket_id in [*resolved, late]:
        publish("ticket.created", _created(ticket_id, start))
    deadline = start + timedelta(seconds=SHORT["first_response_minutes"] * 60)
    while datetime.now(UTC) < deadline - timedelta(milliseconds=30):
        time.sleep(0.005)
    moment_before = deadline - timedelta(milliseconds=30)  # stamped so, even if this thread wakes up late
    for ticket_id in resolved:  # 30 ms before the first response is due
        data = {"agent_id": "a1", "resolution": "Fixed."}
        publish(
            "ticket.resolved", event_from("assignment", "ticket.resolved", ticket_id, data, occurred_at=moment_before)
        )
    wait_until(lambda: [e for e in _alerts(tap, {late}) if e["type"] == "sla.breached"], timeout=40)
    wait_until(
        lambda: all(sla.clocks.collection.find_one({"_id": t})["next_due"] is None for t in resolved), timeout=60
    )
    assert [e for e in _alerts(tap, resolved) if e["type"] == "sla.breached"] == []
    for ticket_id in resolved:
        view = handlers.ticket_view(sla, ticket_id)["clocks"]
        assert view["first_response"]["state"] == view["resolution"]["state"] == "stopped"
        assert view["first_response"]["breached_at"] is None
