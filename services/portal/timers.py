"""What the portal's worker runs on a clock: check-status links, welcome emails, forgetting what expired."""

from __future__ import annotations

from datetime import timedelta

from services.portal import domain
from services.portal.admin.welcome import send_welcome_emails
from services.portal.handlers import Portal, answer_status_requests
from shared.clock import now

STATUS_INTERVAL = 1.0  # seconds between looks for check-status requests to answer


def answer_requests(svc: Portal) -> int:
    return answer_status_requests(svc)


def send_welcomes(svc: Portal) -> int:
    return send_welcome_emails(svc)


def purge(svc: Portal) -> None:
    """Expired sessions, links and rate windows, stale presence, requests answered a day ago."""
    svc.store.purge(
        now(),
        presence_before=now() - timedelta(seconds=domain.PRESENCE_SECONDS * 10),
        requests_before=now() - timedelta(days=1),
    )
