"""notify's workers as real processes, a real SMTP server (aiosmtpd) and a real webhook receiver.

Events are published to the exchange as the other services would; what counts is what the SMTP server
and the HTTP server actually received, and the notification records.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import time
import uuid

import pika
import pytest

from services.notify import handlers
from shared import mongo
from shared.config import load_settings
from shared.links import read_link_token
from shared.topology import retry_queue_name
from tests.harness import consumers_on, flushed, wait_until
from tests.integration.conftest import event_from
from tests.integration.notify_servers import smtp_server, webhook_server  # noqa: F401 - fixtures

REQUESTER = {"name": "Ana Ruiz", "email": "ana@example.com"}
AGENT = {"agent_id": "jane", "agent_name": "Jane Doe", "agent_email": "jane@example.com"}
LEAD = "lead@example.com"
PORTAL = "https://help.example.com/desk"  # the workers' TICKETFLOW_PORTAL_URL in the link test


@pytest.fixture
def notify(infra):
    mongo.close_client()
    app = handlers.bootstrap(load_settings())
    app.ensure_storage()
    yield app
    flushed(app.flusher)
    app.webhooks.collection.delete_many({})  # webhooks get every later event: none may outlive its test
    mongo.close_client()


@pytest.fixture
def start_worker(spawn_worker, infra, settings, smtp_server):  # noqa: F811
    """start_worker(**env) -> a notify worker process mailing to the test's SMTP server, once it consumes."""
    _, smtp_url = smtp_server
    queue = f"{settings.namespace}.notify"

    def start(**env):
        before = consumers_on(infra.amqp_url, queue)
        worker = spawn_worker("notify", env={"SMTP_URL": smtp_url, "TICKETFLOW_WEBHOOK_TIMEOUT": "2", **env})
        wait_until(lambda: consumers_on(infra.amqp_url, queue) > before, timeout=30)
        return worker

    return start


def _ticket(
    publish, number: int | None = None, name: str = REQUESTER["name"], correlation_id: str | None = None
) -> tuple[str, int]:
    ticket_id, number = uuid.uuid4().hex, number or 100000 + int(uuid.uuid4().int % 899999)
    data = {
        "number": number,
        "subject": "VPN drops every hour",
        "description": "Since Monday.",
        "requester": {**REQUESTER, "name": name},
        "topic": "network",
        "priority": "high",
        "source": "web",
    }
    publish("ticket.created", event_from("intake", "ticket.created", ticket_id, data, correlation_id=correlation_id))
    return ticket_id, number


def _send(publish, kind: str, ticket_id: str, producer: str = "assignment", **data) -> dict:
    envelope = event_from(producer, kind, ticket_id, data)
    publish(kind, envelope)
    return envelope


def _records(app, ticket_id: str) -> list:
    return list(app.notifications.collection.find({"ticket_id": ticket_id}))


