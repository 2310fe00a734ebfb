"""The database dies: 200 tickets in flight, FerretDB SIGKILLed, started again 5 s later on the same data.

The system runs on a FerretDB of its own (the session's is shared with the tests beside this one). While it
is down, every api answers 503 problem+json with Retry-After (never a 500, and within the client's timeout)
and /readyz is 503; afterwards every ticket accepted with a 201 is assigned once, has its clocks, and its
emails arrive once.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pika
import requests

from shared import events
from shared.config import load_settings
from shared.topology import SUBSCRIPTIONS, queue_name
from tests.e2e.checks import _email, _emails, assigned_once, check_the_run
from tests.e2e.conftest import System
from tests.e2e.test_lifecycle import REQUESTER, help_desk
from tests.harness import auth_header, dead_letters, wait_until
from tests.integration.conftest import EventTap

TICKETS = 200
KILL_AT = 60  # submissions done when the database is killed
DOWN = 5.0  # seconds, at least
REPLAYED = 20  # events delivered again while the database is down
PROBLEM_JSON = "application/problem+json"


def _publish_again(amqp_url: str, exchange: str, envelopes: list[dict]) -> None:
    """Publish events again as they were, as a publisher whose confirm was lost does: duplicates to handle."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for envelope in envelopes:
            props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
            channel.basic_publish(exchange, envelope["type"], events.encode(envelope), props)
    finally:
        connection.close()


def _unavailable(response: requests.Response) -> None:
    """A 503 problem+json that says when to try again: what a client may retry."""
    assert response.status_code == 503, (response.request.method, response.url, response.status_code, response.text)
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON) and response.headers["Retry-After"], response
    assert response.json()["status"] == 503


def _while_down(system: System, known: dict) -> None:
    """Every api's storage-backed endpoints and /readyz, asked at once while the database is down."""
    ticket_id = known["id"]
    calls = [
        ("POST", "intake", "/tickets", "portal", {"json": known["request"]}),
        ("GET", "intake", f"/tickets/{ticket_id}", "admin", {}),
        ("GET", "assignment", f"/tickets/{ticket_id}", "admin", {}),
        ("GET", "assignment", "/agents", "admin", {}),
        ("GET", "sla", f"/tickets/{ticket_id}", "admin", {}),
        ("GET", "notify", "/notifications", "admin", {}),
    ]

    def call(method, service, path, role, kw) -> requests.Response:
        url = f"{system.urls[service]}{path}"
        return requests.request(method, url, headers=auth_header(role), timeout=25, **kw)

    def not_ready(service: str) -> bool:  # /readyz answers from a probe up to 1.5 s old: the next one sees it
        return requests.get(f"{system.urls[service]}/readyz", timeout=25).status_code == 503

    with ThreadPoolExecutor(len(calls)) as pool:
        for response in pool.map(lambda c: call(*c), calls):
            _unavailable(response)
    for service in system.urls:
        wait_until(lambda service=service: not_ready(service), timeout=30, message=f"{service} /readyz 503")


def test_the_database_killed_with_200_tickets_in_flight_loses_none_accepted(own_database, start_system, infra, request):
    database = own_database
    # The workers give up on a database call after 1 s: a handler that spent its event's retries (0.2, 0.4, 0.8 s)
    # on the outage would dead-letter it well within the 5 s. The apis keep the 5 s of the default.
    system = start_system(
        workers=1, mongo_url=database.url, worker_env={"TICKETFLOW_MONGO_TIMEOUT_MS": "1000"}, search=True
    )
    desk = help_desk(system, agents=4, capacity=60)
    body = {"subject": "Laptop for a new hire", "description": "Since Monday the VPN drops every hour.",
            "requester": REQUESTER, "topic": desk["topic"], "priority": "normal", "source": "web"}  # fmt: skip
    settings = load_settings()
    tap = EventTap(infra.amqp_url, settings.exchange, ("ticket.created",))
    request.addfinalizer(tap.close)
    accepted, refused, lock = [], [], threading.Lock()
    outage: dict = {}

    def kill_and_restart() -> None:
        try:
            database.kill()
            killed = time.monotonic()
            # events in flight while the database is down: ticket.created events of tickets accepted before the
            # kill, delivered again. intake's api publishes them from memory, in a thread of its own that may not
            # have sent one yet on a busy machine; it needs the broker only, so they come while the database is down.
            wait_until(lambda: tap.envelopes(type="ticket.created"), timeout=60, message="a ticket.created event")
            replayed = tap.envelopes(type="ticket.created")[:REPLAYED]
            _publish_again(infra.amqp_url, settings.exchange, replayed)
            _while_down(system, {"id": accepted[0]["id"], "request": body})
            time.sleep(max(DOWN - (time.monotonic() - killed), 0))  # down for 5 s at least
            database.start()
        except BaseException as exc:  # reported by the test's thread
            outage["error"] = exc
            if not database.proc or database.proc.poll() is not None:
                database.start()

    def submit(_: int) -> None:
        response = requests.post(f"{system.urls['intake']}/tickets", json=body, headers=auth_header("portal"),
                                 timeout=25)  # fmt: skip
        with lock:
            if response.status_code == 201:
                accepted.append(response.json())
            else:
                _unavailable(response)
                refused.append(response)
            if len(accepted) + len(refused) == KILL_AT:
                outage["thread"] = threading.Thread(target=kill_and_restart, name="kill-database")
                outage["thread"].start()

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(submit, range(TICKETS)))
    finally:  # the database is up again (and its process known to the fixture) before anything else
        if "thread" in outage:
            outage["thread"].join(timeout=120)
    assert "error" not in outage, outage.get("error")
    assert refused, "some submissions met the database down"
    assert len(accepted) >= KILL_AT

    views = check_the_run(system, desk, accepted, resolve_some=False)
    for ticket in accepted:
        view = views[ticket["id"]]
        assigned_once(system, ticket["id"])
        clocks = system.ok("GET", "sla", f"/tickets/{ticket['id']}")["clocks"]
        assert clocks["first_response"]["state"] == "running", (ticket["number"], clocks)
        expected = {REQUESTER["email"]: 1} | ({_email(desk, view["agent_id"]): 1} if view["agent_id"] else {})
        try:
            wait_until(lambda ticket=ticket, expected=expected: _emails(system, ticket) == expected, timeout=60)
        except AssertionError:
            assert _emails(system, ticket) == expected, f"emails of #{ticket['number']}"  # what did arrive
    dead = system.items("notify", "/notifications", {"status": "dead"})
    assert dead == [], dead[:3]
    for service in SUBSCRIPTIONS:  # an outage is not a message's fault: no event was dead-lettered for it
        letters = dead_letters(infra.amqp_url, f"{queue_name(settings, service)}.dead")
        assert letters == [], (service, [headers for headers, _ in letters[:3]])
