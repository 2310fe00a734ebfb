"""The mail relay down for a minute, then back: every notification of that minute is sent once, none dead.

notify reaches the SMTP server through a TcpProxy; stopping it refuses every connection, as a relay that
is down does. The retry delays of the tests (0.2, 0.4, 0.8 s) are used up within two seconds: a relay that
cannot be reached must not spend them.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from tests.e2e.checks import _email, _emails, submit_all
from tests.e2e.test_lifecycle import REQUESTER, help_desk
from tests.harness import TcpProxy, wait_until

TICKETS = 12
OUTAGE = 60.0  # seconds


def test_every_notification_of_a_minute_without_the_mail_relay_is_sent_once_when_it_returns(start_system, smtp_server):
    _, smtp_url = smtp_server
    target = urlsplit(smtp_url)
    with TcpProxy(target.hostname, target.port) as relay:
        system = start_system(workers=1, env={"SMTP_URL": relay.rewrite(smtp_url)})
        desk = help_desk(system, agents=2, capacity=TICKETS)
        relay.stop()
        down_since = time.monotonic()
        tickets = submit_all(system, desk["topic"], ["normal"] * TICKETS)
        ids = {ticket["id"] for ticket in tickets}

        def mine(status: str | None = None) -> list[dict]:
            found = system.items("notify", "/notifications", {"status": status} if status else None)
            return [n for n in found if n["ticket_id"] in ids]

        def all_tried() -> list[dict] | None:  # a receipt and an assignment email a ticket, each tried and refused
            found = mine()
            tried = len(found) == 2 * TICKETS and all(n["status"] == "failed" for n in found)
            return found if tried and all(n["attempts"] >= 4 for n in found) else None

        # four attempts each: more than the retries (three delays) that would have made them dead
        refused = wait_until(all_tried, timeout=OUTAGE - 5, message="each notification tried while the relay is down")
        assert all("connection refused" in n["last_error"] for n in refused), refused[0]
        assert list(system.smtp.received) == []
        time.sleep(max(OUTAGE - (time.monotonic() - down_since), 0))  # the outage lasts its minute
        assert mine("dead") == []
        relay.start()

        def all_sent() -> list[dict] | None:
            found = mine()
            return found if len(found) == 2 * TICKETS and all(n["status"] == "sent" for n in found) else None

        wait_until(all_sent, timeout=90, message="every notification sent once the relay is back")
        for ticket in tickets:
            agent_id = system.ok("GET", "assignment", f"/tickets/{ticket['id']}")["agent_id"]
            assert _emails(system, ticket) == {REQUESTER["email"]: 1, _email(desk, agent_id): 1}, ticket["number"]
        assert len(system.smtp.received) == 2 * TICKETS  # each sent once: no copy at all
        assert mine("dead") == []