def test_each_event_reaches_its_recipients_once(start_worker, publish, notify, smtp_server):  # noqa: F811
    smtp, _ = smtp_server
    start_worker()
    ticket, number = _ticket(publish)
    assigned = {**AGENT, "team": "network", "team_lead_email": LEAD, "reason": "auto", "decision": None}
    _send(publish, "ticket.assigned", ticket, **assigned)
    wait_until(lambda: len(smtp.to("jane@example.com")) == 1)  # the projection knows the agent from here on
    _send(publish, "ticket.replied", ticket, reply_id="r1", agent_id="jane", agent_name="Jane Doe",
          body="Please try the new profile.", first_response=True)  # fmt: skip
    author = {"type": "requester", **REQUESTER}
    _send(publish, "ticket.message_added", ticket, "intake", message_id="m1", body="Still dropping.", author=author)
    sla = {"clock": "first_response", "instance": 0, "due_at": "2026-11-27T10:30:00.000Z", "priority": "high",
           "policy_version": 1}  # fmt: skip
    _send(publish, "sla.warning", ticket, "sla", **sla, percent=80)
    _send(publish, "sla.breached", ticket, "sla", **sla, breached_at="2026-11-27T10:30:00.000Z")
    _send(publish, "ticket.resolved", ticket, agent_id="jane", resolution="New profile installed.")
    _send(publish, "ticket.reopened", ticket, "intake", reason="The requester wrote again.")
    # closed by its requester while reopened (not resolved): its agent hears of it too
    _send(publish, "ticket.closed", ticket, "intake", by="requester", previous_status="assigned")
    _send(publish, "ticket.status_changed", ticket, status="in_progress", previous_status="assigned")  # no email

    expected = {
        "ana@example.com": ["ticket.created", "ticket.replied", "ticket.resolved", "ticket.closed"],
        "jane@example.com": ["ticket.assigned", "ticket.message_added", "sla.warning", "sla.breached",
                             "ticket.reopened", "ticket.closed"],
        LEAD: ["sla.breached"],
    }  # fmt: skip
    total = sum(len(kinds) for kinds in expected.values())
    wait_until(lambda: len([m for m in smtp.received if f"[#{number}]" in m["Subject"]]) >= total, timeout=20)

    def all_sent() -> dict | None:  # the last record is saved as sent a moment after its 250
        records = {r["_id"]: r for r in _records(notify, ticket) if r["channel"] == "email"}
        return records if {r["status"] for r in records.values()} == {"sent"} else None

    records = wait_until(all_sent, timeout=30)
    assert len(records) == total
    for recipient, kinds in expected.items():
        mine = [r for r in records.values() if r["recipient"] == recipient]
        assert sorted(r["event_type"] for r in mine) == sorted(kinds)
        for record in mine:
            (message,) = smtp.with_id(record["_id"])  # exactly one email per record, as received
            subject = message["Subject"]  # an SLA alert's says what it is between the two
            assert subject.startswith(f"[#{number}] ") and subject.endswith("VPN drops every hour")
            assert record["attempts"] == 1 and record["sent_at"] is not None
    lead_mail = smtp.with_id(next(r["_id"] for r in records.values() if r["recipient"] == LEAD))[0]
    assert "Jane Doe" in lead_mail.get_body(("plain",)).get_content()  # the escalation names the agent
    _assert_links(smtp, records.values(), ticket, "http://127.0.0.1:8000")  # TICKETFLOW_PORTAL_URL's default


def _assert_links(smtp, records, ticket_id: str, portal: str) -> set[str]:
    """Each requester email, as received, links (text and HTML alike) to the ticket for the requester; no
    other email carries a link. The tokens, one per email."""
    secret, tokens = load_settings().require_secret(), set()
    for record in records:
        (message,) = smtp.with_id(record["_id"])
        text, html = (message.get_body((kind,)).get_content() for kind in ("plain", "html"))
        found = re.findall(rf"{re.escape(portal)}/t/([\w.-]+)", text)
        if record["recipient"] != REQUESTER["email"]:
            assert found == [] and "/t/" not in text and "/t/" not in html, record["event_type"]
            continue
        assert len(found) == 1 and f'<a href="{portal}/t/{found[0]}"' in html, record["event_type"]
        link = read_link_token(secret, found[0])
        assert (link.ticket_id, link.email) == (ticket_id, REQUESTER["email"])
        tokens.add(found[0])
    return tokens


def test_requester_emails_link_under_the_configured_portal_url(start_worker, publish, notify, smtp_server):  # noqa: F811
    smtp, _ = smtp_server
    start_worker(TICKETFLOW_PORTAL_URL=f"{PORTAL}/")  # its trailing slash is dropped
    ticket, _ = _ticket(publish)
    _send(publish, "ticket.resolved", ticket, agent_id="jane", resolution="New profile installed.")
    _send(publish, "ticket.closed", ticket, "intake", by="auto")

    def all_sent() -> list | None:
        records = _records(notify, ticket)
        return records if len(records) == 3 and {r["status"] for r in records} == {"sent"} else None

    records = wait_until(all_sent, timeout=15)
    assert len(_assert_links(smtp, records, ticket, PORTAL)) == 3  # a token of its own in each email


