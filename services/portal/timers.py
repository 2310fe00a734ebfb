"""What the portal's worker runs on a clock: answering check-status requests, forgetting what expired."""

from __future__ import annotations

from datetime import timedelta

from services.portal import domain
from services.portal.handlers import Portal, answer_status_requests
from shared.clock import now

STATUS_INTERVAL = 1.0  # seconds between looks for check-status requests to answer


def answer_requests(svc: Portal) -> int:
    return answer_status_requests(svc)


def purge(svc: Portal) -> None:
    """Expired sessions, links and rate windows, stale presence, requests answered a day ago."""
    svc.store.purge(
        now(),
        presence_before=now() - timedelta(seconds=domain.PRESENCE_SECONDS * 10),
        requests_before=now() - timedelta(days=1),
    )