def test_the_same_event_three_times_sends_one_email(start_worker, publish, notify, smtp_server):  # noqa: F811
    smtp, _ = smtp_server
    start_worker()
    ticket_id = uuid.uuid4().hex
    data = {"number": 4242, "subject": "Printer", "description": "Jammed.", "requester": REQUESTER,
            "topic": "hardware", "priority": "low", "source": "web"}  # fmt: skip
    envelope = event_from("intake", "ticket.created", ticket_id, data)
    for _ in range(3):
        publish("ticket.created", envelope, message_id=envelope["event_id"])
    later, later_number = _ticket(publish)  # handled after the three copies: the worker takes one at a time
    wait_until(lambda: [m for m in smtp.received if f"[#{later_number}]" in m["Subject"]], timeout=30)
    # senders work side by side: 4242's email may arrive, and its record be saved, a moment after the later one's
    (record,) = wait_until(lambda: [r for r in _records(notify, ticket_id) if r["status"] == "sent"], timeout=30)
    assert len([m for m in smtp.received if "[#4242]" in m["Subject"]]) == 1
    assert record["attempts"] == 1 and len(_records(notify, ticket_id)) == 1


def test_refused_twice_the_third_attempt_sends(start_worker, publish, notify, smtp_server, tap):  # noqa: F811
    smtp, _ = smtp_server
    smtp.refuse_next = 2
    start_worker()
    ticket, number = _ticket(publish, correlation_id="request-7")
    (record,) = wait_until(lambda: [r for r in _records(notify, ticket) if r["status"] == "sent"], timeout=15)
    assert record["attempts"] == 3 and smtp.refused == 2
    assert len([m for m in smtp.received if f"[#{number}]" in m["Subject"]]) == 1
    # its outcome's event (a failed attempt that is retried has none) carries on the causing event's correlation
    (sent,) = wait_until(lambda: tap.envelopes(ticket_id=ticket, type="notification.sent"), timeout=15)
    assert sent["correlation_id"] == "request-7"


def test_always_refused_ends_dead_and_an_admin_retry_sends_it(start_worker, publish, notify, smtp_server, tap):  # noqa: F811
    smtp, _ = smtp_server
    smtp.refuse_all = True
    start_worker()
    ticket, number = _ticket(publish, correlation_id="request-8")
    (record,) = wait_until(lambda: [r for r in _records(notify, ticket) if r["status"] == "dead"], timeout=20)
    retries = len(load_settings().retry_delays)
    assert record["attempts"] == retries + 1 and "451" in record["last_error"]
    (failed,) = wait_until(lambda: tap.envelopes(ticket_id=ticket, type="notification.failed"), timeout=30)
    assert failed["data"]["notification_id"] == record["_id"] and "451" in failed["data"]["error"]
    assert failed["correlation_id"] == "request-8"  # the causing event's, carried on
    assert smtp.received == []

    smtp.refuse_all = False
    assert handlers.retry(notify, record["_id"]).status == "pending"
    wait_until(lambda: [m for m in smtp.received if f"[#{number}]" in m["Subject"]], timeout=30)
    (sent,) = wait_until(lambda: tap.envelopes(ticket_id=ticket, type="notification.sent"))
    assert sent["data"] == {"notification_id": record["_id"], "channel": "email", "recipient": REQUESTER["email"],
                            "event_type": "ticket.created", "error": None}  # fmt: skip
    assert notify.notifications.get(record["_id"]).attempts == retries + 2


def test_a_hanging_webhook_does_not_delay_email_and_signatures_verify(
    start_worker,
    publish,
    notify,
    smtp_server,  # noqa: F811
    webhook_server,  # noqa: F811
):
    smtp, _ = smtp_server
    hooks, base = webhook_server
    hooks.hang_seconds = 60.0  # held until the test releases it; the worker gives up after its webhook timeout
    secret = "s3cret-" + uuid.uuid4().hex
    hang = handlers.add_webhook(notify, {"url": f"{base}/hang", "events": ["ticket.*"], "secret": secret})
    good = handlers.add_webhook(notify, {"url": f"{base}/ok", "events": ["ticket.created"], "secret": secret})
    start_worker(TICKETFLOW_WEBHOOK_TIMEOUT="15")  # long enough for every email to go out first, on a busy machine
    tickets = [_ticket(publish) for _ in range(6)]
    wait_until(lambda: hooks.hanging >= 1, timeout=15, message="a delivery to /hang is being held")

    def hanging_ended() -> list:
        return list(notify.notifications.collection.find({"recipient": f"{base}/hang", "attempts": {"$gte": 1}}))

    for _, number in tickets:
        wait_until(lambda number=number: [m for m in smtp.received if f"[#{number}]" in m["Subject"]], timeout=30)
    # every email arrived while the hanging webhook still held its first deliveries: none waited for it
    assert hanging_ended() == [], "email waited for the hanging webhook"
    wait_until(lambda: len([h for h in hooks.received if h[0] == "/ok"]) == len(tickets), timeout=30)
    for path, headers, body in hooks.received:
        if path == "/ok":
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Ticketflow-Signature"] == expected
            # the timed one: this attempt's time and its delivery id signed with the body (a replay is refusable)
            sent_at, timed = headers["X-Ticketflow-Signature-Timed"].removeprefix("t=").split(",sha256=")
            signed = f"{sent_at}.{headers['X-Ticketflow-Delivery']}.".encode() + body
            assert timed == hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
            assert abs(int(sent_at) - time.time()) < 3600
            assert headers["X-Ticketflow-Event"] == json.loads(body)["type"] == "ticket.created"
    hanging = wait_until(hanging_ended, timeout=60)
    assert all(r["status"] in ("failed", "dead") and "timed out" in r["last_error"] for r in hanging)
    handlers.delete_webhook(notify, good["_id"])
    assert [hook["_id"] for hook in notify.webhooks.all()] == [hang["_id"]]  # the deleted one is gone, the other kept


def test_a_worker_that_cannot_finish_in_time_exits_with_1_at_its_bound(
    start_worker,
    publish,
    notify,
    webhook_server,  # noqa: F811
):
    """notify's worker, a sender stuck on a webhook that never answers (its timeout, 600 s, past the stop's bound of
    2 s): it does not wait for the sender, and exits with 1 at the bound (the delivery goes again when its claim
    ends: webhooks are at least once, each with its X-Ticketflow-Delivery)."""
    hooks, base = webhook_server
    hooks.hang_seconds = 600.0  # until the test ends
    handlers.add_webhook(
        notify, {"url": f"{base}/hang", "events": ["ticket.created"], "secret": "s3cret-" + uuid.uuid4().hex}
    )
    worker = start_worker(TICKETFLOW_WEBHOOK_TIMEOUT="600", TICKETFLOW_STOP_TIMEOUT="2")
    _ticket(publish)
    wait_until(lambda: hooks.hanging >= 1, timeout=30, message="a delivery to /hang is being held")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=60) == 1, worker.log_text()  # not the webhook timeout's 600 s
    assert "exiting now" in worker.log_text()


def test_killed_between_recording_and_sending_it_is_sent_once_after_a_restart(
    start_worker,
    publish,
    notify,
    smtp_server,  # noqa: F811
):
    smtp, _ = smtp_server
    recorder = start_worker(TICKETFLOW_NOTIFY_SENDERS="0")  # records notifications, sends none
    ticket, number = _ticket(publish)
    wait_until(lambda: _records(notify, ticket), timeout=30)
    recorder.kill()  # SIGKILL
    assert [r["status"] for r in _records(notify, ticket)] == ["pending"] and smtp.received == []
    start_worker()
    (record,) = wait_until(lambda: [r for r in _records(notify, ticket) if r["status"] == "sent"], timeout=15)
    _, later_number = _ticket(publish)  # recorded and sent after the restarted worker took over the first
    wait_until(lambda: [m for m in smtp.received if f"[#{later_number}]" in m["Subject"]], timeout=15)
    assert len([m for m in smtp.received if f"[#{number}]" in m["Subject"]]) == 1 and record["attempts"] == 1


def test_a_requester_name_with_a_script_arrives_escaped_in_html(start_worker, publish, notify, smtp_server):  # noqa: F811
    smtp, _ = smtp_server
    start_worker()
    ticket, number = _ticket(publish, name="<script>alert('x')</script> Ana")
    (message,) = wait_until(lambda: [m for m in smtp.received if f"[#{number}]" in m["Subject"]], timeout=30)
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>alert('x')</script> Ana" in message.get_body(("plain",)).get_content()


@pytest.fixture
def longer_retries(infra, settings):
    """The retry delays of the test below, and their queues deleted after it (the session deletes its own only);
    asked for before its worker, so that it is stopped first (its fixture ends first)."""
    delays = (2.0, 4.0, 8.0, 16.0)
    yield ",".join(f"{delay:g}" for delay in delays)
    connection = pika.BlockingConnection(pika.URLParameters(infra.amqp_url))
    try:
        for delay in delays:
            connection.channel().queue_delete(retry_queue_name(settings, "notify", delay))
    finally:
        connection.close()


def test_an_event_before_its_ticket_is_known_waits_for_it(longer_retries, start_worker, publish, notify, smtp_server):  # noqa: F811
    smtp, _ = smtp_server
    worker = start_worker(TICKETFLOW_RETRY_DELAYS=longer_retries)  # ticket.created comes long before they are spent
    ticket_id, number = uuid.uuid4().hex, 777001
    _send(publish, "ticket.resolved", ticket_id, agent_id="jane", resolution="Done.")  # before ticket.created
    wait_until(lambda: "handler for ticket.resolved failed" in worker.log_text(), timeout=15)  # it was tried
    assert _records(notify, ticket_id) == []
    data = {"number": number, "subject": "Late", "description": "x", "requester": REQUESTER, "topic": "network",
            "priority": "low", "source": "web"}  # fmt: skip
    publish("ticket.created", event_from("intake", "ticket.created", ticket_id, data))
    wait_until(lambda: len([r for r in _records(notify, ticket_id) if r["status"] == "sent"]) == 2, timeout=40)
    assert sorted(r["event_type"] for r in _records(notify, ticket_id)) == ["ticket.created", "ticket.resolved"]


def test_two_webhooks_on_one_url_each_get_their_delivery(notify, webhook_server):  # noqa: F811
    _, base = webhook_server
    hooks = [handlers.add_webhook(notify, {"url": f"{base}/ok", "events": ["ticket.*"], "secret": f"secret-{i}" * 3})
             for i in range(2)]  # fmt: skip
    ticket_id = uuid.uuid4().hex
    data = {"number": 5150, "subject": "Twice", "description": "x", "requester": REQUESTER, "topic": "network",
            "priority": "low", "source": "web"}  # fmt: skip
    handlers.on_event(notify, event_from("intake", "ticket.created", ticket_id, data))
    deliveries = [r for r in _records(notify, ticket_id) if r["channel"] == "webhook"]
    assert sorted(r["webhook_id"] for r in deliveries) == sorted(h["_id"] for h in hooks)
    assert len({r["_id"] for r in deliveries}) == 2


def _delivery_of_a_removed_webhook(notify, **state) -> tuple[dict, object]:
    """(the webhook, now removed; a delivery to it stored as `state` says)."""
    from datetime import UTC, datetime

    from services.notify.domain import Notification

    hook = notify.webhooks.add({"_id": uuid.uuid4().hex, "url": "http://127.0.0.1:9/x", "events": ["*"],
                                "secret": "s", "created_at": datetime.now(UTC)})  # fmt: skip
    record = Notification(
        id=uuid.uuid4().hex, event_id=uuid.uuid4().hex, event_type="ticket.created", ticket_id=uuid.uuid4().hex,
        channel="webhook", recipient=hook["url"], subject=None, body="{}", created_at=datetime.now(UTC),
        webhook_id=hook["_id"], endpoint="127.0.0.1", last_error="HTTP 500", **state,
    )  # fmt: skip
    notify.notifications.insert(record, {})
    handlers.delete_webhook(notify, hook["_id"])
    return hook, record


def test_a_dead_webhook_delivery_is_not_retried_once_its_webhook_is_removed(notify):
    from datetime import UTC, datetime

    from shared.errors import Conflict

    hook, record = _delivery_of_a_removed_webhook(notify, status="dead", attempts=6)

    with pytest.raises(Conflict, match="Its webhook was removed"):
        handlers.retry(notify, record.id)
    assert notify.notifications.get(record.id).status == "dead"  # left as it was

    notify.webhooks.add({**hook, "created_at": datetime.now(UTC)})  # the same webhook back: retried
    assert handlers.retry(notify, record.id).status == "pending"
    notify.notifications.collection.delete_one({"_id": record.id})  # no later test's worker may send it


def test_a_delivery_whose_webhook_was_removed_fails_for_good_at_its_next_attempt(notify):
    """Its webhook will not come back by waiting: no retries, which would keep it "Retrying" on the admin page."""
    _, record = _delivery_of_a_removed_webhook(notify, status="failed", attempts=1, step=1)

    handlers.send(notify, notify.notifications.get(record.id))

    after = notify.notifications.get(record.id)
    notify.notifications.collection.delete_one({"_id": record.id})  # no later test's worker may send it
    assert (after.status, after.attempts, after.last_error) == ("dead", 2, "the webhook was deleted")
